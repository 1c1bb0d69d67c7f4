#include "store/sqlite/schema.h"

namespace continuum {

const std::vector<std::string>& sqlite_migrations() {
  static const std::vector<std::string> kMigrations = {
      R"sql(
CREATE TABLE agents (
  tenant_id TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
  spec TEXT NOT NULL, created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, name, version)) WITHOUT ROWID;
CREATE TABLE sessions (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, agent_name TEXT NOT NULL,
  metadata TEXT NOT NULL, created_at_ms INTEGER NOT NULL,
  UNIQUE (tenant_id, id));
CREATE TABLE items (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, session_id TEXT NOT NULL,
  run_id TEXT NOT NULL, message TEXT NOT NULL, created_at_ms INTEGER NOT NULL);
CREATE INDEX items_by_session ON items (tenant_id, session_id, seq);
CREATE TABLE runs (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, session_id TEXT NOT NULL,
  agent_name TEXT NOT NULL, agent_version INTEGER NOT NULL, status TEXT NOT NULL,
  input TEXT NOT NULL, snapshot TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL,
  version INTEGER NOT NULL,
  UNIQUE (tenant_id, id));
CREATE INDEX runs_unfinished ON runs (status)
  WHERE status NOT IN ('completed', 'failed', 'cancelled');
CREATE INDEX runs_by_session ON runs (tenant_id, session_id, status);
CREATE TABLE steps (
  tenant_id TEXT NOT NULL, run_id TEXT NOT NULL, seq INTEGER NOT NULL,
  kind TEXT NOT NULL, payload TEXT NOT NULL, created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, run_id, seq)) WITHOUT ROWID;
)sql",
      R"sql(
ALTER TABLE sessions ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
ALTER TABLE items ADD COLUMN id TEXT NOT NULL DEFAULT '';
CREATE TABLE data_keys (
  tenant_id TEXT NOT NULL, scope TEXT NOT NULL, version INTEGER NOT NULL,
  kek_version INTEGER NOT NULL, wrapped_key BLOB NOT NULL,
  created_at_ms INTEGER NOT NULL, destroyed_at_ms INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, scope, version)) WITHOUT ROWID;
)sql",
      R"sql(
ALTER TABLE steps ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
)sql",
      R"sql(
CREATE TABLE secrets (
  tenant_id TEXT NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL,
  created_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, name)) WITHOUT ROWID;
)sql",
      R"sql(
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, roles TEXT NOT NULL,
  name TEXT NOT NULL, secret_hash TEXT NOT NULL, created_at_ms INTEGER NOT NULL,
  revoked_at_ms INTEGER NOT NULL, created_by TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at_ms);
CREATE TABLE policies (
  tenant_id TEXT NOT NULL, version INTEGER NOT NULL, document TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL, created_by TEXT NOT NULL,
  PRIMARY KEY (tenant_id, version)) WITHOUT ROWID;
CREATE INDEX sessions_by_user ON sessions (tenant_id, user_id);
CREATE TABLE approvals (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, run_id TEXT NOT NULL, session_id TEXT NOT NULL,
  seq INTEGER NOT NULL, tool TEXT NOT NULL, arguments BLOB NOT NULL, arguments_hash TEXT NOT NULL,
  statement TEXT NOT NULL, requested_by TEXT NOT NULL, agent TEXT NOT NULL, status TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL, decided_at_ms INTEGER NOT NULL,
  decided_by TEXT NOT NULL, comment TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id)) WITHOUT ROWID;
CREATE INDEX approvals_by_status ON approvals (tenant_id, status, created_at_ms, id);
)sql",
      R"sql(
CREATE TABLE audit_events (
  tenant_id TEXT NOT NULL, seq INTEGER NOT NULL, at_ms INTEGER NOT NULL, principal TEXT NOT NULL,
  action TEXT NOT NULL, resource TEXT NOT NULL, run_id TEXT NOT NULL, outcome TEXT NOT NULL,
  event TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL,
  PRIMARY KEY (tenant_id, seq)) WITHOUT ROWID;
CREATE INDEX audit_events_by_run ON audit_events (tenant_id, run_id, seq);
CREATE INDEX audit_events_by_time ON audit_events (tenant_id, at_ms);
CREATE TABLE audit_checkpoints (
  tenant_id TEXT NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL, at_ms INTEGER NOT NULL,
  key_id TEXT NOT NULL, public_key BLOB NOT NULL, signature BLOB NOT NULL,
  PRIMARY KEY (tenant_id, seq)) WITHOUT ROWID;
)sql",
      R"sql(
CREATE TABLE mcp_tool_pins (
  tenant_id TEXT NOT NULL, server TEXT NOT NULL, tool TEXT NOT NULL, status TEXT NOT NULL,
  approved_hash TEXT NOT NULL, approved_definition TEXT NOT NULL, approved_at_ms INTEGER NOT NULL,
  approved_by TEXT NOT NULL, seen_hash TEXT NOT NULL, seen_definition TEXT NOT NULL,
  changed_at_ms INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, server, tool)) WITHOUT ROWID;
)sql",
      // SQLite evaluates `NOT IN` over three constants with a temporary b-tree:
      // the partial index's condition cost two of them on every run write.
      R"sql(
DROP INDEX runs_unfinished;
CREATE INDEX runs_unfinished ON runs (status)
  WHERE status <> 'completed' AND status <> 'failed' AND status <> 'cancelled';
)sql",
      // No query reads audit events by time through an index (time bounds
      // filter a scan in seq order): the index only cost a B-tree insert per event.
      R"sql(
DROP INDEX audit_events_by_time;
)sql",
      // A run's audit events come in spans of consecutive seqs (a batch's
      // events for one run): one row per span finds them, where an index
      // entry per event cost a B-tree insert per event. Old events get a span each.
      // Items: their seq comes from a counter the writer keeps and writes once
      // per transaction (`sequences`), no longer from AUTOINCREMENT, which
      // read and rewrote sqlite_sequence on every insert. It goes on from
      // where AUTOINCREMENT was, so no seq is ever given out twice.
      R"sql(
CREATE TABLE audit_run_spans (
  tenant_id TEXT NOT NULL, run_id TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, run_id, first_seq)) WITHOUT ROWID;
INSERT INTO audit_run_spans (tenant_id, run_id, first_seq, last_seq)
  SELECT tenant_id, run_id, seq, seq FROM audit_events WHERE run_id <> '';
DROP INDEX audit_events_by_run;
CREATE TABLE sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO sequences (name, value) VALUES ('items', MAX(
  COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'items'), 0),
  COALESCE((SELECT MAX(seq) FROM items), 0)));
CREATE TABLE items_numbered (
  seq INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, session_id TEXT NOT NULL,
  run_id TEXT NOT NULL, message TEXT NOT NULL, created_at_ms INTEGER NOT NULL, id TEXT NOT NULL DEFAULT '');
INSERT INTO items_numbered (seq, tenant_id, session_id, run_id, message, created_at_ms, id)
  SELECT seq, tenant_id, session_id, run_id, message, created_at_ms, id FROM items;
DROP TABLE items;
ALTER TABLE items_numbered RENAME TO items;
CREATE INDEX items_by_session ON items (tenant_id, session_id, seq);
DELETE FROM sqlite_sequence WHERE name = 'items';
)sql",
  };
  return kMigrations;
}

}  // namespace continuum
