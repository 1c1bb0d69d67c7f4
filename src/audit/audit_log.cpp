#include "audit/audit_log.h"

namespace continuum {

AuditEventRecord audit_event(std::string tenant, int64_t at_ms, std::string principal, std::string action,
                             std::string resource, std::string outcome, json::object details, std::string run_id) {
  AuditEventRecord event;
  event.tenant_id = std::move(tenant);
  event.at_ms = at_ms;
  event.principal = std::move(principal);
  event.action = std::move(action);
  event.resource = std::move(resource);
  event.outcome = std::move(outcome);
  event.details_json = to_canonical_json(details);  // as the chain hashes it: the writer need not parse it again
  event.details_canonical = true;
  event.run_id = std::move(run_id);
  return event;
}

bool audit_api_decision(const std::string& action, bool allowed, bool audit_reads) {
  return !allowed || audit_reads || !action.ends_with(":read");
}

}  // namespace continuum
