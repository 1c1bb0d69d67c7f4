#include "tools/mcp/tool_pins.h"

#include "audit/audit_log.h"
#include "core/log.h"

namespace continuum {

namespace {

constexpr const char* kFirstUse = "first use";

std::string cache_key(const std::string& tenant, const std::string& server, const std::string& tool) {
  return tenant + "\n" + server + "\n" + tool;
}

std::string withheld_reason(const McpToolPinRecord& pin) {
  return "its definition changed since it was approved (approved " + pin.approved_hash.substr(0, 12) +
         ", now " + pin.seen_hash.substr(0, 12) + "); an administrator must approve it again";
}

}  // namespace

json::object mcp_pin_to_json(const McpToolPinRecord& pin) {
  json::object obj{{"server", pin.server},
                   {"tool", pin.tool},
                   {"status", pin.status},
                   {"approved_hash", pin.approved_hash},
                   {"approved_at_ms", pin.approved_at_ms},
                   {"approved_by", pin.approved_by},
                   {"seen_hash", pin.seen_hash},
                   {"changed_at_ms", pin.changed_at_ms}};
  auto approved = parse_json(pin.approved_definition_json);
  if (approved.is_ok()) obj["approved_definition"] = *approved;
  if (pin.status == kMcpPinChanged) {
    auto seen = parse_json(pin.seen_definition_json);
    if (seen.is_ok()) obj["seen_definition"] = *seen;
  }
  return obj;
}

void McpToolPins::post(std::function<void(Reasons)> done, Reasons reasons) {
  loop_.post([done = std::move(done), reasons = std::move(reasons)]() mutable { done(std::move(reasons)); });
}

void McpToolPins::check(const std::string& tenant, const std::string& server, const std::vector<McpTool>& tools,
                        std::function<void(Reasons)> done) {
  check_pass(tenant, server, tools, std::move(done), /*may_pin=*/true);
}

// One pass: the cache answers when it can; otherwise the stored pins decide,
// and what must be written (new pins, changes) is committed before a second
// pass decides again from what is then stored (another node may have pinned
// first). Only stored pins ever fill the cache.
void McpToolPins::check_pass(const std::string& tenant, const std::string& server, const std::vector<McpTool>& tools,
                             std::function<void(Reasons)> done, bool may_pin) {
  Reasons reasons;
  for (const McpTool& tool : tools) {
    auto cached = approved_.find(cache_key(tenant, server, tool.name));
    if (cached != approved_.end() && cached->second == tool.definition_hash) reasons[tool.name] = "";
  }
  if (reasons.size() == tools.size()) return post(std::move(done), std::move(reasons));
  auto stored = store_.list_mcp_tool_pins(tenant, server);
  if (!stored.is_ok()) {
    log::warn("cannot read mcp tool pins", {{"server", server}, {"error", stored.status().to_string()}});
    for (const McpTool& tool : tools) reasons.try_emplace(tool.name, "its pin could not be read");
    return post(std::move(done), std::move(reasons));
  }
  std::map<std::string, McpToolPinRecord> pins;
  for (auto& pin : *stored) pins[pin.tool] = std::move(pin);
  WriteBatch batch = decide(tenant, server, tools, pins, may_pin, reasons);
  if (batch.empty()) return post(std::move(done), std::move(reasons));
  EventLoop& loop = loop_;
  store_.commit(std::move(batch), [&loop, this, tenant, server, tools, done = std::move(done)](Status status) mutable {
    loop.post([this, tenant, server, tools = std::move(tools), status, done = std::move(done)]() mutable {
      if (status.is_ok()) return check_pass(tenant, server, tools, std::move(done), /*may_pin=*/false);
      log::warn("cannot write mcp tool pins", {{"server", server}, {"error", status.to_string()}});
      Reasons refused;  // nothing unpinned or changed is offered; the next listing tries again
      for (const McpTool& tool : tools) refused[tool.name] = "its pin could not be written";
      done(std::move(refused));
    });
  });
}

// Fills `reasons` for the tools it can decide from `pins`, and returns what to
// write: a first-use pin for each unknown tool (when `may_pin`; written only
// if no pin exists by then), a change for each tool that serves a new definition.
WriteBatch McpToolPins::decide(const std::string& tenant, const std::string& server, const std::vector<McpTool>& tools,
                               const std::map<std::string, McpToolPinRecord>& pins, bool may_pin, Reasons& reasons) {
  int64_t now = clock_.now_ms();
  WriteBatch batch;
  for (const McpTool& tool : tools) {
    if (reasons.count(tool.name)) continue;
    std::string resource = "mcp:" + server + "/" + tool.name;
    auto found = pins.find(tool.name);
    if (found == pins.end()) {
      if (!may_pin) {
        reasons[tool.name] = "it could not be pinned";
        continue;
      }
      std::string definition = tool_definition_json(tool);
      batch.mcp_tool_pin_inserts.push_back(McpToolPinRecord{tenant, server, tool.name, kMcpPinApproved,
                                                            tool.definition_hash, definition, now, kFirstUse,
                                                            tool.definition_hash, definition, 0});
      batch.audit_events.push_back(audit_event(tenant, now, "system", "mcp_tool:pin", resource, "ok",
                                               json::object{{"hash", tool.definition_hash}}));
      continue;
    }
    McpToolPinRecord pin = found->second;
    approved_[cache_key(tenant, server, tool.name)] = pin.approved_hash;
    if (pin.approved_hash == tool.definition_hash) {
      reasons[tool.name] = "";
      if (pin.status != kMcpPinApproved) {  // the server went back to what was approved
        pin.status = kMcpPinApproved;
        pin.seen_hash = pin.approved_hash;
        pin.seen_definition_json = pin.approved_definition_json;
        batch.mcp_tool_pin_upserts.push_back(pin);
      }
      continue;
    }
    if (pin.seen_hash != tool.definition_hash || pin.status != kMcpPinChanged) {
      pin.status = kMcpPinChanged;
      pin.seen_hash = tool.definition_hash;
      pin.seen_definition_json = tool_definition_json(tool);
      pin.changed_at_ms = now;
      batch.mcp_tool_pin_upserts.push_back(pin);
      batch.audit_events.push_back(audit_event(
          tenant, now, "system", "mcp_tool:change", resource, "withheld",
          json::object{{"approved_hash", pin.approved_hash}, {"seen_hash", tool.definition_hash}}));
      log::warn("mcp tool definition changed; withheld until approved",
                {{"server", server}, {"tool", tool.name}, {"approved_hash", pin.approved_hash},
                 {"seen_hash", tool.definition_hash}});
    }
    reasons[tool.name] = withheld_reason(pin);
  }
  return batch;
}

void McpToolPins::approve(const std::string& tenant, const std::string& server, const std::string& tool,
                          const std::string& expected_hash, const std::string& principal,
                          std::function<void(Result<McpToolPinRecord>)> done) {
  auto answer = [this](std::function<void(Result<McpToolPinRecord>)> callback, Result<McpToolPinRecord> result) {
    loop_.post([callback = std::move(callback), result = std::move(result)]() mutable { callback(std::move(result)); });
  };
  auto stored = store_.list_mcp_tool_pins(tenant, server);
  if (!stored.is_ok()) return answer(std::move(done), stored.status());
  const McpToolPinRecord* found = nullptr;
  for (const auto& pin : *stored) {
    if (pin.tool == tool) found = &pin;
  }
  if (found == nullptr) return answer(std::move(done), not_found("no pin for tool '" + tool + "' of MCP server '" + server + "'"));
  if (found->status == kMcpPinApproved) {
    return answer(std::move(done), conflict("tool '" + tool + "' of MCP server '" + server + "' has no change to approve"));
  }
  if (found->seen_hash != expected_hash) {
    return answer(std::move(done), conflict("the server now serves another definition of '" + tool + "' (" +
                                          found->seen_hash.substr(0, 12) + "); review it again"));
  }
  McpToolPinRecord pin = *found;
  int64_t now = clock_.now_ms();
  std::string previous = pin.approved_hash;
  pin.status = kMcpPinApproved;
  pin.approved_hash = pin.seen_hash;
  pin.approved_definition_json = pin.seen_definition_json;
  pin.approved_at_ms = now;
  pin.approved_by = principal;
  WriteBatch batch;
  batch.mcp_tool_pin_upserts.push_back(pin);
  batch.audit_events.push_back(audit_event(tenant, now, principal, "mcp_tool:approve", "mcp:" + server + "/" + tool,
                                           "ok", json::object{{"previous_hash", previous}, {"hash", pin.approved_hash}}));
  EventLoop& loop = loop_;
  store_.commit(std::move(batch), [&loop, this, tenant, server, pin, done = std::move(done)](Status status) mutable {
    loop.post([this, tenant, server, pin, status, done = std::move(done)]() mutable {
      if (!status.is_ok()) return done(status);
      approved_[cache_key(tenant, server, pin.tool)] = pin.approved_hash;
      done(pin);
    });
  });
}

}  // namespace continuum
