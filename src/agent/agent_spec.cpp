#include "agent/agent_spec.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "tools/mcp/oauth_discovery.h"

namespace continuum {

namespace {

constexpr int64_t kToolsMax = 128;

Result<ModelSpec> parse_model(const json::object& obj) {
  if (auto unknown = first_unknown_key(obj, {"provider", "model", "base_url", "api_key_env", "params",
                                             "timeout_ms", "context_tokens", "retry"})) {
    return invalid_argument("unknown field '" + *unknown + "'", "model." + *unknown);
  }
  ModelSpec model;
  ASSIGN_OR_RETURN(auto provider, get_optional_string(obj, "provider", "model.provider"));
  if (provider) model.provider = *provider;
  if (model.provider != "openai" && model.provider != "scripted") {
    return invalid_argument("model.provider must be 'openai' or 'scripted'", "model.provider");
  }
  ASSIGN_OR_RETURN(model.model, get_string(obj, "model", "model.model"));
  if (model.model.empty() || model.model.size() > 256) {
    return invalid_argument("model.model must be 1-256 characters", "model.model");
  }
  ASSIGN_OR_RETURN(auto base_url, get_optional_string(obj, "base_url", "model.base_url"));
  if (base_url) {
    if (base_url->rfind("http://", 0) != 0 && base_url->rfind("https://", 0) != 0) {
      return invalid_argument("model.base_url must be an http(s) URL", "model.base_url");
    }
    model.base_url = *base_url;
  }
  ASSIGN_OR_RETURN(auto key_env, get_optional_string(obj, "api_key_env", "model.api_key_env"));
  if (key_env) model.api_key_env = *key_env;
  ASSIGN_OR_RETURN(auto params, get_optional_object(obj, "params", "model.params"));
  if (params) model.params = *params;
  ASSIGN_OR_RETURN(auto timeout, get_optional_int(obj, "timeout_ms", "model.timeout_ms"));
  if (timeout) {
    if (*timeout < 1 || *timeout > 3'600'000) {
      return invalid_argument("model.timeout_ms must be between 1 and 3600000", "model.timeout_ms");
    }
    model.timeout_ms = *timeout;
  }
  ASSIGN_OR_RETURN(auto context, get_optional_int(obj, "context_tokens", "model.context_tokens"));
  if (context) {
    if (*context < 256 || *context > 10'000'000) {
      return invalid_argument("model.context_tokens must be between 256 and 10000000", "model.context_tokens");
    }
    model.context_tokens = *context;
  }
  ASSIGN_OR_RETURN(auto retry, get_optional_object(obj, "retry", "model.retry"));
  ASSIGN_OR_RETURN(model.retry, parse_retry_policy(retry, "model.retry", RetryPolicy{}));
  return model;
}

bool is_header_token(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

// Headers the runtime sets itself cannot be taken over by a credential.
bool is_reserved_header(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  return name == "content-type" || name == "content-length" || name == "host" || name == "idempotency-key" ||
         name.rfind("continuum-", 0) == 0;
}

Result<ToolAuth> parse_tool_auth(const json::object& obj, const std::string& param) {
  if (auto unknown = first_unknown_key(obj, {"secret", "header", "prefix"})) {
    return invalid_argument("unknown field '" + *unknown + "'", param + "." + *unknown);
  }
  ToolAuth auth;
  ASSIGN_OR_RETURN(auth.secret, get_string(obj, "secret", param + ".secret"));
  if (!is_valid_name(auth.secret)) {
    return invalid_argument("secret must name a vault secret: 1-64 characters of [A-Za-z0-9_-]", param + ".secret");
  }
  ASSIGN_OR_RETURN(auto header, get_optional_string(obj, "header", param + ".header"));
  if (header) auth.header = *header;
  if (!is_header_token(auth.header) || is_reserved_header(auth.header)) {
    return invalid_argument("header must be a header name the runtime does not set itself", param + ".header");
  }
  ASSIGN_OR_RETURN(auto prefix, get_optional_string(obj, "prefix", param + ".prefix"));
  if (prefix) auth.prefix = *prefix;
  bool printable = std::all_of(auth.prefix.begin(), auth.prefix.end(),
                               [](char c) { return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f; });
  if (auth.prefix.size() > 64 || !printable) {
    return invalid_argument("prefix must be at most 64 printable characters", param + ".prefix");
  }
  return auth;
}

// Variables that make a program run other code than its own (a preloaded
// library, an interpreter's startup hook) or find other programs cannot be set
// by an agent: the server's allowlist of stdio commands would mean nothing.
bool is_settable_env_name(const std::string& name) {
  static const std::set<std::string> kCodeLoading = {
      "PATH",        "NODE_OPTIONS", "NODE_PATH",  "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PYTHONINSPECT",
      "PYTHONUSERBASE", "BASH_ENV",  "ENV",        "PERL5OPT",   "PERL5LIB",      "RUBYOPT",    "RUBYLIB",
      "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "GCONV_PATH", "HOSTALIASES", "IFS"};
  if (name.empty() || name.size() > 128 || name.rfind("LD_", 0) == 0 || name.rfind("DYLD_", 0) == 0) return false;
  if (kCodeLoading.count(name)) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

Result<std::map<std::string, std::string>> parse_string_map(const json::object& obj, const std::string& key,
                                                           const std::string& param, bool header_names) {
  std::map<std::string, std::string> map;
  ASSIGN_OR_RETURN(auto entries, get_optional_object(obj, key, param));
  if (entries == nullptr) return map;
  if (entries->size() > 64) return invalid_argument("at most 64 entries", param);
  for (const auto& [name, value] : *entries) {
    std::string entry_param = param + "." + std::string(name);
    if (!value.is_string()) return invalid_argument("must be a string", entry_param);
    bool valid_name = header_names ? is_header_token(std::string(name)) && !is_reserved_header(std::string(name))
                                   : is_settable_env_name(std::string(name));
    if (!valid_name) {
      return invalid_argument(header_names ? "not a usable header name"
                                           : "not a settable variable: [A-Za-z0-9_], and none that loads code "
                                             "(LD_*, NODE_OPTIONS, PYTHONPATH, PATH, ...)",
                              entry_param);
    }
    map[std::string(name)] = std::string(value.get_string());
  }
  return map;
}

Result<std::vector<std::string>> parse_string_list(const json::object& obj, const std::string& key,
                                                   const std::string& param) {
  std::vector<std::string> list;
  ASSIGN_OR_RETURN(auto entries, get_optional_array(obj, key, param));
  if (entries == nullptr) return list;
  if (entries->size() > 256) return invalid_argument("at most 256 entries", param);
  for (size_t i = 0; i < entries->size(); ++i) {
    const json::value& entry = (*entries)[i];
    if (!entry.is_string() || entry.get_string().size() > 4096) {
      return invalid_argument("must be a string of at most 4096 bytes", param + "[" + std::to_string(i) + "]");
    }
    list.emplace_back(entry.get_string());
  }
  return list;
}

Result<int64_t> bounded_int(const json::object& obj, const std::string& key, const std::string& param,
                            int64_t fallback, int64_t min, int64_t max) {
  ASSIGN_OR_RETURN(auto value, get_optional_int(obj, key, param));
  if (!value) return fallback;
  if (*value < min || *value > max) {
    return invalid_argument(key + " must be between " + std::to_string(min) + " and " + std::to_string(max), param);
  }
  return *value;
}

Result<McpOAuthSpec> parse_mcp_oauth(const json::object& obj, const std::string& param) {
  if (auto unknown = first_unknown_key(obj, {"grant", "client_id", "client_secret", "private_key", "signing_algorithm",
                                             "client_metadata_url", "scope"})) {
    return invalid_argument("unknown field '" + *unknown + "'", param + "." + *unknown);
  }
  McpOAuthSpec oauth;
  auto text = [&](const char* key, std::string& out, std::size_t max) -> Status {
    ASSIGN_OR_RETURN(auto value, get_optional_string(obj, key, param + "." + key));
    if (!value) return Status::ok();
    if (value->empty() || value->size() > max) {
      return invalid_argument(std::string(key) + " must be 1-" + std::to_string(max) + " characters", param + "." + key);
    }
    out = *value;
    return Status::ok();
  };
  RETURN_IF_ERROR(text("grant", oauth.grant, 64));
  if (oauth.grant != "authorization_code" && oauth.grant != "client_credentials") {
    return invalid_argument("grant must be 'authorization_code' or 'client_credentials'", param + ".grant");
  }
  RETURN_IF_ERROR(text("client_id", oauth.client_id, 2048));
  RETURN_IF_ERROR(text("client_secret", oauth.client_secret, 64));
  RETURN_IF_ERROR(text("private_key", oauth.private_key, 64));
  RETURN_IF_ERROR(text("signing_algorithm", oauth.signing_algorithm, 16));
  RETURN_IF_ERROR(text("client_metadata_url", oauth.client_metadata_url, 2048));
  RETURN_IF_ERROR(text("scope", oauth.scope, 4096));
  for (const auto& [key, secret] : {std::pair<const char*, const std::string*>{"client_secret", &oauth.client_secret},
                                     {"private_key", &oauth.private_key}}) {
    if (!secret->empty() && !is_valid_name(*secret)) {
      return invalid_argument(std::string(key) + " names a vault secret: 1-64 characters of [A-Za-z0-9_-]",
                              param + "." + key);
    }
  }
  if (oauth.signing_algorithm != "ES256" && oauth.signing_algorithm != "RS256") {
    return invalid_argument("signing_algorithm must be 'ES256' or 'RS256'", param + ".signing_algorithm");
  }
  if ((!oauth.client_secret.empty() || !oauth.private_key.empty()) && oauth.client_id.empty()) {
    return invalid_argument("a client_secret or private_key belongs to a pre-registered client_id", param + ".client_id");
  }
  if (!oauth.client_secret.empty() && !oauth.private_key.empty()) {
    return invalid_argument("a client authenticates with client_secret or private_key, not both", param);
  }
  if (oauth.grant == "client_credentials" && oauth.client_id.empty()) {
    return invalid_argument("the client_credentials grant needs a pre-registered client_id", param + ".client_id");
  }
  if (!oauth.client_metadata_url.empty() &&
      (oauth.client_metadata_url.rfind("https://", 0) != 0 || url_origin(oauth.client_metadata_url).size() <= 8)) {
    return invalid_argument("client_metadata_url must be an https URL", param + ".client_metadata_url");
  }
  return oauth;
}

Result<McpServerSpec> parse_mcp_server(const json::object& obj, const std::string& param) {
  McpServerSpec mcp;
  ASSIGN_OR_RETURN(mcp.transport, get_string(obj, "transport", param + ".transport"));
  if (mcp.transport == "stdio") {
    ASSIGN_OR_RETURN(mcp.command, get_string(obj, "command", param + ".command"));
    if (mcp.command.empty() || mcp.command.size() > 4096) {
      return invalid_argument("a stdio MCP server needs a command", param + ".command");
    }
    ASSIGN_OR_RETURN(mcp.args, parse_string_list(obj, "args", param + ".args"));
    ASSIGN_OR_RETURN(mcp.env, parse_string_map(obj, "env", param + ".env", false));
    if (obj.contains("url") || obj.contains("headers") || obj.contains("oauth")) {
      return invalid_argument("url, headers and oauth belong to http MCP servers", param + ".transport");
    }
  } else if (mcp.transport == "http") {
    ASSIGN_OR_RETURN(mcp.url, get_string(obj, "url", param + ".url"));
    if (mcp.url.rfind("http://", 0) != 0 && mcp.url.rfind("https://", 0) != 0) {
      return invalid_argument("an http MCP server needs an http(s) url", param + ".url");
    }
    ASSIGN_OR_RETURN(mcp.headers, parse_string_map(obj, "headers", param + ".headers", true));
    if (obj.contains("command") || obj.contains("args") || obj.contains("env")) {
      return invalid_argument("command, args and env belong to stdio MCP servers", param + ".transport");
    }
    ASSIGN_OR_RETURN(auto oauth, get_optional_object(obj, "oauth", param + ".oauth"));
    if (oauth) {
      ASSIGN_OR_RETURN(mcp.oauth, parse_mcp_oauth(*oauth, param + ".oauth"));
      for (const auto& [name, value] : mcp.headers) {
        std::string lower = name;
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
        if (lower == "authorization") {
          return invalid_argument("oauth sets the Authorization header itself", param + ".headers");
        }
      }
    }
  } else {
    return invalid_argument("transport must be 'stdio' or 'http'", param + ".transport");
  }
  ASSIGN_OR_RETURN(mcp.allowed_tools, parse_string_list(obj, "allowed_tools", param + ".allowed_tools"));
  ASSIGN_OR_RETURN(auto protocol, get_optional_string(obj, "protocol_version", param + ".protocol_version"));
  if (protocol) {
    if (*protocol != "auto" && *protocol != "2026-07-28" && *protocol != "2025-11-25") {
      return invalid_argument("protocol_version must be 'auto', '2026-07-28' or '2025-11-25'",
                              param + ".protocol_version");
    }
    mcp.protocol_version = *protocol;
  }
  ASSIGN_OR_RETURN(auto elicitation, get_optional_string(obj, "elicitation", param + ".elicitation"));
  if (elicitation) {
    if (*elicitation != "none" && *elicitation != "decline" && *elicitation != "defaults") {
      return invalid_argument("elicitation must be 'none', 'decline' or 'defaults'", param + ".elicitation");
    }
    mcp.elicitation = *elicitation;
  }
  ASSIGN_OR_RETURN(mcp.connect_timeout_ms, bounded_int(obj, "connect_timeout_ms", param + ".connect_timeout_ms",
                                                       mcp.connect_timeout_ms, 1, 600'000));
  ASSIGN_OR_RETURN(mcp.call_timeout_max_ms, bounded_int(obj, "call_timeout_max_ms", param + ".call_timeout_max_ms",
                                                        mcp.call_timeout_max_ms, 1, 86'400'000));
  return mcp;
}

Result<ToolSpec> parse_tool(const json::object& obj, const std::string& param) {
  if (auto unknown = first_unknown_key(obj, {"type", "name", "description", "parameters", "url", "timeout_ms",
                                             "retry", "auth", "transport", "command", "args", "env", "headers",
                                             "allowed_tools", "protocol_version", "connect_timeout_ms",
                                             "call_timeout_max_ms", "elicitation", "oauth"})) {
    return invalid_argument("unknown field '" + *unknown + "'", param + "." + *unknown);
  }
  ToolSpec tool;
  ASSIGN_OR_RETURN(auto type, get_optional_string(obj, "type", param + ".type"));
  if (type) tool.type = *type;
  if (tool.type != "http" && tool.type != "builtin" && tool.type != "mcp") {
    return invalid_argument("tool type must be 'http', 'builtin' or 'mcp'", param + ".type");
  }
  if (tool.type != "mcp") {
    for (const char* key : {"transport", "command", "args", "env", "headers", "allowed_tools", "protocol_version",
                            "connect_timeout_ms", "call_timeout_max_ms", "elicitation", "oauth"}) {
      if (obj.contains(key)) return invalid_argument(std::string(key) + " belongs to mcp tools", param + "." + key);
    }
  }
  ASSIGN_OR_RETURN(tool.name, get_string(obj, "name", param + ".name"));
  if (!is_valid_name(tool.name)) {
    return invalid_argument("tool name must be 1-64 characters of [A-Za-z0-9_-]", param + ".name");
  }
  ASSIGN_OR_RETURN(auto description, get_optional_string(obj, "description", param + ".description"));
  if (description) tool.description = *description;
  ASSIGN_OR_RETURN(auto parameters, get_optional_object(obj, "parameters", param + ".parameters"));
  tool.parameters = parameters ? *parameters : json::object{{"type", "object"}, {"properties", json::object{}}};
  ASSIGN_OR_RETURN(tool.validator, JsonSchemaValidator::compile(tool.parameters, param + ".parameters"));
  ASSIGN_OR_RETURN(auto url, get_optional_string(obj, "url", param + ".url"));
  if (tool.type == "mcp") {
    if (obj.contains("parameters")) return invalid_argument("an MCP server's tools bring their own parameters", param + ".parameters");
    ASSIGN_OR_RETURN(tool.mcp, parse_mcp_server(obj, param));
    if (tool.name.find("__") != std::string::npos) {
      return invalid_argument("an MCP server's name may not contain '__'", param + ".name");
    }
  } else if (tool.type == "http") {
    if (!url || (url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0)) {
      return invalid_argument("an http tool needs an http(s) url", param + ".url");
    }
    tool.url = *url;
  } else if (tool.name != "noop" && tool.name != "echo") {
    return invalid_argument("builtin tools are 'noop' and 'echo'", param + ".name");
  }
  ASSIGN_OR_RETURN(auto timeout, get_optional_int(obj, "timeout_ms", param + ".timeout_ms"));
  if (timeout) {
    if (*timeout < 1 || *timeout > 3'600'000) {
      return invalid_argument("timeout_ms must be between 1 and 3600000", param + ".timeout_ms");
    }
    tool.timeout_ms = *timeout;
  }
  ASSIGN_OR_RETURN(auto retry, get_optional_object(obj, "retry", param + ".retry"));
  ASSIGN_OR_RETURN(tool.retry, parse_retry_policy(retry, param + ".retry", RetryPolicy{}));
  ASSIGN_OR_RETURN(auto auth, get_optional_object(obj, "auth", param + ".auth"));
  if (auth) {
    bool http_mcp = tool.mcp && tool.mcp->transport == "http";
    if (tool.type != "http" && !http_mcp) {
      return invalid_argument("only http tools and http MCP servers take auth", param + ".auth");
    }
    ASSIGN_OR_RETURN(tool.auth, parse_tool_auth(*auth, param + ".auth"));
    if (tool.mcp && tool.mcp->oauth) {
      return invalid_argument("an MCP server takes auth (a static credential) or oauth, not both", param + ".auth");
    }
  }
  return tool;
}

Result<LimitsSpec> parse_limits(const json::object* obj) {
  LimitsSpec limits;
  if (obj == nullptr) return limits;
  if (auto unknown = first_unknown_key(*obj, {"max_steps", "max_total_tokens", "deadline_ms"})) {
    return invalid_argument("unknown field '" + *unknown + "'", "limits." + *unknown);
  }
  ASSIGN_OR_RETURN(auto steps, get_optional_int(*obj, "max_steps", "limits.max_steps"));
  if (steps) {
    if (*steps < 1 || *steps > 1'000'000) {
      return invalid_argument("limits.max_steps must be between 1 and 1000000", "limits.max_steps");
    }
    limits.steps_max = *steps;
  }
  ASSIGN_OR_RETURN(auto tokens, get_optional_int(*obj, "max_total_tokens", "limits.max_total_tokens"));
  if (tokens) {
    if (*tokens < 0) return invalid_argument("limits.max_total_tokens must be >= 0", "limits.max_total_tokens");
    limits.total_tokens_max = *tokens;
  }
  ASSIGN_OR_RETURN(auto deadline, get_optional_int(*obj, "deadline_ms", "limits.deadline_ms"));
  if (deadline) {
    if (*deadline < 0) return invalid_argument("limits.deadline_ms must be >= 0", "limits.deadline_ms");
    limits.deadline_ms = *deadline;
  }
  return limits;
}

json::object string_map_json(const std::map<std::string, std::string>& map) {
  json::object obj;
  for (const auto& [name, value] : map) obj[name] = value;
  return obj;
}

json::array string_list_json(const std::vector<std::string>& list) {
  json::array array;
  for (const auto& entry : list) array.emplace_back(entry);
  return array;
}

json::object mcp_oauth_json(const McpOAuthSpec& oauth) {
  json::object out{{"grant", oauth.grant}, {"signing_algorithm", oauth.signing_algorithm}};
  for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"client_id", &oauth.client_id},
                                   {"client_secret", &oauth.client_secret}, {"private_key", &oauth.private_key},
                                   {"client_metadata_url", &oauth.client_metadata_url}, {"scope", &oauth.scope}}) {
    if (!value->empty()) out[key] = *value;
  }
  return out;
}

void add_mcp_fields(const McpServerSpec& mcp, json::object& entry) {
  entry.erase("parameters");
  entry["transport"] = mcp.transport;
  if (mcp.transport == "stdio") {
    entry["command"] = mcp.command;
    entry["args"] = string_list_json(mcp.args);
    entry["env"] = string_map_json(mcp.env);
  } else {
    entry["url"] = mcp.url;
    entry["headers"] = string_map_json(mcp.headers);
    if (mcp.oauth) entry["oauth"] = mcp_oauth_json(*mcp.oauth);
  }
  entry["allowed_tools"] = string_list_json(mcp.allowed_tools);
  entry["protocol_version"] = mcp.protocol_version;
  entry["elicitation"] = mcp.elicitation;
  entry["connect_timeout_ms"] = mcp.connect_timeout_ms;
  entry["call_timeout_max_ms"] = mcp.call_timeout_max_ms;
}

}  // namespace

bool AgentSpec::has_mcp_servers() const {
  return std::any_of(tools.begin(), tools.end(), [](const ToolSpec& tool) { return tool.mcp.has_value(); });
}

bool is_valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

const ToolSpec* AgentSpec::find_tool(const std::string& tool_name) const {
  for (const auto& tool : tools) {
    if (tool.name == tool_name) return &tool;
  }
  return nullptr;
}

Result<AgentSpec> parse_agent_spec(const json::object& obj) {
  if (auto unknown = first_unknown_key(obj, {"name", "model", "instructions", "tools", "limits"})) {
    return invalid_argument("unknown field '" + *unknown + "'", *unknown);
  }
  AgentSpec spec;
  ASSIGN_OR_RETURN(spec.name, get_string(obj, "name", "name"));
  if (!is_valid_name(spec.name)) return invalid_argument("name must be 1-64 characters of [A-Za-z0-9_-]", "name");
  ASSIGN_OR_RETURN(auto model, get_optional_object(obj, "model", "model"));
  if (model == nullptr) return invalid_argument("missing required field 'model'", "model");
  ASSIGN_OR_RETURN(spec.model, parse_model(*model));
  ASSIGN_OR_RETURN(auto instructions, get_optional_string(obj, "instructions", "instructions"));
  if (instructions) spec.instructions = *instructions;
  ASSIGN_OR_RETURN(auto tools, get_optional_array(obj, "tools", "tools"));
  if (tools) {
    if (static_cast<int64_t>(tools->size()) > kToolsMax) return invalid_argument("at most 128 tools", "tools");
    for (size_t i = 0; i < tools->size(); ++i) {
      std::string param = "tools[" + std::to_string(i) + "]";
      if (!(*tools)[i].is_object()) return invalid_argument(param + " must be an object", param);
      ASSIGN_OR_RETURN(ToolSpec tool, parse_tool((*tools)[i].as_object(), param));
      if (spec.find_tool(tool.name)) return invalid_argument("duplicate tool name '" + tool.name + "'", param);
      spec.tools.push_back(std::move(tool));
    }
  }
  ASSIGN_OR_RETURN(auto limits, get_optional_object(obj, "limits", "limits"));
  ASSIGN_OR_RETURN(spec.limits, parse_limits(limits));
  return spec;
}

json::object agent_spec_to_json(const AgentSpec& spec) {
  json::object model{{"provider", spec.model.provider},       {"model", spec.model.model},
                     {"params", spec.model.params},           {"timeout_ms", spec.model.timeout_ms},
                     {"context_tokens", spec.model.context_tokens},
                     {"retry", retry_policy_to_json(spec.model.retry)}};
  if (!spec.model.base_url.empty()) model["base_url"] = spec.model.base_url;
  if (!spec.model.api_key_env.empty()) model["api_key_env"] = spec.model.api_key_env;
  json::array tools;
  for (const auto& tool : spec.tools) {
    json::object entry{{"type", tool.type},
                       {"name", tool.name},
                       {"description", tool.description},
                       {"parameters", tool.parameters},
                       {"timeout_ms", tool.timeout_ms},
                       {"retry", retry_policy_to_json(tool.retry)}};
    if (!tool.url.empty()) entry["url"] = tool.url;
    if (tool.mcp) add_mcp_fields(*tool.mcp, entry);
    if (tool.auth) {
      entry["auth"] = json::object{{"secret", tool.auth->secret}, {"header", tool.auth->header},
                                   {"prefix", tool.auth->prefix}};
    }
    tools.push_back(std::move(entry));
  }
  json::object limits{{"max_steps", spec.limits.steps_max},
                      {"max_total_tokens", spec.limits.total_tokens_max},
                      {"deadline_ms", spec.limits.deadline_ms}};
  return json::object{{"name", spec.name},
                      {"model", std::move(model)},
                      {"instructions", spec.instructions},
                      {"tools", std::move(tools)},
                      {"limits", std::move(limits)}};
}

}  // namespace continuum
