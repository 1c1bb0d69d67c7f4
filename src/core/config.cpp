#include "core/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>

namespace continuum {

std::string read_process_env(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  return value ? std::string(value) : std::string();
}

namespace {

Result<bool> parse_bool(const std::string& text, const std::string& name) {
  if (text == "1" || text == "true" || text == "yes" || text == "on") return true;
  if (text == "0" || text == "false" || text == "no" || text == "off") return false;
  return invalid_argument(name + " must be true or false, got '" + text + "'", name);
}

Result<int64_t> parse_int(const std::string& text, const std::string& name) {
  char* end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < 0) return invalid_argument(name + " must be a non-negative integer", name);
  return static_cast<int64_t>(value);
}

// One setter per key, shared by the YAML file and the environment.
Status set_key(ServerConfig& config, const std::string& key, const std::string& value) {
  if (key == "listen") config.listen = value;
  else if (key == "public_url") config.public_url = value;
  else if (key == "data_dir") config.data_dir = value;
  else if (key == "store") config.store = value;
  else if (key == "encryption_keys") config.encryption_keys = value;
  else if (key == "node_id") config.node_id = value;
  else if (key == "api_key") config.api_key = value;
  else if (key == "log_level") config.log_level = value;
  else if (key == "model_base_url") config.model_base_url = value;
  else if (key == "model_api_key_env") config.model_api_key_env = value;
  else if (key == "scripted_model_file") config.scripted_model_file = value;
  else if (key == "approval_webhook_url") config.approval_webhook_url = value;
  else if (key == "oidc_issuers_file") config.oidc_issuers_file = value;
  else if (key == "identity_issuer") config.identity_issuer = value;
  else if (key == "identity_keys_file") config.identity_keys_file = value;
  else if (key == "audit_signing_key_file") config.audit_signing_key_file = value;
  else if (key == "mcp_stdio_commands") config.mcp_stdio_commands = value;
  else if (key == "mcp_stdio_processes_max") {
    ASSIGN_OR_RETURN(config.mcp_stdio_processes_max, parse_int(value, key));
  } else if (key == "mcp_idle_stop_ms") {
    ASSIGN_OR_RETURN(config.mcp_idle_stop_ms, parse_int(value, key));
  } else if (key == "mcp_tools_cache_ttl_ms") {
    ASSIGN_OR_RETURN(config.mcp_tools_cache_ttl_ms, parse_int(value, key));
  }
  else if (key == "tool_token_ttl_s") {
    ASSIGN_OR_RETURN(config.tool_token_ttl_s, parse_int(value, key));
  }
  else if (key == "approval_ttl_ms") {
    ASSIGN_OR_RETURN(config.approval_ttl_ms, parse_int(value, key));
  } else if (key == "approval_poll_ms") {
    ASSIGN_OR_RETURN(config.approval_poll_ms, parse_int(value, key));
  } else if (key == "audit_checkpoint_ms") {
    ASSIGN_OR_RETURN(config.audit_checkpoint_ms, parse_int(value, key));
  } else if (key == "audit_reads") {
    ASSIGN_OR_RETURN(config.audit_reads, parse_bool(value, key));
  } else if (key == "approvals_allow_self") {
    ASSIGN_OR_RETURN(config.approvals_allow_self, parse_bool(value, key));
  }
  else if (key == "request_body_bytes_max") {
    ASSIGN_OR_RETURN(config.request_body_bytes_max, parse_int(value, key));
  } else if (key == "tool_response_bytes_max") {
    ASSIGN_OR_RETURN(config.tool_response_bytes_max, parse_int(value, key));
  } else if (key == "commit_coalesce_us") {
    ASSIGN_OR_RETURN(config.commit_coalesce_us, parse_int(value, key));
  } else if (key == "shutdown_grace_ms") {
    ASSIGN_OR_RETURN(config.shutdown_grace_ms, parse_int(value, key));
  } else if (key == "allow_private_tool_addresses") {
    ASSIGN_OR_RETURN(config.allow_private_tool_addresses, parse_bool(value, key));
  } else if (key == "lease_ttl_ms") {
    ASSIGN_OR_RETURN(config.lease_ttl_ms, parse_int(value, key));
  } else if (key == "cluster_poll_ms") {
    ASSIGN_OR_RETURN(config.cluster_poll_ms, parse_int(value, key));
  } else if (key == "encryption") {
    ASSIGN_OR_RETURN(config.encryption, parse_bool(value, key));
  } else if (key == "tls_verify") {
    ASSIGN_OR_RETURN(config.tls_verify, parse_bool(value, key));
  } else {
    return invalid_argument("unknown configuration key '" + key + "'", key);
  }
  return Status::ok();
}

const char* const kKeys[] = {"listen",          "data_dir",          "store",             "encryption",        "encryption_keys", "node_id", "lease_ttl_ms", "cluster_poll_ms", "api_key",
                             "log_level",       "model_base_url",    "model_api_key_env",
                             "scripted_model_file", "request_body_bytes_max", "shutdown_grace_ms",
                             "allow_private_tool_addresses", "tls_verify", "approval_ttl_ms", "approval_poll_ms",
                             "approvals_allow_self", "approval_webhook_url", "audit_checkpoint_ms",
                             "oidc_issuers_file", "identity_issuer", "tool_token_ttl_s",
                             "identity_keys_file", "audit_signing_key_file", "audit_reads",
                             "mcp_stdio_commands", "mcp_stdio_processes_max", "mcp_idle_stop_ms",
                             "mcp_tools_cache_ttl_ms", "public_url", "tool_response_bytes_max",
                             "commit_coalesce_us"};

}  // namespace

Status apply_config_file(const std::string& path, ServerConfig& config) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const std::exception& error) {
    return invalid_argument("cannot read config file " + path + ": " + error.what());
  }
  if (root.IsNull()) return Status::ok();
  if (!root.IsMap()) return invalid_argument("config file " + path + " must be a mapping");
  for (const auto& entry : root) {
    std::string key = entry.first.as<std::string>("");
    if (!entry.second.IsScalar()) return invalid_argument("config key '" + key + "' must be a scalar", key);
    RETURN_IF_ERROR(set_key(config, key, entry.second.as<std::string>("")));
  }
  return Status::ok();
}

Status apply_config_env(const EnvReader& env, ServerConfig& config) {
  for (const char* key : kKeys) {
    std::string name = "CONTINUUM_";
    for (const char* c = key; *c; ++c) name.push_back(static_cast<char>(std::toupper(*c)));
    std::string value = env(name);
    if (!value.empty()) RETURN_IF_ERROR(set_key(config, key, value));
  }
  if (config.model_base_url.empty()) config.model_base_url = env("OPENAI_BASE_URL");
  return Status::ok();
}

Status validate_config(const ServerConfig& config) {
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(parse_listen(config.listen, &host, &port));
  if (config.tool_response_bytes_max < 1024 || config.tool_response_bytes_max > (int64_t{1} << 30)) {
    return invalid_argument("tool_response_bytes_max must be between 1024 and 1073741824", "tool_response_bytes_max");
  }
  if (config.commit_coalesce_us < 0 || config.commit_coalesce_us > 100'000) {
    return invalid_argument("commit_coalesce_us must be between 0 and 100000", "commit_coalesce_us");
  }
  if (!config.public_url.empty() && config.public_url.rfind("http://", 0) != 0 &&
      config.public_url.rfind("https://", 0) != 0) {
    return invalid_argument("public_url must be an http(s) URL", "public_url");
  }
  if (config.log_level != "debug" && config.log_level != "info" && config.log_level != "warn" &&
      config.log_level != "error") {
    return invalid_argument("log_level must be debug, info, warn or error, got '" + config.log_level + "'",
                            "log_level");
  }
  if (config.data_dir.empty()) return invalid_argument("data_dir must not be empty", "data_dir");
  if (config.lease_ttl_ms < 500 || config.lease_ttl_ms > 3'600'000) {
    return invalid_argument("lease_ttl_ms must be 500-3600000", "lease_ttl_ms");
  }
  if (config.cluster_poll_ms < 10 || config.cluster_poll_ms > 60'000) {
    return invalid_argument("cluster_poll_ms must be 10-60000", "cluster_poll_ms");
  }
  if (config.tool_token_ttl_s < 1 || config.tool_token_ttl_s > 300) {
    return invalid_argument("tool_token_ttl_s must be 1-300", "tool_token_ttl_s");
  }
  if (config.identity_issuer.empty()) return invalid_argument("identity_issuer must not be empty", "identity_issuer");
  if (config.mcp_stdio_processes_max < 1 || config.mcp_stdio_processes_max > 10'000) {
    return invalid_argument("mcp_stdio_processes_max must be 1-10000", "mcp_stdio_processes_max");
  }
  if (config.audit_checkpoint_ms < 100 || config.audit_checkpoint_ms > 3'600'000) {
    return invalid_argument("audit_checkpoint_ms must be 100-3600000", "audit_checkpoint_ms");
  }
  if (config.approval_ttl_ms < 1'000) return invalid_argument("approval_ttl_ms must be >= 1000", "approval_ttl_ms");
  if (config.approval_poll_ms < 10 || config.approval_poll_ms > 600'000) {
    return invalid_argument("approval_poll_ms must be 10-600000", "approval_poll_ms");
  }
  if (!config.approval_webhook_url.empty() && !config.approval_webhook_url.starts_with("http://") &&
      !config.approval_webhook_url.starts_with("https://")) {
    return invalid_argument("approval_webhook_url must be an http(s) URL", "approval_webhook_url");
  }
  if (!config.store.empty() && !config.store.starts_with("sqlite:") && !config.store.starts_with("postgres://") &&
      !config.store.starts_with("postgresql://")) {
    return invalid_argument("store must be sqlite:PATH or postgres://...", "store");
  }
  return Status::ok();
}

Status parse_listen(const std::string& listen, std::string* host, int* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return invalid_argument("listen must be HOST:PORT, got '" + listen + "'", "listen");
  }
  *host = listen.substr(0, colon);
  if (host->size() > 2 && host->front() == '[') *host = host->substr(1, host->size() - 2);
  auto number = parse_int(listen.substr(colon + 1), "listen");
  if (!number.is_ok() || *number > 65535) {
    return invalid_argument("listen port must be 0-65535, got '" + listen + "'", "listen");
  }
  *port = static_cast<int>(*number);
  return Status::ok();
}

}  // namespace continuum
