// An agent definition: validated once when it is written, immutable per
// version. Parsing is strict (unknown fields are errors) so typos surface early.
#pragma once

#include <cstdint>
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

struct ToolSpec {
  std::string type = "http";   // "http" or "builtin"
  std::string name;
  std::string description;
  json::object parameters;     // JSON Schema of the arguments object
  std::shared_ptr<const JsonSchemaValidator> validator;  // `parameters`, compiled once; set by parse_agent_spec
  std::string url;             // http: where arguments are POSTed
  int64_t timeout_ms = 30'000;
  RetryPolicy retry;
  std::optional<ToolAuth> auth;  // http tools only
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
};

// Names: 1-64 of [A-Za-z0-9_-].
bool is_valid_name(const std::string& name);

Result<AgentSpec> parse_agent_spec(const json::object& obj);
json::object agent_spec_to_json(const AgentSpec& spec);

}  // namespace continuum
