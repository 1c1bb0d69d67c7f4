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

std::string McpToolPins::definition_json(const McpTool& tool) {
  return to_json(sorted_keys(json::object{{"name", tool.name},
                                          {"title", tool.title},
                                          {"description", tool.description},
                                          {"inputSchema", tool.input_schema}}));
}

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

void McpToolPins::check(const std::string& tenant, const std::string& server, const std::vector<McpTool>& tools,
                        std::function<void(std::map<std::string, std::string>)> done) {
  std::map<std::string, std::string> reasons;
  bool all_known = true;
  for (const McpTool& tool : tools) {
    auto cached = approved_.find(cache_key(tenant, server, tool.name));
    if (cached != approved_.end() && cached->second == tool.definition_hash) {
      reasons[tool.name] = "";
    } else {
      all_known = false;
    }
  }
  if (all_known) {
    loop_.post([done = std::move(done), reasons = std::move(reasons)]() mutable { done(std::move(reasons)); });
    return;
  }
  auto stored = store_.list_mcp_tool_pins(tenant, server);
  if (!stored.is_ok()) {
    log::warn("cannot read mcp tool pins", {{"server", server}, {"error", stored.status().to_string()}});
    for (const McpTool& tool : tools) {
      if (!reasons.count(tool.name)) reasons[tool.name] = "its pin could not be read";
    }
    loop_.post([done = std::move(done), reasons = std::move(reasons)]() mutable { done(std::move(reasons)); });
    return;
  }
  std::map<std::string, McpToolPinRecord> pins;
  for (auto& pin : *stored) pins[pin.tool] = std::move(pin);
  int64_t now = clock_.now_ms();
  WriteBatch batch;
  for (const McpTool& tool : tools) {
    if (reasons.count(tool.name)) continue;
    std::string resource = "mcp:" + server + "/" + tool.name;
    auto found = pins.find(tool.name);
    if (found == pins.end()) {
      std::string definition = definition_json(tool);
      batch.mcp_tool_pin_upserts.push_back(McpToolPinRecord{tenant, server, tool.name, kMcpPinApproved,
                                                            tool.definition_hash, definition, now, kFirstUse,
                                                            tool.definition_hash, definition, 0});
      batch.audit_events.push_back(audit_event(tenant, now, "system", "mcp_tool:pin", resource, "ok",
                                               json::object{{"hash", tool.definition_hash}}));
      approved_[cache_key(tenant, server, tool.name)] = tool.definition_hash;
      reasons[tool.name] = "";
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
      pin.seen_definition_json = definition_json(tool);
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
  if (batch.empty()) {
    loop_.post([done = std::move(done), reasons = std::move(reasons)]() mutable { done(std::move(reasons)); });
    return;
  }
  EventLoop& loop = loop_;
  store_.commit(std::move(batch), [&loop, this, tenant, server, done = std::move(done),
                                   reasons = std::move(reasons)](Status status) mutable {
    loop.post([this, tenant, server, status, done = std::move(done), reasons = std::move(reasons)]() mutable {
      if (!status.is_ok()) {
        // Nothing was pinned: offer nothing that is not pinned, and look again next time.
        log::warn("cannot write mcp tool pins", {{"server", server}, {"error", status.to_string()}});
        forget(tenant, server);
        for (auto& [tool, reason] : reasons) {
          if (reason.empty()) reason = "its pin could not be written";
        }
      }
      done(std::move(reasons));
    });
  });
}

void McpToolPins::forget(const std::string& tenant, const std::string& server) {
  std::string prefix = tenant + "\n" + server + "\n";
  for (auto it = approved_.lower_bound(prefix); it != approved_.end() && it->first.rfind(prefix, 0) == 0;) {
    it = approved_.erase(it);
  }
}

void McpToolPins::approve(const std::string& tenant, const std::string& server, const std::string& tool,
                          const std::string& principal, std::function<void(Result<McpToolPinRecord>)> done) {
  auto post = [this](std::function<void(Result<McpToolPinRecord>)> callback, Result<McpToolPinRecord> result) {
    loop_.post([callback = std::move(callback), result = std::move(result)]() mutable { callback(std::move(result)); });
  };
  auto stored = store_.list_mcp_tool_pins(tenant, server);
  if (!stored.is_ok()) return post(std::move(done), stored.status());
  const McpToolPinRecord* found = nullptr;
  for (const auto& pin : *stored) {
    if (pin.tool == tool) found = &pin;
  }
  if (found == nullptr) return post(std::move(done), not_found("no pin for tool '" + tool + "' of MCP server '" + server + "'"));
  if (found->status == kMcpPinApproved) {
    return post(std::move(done), conflict("tool '" + tool + "' of MCP server '" + server + "' has no change to approve"));
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
