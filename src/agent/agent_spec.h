// An agent definition: validated once when it is written, immutable per
// version. Parsing is strict (unknown fields are errors) so typos surface early.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "engine/retry.h"
#include "tools/schema.h"

namespace continuum {

struct ModelSpec {
  std::string provider = "openai";  // "openai" (Chat Completions) or "scripted" (in-process, tests)
  std::string model;
  std::string base_url;             // "" = the server's default endpoint
  std::string api_key_env;          // name of the env var holding the key ("" = server default)
  json::object params;              // passed through: temperature, max_tokens, ...
  int64_t timeout_ms = 120'000;
  int64_t context_tokens = 16'000;  // token budget for conversation history
  RetryPolicy retry;
};

// A credential from the vault, injected as one request header of an HTTP
// tool. The agent names the secret; its value never enters the spec, the
// journal, the model's context or any response.
struct ToolAuth {
  std::string secret;                  // vault secret name
  std::string header = "Authorization";
  std::string prefix;                  // e.g. "Bearer "
};

// OAuth 2.1 authorization of an http MCP server (docs/mcp.md): the runtime
// discovers the authorization server, registers or identifies itself, gets
// and refreshes tokens, and keeps them sealed in the tenant's vault.
struct McpOAuthSpec {
  std::string grant = "authorization_code";  // or "client_credentials" (no person involved)
  std::string client_id;                     // pre-registered; "" = metadata document or dynamic registration
  std::string client_secret;                 // vault secret with the pre-registered client's secret
  std::string private_key;                   // vault secret with a PEM key: private_key_jwt
  std::string signing_algorithm = "ES256";   // of that key's assertions: ES256 or RS256
  std::string client_metadata_url;           // https URL of this client's metadata document (used if supported)
  std::string scope;                         // "" = the server's challenge, else all it supports
};

// An MCP server whose tools the agent may use (docs/mcp.md). Its tools are
// offered to the model as "<server name>__<tool>" (tools/mcp/mcp_protocol.h).
struct McpServerSpec {
  std::string transport;                      // "stdio" or "http"
  std::string command;                        // stdio: a program (path or name in PATH); no shell
  std::vector<std::string> args;
  std::map<std::string, std::string> env;     // stdio: added to a minimal environment
  std::string url;                            // http: the Streamable HTTP endpoint
  std::map<std::string, std::string> headers; // http: sent on every request (not secrets: use auth)
  std::vector<std::string> allowed_tools;     // "*", names, or prefixes ending in '*'; none = no tool
  std::string protocol_version = "auto";      // "auto", "2026-07-28" or "2025-11-25"
  std::string elicitation = "none";           // "none", "decline" or "defaults" (docs/mcp.md)
  std::optional<McpOAuthSpec> oauth;        // http: OAuth instead of a static `auth` credential
  int64_t connect_timeout_ms = 10'000;
  int64_t call_timeout_max_ms = 600'000;      // a call's limit even while it reports progress
};

struct ToolSpec {
  std::string type = "http";   // "http", "builtin" or "mcp"
  std::string name;
  std::string description;
  json::object parameters;     // JSON Schema of the arguments object
  std::shared_ptr<const JsonSchemaValidator> validator;  // `parameters`, compiled once; set by parse_agent_spec
  std::string url;             // http: where arguments are POSTed
  int64_t timeout_ms = 30'000;
  RetryPolicy retry;
  std::optional<ToolAuth> auth;  // http tools and http MCP servers
  std::optional<McpServerSpec> mcp;  // type "mcp": `name` names the server, timeout_ms is a call's idle timeout
};

struct LimitsSpec {
  int64_t steps_max = 32;            // model calls per run
  int64_t total_tokens_max = 0;      // 0 = unlimited
  int64_t deadline_ms = 0;           // wall time from run start; 0 = none
};

struct AgentSpec {
  std::string name;
  ModelSpec model;
  std::string instructions;
  std::vector<ToolSpec> tools;
  LimitsSpec limits;

  const ToolSpec* find_tool(const std::string& tool_name) const;
  bool has_mcp_servers() const;
};

// Names: 1-64 of [A-Za-z0-9_-].
bool is_valid_name(const std::string& name);

Result<AgentSpec> parse_agent_spec(const json::object& obj);
json::object agent_spec_to_json(const AgentSpec& spec);

}  // namespace continuum
