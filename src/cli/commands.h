// The `continuum` subcommands other than `serve`.
#pragma once

#include <string>

#include "cli/client.h"

namespace continuum::cli {

// Each returns the process exit code and prints to stdout/stderr.
int agent_apply(ApiClient& client, const std::string& file);
int agent_list(ApiClient& client);
int agent_show(ApiClient& client, const std::string& name);
int run_show(ApiClient& client, const std::string& run_id);
int run_steps(ApiClient& client, const std::string& run_id);
// Interactive chat; `session_id` "" creates a session (its id is printed so it can be continued).
int chat(ApiClient& client, const std::string& agent, const std::string& session_id);

// YAML (a superset of JSON) to JSON, for agent files.
Result<json::value> yaml_file_to_json(const std::string& path);

}  // namespace continuum::cli
