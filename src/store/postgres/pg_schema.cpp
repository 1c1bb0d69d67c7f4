#include "store/postgres/pg_schema.h"

#include "core/log.h"

namespace continuum {

namespace {

// Payload columns (JSON documents) are bytea: the store never interprets them,
// and sealed (encrypted) payloads are binary.
const std::vector<std::string>& postgres_migrations() {
  static const std::vector<std::string> kMigrations = {
      R"sql(
CREATE TABLE agents (
  tenant_id TEXT NOT NULL, name TEXT NOT NULL, version BIGINT NOT NULL,
  spec BYTEA NOT NULL, created_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, name, version));
CREATE TABLE sessions (
  position BIGINT GENERATED ALWAYS AS IDENTITY,
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, agent_name TEXT NOT NULL,
  metadata BYTEA NOT NULL, created_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, id));
CREATE INDEX sessions_by_position ON sessions (tenant_id, position);
CREATE TABLE items (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id TEXT NOT NULL, session_id TEXT NOT NULL,
  run_id TEXT NOT NULL, message BYTEA NOT NULL, created_at_ms BIGINT NOT NULL);
CREATE INDEX items_by_session ON items (tenant_id, session_id, seq);
CREATE TABLE runs (
  position BIGINT GENERATED ALWAYS AS IDENTITY,
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, session_id TEXT NOT NULL,
  agent_name TEXT NOT NULL, agent_version BIGINT NOT NULL, status TEXT NOT NULL,
  input BYTEA NOT NULL, snapshot BYTEA NOT NULL,
  created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL,
  version BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, id));
CREATE INDEX runs_unfinished ON runs (position)
  WHERE status NOT IN ('completed', 'failed', 'cancelled');
CREATE INDEX runs_by_session ON runs (tenant_id, session_id, status, position);
CREATE TABLE steps (
  tenant_id TEXT NOT NULL, run_id TEXT NOT NULL, seq BIGINT NOT NULL,
  kind TEXT NOT NULL, payload BYTEA NOT NULL, created_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, run_id, seq));
)sql",
      R"sql(
ALTER TABLE sessions ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
ALTER TABLE items ADD COLUMN id TEXT NOT NULL DEFAULT '';
CREATE TABLE data_keys (
  tenant_id TEXT NOT NULL, scope TEXT NOT NULL, version BIGINT NOT NULL,
  kek_version BIGINT NOT NULL, wrapped_key BYTEA NOT NULL,
  created_at_ms BIGINT NOT NULL, destroyed_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, scope, version));
)sql",
      R"sql(
ALTER TABLE steps ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;
CREATE TABLE session_leases (
  tenant_id TEXT NOT NULL, session_id TEXT NOT NULL, node_id TEXT NOT NULL,
  epoch BIGINT NOT NULL, expires_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, session_id));
CREATE INDEX session_leases_by_node ON session_leases (node_id, expires_at_ms);
CREATE TABLE nodes (
  node_id TEXT PRIMARY KEY, address TEXT NOT NULL,
  started_at_ms BIGINT NOT NULL, heartbeat_at_ms BIGINT NOT NULL);
CREATE TABLE cancel_requests (
  tenant_id TEXT NOT NULL, run_id TEXT NOT NULL, requested_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, run_id));
)sql",
      R"sql(
CREATE TABLE secrets (
  tenant_id TEXT NOT NULL, name TEXT NOT NULL, value BYTEA NOT NULL,
  created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, name));
)sql",
      R"sql(
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, roles TEXT NOT NULL,
  name TEXT NOT NULL, secret_hash TEXT NOT NULL, created_at_ms BIGINT NOT NULL,
  revoked_at_ms BIGINT NOT NULL, created_by TEXT NOT NULL);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at_ms);
CREATE TABLE policies (
  tenant_id TEXT NOT NULL, version BIGINT NOT NULL, document TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL, created_by TEXT NOT NULL,
  PRIMARY KEY (tenant_id, version));
CREATE INDEX sessions_by_user ON sessions (tenant_id, user_id, position);
CREATE TABLE approvals (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, run_id TEXT NOT NULL, session_id TEXT NOT NULL,
  seq BIGINT NOT NULL, tool TEXT NOT NULL, arguments BYTEA NOT NULL, arguments_hash TEXT NOT NULL,
  statement TEXT NOT NULL, requested_by TEXT NOT NULL, agent TEXT NOT NULL, status TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL, expires_at_ms BIGINT NOT NULL, decided_at_ms BIGINT NOT NULL,
  decided_by TEXT NOT NULL, comment TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id));
CREATE INDEX approvals_by_status ON approvals (tenant_id, status, created_at_ms, id);
)sql",
      R"sql(
CREATE TABLE audit_events (
  tenant_id TEXT NOT NULL, seq BIGINT NOT NULL, at_ms BIGINT NOT NULL, principal TEXT NOT NULL,
  action TEXT NOT NULL, resource TEXT NOT NULL, run_id TEXT NOT NULL, outcome TEXT NOT NULL,
  event TEXT NOT NULL, prev_hash BYTEA NOT NULL, hash BYTEA NOT NULL,
  PRIMARY KEY (tenant_id, seq));
CREATE INDEX audit_events_by_run ON audit_events (tenant_id, run_id, seq);
CREATE INDEX audit_events_by_time ON audit_events (tenant_id, at_ms);
CREATE TABLE audit_checkpoints (
  tenant_id TEXT NOT NULL, seq BIGINT NOT NULL, hash BYTEA NOT NULL, at_ms BIGINT NOT NULL,
  key_id TEXT NOT NULL, public_key BYTEA NOT NULL, signature BYTEA NOT NULL,
  PRIMARY KEY (tenant_id, seq));
)sql",
      R"sql(
CREATE TABLE mcp_tool_pins (
  tenant_id TEXT NOT NULL, server TEXT NOT NULL, tool TEXT NOT NULL, status TEXT NOT NULL,
  approved_hash TEXT NOT NULL, approved_definition TEXT NOT NULL, approved_at_ms BIGINT NOT NULL,
  approved_by TEXT NOT NULL, seen_hash TEXT NOT NULL, seen_definition TEXT NOT NULL,
  changed_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, server, tool));
)sql",
  };
  return kMigrations;
}

// Any constant shared by every Continuum node: the key of the migration lock.
constexpr const char* kMigrationLockKey = "7311046110592741001";

Status apply_migrations(PgConnection& connection) {
  RETURN_IF_ERROR(connection.exec_script(std::string("SELECT pg_advisory_xact_lock(") + kMigrationLockKey + ")"));
  RETURN_IF_ERROR(connection.exec_script("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)"));
  ASSIGN_OR_RETURN(auto current_row, connection.exec("SELECT COALESCE(MAX(version), 0)::bigint FROM schema_version",
                                                     PgParams()));
  int64_t current = current_row.int64(0, 0);
  const auto& migrations = postgres_migrations();
  if (current > static_cast<int64_t>(migrations.size())) {
    return internal_error("database schema version " + std::to_string(current) +
                          " is newer than this binary supports");
  }
  for (size_t next = static_cast<size_t>(current); next < migrations.size(); ++next) {
    RETURN_IF_ERROR(connection.exec_script(migrations[next]));
    RETURN_IF_ERROR(connection.exec_script("INSERT INTO schema_version (version) VALUES (" +
                                           std::to_string(next + 1) + ")"));
    log::info("schema migrated", {{"version", std::to_string(next + 1)}, {"store", "postgres"}});
  }
  return Status::ok();
}

}  // namespace

Status migrate_postgres(PgConnection& connection) {
  RETURN_IF_ERROR(connection.exec_script("BEGIN"));
  Status status = apply_migrations(connection);
  if (!status.is_ok()) {
    (void)connection.exec_script("ROLLBACK");
    return status;
  }
  return connection.exec_script("COMMIT");
}

}  // namespace continuum
