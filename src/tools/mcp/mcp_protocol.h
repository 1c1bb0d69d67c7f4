// The Model Context Protocol's messages as the client sees them: JSON-RPC 2.0
// framing, tool listings, tool results. Pure: no I/O, no clock, no threads.
// Transports (mcp_transport.h) move the text; McpConnection drives the
// exchanges.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace continuum {

// The protocol revisions the client speaks, newest first.
inline constexpr std::string_view kMcpRevision2026 = "2026-07-28";  // stateless: no handshake
inline constexpr std::string_view kMcpRevision2025 = "2025-11-25";  // initialize + sessions
// `_meta` key of a tools/call that carries the effect's idempotency key
// ("{run_id}:{seq}", the same on every retry and after any restart).
inline constexpr std::string_view kMcpIdempotencyMetaKey = "io.continuum/idempotency-key";
// A message (or a batch) larger than this is refused.
inline constexpr std::size_t kMcpMessageBytesMax = 16 * 1024 * 1024;

// JSON-RPC error codes the client sends or acts on.
inline constexpr int64_t kJsonRpcParseError = -32700;
inline constexpr int64_t kJsonRpcMethodNotFound = -32601;
inline constexpr int64_t kJsonRpcInvalidParams = -32602;

struct McpMessage {
  enum class Kind { kRequest, kNotification, kResult, kError };
  Kind kind = Kind::kNotification;
  json::value id;          // requests, results and errors (a string or an integer)
  std::string method;      // requests and notifications
  json::object params;     // requests and notifications
  json::value result;      // results
  int64_t error_code = 0;  // errors
  std::string error_message;
  json::value error_data;
};

// Parses one JSON-RPC message, or a batch (array) of them, from a peer.
// InvalidArgument for anything that is not well-formed JSON-RPC 2.0.
Result<std::vector<McpMessage>> parse_mcp_messages(std::string_view text);

std::string mcp_request_text(int64_t id, std::string_view method, json::object params);
std::string mcp_notification_text(std::string_view method, json::object params);
std::string mcp_result_text(const json::value& id, json::value result);
std::string mcp_error_text(const json::value& id, int64_t code, std::string_view message);

// The client's description of itself (clientInfo).
json::object mcp_client_info();

// One tool as a server lists it.
struct McpTool {
  std::string name;
  std::string title;
  std::string description;
  json::object input_schema;
  json::value output_schema;  // null if none
  json::value annotations;    // null if none
  // sha256 hex over the canonical JSON of {name, title, description,
  // inputSchema}: what tool pinning compares (see McpToolPin).
  std::string definition_hash;
};

struct McpToolsPage {
  std::vector<McpTool> tools;
  std::optional<std::string> next_cursor;
};

// A tools/list result. Tools without a valid name or with a non-object
// inputSchema make the whole page invalid (a server that lies about one tool
// is not trusted with the others).
Result<McpToolsPage> parse_tools_page(const json::value& result);

// What a tool is pinned as: canonical JSON of {name, title, description,
// inputSchema}; and its SHA-256 (hex).
std::string tool_definition_json(const McpTool& tool);
std::string tool_definition_hash(const McpTool& tool);

// What the model sees of a tools/call result: text content joined by blank
// lines; structuredContent (as JSON) when there is no text; other content
// kinds summarized ("[image: image/png, 1234 bytes of base64]").
struct McpToolResult {
  std::string text;
  bool is_error = false;
};
Result<McpToolResult> render_tool_result(const json::value& result);

// The answer to a server's elicitation/create request (2025-11-25, form mode)
// under `policy`: "decline" declines; "defaults" accepts with the default of
// every property of the requested schema when each required property has one,
// and declines otherwise. No person is asked: a tool call has no one to ask.
json::object mcp_elicitation_answer(const json::object& params, const std::string& policy);

// The name the model calls an MCP tool by: "<server>__<tool>", with characters
// outside [A-Za-z0-9_-] replaced by '_' and, past 64 characters, shortened with
// a hash suffix so that distinct tools keep distinct names.
std::string mcp_model_tool_name(std::string_view server, std::string_view tool);

// Whether `name` matches an allowed_tools entry: "*" (all), an exact name, or a
// prefix pattern ending in '*'.
bool mcp_tool_allowed(const std::vector<std::string>& allowed_tools, std::string_view name);

}  // namespace continuum
