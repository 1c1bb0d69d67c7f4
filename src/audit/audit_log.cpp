#include "audit/audit_log.h"

namespace continuum {

AuditEventRecord audit_event(std::string tenant, int64_t at_ms, std::string principal, std::string action,
                             std::string resource, std::string outcome, json::object details, std::string run_id) {
  // Canonical, as the chain hashes it: the writer need not parse it again.
  return audit_event_canonical(std::move(tenant), at_ms, std::move(principal), std::move(action), std::move(resource),
                               std::move(outcome), to_canonical_json(details), std::move(run_id));
}

AuditEventRecord audit_event_canonical(std::string tenant, int64_t at_ms, std::string principal, std::string action,
                                       std::string resource, std::string outcome, std::string canonical_details,
                                       std::string run_id) {
  AuditEventRecord event;
  event.tenant_id = std::move(tenant);
  event.at_ms = at_ms;
  event.principal = std::move(principal);
  event.action = std::move(action);
  event.resource = std::move(resource);
  event.outcome = std::move(outcome);
  event.details_json = std::move(canonical_details);
  event.details_canonical = true;
  event.run_id = std::move(run_id);
  return event;
}

std::string effect_decision_details(std::string_view statement, int64_t seq, std::string_view on_behalf_of,
                                    std::string_view inputs_hash, const std::string* reason) {
  std::string out = "{\"inputs_hash\":";  // keys in byte order, as to_canonical_json sorts them
  append_json_string(out, inputs_hash);
  out += ",\"on_behalf_of\":";
  append_json_string(out, on_behalf_of);
  if (reason != nullptr) {
    out += ",\"reason\":";
    append_json_string(out, *reason);
  }
  out += ",\"seq\":";
  out += std::to_string(seq);
  out += ",\"statement\":";
  append_json_string(out, statement);
  out += '}';
  return out;
}

bool audit_api_decision(const std::string& action, bool allowed, bool audit_reads) {
  return !allowed || audit_reads || !action.ends_with(":read");
}

}  // namespace continuum
