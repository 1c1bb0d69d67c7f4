// CLI commands for governance: `api-keys`, `policy`, `approvals`, `audit`.
// Each talks to the server's API with the caller's key, except
// `audit verify`, which works offline on a data dir or an export.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

#include "cli/client.h"

namespace continuum::cli {

class GovernanceCommands {
 public:
  // Registers the subcommands on `app`.
  explicit GovernanceCommands(CLI::App& app);
  // Runs the parsed one, if it is one of these; returns its exit code.
  std::optional<int> run(ApiClient& client) const;
  // Commands that need no server (audit verify).
  std::optional<int> run_offline() const;

 private:
  CLI::App* keys_create_ = nullptr;
  CLI::App* keys_list_ = nullptr;
  CLI::App* keys_revoke_ = nullptr;
  CLI::App* policy_show_ = nullptr;
  CLI::App* policy_set_ = nullptr;
  CLI::App* policy_versions_ = nullptr;
  CLI::App* policy_test_ = nullptr;
  CLI::App* approvals_list_ = nullptr;
  CLI::App* approvals_approve_ = nullptr;
  CLI::App* approvals_deny_ = nullptr;
  CLI::App* audit_list_ = nullptr;
  CLI::App* audit_export_ = nullptr;
  CLI::App* audit_verify_ = nullptr;
  std::string status_, comment_, approval_id_, principal_, run_, output_, data_dir_, export_file_;
  std::vector<std::string> public_keys_;
  int limit_ = 100;

  void add_approval_commands(CLI::App& app);
  void add_audit_commands(CLI::App& app);
  std::optional<int> run_approvals_or_audit(ApiClient& client) const;
  std::string user_, name_, tenant_, key_id_, file_;
  std::vector<std::string> roles_;
  std::string action_, resource_, agent_, args_json_, history_json_;
};

}  // namespace continuum::cli
