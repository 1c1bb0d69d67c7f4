// Performs one attempt of a tool call. Retries are the engine's business.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "agent/agent_spec.h"
#include "engine/event_loop.h"
#include "engine/retry.h"

namespace continuum {

class HttpClient;
class McpHub;
class McpToolPins;

struct ToolCall {
  std::shared_ptr<const AgentSpec> agent;  // keeps `spec` alive
  const ToolSpec* spec = nullptr;
  std::string arguments_json;
  std::string idempotency_key;  // "{run_id}:{seq}", stable across retries and restarts
  std::string run_id;
  int64_t seq = 0;
  std::string tenant;  // whose vault credentials the call may use
  std::string session_id;
  std::string user_id;  // the session's end user ("" = none), for the identity token
  std::string mcp_tool;  // type "mcp": the tool's name on its server (`spec` is the server)
};

struct ToolOutcome {
  bool ok = false;
  std::string output;   // what the model sees on success
  bool is_error = false;  // ok, but the tool reports a failure of its own (MCP isError): not retried
  EffectError error;    // when !ok
};

// One tool of an agent's MCP server, as the model is offered it. An entry with
// an empty `tool` stands for all the tools of a server that could not be
// listed ("<server>__" is their name prefix; withheld_reason says why).
struct McpToolEntry {
  std::string model_name;   // "<server>__<tool>"
  const ToolSpec* server = nullptr;  // the agent's mcp entry (kept alive by the agent)
  std::string tool;         // its name on the server
  std::string description;
  json::object parameters;  // the server's inputSchema
  std::shared_ptr<const JsonSchemaValidator> validator;
  std::string withheld_reason;  // non-empty: not offered (e.g. changed since approved), and calls are refused
  bool listing_retryable = true;  // empty `tool`: whether listing the server again may succeed
};

// Contract: call() returns at once; `done` runs exactly once, later, on the loop thread.
class ToolRunner {
 public:
  virtual ~ToolRunner() = default;
  virtual void call(ToolCall call, std::function<void(ToolOutcome)> done) = 0;
  // The tools of `agent`'s MCP servers (allowed_tools applied; pinning
  // decides `withheld_reason`). A server that cannot be reached contributes
  // nothing. `done` runs once on the loop thread: later, or (runners without
  // MCP, as this default) at once.
  virtual void list_mcp_tools(const std::string& tenant, std::shared_ptr<const AgentSpec> agent,
                              std::function<void(std::vector<McpToolEntry>)> done) {
    (void)tenant;
    (void)agent;
    done({});
  }
  // Abandons the call with this idempotency key, if one is in flight (its
  // `done` still runs, with an error). Tools that support it are told.
  virtual void cancel(const std::string& idempotency_key) { (void)idempotency_key; }
};

// Reads a vault secret's value (tenant, name); kNotFound if there is none.
using SecretReader = std::function<Result<std::string>(const std::string& tenant, const std::string& name)>;

struct ToolRunnerOptions {
  bool allow_private_addresses = false;  // tests and the local demo use loopback tools
  int64_t response_bytes_max = 16 * 1024 * 1024;  // config tool_response_bytes_max
  SecretReader secrets;                  // for tools with `auth`; null = no vault
  // Mints the call's identity token (header Continuum-Identity); null = none.
  std::function<Result<std::string>(const ToolCall&)> identity_token;
  McpHub* mcp = nullptr;  // MCP servers' connections; null = mcp tools fail
  McpToolPins* pins = nullptr;  // tool pinning (null = every allowed tool is offered)
};

// HTTP tools POST the arguments as JSON with Idempotency-Key, Continuum-Run-Id,
// Continuum-Step and Continuum-Identity (a JWT naming the end user and the
// agent; auth/tool_identity.h) headers, plus the tool's vault credential (auth) if it has
// one; that credential is blanked out of whatever the tool answers, so it
// cannot reach the model or the journal. Builtin tools ("noop", "echo")
// answer in process.
class DefaultToolRunner final : public ToolRunner {
 public:
  DefaultToolRunner(EventLoop& loop, HttpClient& http, ToolRunnerOptions options)
      : loop_(loop), http_(http), options_(options) {}
  void call(ToolCall call, std::function<void(ToolOutcome)> done) override;
  void list_mcp_tools(const std::string& tenant, std::shared_ptr<const AgentSpec> agent,
                      std::function<void(std::vector<McpToolEntry>)> done) override;
  void cancel(const std::string& idempotency_key) override;

 private:
  void call_mcp(ToolCall call, std::function<void(ToolOutcome)> done);

  EventLoop& loop_;
  HttpClient& http_;
  ToolRunnerOptions options_;
};

}  // namespace continuum
