#include "tools/tool_runner.h"

#include <set>

#include "core/log.h"
#include "core/utf8.h"
#include "net/http_client.h"
#include "tools/mcp/mcp_hub.h"
#include "tools/mcp/tool_pins.h"

namespace continuum {

namespace {

constexpr size_t kErrorBodyShownMax = 500;

ToolOutcome builtin_call(const ToolCall& call) {
  ToolOutcome outcome;
  outcome.ok = true;
  outcome.output = call.spec->name == "echo" ? call.arguments_json : "ok";
  return outcome;
}

// A tool that echoes its credential back must not hand it to the model.
void redact(std::string& text, const std::string& secret) {
  if (secret.empty()) return;
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
    text.replace(at, secret.size(), "[redacted]");
  }
}

// `credential` (the tool's vault secret, or "") is blanked out of the body
// before anything is cut from it, so no part of it can survive.
ToolOutcome outcome_from_response(Result<HttpClientResponse> result, const std::string& credential) {
  ToolOutcome outcome;
  if (!result.is_ok()) {
    const Status& status = result.status();
    outcome.error.code = status.code() == Code::kDeadlineExceeded  ? "timeout"
                         : status.code() == Code::kPermissionDenied ? "forbidden_address"
                         : status.code() == Code::kInvalidArgument  ? "bad_url"
                         : status.code() == Code::kPayloadTooLarge  ? "response_too_large"
                                                                    : "connection";
    outcome.error.message = status.message();
    redact(outcome.error.message, credential);
    outcome.error.retryable = status.code() == Code::kDeadlineExceeded || status.code() == Code::kUnavailable;
    return outcome;
  }
  redact(result->body, credential);
  if (result->status >= 200 && result->status < 300) {
    outcome.ok = true;
    outcome.output = sanitize_utf8(result->body);
    return outcome;
  }
  outcome.error.code = "http_" + std::to_string(result->status);
  outcome.error.message = sanitize_utf8(truncate_utf8(result->body, kErrorBodyShownMax));
  outcome.error.retryable = is_retryable_http_status(result->status);
  outcome.error.retry_after_ms = parse_retry_after_ms(result->header("Retry-After"));
  return outcome;
}

ToolOutcome outcome_from_mcp(Result<json::value> result) {
  ToolOutcome outcome;
  if (result.is_ok()) {
    auto rendered = render_tool_result(*result);
    if (rendered.is_ok()) {
      outcome.ok = true;
      outcome.output = sanitize_utf8(rendered->text);
      outcome.is_error = rendered->is_error;
      return outcome;
    }
    result = rendered.status();
  }
  const Status& status = result.status();
  outcome.error.code = status.code() == Code::kDeadlineExceeded   ? "timeout"
                       : status.code() == Code::kUnavailable      ? "mcp_unavailable"
                       : status.code() == Code::kCancelled        ? "cancelled"
                       : status.code() == Code::kPermissionDenied ? "forbidden"
                       : status.code() == Code::kUnauthenticated  ? "mcp_unauthorized"
                                                                  : "mcp_error";
  outcome.error.message = sanitize_utf8(truncate_utf8(status.message(), kErrorBodyShownMax));
  outcome.error.retryable = status.code() == Code::kDeadlineExceeded || status.code() == Code::kUnavailable;
  return outcome;
}

// Compiled input schemas, by definition hash: a listing is repeated often, a
// schema rarely changes. Touched only on the loop thread.
std::shared_ptr<const JsonSchemaValidator> validator_for(const McpTool& tool) {
  static std::map<std::string, std::shared_ptr<const JsonSchemaValidator>> cache;
  auto it = cache.find(tool.definition_hash);
  if (it != cache.end()) return it->second;
  auto compiled = JsonSchemaValidator::compile(tool.input_schema, "inputSchema");
  std::shared_ptr<const JsonSchemaValidator> validator = compiled.is_ok() ? *compiled : nullptr;
  if (cache.size() > 4096) cache.clear();
  cache[tool.definition_hash] = validator;
  return validator;
}

// Two tools whose model names coincide ("a.b" and "a_b" both become
// "<server>__a_b") cannot both be offered: the model could not tell which it
// calls. The first keeps the name; the others are withheld.
std::vector<McpToolEntry> withhold_name_collisions(std::vector<McpToolEntry> entries) {
  std::set<std::string> names;
  for (McpToolEntry& entry : entries) {
    if (entry.tool.empty()) continue;  // a server that could not be listed
    if (!names.insert(entry.model_name).second && entry.withheld_reason.empty()) {
      entry.withheld_reason = "another MCP tool is offered to the model as '" + entry.model_name + "'";
    }
  }
  return entries;
}

McpToolEntry entry_for(const ToolSpec& server, const McpTool& tool) {
  McpToolEntry entry;
  entry.model_name = mcp_model_tool_name(server.name, tool.name);
  entry.server = &server;
  entry.tool = tool.name;
  entry.description = tool.description.empty() ? tool.title : tool.description;
  entry.parameters = tool.input_schema;
  entry.validator = validator_for(tool);
  if (!entry.validator) entry.withheld_reason = "its input schema is not a usable JSON Schema";
  return entry;
}

}  // namespace

void DefaultToolRunner::list_mcp_tools(const std::string& tenant, std::shared_ptr<const AgentSpec> agent,
                                       std::function<void(std::vector<McpToolEntry>)> done) {
  struct Gather {
    std::vector<McpToolEntry> entries;
    size_t waiting = 0;
    std::function<void(std::vector<McpToolEntry>)> done;
  };
  auto gather = std::make_shared<Gather>();
  gather->done = std::move(done);
  std::vector<const ToolSpec*> servers;
  for (const auto& tool : agent->tools) {
    if (tool.mcp) servers.push_back(&tool);
  }
  gather->waiting = servers.size();
  if (servers.empty() || options_.mcp == nullptr) {
    loop_.post([gather] { gather->done({}); });
    return;
  }
  McpToolPins* pins = options_.pins;
  for (const ToolSpec* server : servers) {
    options_.mcp->list_tools(tenant, *server, [gather, agent, server, pins, tenant](Result<McpToolList> tools) {
      auto server_done = [gather] {
        if (--gather->waiting == 0) gather->done(withhold_name_collisions(std::move(gather->entries)));
      };
      if (!tools.is_ok()) {
        log::warn("mcp server tools unavailable", {{"server", server->name}, {"error", tools.status().message()}});
        McpToolEntry unavailable_server;  // stands for every tool of the server (empty `tool`)
        unavailable_server.model_name = mcp_model_tool_name(server->name, "");
        unavailable_server.server = server;
        unavailable_server.withheld_reason =
            "its MCP server '" + server->name + "' is unavailable: " + tools.status().message();
        unavailable_server.listing_retryable = tools.status().code() != Code::kPermissionDenied &&
                                               tools.status().code() != Code::kUnauthenticated;
        gather->entries.push_back(std::move(unavailable_server));
        return server_done();
      }
      std::vector<McpTool> allowed;
      for (const McpTool& tool : **tools) {
        if (mcp_tool_allowed(server->mcp->allowed_tools, tool.name)) allowed.push_back(tool);
      }
      if (pins == nullptr) {
        for (const McpTool& tool : allowed) gather->entries.push_back(entry_for(*server, tool));
        return server_done();
      }
      pins->check(tenant, server->name, allowed,
                  [gather, agent, server, allowed, server_done](std::map<std::string, std::string> reasons) {
                    for (const McpTool& tool : allowed) {
                      McpToolEntry entry = entry_for(*server, tool);
                      if (entry.withheld_reason.empty()) entry.withheld_reason = reasons[tool.name];
                      gather->entries.push_back(std::move(entry));
                    }
                    server_done();
                  });
    });
  }
}

void DefaultToolRunner::cancel(const std::string& idempotency_key) {
  if (options_.mcp != nullptr) options_.mcp->cancel(idempotency_key, "the run was cancelled");
}

void DefaultToolRunner::call_mcp(ToolCall call, std::function<void(ToolOutcome)> done) {
  auto arguments = parse_json(call.arguments_json);
  if (options_.mcp == nullptr || !arguments.is_ok() || !arguments->is_object()) {
    ToolOutcome outcome;
    outcome.error = EffectError{"mcp_error", options_.mcp == nullptr ? "MCP is not available" : "arguments must be an object",
                                false, -1};
    loop_.post([outcome = std::move(outcome), done = std::move(done)]() mutable { done(std::move(outcome)); });
    return;
  }
  McpCallOptions options;
  options.tool = call.mcp_tool;
  options.arguments = std::move(arguments->as_object());
  options.idempotency_key = call.idempotency_key;
  options.idle_timeout_ms = call.spec->timeout_ms;
  options.total_timeout_ms = std::max(call.spec->timeout_ms, call.spec->mcp->call_timeout_max_ms);
  options_.mcp->call(call.tenant, *call.spec, std::move(options), [done = std::move(done)](Result<json::value> result) {
    done(outcome_from_mcp(std::move(result)));
  });
}

void DefaultToolRunner::call(ToolCall call, std::function<void(ToolOutcome)> done) {
  if (call.spec->type == "mcp") return call_mcp(std::move(call), std::move(done));
  if (call.spec->type == "builtin") {
    loop_.post_continuation(
        [outcome = builtin_call(call), done = std::move(done)]() mutable { done(std::move(outcome)); });
    return;
  }
  std::string credential;
  if (call.spec->auth) {
    auto secret = options_.secrets ? options_.secrets(call.tenant, call.spec->auth->secret)
                                   : Result<std::string>(not_found("no vault"));
    if (!secret.is_ok()) {
      ToolOutcome outcome;
      outcome.error = EffectError{"credential_unavailable",
                                  "the tool's credential '" + call.spec->auth->secret + "' is not in the vault",
                                  secret.status().code() == Code::kUnavailable, -1};
      loop_.post([outcome = std::move(outcome), done = std::move(done)]() mutable { done(std::move(outcome)); });
      return;
    }
    credential = std::move(*secret);
  }
  HttpClientRequest request;
  request.method = "POST";
  request.url = call.spec->url;
  request.body = call.arguments_json;
  request.timeout_ms = call.spec->timeout_ms;
  request.response_bytes_max = options_.response_bytes_max;
  request.deny_private_addresses = !options_.allow_private_addresses;
  request.headers = {{"Content-Type", "application/json"},
                     {"Idempotency-Key", call.idempotency_key},
                     {"Continuum-Run-Id", call.run_id},
                     {"Continuum-Step", std::to_string(call.seq)}};
  if (call.spec->auth) request.headers.emplace_back(call.spec->auth->header, call.spec->auth->prefix + credential);
  if (options_.identity_token) {
    auto token = options_.identity_token(call);
    if (!token.is_ok()) {
      ToolOutcome outcome;
      outcome.error = EffectError{"identity_unavailable", "cannot sign the call's identity token", false, -1};
      loop_.post([outcome = std::move(outcome), done = std::move(done)]() mutable { done(std::move(outcome)); });
      return;
    }
    request.headers.emplace_back("Continuum-Identity", std::move(*token));
  }
  http_.send(std::move(request), nullptr,
             [done = std::move(done), credential = std::move(credential)](Result<HttpClientResponse> result) {
               done(outcome_from_response(std::move(result), credential));
             });
}

}  // namespace continuum
