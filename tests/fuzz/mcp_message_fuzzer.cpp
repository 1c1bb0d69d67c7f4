// libFuzzer target: what an MCP server sends the client. The bytes go to
// parse_mcp_messages as one message (or batch); every result in it goes to
// parse_tools_page and render_tool_result (and each listed tool through the
// names the model sees); the same bytes go through an SseReader as a
// Streamable HTTP response body, whole and cut at a point the input picks,
// which must give the same events; every event's data is parsed again as a
// message. The bytes are also what an OAuth-protected server or its
// authorization server may send: a WWW-Authenticate challenge, protected
// resource and authorization server metadata, whose URLs then go through
// discovery and the resource check.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "net/sse_reader.h"
#include "tools/mcp/mcp_protocol.h"
#include "tools/mcp/oauth_discovery.h"

namespace {

using namespace continuum;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

void consume_messages(std::string_view text) {
  auto messages = parse_mcp_messages(text);
  if (!messages.is_ok()) return;
  check(!messages->empty());
  for (const McpMessage& message : *messages) {
    if (message.kind == McpMessage::Kind::kRequest || message.kind == McpMessage::Kind::kNotification) {
      check(!message.method.empty());
      // What the client writes back must parse as what it claims to be.
      if (message.kind == McpMessage::Kind::kRequest) {
        auto reply = parse_mcp_messages(mcp_error_text(message.id, kJsonRpcMethodNotFound, message.method));
        check(reply.is_ok() && reply->size() == 1 && (*reply)[0].kind == McpMessage::Kind::kError);
      }
      continue;
    }
    if (message.kind != McpMessage::Kind::kResult) continue;
    auto page = parse_tools_page(message.result);
    if (page.is_ok()) {
      for (const McpTool& tool : page->tools) {
        check(!tool.name.empty());
        check(tool.definition_hash == tool_definition_hash(tool));
        std::string model_name = mcp_model_tool_name("fuzz", tool.name);
        check(model_name.size() <= 64);
        (void)mcp_tool_allowed({"*"}, tool.name);
        (void)mcp_tool_allowed({tool.name.substr(0, tool.name.size() / 2) + "*"}, tool.name);
      }
      if (page->next_cursor) check(!page->next_cursor->empty());
    }
    (void)render_tool_result(message.result);
  }
}

void consume_oauth(std::string_view text) {
  auto challenge = parse_bearer_challenge(text);
  if (challenge.is_ok()) {
    for (const std::string& url : protected_resource_metadata_urls(challenge->resource_metadata)) check(!url.empty());
    std::string scope = scope_union(challenge->scope, "mcp:basic");
    check(scope_includes(scope, challenge->scope) && scope_includes(scope, "mcp:basic"));
  }
  auto resource = parse_protected_resource_metadata(text);
  if (resource.is_ok()) {
    check(!resource->authorization_servers.empty());
    (void)resource_covers(resource->resource, "http://localhost:1/mcp");
    for (const std::string& url : authorization_server_metadata_urls(resource->authorization_servers.front())) {
      check(url.find("/.well-known/") != std::string::npos);
    }
  }
  auto server = parse_authorization_server_metadata(text);
  if (server.is_ok()) {
    check(!server->token_endpoint.empty());
    (void)secure_oauth_url(server->token_endpoint);
    (void)with_query(server->authorization_endpoint, {{"state", std::string(text.substr(0, 64))}});
  }
  (void)query_params(std::string(text));
}

struct SseRun {
  std::vector<std::string> events;  // name, data and id of each, NUL-separated
  Status status;                    // the first failure, ok if none
};

// Reads `text` as an SSE stream, fed in pieces cut at `cuts` (ascending).
SseRun read_stream(std::string_view text, const std::vector<size_t>& cuts, bool parse_events) {
  SseRun run;
  SseReader reader("mcp fuzz stream", 4096, [&](SseEvent event) {
    if (parse_events) consume_messages(event.data);
    bool refuse = event.data == "stop";
    run.events.push_back(event.name + '\0' + event.data + '\0' + event.id);
    if (refuse) return invalid_argument("the handler refused an event");
    return Status::ok();
  });
  size_t from = 0;
  Status failed;
  for (size_t cut : cuts) {
    Status status = reader.feed(text.substr(from, cut - from));
    // Errors are sticky: once a feed failed, every later call reports it.
    if (!failed.is_ok()) check(status.code() == failed.code() && status.message() == failed.message());
    if (failed.is_ok() && !status.is_ok()) failed = status;
    from = cut;
  }
  Status status = reader.feed(text.substr(from));
  if (!failed.is_ok()) check(status.code() == failed.code());
  if (failed.is_ok() && !status.is_ok()) failed = status;
  Status finished = reader.finish();
  if (!failed.is_ok()) check(finished.code() == failed.code());
  run.status = failed.is_ok() ? finished : failed;
  return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  consume_messages(text);
  consume_oauth(text);

  // The same bytes as a Streamable HTTP response body: whole, and split at a
  // point the input picks (and at every 7th byte after it). The split must not
  // change which events come out, nor the outcome.
  SseRun whole = read_stream(text, {}, true);
  size_t split = size > 0 ? data[size - 1] % (size + 1) : 0;
  std::vector<size_t> cuts{split};
  for (size_t cut = split + 7; cut < size; cut += 7) cuts.push_back(cut);
  SseRun pieces = read_stream(text, cuts, false);
  check(whole.events == pieces.events);
  check(whole.status.code() == pieces.status.code());
  check(whole.events.size() <= size);
  return 0;
}
