// Building audit events, so every producer writes the same shapes
// (docs/audit.md lists actions and outcomes). Events go into the WriteBatch
// of the change they record, or alone for decisions and failures.
#pragma once

#include <string>
#include <string_view>

#include "core/json.h"
#include "store/records.h"

namespace continuum {

AuditEventRecord audit_event(std::string tenant, int64_t at_ms, std::string principal, std::string action,
                             std::string resource, std::string outcome, json::object details = {},
                             std::string run_id = "");

// The same with `canonical_details` already canonical JSON text (as
// to_canonical_json writes an object), for producers on a hot path.
AuditEventRecord audit_event_canonical(std::string tenant, int64_t at_ms, std::string principal, std::string action,
                                       std::string resource, std::string outcome, std::string canonical_details,
                                       std::string run_id);

// The details of an effect's policy decision, canonical: {inputs_hash,
// on_behalf_of, reason (only if `reason` is set), seq, statement}.
std::string effect_decision_details(std::string_view statement, int64_t seq, std::string_view on_behalf_of,
                                    std::string_view inputs_hash, const std::string* reason);

// Whether an API decision is recorded: every refusal, and every allowed
// action except reads (a read is recorded only when refused) unless
// `audit_reads` (config audit_reads) records those too.
bool audit_api_decision(const std::string& action, bool allowed, bool audit_reads);

}  // namespace continuum
