// Offline verification of audit chains: from a data dir's SQLite file or from
// a JSONL export (GET /v1/audit/export). Needs no keys of the server's but the
// public keys that may sign checkpoints.
//
// It finds, per tenant, the first broken record: a missing seq (deletion or
// truncation below a checkpoint), a record out of order, content that does
// not match its hash or its columns (edits), a broken link, a checkpoint that
// does not match the chain or whose signature fails or is by an untrusted key.
// Truncation after the newest checkpoint cannot be told from a shorter log:
// checkpoints are signed every audit_checkpoint_ms and at shutdown.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "store/records.h"

namespace continuum {

struct AuditVerifyReport {
  bool ok = true;
  std::string tenant;           // where it broke
  int64_t broken_seq = 0;       // the first bad record (0 = none, or a checkpoint problem)
  std::string problem;          // one sentence
  int64_t events_checked = 0;
  int64_t checkpoints_checked = 0;
};

// One tenant's chain: events in stored order, checkpoints in seq order.
// `trusted_keys` (raw public keys) may sign checkpoints; empty = any valid signature.
AuditVerifyReport verify_audit_chain(const std::string& tenant, const std::vector<AuditEventRecord>& events,
                                     const std::vector<AuditCheckpointRecord>& checkpoints,
                                     const std::vector<std::string>& trusted_keys);

// Every tenant's chain in a SQLite store file, opened read-only.
Result<AuditVerifyReport> verify_audit_sqlite(const std::string& db_path, const std::vector<std::string>& trusted_keys);
// Every tenant's chain in a JSONL export.
Result<AuditVerifyReport> verify_audit_export(const std::string& export_path,
                                              const std::vector<std::string>& trusted_keys);

// The export's line for an event or a checkpoint (JSON, hashes in hex).
std::string audit_event_export_line(const AuditEventRecord& event);
std::string audit_checkpoint_export_line(const AuditCheckpointRecord& checkpoint);

}  // namespace continuum
