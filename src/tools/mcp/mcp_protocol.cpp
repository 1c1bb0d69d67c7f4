#include "tools/mcp/mcp_protocol.h"

#include <algorithm>

#include "crypto/hash.h"

namespace continuum {

namespace {

constexpr std::size_t kBatchMessagesMax = 1024;
constexpr std::size_t kToolNameBytesMax = 128;
constexpr std::size_t kModelToolNameMax = 64;

Status malformed(const std::string& what) { return invalid_argument("malformed MCP message: " + what); }

bool is_valid_id(const json::value& id) { return id.is_string() || id.is_int64() || id.is_uint64(); }

Result<McpMessage> parse_one(const json::value& value) {
  if (!value.is_object()) return malformed("not a JSON object");
  const json::object& obj = value.get_object();
  const json::value* version = obj.if_contains("jsonrpc");
  if (version == nullptr || !version->is_string() || version->get_string() != "2.0") {
    return malformed("jsonrpc must be \"2.0\"");
  }
  McpMessage message;
  const json::value* id = obj.if_contains("id");
  const json::value* method = obj.if_contains("method");
  if (method != nullptr) {
    if (!method->is_string() || method->get_string().empty()) return malformed("method must be a string");
    message.method = std::string(method->get_string());
    const json::value* params = obj.if_contains("params");
    if (params != nullptr && !params->is_null()) {
      if (!params->is_object()) return malformed("params must be an object");
      message.params = params->get_object();
    }
    if (id == nullptr) return message;  // a notification
    if (!is_valid_id(*id)) return malformed("id must be a string or an integer");
    message.kind = McpMessage::Kind::kRequest;
    message.id = *id;
    return message;
  }
  if (id == nullptr || !(is_valid_id(*id) || id->is_null())) return malformed("a response needs an id");
  message.id = *id;
  if (const json::value* error = obj.if_contains("error")) {
    if (!error->is_object()) return malformed("error must be an object");
    const json::object& details = error->get_object();
    const json::value* code = details.if_contains("code");
    if (code == nullptr || !code->is_int64()) return malformed("error.code must be an integer");
    message.kind = McpMessage::Kind::kError;
    message.error_code = code->get_int64();
    const json::value* text = details.if_contains("message");
    message.error_message = text != nullptr && text->is_string() ? std::string(text->get_string()) : "";
    if (const json::value* data = details.if_contains("data")) message.error_data = *data;
    return message;
  }
  const json::value* result = obj.if_contains("result");
  if (result == nullptr) return malformed("a response needs a result or an error");
  message.kind = McpMessage::Kind::kResult;
  message.result = *result;
  return message;
}

json::object envelope(std::string_view method) { return json::object{{"jsonrpc", "2.0"}, {"method", method}}; }

std::string string_or_empty(const json::object& obj, std::string_view key) {
  const json::value* value = obj.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : "";
}

bool is_model_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

Result<McpTool> parse_tool(const json::value& value) {
  if (!value.is_object()) return malformed("a listed tool is not an object");
  const json::object& obj = value.get_object();
  McpTool tool;
  tool.name = string_or_empty(obj, "name");
  bool visible_ascii = std::all_of(tool.name.begin(), tool.name.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  if (tool.name.empty() || tool.name.size() > kToolNameBytesMax || !visible_ascii) {
    return malformed("a listed tool has no valid name (1-128 visible ASCII characters)");
  }
  tool.title = string_or_empty(obj, "title");
  tool.description = string_or_empty(obj, "description");
  const json::value* schema = obj.if_contains("inputSchema");
  if (schema == nullptr || !schema->is_object()) return malformed("tool '" + tool.name + "' has no inputSchema object");
  tool.input_schema = schema->get_object();
  if (const json::value* output = obj.if_contains("outputSchema")) tool.output_schema = *output;
  if (const json::value* annotations = obj.if_contains("annotations")) tool.annotations = *annotations;
  tool.definition_hash = tool_definition_hash(tool);
  return tool;
}

std::string summarize_content(const json::object& item) {
  std::string type = string_or_empty(item, "type");
  if (type == "image" || type == "audio") {
    return "[" + type + ": " + string_or_empty(item, "mimeType") + ", " +
           std::to_string(string_or_empty(item, "data").size()) + " bytes of base64]";
  }
  if (type == "resource_link") return "[resource: " + string_or_empty(item, "uri") + "]";
  if (type == "resource") {
    const json::value* resource = item.if_contains("resource");
    if (resource != nullptr && resource->is_object()) {
      std::string text = string_or_empty(resource->get_object(), "text");
      if (!text.empty()) return text;
      return "[resource: " + string_or_empty(resource->get_object(), "uri") + "]";
    }
  }
  return "[" + (type.empty() ? std::string("unknown") : type) + " content]";
}

}  // namespace

Result<std::vector<McpMessage>> parse_mcp_messages(std::string_view text) {
  if (text.size() > kMcpMessageBytesMax) return malformed("larger than " + std::to_string(kMcpMessageBytesMax) + " bytes");
  auto parsed = parse_json(text);
  if (!parsed.is_ok()) return malformed("not valid JSON");
  std::vector<McpMessage> messages;
  if (parsed->is_array()) {
    const json::array& batch = parsed->get_array();
    if (batch.empty() || batch.size() > kBatchMessagesMax) return malformed("a batch must hold 1-1024 messages");
    for (const json::value& element : batch) {
      ASSIGN_OR_RETURN(auto message, parse_one(element));
      messages.push_back(std::move(message));
    }
    return messages;
  }
  ASSIGN_OR_RETURN(auto message, parse_one(*parsed));
  messages.push_back(std::move(message));
  return messages;
}

std::string mcp_request_text(int64_t id, std::string_view method, json::object params) {
  json::object message = envelope(method);
  message["id"] = id;
  message["params"] = std::move(params);
  return to_json(message);
}

std::string mcp_notification_text(std::string_view method, json::object params) {
  json::object message = envelope(method);
  if (!params.empty()) message["params"] = std::move(params);
  return to_json(message);
}

std::string mcp_result_text(const json::value& id, json::value result) {
  return to_json(json::object{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}});
}

std::string mcp_error_text(const json::value& id, int64_t code, std::string_view message) {
  return to_json(json::object{
      {"jsonrpc", "2.0"}, {"id", id}, {"error", json::object{{"code", code}, {"message", message}}}});
}

json::object mcp_client_info() { return json::object{{"name", "continuum"}, {"version", "0.1.0"}}; }

std::string tool_definition_json(const McpTool& tool) {
  json::object definition{{"name", tool.name},
                          {"title", tool.title},
                          {"description", tool.description},
                          {"inputSchema", tool.input_schema}};
  return to_canonical_json(definition);
}

std::string tool_definition_hash(const McpTool& tool) { return sha256_hex(tool_definition_json(tool)); }

Result<McpToolsPage> parse_tools_page(const json::value& result) {
  if (!result.is_object()) return malformed("tools/list result is not an object");
  const json::object& obj = result.get_object();
  const json::value* tools = obj.if_contains("tools");
  if (tools == nullptr || !tools->is_array()) return malformed("tools/list result has no tools array");
  McpToolsPage page;
  for (const json::value& element : tools->get_array()) {
    ASSIGN_OR_RETURN(auto tool, parse_tool(element));
    page.tools.push_back(std::move(tool));
  }
  const json::value* cursor = obj.if_contains("nextCursor");
  if (cursor != nullptr && cursor->is_string()) {  // "" is a cursor too; absent means the end
    page.next_cursor = std::string(cursor->get_string());
  }
  return page;
}

Result<McpToolResult> render_tool_result(const json::value& result) {
  if (!result.is_object()) return malformed("tools/call result is not an object");
  const json::object& obj = result.get_object();
  McpToolResult rendered;
  const json::value* result_type = obj.if_contains("resultType");
  if (result_type != nullptr && !(result_type->is_string() && result_type->get_string() == "complete")) {
    // e.g. "input_required": the tool has not run; the client cannot supply input.
    return malformed("the server answered tools/call with resultType " + to_json(*result_type) +
                     ", which the client does not support");
  }
  const json::value* is_error = obj.if_contains("isError");
  rendered.is_error = is_error != nullptr && is_error->is_bool() && is_error->get_bool();
  const json::value* content = obj.if_contains("content");
  if (content != nullptr && !content->is_array()) return malformed("tools/call content is not an array");
  bool has_text = false;
  if (content != nullptr) {
    for (const json::value& element : content->get_array()) {
      if (!element.is_object()) return malformed("a content item is not an object");
      const json::object& item = element.get_object();
      bool text_item = string_or_empty(item, "type") == "text";
      std::string piece = text_item ? string_or_empty(item, "text") : summarize_content(item);
      if (!rendered.text.empty()) rendered.text += "\n\n";
      rendered.text += piece;
      has_text = has_text || text_item;
    }
  }
  const json::value* structured = obj.if_contains("structuredContent");
  if (!has_text && structured != nullptr && !structured->is_null()) {
    if (!rendered.text.empty()) rendered.text += "\n\n";
    rendered.text += to_json(*structured);
  }
  return rendered;
}

json::object mcp_elicitation_answer(const json::object& params, const std::string& policy) {
  json::object decline{{"action", "decline"}};
  if (policy != "defaults") return decline;
  const json::value* schema = params.if_contains("requestedSchema");
  if (schema == nullptr || !schema->is_object()) return decline;
  const json::value* properties = schema->get_object().if_contains("properties");
  if (properties == nullptr || !properties->is_object()) return decline;
  json::object content;
  for (const auto& [name, property] : properties->get_object()) {
    const json::value* fallback = property.is_object() ? property.get_object().if_contains("default") : nullptr;
    if (fallback != nullptr) content[name] = *fallback;
  }
  const json::value* required = schema->get_object().if_contains("required");
  if (required != nullptr && required->is_array()) {
    for (const auto& name : required->get_array()) {
      if (!name.is_string() || !content.contains(name.get_string())) return decline;  // nobody can fill it in
    }
  }
  return json::object{{"action", "accept"}, {"content", std::move(content)}};
}

std::string mcp_model_tool_name(std::string_view server, std::string_view tool) {
  std::string name = std::string(server) + "__";
  for (char c : tool) name += is_model_name_char(c) ? c : '_';
  if (name.size() <= kModelToolNameMax) return name;
  std::string suffix = "_" + sha256_hex(std::string(server) + "\n" + std::string(tool)).substr(0, 8);
  return name.substr(0, kModelToolNameMax - suffix.size()) + suffix;
}

bool mcp_tool_allowed(const std::vector<std::string>& allowed_tools, std::string_view name) {
  for (const std::string& pattern : allowed_tools) {
    if (pattern == "*" || pattern == name) return true;
    if (!pattern.empty() && pattern.back() == '*' &&
        name.substr(0, pattern.size() - 1) == std::string_view(pattern).substr(0, pattern.size() - 1)) {
      return true;
    }
  }
  return false;
}

}  // namespace continuum
