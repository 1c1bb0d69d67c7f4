// CLI commands for governance: `api-keys`, `policy`. Each talks to the
// server's API with the caller's key.
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

 private:
  CLI::App* keys_create_ = nullptr;
  CLI::App* keys_list_ = nullptr;
  CLI::App* keys_revoke_ = nullptr;
  CLI::App* policy_show_ = nullptr;
  CLI::App* policy_set_ = nullptr;
  CLI::App* policy_versions_ = nullptr;
  CLI::App* policy_test_ = nullptr;
  std::string user_, name_, tenant_, key_id_, file_;
  std::vector<std::string> roles_;
  std::string action_, resource_, agent_, args_json_, history_json_;
};

}  // namespace continuum::cli
