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
// The value is read from stdin (one line), so it stays out of shell history and `ps`.
int secrets_set(ApiClient& client, const std::string& name);
int secrets_list(ApiClient& client);
int secrets_delete(ApiClient& client, const std::string& name);
int keys_list(ApiClient& client);
int keys_rotate(ApiClient& client);
// Exactly one of `user` and `tenant` is non-empty.
int keys_shred(ApiClient& client, const std::string& user, const std::string& tenant);
// Offline: appends a new key-encryption key version to a key file.
int keys_new_kek(const std::string& key_file);
// Interactive chat; `session_id` "" creates a session (its id is printed so it can be continued).
int chat(ApiClient& client, const std::string& agent, const std::string& session_id);

// Prints "error: <message>" to stderr; returns exit code 1.
int fail(const Status& status);
// Prints the JSON answer pretty, or the error; returns the exit code.
int print_result(const Result<json::value>& result);

// YAML (a superset of JSON) to JSON, for agent files.
Result<json::value> yaml_file_to_json(const std::string& path);

}  // namespace continuum::cli
