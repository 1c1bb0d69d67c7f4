#include "cli/governance_commands.h"

#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"

namespace continuum::cli {

namespace {

Result<std::string> read_file(const std::string& path) {
  std::ifstream file(path);
  if (!file) return invalid_argument("cannot read " + path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

json::array string_array(const std::vector<std::string>& values) {
  json::array out;
  for (const auto& value : values) out.push_back(json::value(value));
  return out;
}

// Adds `key` to `body` from a JSON object given on the command line.
Status add_json_object(json::object& body, const char* key, const std::string& text) {
  if (text.empty()) return Status::ok();
  ASSIGN_OR_RETURN(auto parsed, parse_json_object(text));
  body[key] = std::move(parsed);
  return Status::ok();
}

int policy_test(ApiClient& client, json::object body, const std::string& args_json, const std::string& history_json,
                const std::string& file) {
  Status added = add_json_object(body, "args", args_json);
  if (added.is_ok()) added = add_json_object(body, "history", history_json);
  if (!added.is_ok()) return fail(added);
  if (!file.empty()) {
    auto text = read_file(file);
    if (!text.is_ok()) return fail(text.status());
    body["document"] = *text;
  }
  auto decision = client.call("POST", "/v1/policy/test", json::serialize(body));
  if (!decision.is_ok()) return fail(decision.status());
  const auto& view = decision->as_object();
  std::cout << "decision: " << json::value_to<std::string>(view.at("decision"));
  if (view.at("statement").is_string()) std::cout << " (statement " << view.at("statement").as_string() << ")";
  std::cout << "\nreason: " << view.at("reason").as_string() << "\n";
  for (const auto& line : view.at("trace").as_array()) std::cout << "  " << line.as_string() << "\n";
  return 0;
}

}  // namespace

GovernanceCommands::GovernanceCommands(CLI::App& app) {
  auto* keys = app.add_subcommand("api-keys", "API keys: create (shown once), list, revoke");
  keys->require_subcommand(1);
  keys_create_ = keys->add_subcommand("create", "Issue an API key; its token is printed once");
  keys_create_->add_option("--user", user_, "The user or service account it authenticates")->required();
  keys_create_->add_option("--role", roles_, "A role (repeatable; default: member)");
  keys_create_->add_option("--name", name_, "A label");
  keys_create_->add_option("--tenant", tenant_, "Another tenant (admins of the system tenant only)");
  keys_list_ = keys->add_subcommand("list", "List the tenant's API keys (never their secrets)");
  keys_revoke_ = keys->add_subcommand("revoke", "Revoke an API key");
  keys_revoke_->add_option("id", key_id_)->required();

  auto* policy = app.add_subcommand("policy", "The tenant's policy: show, set, versions, test");
  policy->require_subcommand(1);
  policy_show_ = policy->add_subcommand("show", "Show the policy in force");
  policy_set_ = policy->add_subcommand("set", "Make a YAML/JSON file the new policy version");
  policy_set_->add_option("file", file_)->required();
  policy_versions_ = policy->add_subcommand("versions", "List the policy's versions");
  policy_test_ = policy->add_subcommand("test", "Evaluate a request and explain the decision");
  policy_test_->add_option("--action", action_, "e.g. tool:invoke")->required();
  policy_test_->add_option("--resource", resource_, "e.g. tool:refund")->required();
  policy_test_->add_option("--user", user_, "The end user (default: you)");
  policy_test_->add_option("--role", roles_, "A role of that user (repeatable)");
  policy_test_->add_option("--agent", agent_, "The agent acting");
  policy_test_->add_option("--args", args_json_, "Tool arguments as a JSON object");
  policy_test_->add_option("--history", history_json_, R"(Past calls: {"refund": {"count": 2, "sum": {"amount": 900}}})");
  policy_test_->add_option("--file", file_, "Test this unsaved policy file instead of the one in force");
}

std::optional<int> GovernanceCommands::run(ApiClient& client) const {
  if (keys_create_->parsed()) {
    json::object body{{"user", user_}};
    if (!roles_.empty()) body["roles"] = string_array(roles_);
    if (!name_.empty()) body["name"] = name_;
    if (!tenant_.empty()) body["tenant"] = tenant_;
    return print_result(client.call("POST", "/v1/api-keys", json::serialize(body)));
  }
  if (keys_list_->parsed()) return print_result(client.call("GET", "/v1/api-keys"));
  if (keys_revoke_->parsed()) return print_result(client.call("DELETE", "/v1/api-keys/" + key_id_));
  if (policy_show_->parsed()) return print_result(client.call("GET", "/v1/policy"));
  if (policy_versions_->parsed()) return print_result(client.call("GET", "/v1/policy/versions"));
  if (policy_set_->parsed()) {
    auto text = read_file(file_);
    if (!text.is_ok()) return fail(text.status());
    return print_result(client.call("PUT", "/v1/policy", json::serialize(json::object{{"document", *text}})));
  }
  if (policy_test_->parsed()) {
    json::object body{{"action", action_}, {"resource", resource_}};
    if (!user_.empty()) body["user"] = user_;
    if (!roles_.empty()) body["roles"] = string_array(roles_);
    if (!agent_.empty()) body["agent"] = agent_;
    return policy_test(client, std::move(body), args_json_, history_json_, file_);
  }
  return std::nullopt;
}

}  // namespace continuum::cli
