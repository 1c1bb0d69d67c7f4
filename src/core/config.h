// Server configuration. Sources, highest precedence first: command-line flags,
// CONTINUUM_* environment variables, the YAML file (--config /
// CONTINUUM_CONFIG), built-in defaults. docs/configuration.md lists every key.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"

namespace continuum {

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";
  std::string public_url;                 // how browsers and OAuth servers reach this server ("" = http://<listen>)
  std::string data_dir = "./continuum-data";
  std::string store;                      // "" = sqlite:<data_dir>/continuum.db; or postgres://...
  bool encryption = true;                 // seal payloads at rest (AES-256-GCM)
  std::string encryption_keys;            // KEK source: "" = file:<data_dir>/master.key; file:PATH | env:NAME
  std::string node_id;                    // "" = read or create <data_dir>/node-id (PostgreSQL clusters)
  int64_t lease_ttl_ms = 10'000;          // session lease lifetime (PostgreSQL clusters)
  int64_t cluster_poll_ms = 1'000;        // how often a node looks for unowned work
  std::string api_key;                    // "" = read or create <data_dir>/api-key
  std::string log_level = "info";
  int64_t request_body_bytes_max = 4 * 1024 * 1024;
  std::string model_base_url;             // default Chat Completions endpoint ("" = OPENAI_BASE_URL or OpenAI)
  std::string model_api_key_env = "OPENAI_API_KEY";  // env var holding the default model key
  bool allow_private_tool_addresses = false;
  int64_t tool_response_bytes_max = 16 * 1024 * 1024;  // an HTTP tool's answer; larger is an error result
  std::string scripted_model_file;        // script for agents with model.provider "scripted"
  int64_t shutdown_grace_ms = 10'000;
  // How long commits made on the event loop may wait for the loop to run out
  // of work, to go to disk together (0 = at once). See store/coalescing_store.h.
  int64_t commit_coalesce_us = 1'000;
  bool tls_verify = true;                 // verify TLS peers of model and tool endpoints
  int64_t approval_ttl_ms = 7LL * 24 * 3600 * 1000;  // a pending approval expires (to a denial) after this
  int64_t approval_poll_ms = 2'000;       // how often a waiting run looks for a decision made elsewhere
  bool approvals_allow_self = false;      // may the requesting user decide their own approval
  std::string approval_webhook_url;       // "" = none; POSTed when an approval is requested
  int64_t audit_checkpoint_ms = 10'000;   // how often audit chains get a signed checkpoint
  bool audit_reads = false;               // also record reads that policy allows (refusals always are)
  std::string oidc_issuers_file;          // "" = no OIDC; else the issuers accepted (auth/oidc.h)
  std::string identity_issuer = "continuum";  // iss of the identity tokens given to tools
  int64_t tool_token_ttl_s = 300;         // their lifetime (1-300 s)
  std::string identity_keys_file;         // "" = <data_dir>/tool-identity.keys; share it between the nodes of a cluster
  std::string audit_signing_key_file;     // "" = <data_dir>/audit-signing.key; likewise
  std::string mcp_stdio_commands;         // comma-separated programs stdio MCP servers may run ("" = none, "*" = any)
  int64_t mcp_stdio_processes_max = 32;   // live stdio MCP server processes at most
  int64_t mcp_idle_stop_ms = 600'000;     // a stdio MCP server unused this long is stopped
  int64_t mcp_tools_cache_ttl_ms = 300'000;  // an MCP tool listing is reused this long (or until list_changed)
};

using EnvReader = std::function<std::string(const std::string&)>;
std::string read_process_env(const std::string& name);

// Applies the YAML file at `path` (unknown keys are errors).
Status apply_config_file(const std::string& path, ServerConfig& config);
// Applies CONTINUUM_* variables (and OPENAI_BASE_URL when no base URL is set).
Status apply_config_env(const EnvReader& env, ServerConfig& config);
// Checks values that every source must get right (listen, log_level); called
// once all sources are applied. InvalidArgument naming the key.
Status validate_config(const ServerConfig& config);
// Splits "host:port"; InvalidArgument if malformed.
Status parse_listen(const std::string& listen, std::string* host, int* port);

}  // namespace continuum
