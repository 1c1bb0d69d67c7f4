// Tool pinning: a defence against an MCP server that changes what a tool
// claims to do after it was trusted (a "rug pull"). The first time a tool of
// a server is offered to an agent, its definition (name, title, description,
// input schema) is pinned by hash. A later listing that serves a different
// definition withholds the tool from every agent of the tenant until an
// administrator approves the new definition. Pinning, changes and approvals
// are audited (actions mcp_tool:pin, mcp_tool:change, mcp_tool:approve).
//
// Contract: used on the loop thread; `done` callbacks run later on it, after
// the pins they depend on are durable.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/clock.h"
#include "engine/event_loop.h"
#include "store/store.h"
#include "tools/mcp/mcp_protocol.h"

namespace continuum {

class McpToolPins {
 public:
  McpToolPins(Store& store, EventLoop& loop, const Clock& clock) : store_(store), loop_(loop), clock_(clock) {}

  using Reasons = std::map<std::string, std::string>;  // tool name -> why withheld ("" = offered)

  // For each of `tools` (as `server` lists them now): "" if it may be
  // offered, else why it is withheld. Unknown tools are pinned first (durably).
  void check(const std::string& tenant, const std::string& server, const std::vector<McpTool>& tools,
             std::function<void(Reasons)> done);

  // Approves the definition `server` serves now for `tool` (as last seen),
  // if it is the one the approver reviewed (`expected_hash`, its seen_hash).
  // kNotFound without a pin; kConflict if the pin has nothing to approve or
  // the server has moved on to another definition since.
  void approve(const std::string& tenant, const std::string& server, const std::string& tool,
               const std::string& expected_hash, const std::string& principal,
               std::function<void(Result<McpToolPinRecord>)> done);

 private:
  void check_pass(const std::string& tenant, const std::string& server, const std::vector<McpTool>& tools,
                  std::function<void(Reasons)> done, bool may_pin);
  WriteBatch decide(const std::string& tenant, const std::string& server, const std::vector<McpTool>& tools,
                    const std::map<std::string, McpToolPinRecord>& pins, bool may_pin, Reasons& reasons);
  void post(std::function<void(Reasons)> done, Reasons reasons);

  Store& store_;
  EventLoop& loop_;
  const Clock& clock_;
  // Approved hash per "tenant\nserver\ntool": the common case (nothing
  // changed) needs no store read. A change or an approval elsewhere is read
  // from the store whenever the served hash differs from this.
  std::map<std::string, std::string> approved_;
};

json::object mcp_pin_to_json(const McpToolPinRecord& pin);

}  // namespace continuum
