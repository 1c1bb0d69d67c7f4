#include "cli/governance_commands.h"

#include <fstream>
#include <iostream>
#include <sstream>

#include "audit/verifier.h"
#include "cli/commands.h"
#include "crypto/hash.h"
#include "crypto/signing.h"

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
  auto text = [](const json::value& value) { return value.is_string() ? std::string(value.as_string()) : ""; };
  std::cout << "decision: " << text(view.at("decision"));
  if (view.at("statement").is_string()) std::cout << " (statement " << text(view.at("statement")) << ")";
  std::cout << "\nreason: " << text(view.at("reason")) << "\n";
  for (const auto& line : view.at("trace").as_array()) std::cout << "  " << text(line) << "\n";
  return 0;
}

// Trusted checkpoint keys: given in hex, plus the data dir's own signing key.
Result<std::vector<std::string>> trusted_keys(const std::vector<std::string>& hex_keys, const std::string& data_dir) {
  std::vector<std::string> keys;
  for (const auto& hex : hex_keys) {
    auto raw = from_hex(hex);
    if (!raw.is_ok() || raw->size() != 32) return invalid_argument("a public key is 64 hex digits");
    keys.push_back(std::move(*raw));
  }
  std::ifstream key_file(data_dir + "/audit-signing.key");
  std::string seed_hex;
  if (!data_dir.empty() && key_file && std::getline(key_file, seed_hex)) {
    auto seed = from_hex(seed_hex);
    if (!seed.is_ok()) return invalid_argument(data_dir + "/audit-signing.key is damaged");
    ASSIGN_OR_RETURN(auto key, Ed25519Key::from_seed(*seed));
    keys.push_back(key.public_key());
  }
  return keys;
}

int audit_verify(const std::string& data_dir, const std::string& export_file,
                 const std::vector<std::string>& public_keys) {
  auto keys = trusted_keys(public_keys, data_dir);
  if (!keys.is_ok()) return fail(keys.status());
  auto report = data_dir.empty() ? verify_audit_export(export_file, *keys)
                                 : verify_audit_sqlite(data_dir + "/continuum.db", *keys);
  if (!report.is_ok()) return fail(report.status());
  if (!report->ok) {
    std::cout << "BROKEN: tenant " << report->tenant << ": " << report->problem << "\n";
    if (report->broken_seq > 0) std::cout << "first bad record: " << report->broken_seq << "\n";
    return 1;
  }
  std::cout << "OK: " << report->events_checked << " records and " << report->checkpoints_checked
            << " signed checkpoints verified" << (keys->empty() ? " (no trusted key given: any valid signature)" : "")
            << "\n";
  return 0;
}

int audit_export(ApiClient& client, const std::string& output) {
  std::ofstream file;
  if (!output.empty()) {
    file.open(output, std::ios::trunc);
    if (!file) return fail(invalid_argument("cannot write " + output));
  }
  std::ostream& out = output.empty() ? std::cout : file;
  Status streamed = client.stream("/v1/audit/export", [&out](std::string_view chunk) { out << chunk; });
  if (!streamed.is_ok()) return fail(streamed);
  out.flush();
  return out ? 0 : fail(internal_error("cannot write the export"));
}

std::string query_string(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string query;
  for (const auto& [name, value] : params) {
    if (value.empty()) continue;
    query += (query.empty() ? "?" : "&") + name + "=" + value;  // values are ids and names: no escaping needed
  }
  return query;
}

}  // namespace

std::optional<int> GovernanceCommands::run_offline() const {
  if (audit_verify_->parsed()) return audit_verify(data_dir_, export_file_, public_keys_);
  return std::nullopt;
}

std::optional<int> GovernanceCommands::run_approvals_or_audit(ApiClient& client) const {
  if (approvals_list_->parsed()) {
    std::string status = status_.empty() ? "pending" : status_ == "all" ? "" : status_;
    return print_result(client.call("GET", "/v1/approvals" + query_string({{"status", status}})));
  }
  if (approvals_approve_->parsed() || approvals_deny_->parsed()) {
    json::object body;
    if (!comment_.empty()) body["comment"] = comment_;
    std::string verb = approvals_approve_->parsed() ? "approve" : "deny";
    return print_result(client.call("POST", "/v1/approvals/" + approval_id_ + "/" + verb, json::serialize(body)));
  }
  if (audit_list_->parsed()) {
    return print_result(client.call("GET", "/v1/audit" + query_string({{"action", action_}, {"principal", principal_},
                                                                       {"run", run_}, {"limit", std::to_string(limit_)}})));
  }
  if (audit_export_->parsed()) return audit_export(client, output_);
  return std::nullopt;
}

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
  add_approval_commands(app);
  add_audit_commands(app);
}

void GovernanceCommands::add_approval_commands(CLI::App& app) {
  auto* approvals = app.add_subcommand("approvals", "Tool calls waiting for a person: list, approve, deny");
  approvals->require_subcommand(1);
  approvals_list_ = approvals->add_subcommand("list", "List approvals");
  approvals_list_->add_option("--status", status_, "pending (default), approved, denied, expired or all");
  approvals_approve_ = approvals->add_subcommand("approve", "Approve: the call runs once, with the shown arguments");
  approvals_approve_->add_option("id", approval_id_)->required();
  approvals_approve_->add_option("--comment", comment_, "Why");
  approvals_deny_ = approvals->add_subcommand("deny", "Deny: the model is told the call was not approved");
  approvals_deny_->add_option("id", approval_id_)->required();
  approvals_deny_->add_option("--comment", comment_, "Why (the model sees it)");
}

void GovernanceCommands::add_audit_commands(CLI::App& app) {
  auto* audit = app.add_subcommand("audit", "The audit log: list, export, verify");
  audit->require_subcommand(1);
  audit_list_ = audit->add_subcommand("list", "List audit events");
  audit_list_->add_option("--action", action_, "Only this action (e.g. tool:invoke)");
  audit_list_->add_option("--principal", principal_, "Only this principal (e.g. user:alice)");
  audit_list_->add_option("--run", run_, "Only events of this run");
  audit_list_->add_option("--limit", limit_, "At most this many (1-1000)");
  audit_export_ = audit->add_subcommand("export", "Write the tenant's audit log as JSONL");
  audit_export_->add_option("-o,--output", output_, "File to write (default: stdout)");
  audit_verify_ = audit->add_subcommand("verify", "Check audit chains offline; names the first broken record");
  auto* data = audit_verify_->add_option("--data-dir", data_dir_, "A data dir (its SQLite store and signing key)");
  auto* file = audit_verify_->add_option("--file", export_file_, "An export (continuum audit export)");
  data->excludes(file);
  audit_verify_->require_option(1, 2);
  audit_verify_->add_option("--public-key", public_keys_, "A trusted checkpoint key, hex (repeatable)");
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
  return run_approvals_or_audit(client);
}

}  // namespace continuum::cli
