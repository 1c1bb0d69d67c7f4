// The MCP servers a tenant's agents configure, as the API finds them
// (mcp_handlers.cpp).
#pragma once

#include <memory>
#include <string>

#include "agent/agent_spec.h"
#include "api/handlers.h"
#include "core/status.h"

namespace continuum {

struct ConfiguredServer {
  std::shared_ptr<const AgentSpec> agent;  // keeps `server` alive
  const ToolSpec* server = nullptr;
};

// The server named `name` in the latest version of `agent_name` (or of any
// agent of the tenant that configures one, when `agent_name` is empty).
Result<ConfiguredServer> find_mcp_server(ApiContext& ctx, const std::string& tenant, const std::string& name,
                                         const std::string& agent_name);

}  // namespace continuum
