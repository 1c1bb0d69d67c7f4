// Building audit events, so every producer writes the same shapes
// (docs/audit.md lists actions and outcomes). Events go into the WriteBatch
// of the change they record, or alone for decisions and failures.
#pragma once

#include <string>

#include "core/json.h"
#include "store/records.h"

namespace continuum {

AuditEventRecord audit_event(std::string tenant, int64_t at_ms, std::string principal, std::string action,
                             std::string resource, std::string outcome, json::object details = {},
                             std::string run_id = "");

// Whether an API decision is recorded: every refusal, and every allowed
// action except reads (a read is recorded only when refused) unless
// `audit_reads` (config audit_reads) records those too.
bool audit_api_decision(const std::string& action, bool allowed, bool audit_reads);

}  // namespace continuum
