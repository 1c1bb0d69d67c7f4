// CLI commands for MCP servers: `mcp servers`, `mcp tools SERVER`,
// `mcp pins`, `mcp approve SERVER TOOL`, `mcp authorize SERVER`,
// `mcp authorization SERVER [--forget]`. Each talks to the server's API
// (docs/mcp.md), so what it shows is what the runtime sees.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "cli/client.h"

namespace continuum::cli {

class McpCommands {
 public:
  explicit McpCommands(CLI::App& app);
  // Runs the parsed one, if it is one of these; returns its exit code.
  std::optional<int> run(ApiClient& client) const;

 private:
  CLI::App* servers_ = nullptr;
  CLI::App* tools_ = nullptr;
  CLI::App* pins_ = nullptr;
  CLI::App* approve_ = nullptr;
  CLI::App* authorize_ = nullptr;
  CLI::App* authorization_ = nullptr;
  bool forget_ = false;
  std::string server_, tool_, agent_, hash_;
  bool json_ = false;
};

}  // namespace continuum::cli
