#include "audit/verifier.h"

#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "audit/chain.h"
#include "crypto/hash.h"
#include "crypto/signing.h"
#include "store/sqlite/sqlite_store.h"

namespace continuum {

namespace {

AuditVerifyReport broken(const std::string& tenant, int64_t seq, std::string problem, const AuditVerifyReport& so_far) {
  AuditVerifyReport report = so_far;
  report.ok = false;
  report.tenant = tenant;
  report.broken_seq = seq;
  report.problem = std::move(problem);
  return report;
}

// The columns a query filters on must say what the hashed content says.
std::string mismatched_column(const AuditEventRecord& stored, const AuditEventRecord& hashed) {
  if (stored.tenant_id != hashed.tenant_id) return "tenant";
  if (stored.at_ms != hashed.at_ms) return "at_ms";
  if (stored.principal != hashed.principal) return "principal";
  if (stored.action != hashed.action) return "action";
  if (stored.resource != hashed.resource) return "resource";
  if (stored.run_id != hashed.run_id) return "run_id";
  if (stored.outcome != hashed.outcome) return "outcome";
  return "";
}

}  // namespace

AuditVerifyReport verify_audit_chain(const std::string& tenant, const std::vector<AuditEventRecord>& events,
                                     const std::vector<AuditCheckpointRecord>& checkpoints,
                                     const std::vector<std::string>& trusted_keys) {
  AuditVerifyReport report;
  std::map<int64_t, std::string> hash_at;  // seq -> hash, for checkpoints
  std::string prev = audit_genesis_hash();
  int64_t expected = 1;
  for (const auto& event : events) {
    if (event.seq > expected) return broken(tenant, expected, "record " + std::to_string(expected) + " is missing", report);
    if (event.seq < expected) {
      return broken(tenant, event.seq, "record " + std::to_string(event.seq) + " is out of order or repeated", report);
    }
    if (event.prev_hash != prev) {
      return broken(tenant, event.seq, "record " + std::to_string(event.seq) + " does not link to the record before it",
                    report);
    }
    if (audit_chain_hash(prev, event.seq, event.canonical) != event.hash) {
      return broken(tenant, event.seq,
                    "record " + std::to_string(event.seq) + " does not match its hash (its content was changed)", report);
    }
    AuditEventRecord hashed;
    if (!parse_canonical_event(event.canonical, hashed).is_ok()) {
      return broken(tenant, event.seq, "record " + std::to_string(event.seq) + " is not a valid event", report);
    }
    if (std::string column = mismatched_column(event, hashed); !column.empty()) {
      return broken(tenant, event.seq,
                    "record " + std::to_string(event.seq) + ": column " + column + " differs from the hashed content",
                    report);
    }
    hash_at[event.seq] = event.hash;
    prev = event.hash;
    ++expected;
    ++report.events_checked;
  }
  int64_t last = expected - 1;
  for (const auto& checkpoint : checkpoints) {
    std::string message = audit_checkpoint_message(tenant, checkpoint.seq, checkpoint.hash, checkpoint.at_ms);
    std::string where = "checkpoint at record " + std::to_string(checkpoint.seq);
    if (!ed25519_verify(checkpoint.public_key, message, checkpoint.signature)) {
      return broken(tenant, 0, where + " has an invalid signature", report);
    }
    if (!trusted_keys.empty() &&
        std::find(trusted_keys.begin(), trusted_keys.end(), checkpoint.public_key) == trusted_keys.end()) {
      return broken(tenant, 0, where + " is signed by an untrusted key " + ed25519_key_id(checkpoint.public_key),
                    report);
    }
    if (checkpoint.seq > last) {
      return broken(tenant, last + 1,
                    "records " + std::to_string(last + 1) + " to " + std::to_string(checkpoint.seq) +
                        " are missing (truncated below a signed checkpoint)",
                    report);
    }
    if (hash_at[checkpoint.seq] != checkpoint.hash) return broken(tenant, 0, where + " does not match the chain", report);
    ++report.checkpoints_checked;
  }
  return report;
}

namespace {

// One run's records are listed through its spans (SQLite, schema 10 on): a
// record of a run that no span of that run covers would be left out of
// GET /v1/audit?run=. The first such record of `tenant`, if any (none
// before schema 10, which has no spans).
Result<std::optional<AuditEventRecord>> first_record_outside_run_spans(SqliteDb& db, const std::string& tenant) {
  {  // finished before the next statement
    ASSIGN_OR_RETURN(auto spans, db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                            "name = 'audit_run_spans'"));
    if (!spans.step()) {
      RETURN_IF_ERROR(spans.step_status());
      return std::optional<AuditEventRecord>();
    }
  }
  ASSIGN_OR_RETURN(auto query, db.prepare("SELECT seq, run_id FROM audit_events AS e WHERE tenant_id = ?1 AND "
                                          "run_id <> '' AND NOT EXISTS (SELECT 1 FROM audit_run_spans AS s WHERE "
                                          "s.tenant_id = ?1 AND s.run_id = e.run_id AND s.first_seq <= e.seq AND "
                                          "s.last_seq >= e.seq) ORDER BY seq LIMIT 1"));
  query.bind(1, tenant);
  if (!query.step()) {
    RETURN_IF_ERROR(query.step_status());
    return std::optional<AuditEventRecord>();
  }
  AuditEventRecord outside;
  outside.seq = query.column_int(0);
  outside.run_id = query.column_text(1);
  return std::optional<AuditEventRecord>(std::move(outside));
}

// Sums per-tenant reports; the first broken one wins.
void add_report(AuditVerifyReport& total, const AuditVerifyReport& tenant_report) {
  int64_t events = total.events_checked + tenant_report.events_checked;
  int64_t checkpoints = total.checkpoints_checked + tenant_report.checkpoints_checked;
  if (total.ok && !tenant_report.ok) total = tenant_report;
  total.events_checked = events;
  total.checkpoints_checked = checkpoints;
}

}  // namespace

Result<AuditVerifyReport> verify_audit_sqlite(const std::string& db_path, const std::vector<std::string>& trusted_keys) {
  SqliteDb db;
  RETURN_IF_ERROR(db.open_read_only(db_path));
  ASSIGN_OR_RETURN(auto tenants, db.prepare("SELECT DISTINCT tenant_id FROM audit_events UNION "
                                            "SELECT DISTINCT tenant_id FROM audit_checkpoints"));
  std::vector<std::string> names;
  while (tenants.step()) names.push_back(tenants.column_text(0));
  RETURN_IF_ERROR(tenants.step_status());
  AuditVerifyReport total;
  for (const auto& tenant : names) {
    ASSIGN_OR_RETURN(auto rows, db.prepare(std::string("SELECT ") + kSqliteAuditColumns +
                                           " FROM audit_events WHERE tenant_id = ? ORDER BY seq"));
    rows.bind(1, tenant);
    std::vector<AuditEventRecord> events;
    while (rows.step()) events.push_back(read_audit_event(rows));
    RETURN_IF_ERROR(rows.step_status());
    ASSIGN_OR_RETURN(auto marks, db.prepare("SELECT tenant_id, seq, hash, at_ms, key_id, public_key, signature "
                                            "FROM audit_checkpoints WHERE tenant_id = ? ORDER BY seq"));
    marks.bind(1, tenant);
    std::vector<AuditCheckpointRecord> checkpoints;
    while (marks.step()) checkpoints.push_back(read_audit_checkpoint(marks));
    RETURN_IF_ERROR(marks.step_status());
    AuditVerifyReport report = verify_audit_chain(tenant, events, checkpoints, trusted_keys);
    if (report.ok) {
      ASSIGN_OR_RETURN(auto outside, first_record_outside_run_spans(db, tenant));
      if (outside) {
        report = broken(tenant, outside->seq,
                        "record " + std::to_string(outside->seq) + " of run " + outside->run_id +
                            " is in none of the run's spans (listing the run's records would leave it out)",
                        report);
      }
    }
    add_report(total, report);
  }
  return total;
}

std::string audit_event_export_line(const AuditEventRecord& event) {
  return to_json(json::object{{"type", "event"},         {"tenant", event.tenant_id},
                              {"seq", event.seq},         {"at_ms", event.at_ms},
                              {"principal", event.principal}, {"action", event.action},
                              {"resource", event.resource},   {"run_id", event.run_id},
                              {"outcome", event.outcome},     {"event", event.canonical},
                              {"prev_hash", to_hex(event.prev_hash)}, {"hash", to_hex(event.hash)}});
}

std::string audit_checkpoint_export_line(const AuditCheckpointRecord& checkpoint) {
  return to_json(json::object{{"type", "checkpoint"},       {"tenant", checkpoint.tenant_id},
                              {"seq", checkpoint.seq},       {"hash", to_hex(checkpoint.hash)},
                              {"at_ms", checkpoint.at_ms},   {"key_id", checkpoint.key_id},
                              {"public_key", to_hex(checkpoint.public_key)},
                              {"signature", to_hex(checkpoint.signature)}});
}

namespace {

Status read_export_line(const json::object& line, std::map<std::string, std::vector<AuditEventRecord>>& events,
                        std::map<std::string, std::vector<AuditCheckpointRecord>>& checkpoints) {
  ASSIGN_OR_RETURN(auto type, get_string(line, "type", "type"));
  ASSIGN_OR_RETURN(auto tenant, get_string(line, "tenant", "tenant"));
  ASSIGN_OR_RETURN(auto seq, get_optional_int(line, "seq", "seq"));
  ASSIGN_OR_RETURN(auto at, get_optional_int(line, "at_ms", "at_ms"));
  ASSIGN_OR_RETURN(auto hash_hex, get_string(line, "hash", "hash"));
  ASSIGN_OR_RETURN(auto hash, from_hex(hash_hex));
  if (type == "checkpoint") {
    AuditCheckpointRecord checkpoint{tenant, seq.value_or(0), hash, at.value_or(0), "", "", ""};
    ASSIGN_OR_RETURN(checkpoint.key_id, get_string(line, "key_id", "key_id"));
    ASSIGN_OR_RETURN(auto key_hex, get_string(line, "public_key", "public_key"));
    ASSIGN_OR_RETURN(checkpoint.public_key, from_hex(key_hex));
    ASSIGN_OR_RETURN(auto signature_hex, get_string(line, "signature", "signature"));
    ASSIGN_OR_RETURN(checkpoint.signature, from_hex(signature_hex));
    checkpoints[tenant].push_back(std::move(checkpoint));
    return Status::ok();
  }
  if (type != "event") return invalid_argument("unknown line type '" + type + "'");
  AuditEventRecord event;
  event.tenant_id = tenant;
  event.seq = seq.value_or(0);
  event.at_ms = at.value_or(0);
  event.hash = hash;
  ASSIGN_OR_RETURN(event.principal, get_string(line, "principal", "principal"));
  ASSIGN_OR_RETURN(event.action, get_string(line, "action", "action"));
  ASSIGN_OR_RETURN(event.resource, get_string(line, "resource", "resource"));
  ASSIGN_OR_RETURN(event.run_id, get_string(line, "run_id", "run_id"));
  ASSIGN_OR_RETURN(event.outcome, get_string(line, "outcome", "outcome"));
  ASSIGN_OR_RETURN(event.canonical, get_string(line, "event", "event"));
  ASSIGN_OR_RETURN(auto prev_hex, get_string(line, "prev_hash", "prev_hash"));
  ASSIGN_OR_RETURN(event.prev_hash, from_hex(prev_hex));
  events[tenant].push_back(std::move(event));
  return Status::ok();
}

}  // namespace

Result<AuditVerifyReport> verify_audit_export(const std::string& export_path,
                                              const std::vector<std::string>& trusted_keys) {
  std::ifstream file(export_path);
  if (!file) return invalid_argument("cannot read " + export_path);
  std::map<std::string, std::vector<AuditEventRecord>> events;
  std::map<std::string, std::vector<AuditCheckpointRecord>> checkpoints;
  std::string text;
  int64_t number = 0;
  while (std::getline(file, text)) {
    ++number;
    if (text.empty()) continue;
    auto line = parse_json_object(text);
    Status read = line.is_ok() ? read_export_line(*line, events, checkpoints) : line.status();
    if (!read.is_ok()) return invalid_argument("line " + std::to_string(number) + ": " + read.message());
  }
  AuditVerifyReport total;
  std::set<std::string> tenants;
  for (const auto& [tenant, list] : events) tenants.insert(tenant);
  for (const auto& [tenant, list] : checkpoints) tenants.insert(tenant);
  for (const auto& tenant : tenants) add_report(total, verify_audit_chain(tenant, events[tenant], checkpoints[tenant], trusted_keys));
  return total;
}

}  // namespace continuum
