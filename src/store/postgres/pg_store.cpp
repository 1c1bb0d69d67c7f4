#include "store/postgres/pg_store.h"

#include <set>

#include "audit/chain.h"

#include <thread>

#include "core/log.h"
#include "store/postgres/pg_schema.h"

namespace continuum {

// One statement of a batch and what its result must show for the batch to hold.
struct PgStatement {
  enum class Expect { kAny, kOneRow, kNoRows };
  PgQuery query;
  Expect expect = Expect::kAny;
  Code violation_code = Code::kOk;
  std::string violation_message;
};

namespace {

using Statement = PgStatement;
using Expect = Statement::Expect;

constexpr const char* kRunColumns =
    "tenant_id, id, session_id, agent_name, agent_version, status, input, snapshot, created_at_ms, "
    "updated_at_ms, version";

AgentRecord read_agent(const PgResult& rows, int row) {
  return AgentRecord{rows.text(row, 0), rows.text(row, 1), rows.int64(row, 2), rows.text(row, 3),
                     rows.int64(row, 4)};
}
SessionRecord read_session(const PgResult& rows, int row) {
  return SessionRecord{rows.text(row, 0), rows.text(row, 1), rows.text(row, 2), rows.text(row, 3),
                       rows.int64(row, 4), rows.text(row, 5)};
}
ItemRecord read_item(const PgResult& rows, int row) {
  return ItemRecord{rows.int64(row, 0), rows.text(row, 1),  rows.text(row, 2), rows.text(row, 3),
                    rows.text(row, 4),  rows.int64(row, 5), rows.text(row, 6)};
}
DataKeyRecord read_data_key(const PgResult& rows, int row) {
  return DataKeyRecord{rows.text(row, 0),  rows.text(row, 1), rows.int64(row, 2), rows.int64(row, 3),
                       rows.text(row, 4),  rows.int64(row, 5), rows.int64(row, 6)};
}
ApiKeyRecord read_api_key(const PgResult& rows, int row) {
  return ApiKeyRecord{rows.text(row, 0), rows.text(row, 1),  rows.text(row, 2),  rows.text(row, 3),
                      rows.text(row, 4), rows.text(row, 5),  rows.int64(row, 6), rows.int64(row, 7),
                      rows.text(row, 8)};
}
PolicyRecord read_policy(const PgResult& rows, int row) {
  return PolicyRecord{rows.text(row, 0), rows.int64(row, 1), rows.text(row, 2), rows.int64(row, 3),
                      rows.text(row, 4)};
}
ApprovalRecord read_approval(const PgResult& rows, int row) {
  ApprovalRecord approval;
  approval.tenant_id = rows.text(row, 0);
  approval.id = rows.text(row, 1);
  approval.run_id = rows.text(row, 2);
  approval.session_id = rows.text(row, 3);
  approval.seq = rows.int64(row, 4);
  approval.tool = rows.text(row, 5);
  approval.arguments_json = rows.text(row, 6);
  approval.arguments_hash = rows.text(row, 7);
  approval.statement = rows.text(row, 8);
  approval.requested_by = rows.text(row, 9);
  approval.agent = rows.text(row, 10);
  approval.status = rows.text(row, 11);
  approval.created_at_ms = rows.int64(row, 12);
  approval.expires_at_ms = rows.int64(row, 13);
  approval.decided_at_ms = rows.int64(row, 14);
  approval.decided_by = rows.text(row, 15);
  approval.comment = rows.text(row, 16);
  return approval;
}
AuditEventRecord read_audit_event(const PgResult& rows, int row) {
  AuditEventRecord event;
  event.tenant_id = rows.text(row, 0);
  event.seq = rows.int64(row, 1);
  event.at_ms = rows.int64(row, 2);
  event.principal = rows.text(row, 3);
  event.action = rows.text(row, 4);
  event.resource = rows.text(row, 5);
  event.run_id = rows.text(row, 6);
  event.outcome = rows.text(row, 7);
  event.canonical = rows.text(row, 8);
  event.prev_hash = rows.text(row, 9);
  event.hash = rows.text(row, 10);
  AuditEventRecord parsed;
  if (parse_canonical_event(event.canonical, parsed).is_ok()) event.details_json = parsed.details_json;
  return event;
}
AuditCheckpointRecord read_audit_checkpoint(const PgResult& rows, int row) {
  return AuditCheckpointRecord{rows.text(row, 0), rows.int64(row, 1), rows.text(row, 2), rows.int64(row, 3),
                               rows.text(row, 4), rows.text(row, 5),  rows.text(row, 6)};
}
constexpr const char* kAuditColumns =
    "tenant_id, seq, at_ms, principal, action, resource, run_id, outcome, event, prev_hash, hash";
constexpr const char* kApprovalColumns =
    "tenant_id, id, run_id, session_id, seq, tool, arguments, arguments_hash, statement, requested_by, agent, "
    "status, created_at_ms, expires_at_ms, decided_at_ms, decided_by, comment";
constexpr const char* kMcpPinColumns =
    "tenant_id, server, tool, status, approved_hash, approved_definition, approved_at_ms, approved_by, seen_hash, "
    "seen_definition, changed_at_ms";
McpToolPinRecord read_mcp_pin(const PgResult& rows, int row) {
  return McpToolPinRecord{rows.text(row, 0), rows.text(row, 1), rows.text(row, 2),  rows.text(row, 3),
                          rows.text(row, 4), rows.text(row, 5), rows.int64(row, 6), rows.text(row, 7),
                          rows.text(row, 8), rows.text(row, 9), rows.int64(row, 10)};
}
constexpr const char* kApiKeyColumns =
    "id, tenant_id, user_id, roles, name, secret_hash, created_at_ms, revoked_at_ms, created_by";
RunRecord read_run(const PgResult& rows, int row) {
  RunRecord run;
  run.tenant_id = rows.text(row, 0);
  run.id = rows.text(row, 1);
  run.session_id = rows.text(row, 2);
  run.agent_name = rows.text(row, 3);
  run.agent_version = rows.int64(row, 4);
  run.status = rows.text(row, 5);
  run.input = rows.text(row, 6);
  run.snapshot_json = rows.text(row, 7);
  run.created_at_ms = rows.int64(row, 8);
  run.updated_at_ms = rows.int64(row, 9);
  run.version = rows.int64(row, 10);
  return run;
}
StepRecord read_step(const PgResult& rows, int row) {
  return StepRecord{rows.text(row, 0), rows.text(row, 1), rows.int64(row, 2), rows.text(row, 3),
                    rows.text(row, 4), rows.int64(row, 5), rows.int64(row, 6)};
}

template <typename ReadRow>
auto collect_rows(const PgResult& rows, ReadRow read_row) -> std::vector<decltype(read_row(rows, 0))> {
  std::vector<decltype(read_row(rows, 0))> records;
  records.reserve(static_cast<size_t>(rows.rows()));
  for (int row = 0; row < rows.rows(); ++row) records.push_back(read_row(rows, row));
  return records;
}

Statement plain(std::string sql, PgParams params) {
  return Statement{PgQuery{std::move(sql), std::move(params)}, Expect::kAny, Code::kOk, {}};
}

Statement expecting(std::string sql, PgParams params, Expect expect, Code code, std::string message) {
  return Statement{PgQuery{std::move(sql), std::move(params)}, expect, code, std::move(message)};
}

void compile_session_delete(const SessionRecord& session, std::vector<Statement>& out) {
  auto keys = [&] { return PgParams().add(session.tenant_id).add(session.id); };
  // The row lock orders this delete with run inserts into the same session
  // (they take a key-share lock on it), across nodes.
  out.push_back(expecting("SELECT id FROM sessions WHERE tenant_id = $1 AND id = $2 FOR UPDATE", keys(),
                          Expect::kOneRow, Code::kNotFound, "session " + session.id + " does not exist"));
  out.push_back(expecting("SELECT id FROM runs WHERE tenant_id = $1 AND session_id = $2 AND "
                          "status IN ('queued', 'running', 'waiting') LIMIT 1",
                          keys(), Expect::kNoRows, Code::kConflict, "session has an unfinished run; cancel it first"));
  out.push_back(plain("DELETE FROM steps WHERE tenant_id = $1 AND run_id IN "
                      "(SELECT id FROM runs WHERE tenant_id = $1 AND session_id = $2)", keys()));
  out.push_back(plain("DELETE FROM runs WHERE tenant_id = $1 AND session_id = $2", keys()));
  out.push_back(plain("DELETE FROM items WHERE tenant_id = $1 AND session_id = $2", keys()));
  out.push_back(plain("DELETE FROM sessions WHERE tenant_id = $1 AND id = $2", keys()));
}

// Appends after the tenant's newest event, computed in SQL. Nodes sharing the
// database serialize appends per tenant with a transaction-scoped advisory
// lock, taken first in the transaction (audit_chain_locks): a transaction
// never waits for it while holding row locks (lease rows, taken FOR SHARE by
// fenced updates), which lease renewals and claims also need. Under READ
// COMMITTED the insert then sees the newest committed head.
void compile_audit(const WriteBatch& batch, std::vector<Statement>& out) {
  for (const auto& event : batch.audit_events) {
    out.push_back(expecting(std::string("INSERT INTO audit_events (") + kAuditColumns +
                                ") SELECT $1, h.seq + 1, $2, $3, $4, $5, $6, $7, $8, h.hash, "
                                "sha256(h.hash || int8send(h.seq + 1) || convert_to($8, 'UTF8')) FROM "
                                "(SELECT seq, hash FROM audit_events WHERE tenant_id = $1 UNION ALL "
                                "SELECT 0, '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea "
                                "ORDER BY seq DESC LIMIT 1) h",
                            PgParams().add(event.tenant_id).add(event.at_ms).add(event.principal).add(event.action)
                                .add(event.resource).add(event.run_id).add(event.outcome).add(canonical_event(event)),
                            Expect::kOneRow, Code::kInternal, "audit event not appended"));
  }
  for (const auto& c : batch.audit_checkpoints) {
    out.push_back(plain("INSERT INTO audit_checkpoints (tenant_id, seq, hash, at_ms, key_id, public_key, signature) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        PgParams().add(c.tenant_id).add(c.seq).add_bytes(c.hash).add(c.at_ms).add(c.key_id)
                            .add_bytes(c.public_key).add_bytes(c.signature)));
  }
}

void compile_governance(const WriteBatch& batch, std::vector<Statement>& out) {
  for (const auto& key : batch.api_key_inserts) {
    out.push_back(plain(std::string("INSERT INTO api_keys (") + kApiKeyColumns +
                            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        PgParams().add(key.id).add(key.tenant_id).add(key.user_id).add(key.roles_json).add(key.name)
                            .add(key.secret_hash).add(key.created_at_ms).add(key.revoked_at_ms).add(key.created_by)));
  }
  for (const auto& key : batch.api_key_revokes) {
    out.push_back(expecting("UPDATE api_keys SET revoked_at_ms = $1 WHERE tenant_id = $2 AND id = $3 "
                            "AND revoked_at_ms = 0",
                            PgParams().add(key.revoked_at_ms).add(key.tenant_id).add(key.id), Expect::kOneRow,
                            Code::kNotFound, "active API key '" + key.id + "' not found"));
  }
  for (bool replace : {false, true}) {
    for (const auto& pin : replace ? batch.mcp_tool_pin_upserts : batch.mcp_tool_pin_inserts) {
      std::string on_conflict = replace ? "ON CONFLICT (tenant_id, server, tool) DO UPDATE SET status = EXCLUDED.status, "
                                          "approved_hash = EXCLUDED.approved_hash, "
                                          "approved_definition = EXCLUDED.approved_definition, "
                                          "approved_at_ms = EXCLUDED.approved_at_ms, approved_by = EXCLUDED.approved_by, "
                                          "seen_hash = EXCLUDED.seen_hash, seen_definition = EXCLUDED.seen_definition, "
                                          "changed_at_ms = EXCLUDED.changed_at_ms"
                                        : "ON CONFLICT (tenant_id, server, tool) DO NOTHING";
      out.push_back(plain(std::string("INSERT INTO mcp_tool_pins (") + kMcpPinColumns +
                              ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) " + on_conflict,
                          PgParams().add(pin.tenant_id).add(pin.server).add(pin.tool).add(pin.status)
                              .add(pin.approved_hash).add(pin.approved_definition_json).add(pin.approved_at_ms)
                              .add(pin.approved_by).add(pin.seen_hash).add(pin.seen_definition_json)
                              .add(pin.changed_at_ms)));
    }
  }
  for (const auto& policy : batch.policy_inserts) {
    out.push_back(plain("INSERT INTO policies (tenant_id, version, document, created_at_ms, created_by) "
                        "VALUES ($1, $2, $3, $4, $5)",
                        PgParams().add(policy.tenant_id).add(policy.version).add(policy.document_json)
                            .add(policy.created_at_ms).add(policy.created_by)));
  }
  for (const auto& a : batch.approval_inserts) {
    out.push_back(plain(std::string("INSERT INTO approvals (") + kApprovalColumns +
                            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
                        PgParams().add(a.tenant_id).add(a.id).add(a.run_id).add(a.session_id).add(a.seq).add(a.tool)
                            .add_bytes(a.arguments_json).add(a.arguments_hash).add(a.statement).add(a.requested_by)
                            .add(a.agent).add(a.status).add(a.created_at_ms).add(a.expires_at_ms)
                            .add(a.decided_at_ms).add(a.decided_by).add(a.comment)));
  }
  for (const auto& a : batch.approval_decisions) {
    out.push_back(expecting("UPDATE approvals SET status = $1, decided_at_ms = $2, decided_by = $3, comment = $4 "
                            "WHERE tenant_id = $5 AND id = $6 AND status = 'pending' "
                            "AND ($1 IN ('expired', 'withdrawn') OR expires_at_ms > $2)",
                            PgParams().add(a.status).add(a.decided_at_ms).add(a.decided_by).add(a.comment)
                                .add(a.tenant_id).add(a.id),
                            a.status == kApprovalWithdrawn ? Expect::kAny : Expect::kOneRow, Code::kConflict,
                            "approval " + a.id + " is missing, decided or expired"));
  }
  compile_audit(batch, out);
}

std::vector<Statement> compile(const WriteBatch& batch) {
  std::vector<Statement> out;
  for (const auto& agent : batch.agent_inserts) {
    out.push_back(plain("INSERT INTO agents (tenant_id, name, version, spec, created_at_ms) VALUES ($1, $2, $3, $4, $5)",
                        PgParams().add(agent.tenant_id).add(agent.name).add(agent.version)
                            .add_bytes(agent.spec_json).add(agent.created_at_ms)));
  }
  for (const auto& session : batch.session_inserts) {
    out.push_back(plain("INSERT INTO sessions (tenant_id, id, agent_name, metadata, created_at_ms, user_id) "
                        "VALUES ($1, $2, $3, $4, $5, $6)",
                        PgParams().add(session.tenant_id).add(session.id).add(session.agent_name)
                            .add_bytes(session.metadata_json).add(session.created_at_ms).add(session.user_id)));
  }
  for (const auto& session : batch.session_deletes) compile_session_delete(session, out);
  for (const auto& session : batch.session_metadata_updates) {
    out.push_back(expecting("UPDATE sessions SET metadata = $1 WHERE tenant_id = $2 AND id = $3",
                            PgParams().add_bytes(session.metadata_json).add(session.tenant_id).add(session.id),
                            Expect::kOneRow, Code::kNotFound, "session " + session.id + " not found"));
  }
  for (const auto& run : batch.run_deletes) {
    auto keys = [&] { return PgParams().add(run.tenant_id).add(run.id); };
    out.push_back(expecting("DELETE FROM runs WHERE tenant_id = $1 AND id = $2 AND "
                            "status IN ('completed', 'failed', 'cancelled')",
                            keys(), Expect::kOneRow, Code::kConflict, "run " + run.id + " is missing or not finished"));
    out.push_back(plain("DELETE FROM steps WHERE tenant_id = $1 AND run_id = $2", keys()));
  }
  for (const auto& item : batch.item_deletes) {
    out.push_back(expecting("DELETE FROM items WHERE tenant_id = $1 AND session_id = $2 AND seq = $3",
                            PgParams().add(item.tenant_id).add(item.session_id).add(item.seq), Expect::kOneRow,
                            Code::kNotFound, "item " + std::to_string(item.seq) + " not found"));
  }
  for (const auto& run : batch.run_inserts) {
    // Inserted only while the session exists (and locked against a concurrent delete).
    out.push_back(expecting(std::string("INSERT INTO runs (") + kRunColumns +
                                ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 WHERE EXISTS "
                                "(SELECT 1 FROM sessions WHERE tenant_id = $1 AND id = $3 FOR KEY SHARE)",
                            PgParams().add(run.tenant_id).add(run.id).add(run.session_id).add(run.agent_name)
                                .add(run.agent_version).add(run.status).add_bytes(run.input)
                                .add_bytes(run.snapshot_json).add(run.created_at_ms).add(run.updated_at_ms)
                                .add(run.version),
                            Expect::kOneRow, Code::kNotFound, "session '" + run.session_id + "' not found"));
  }
  for (const auto& run : batch.run_updates) {
    // Fenced: the session's lease must still be at the writer's epoch and
    // unexpired (database clock). FOR SHARE orders this append before any
    // claim that moves the lease on.
    out.push_back(expecting("UPDATE runs SET status = $1, snapshot = $2, updated_at_ms = $3, version = $4 "
                            "WHERE tenant_id = $5 AND id = $6 AND version = $7 AND ($8 = 0 OR EXISTS "
                            "(SELECT 1 FROM session_leases l WHERE l.tenant_id = $5 AND l.session_id = "
                            "runs.session_id AND l.epoch = $8 AND l.expires_at_ms > " CONTINUUM_PG_NOW_MS
                            " FOR SHARE))",
                            PgParams().add(run.status).add_bytes(run.snapshot_json).add(run.updated_at_ms)
                                .add(run.version).add(run.tenant_id).add(run.id).add(run.version - 1)
                                .add(run.lease_epoch),
                            Expect::kOneRow, Code::kConflict,
                            "run " + run.id + " is missing, not at version " + std::to_string(run.version - 1) +
                                ", or its session lease (epoch " + std::to_string(run.lease_epoch) + ") was lost"));
  }
  for (const auto& step : batch.steps) {
    out.push_back(plain("INSERT INTO steps (tenant_id, run_id, seq, kind, payload, created_at_ms, lease_epoch) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        PgParams().add(step.tenant_id).add(step.run_id).add(step.seq).add(step.kind)
                            .add_bytes(step.payload_json).add(step.created_at_ms).add(step.lease_epoch)));
  }
  for (const auto& item : batch.items) {
    out.push_back(plain("INSERT INTO items (tenant_id, session_id, run_id, message, created_at_ms, id) "
                        "VALUES ($1, $2, $3, $4, $5, $6)",
                        PgParams().add(item.tenant_id).add(item.session_id).add(item.run_id)
                            .add_bytes(item.message_json).add(item.created_at_ms).add(item.id)));
  }
  for (const auto& key : batch.data_key_inserts) {
    out.push_back(plain("INSERT INTO data_keys (tenant_id, scope, version, kek_version, wrapped_key, created_at_ms, "
                        "destroyed_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        PgParams().add(key.tenant_id).add(key.scope).add(key.version).add(key.kek_version)
                            .add_bytes(key.wrapped_key).add(key.created_at_ms).add(key.destroyed_at_ms)));
  }
  for (const auto& secret : batch.secret_upserts) {
    out.push_back(plain("INSERT INTO secrets (tenant_id, name, value, created_at_ms, updated_at_ms) "
                        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, name) DO UPDATE SET "
                        "value = EXCLUDED.value, updated_at_ms = EXCLUDED.updated_at_ms",
                        PgParams().add(secret.tenant_id).add(secret.name).add_bytes(secret.value)
                            .add(secret.created_at_ms).add(secret.updated_at_ms)));
  }
  for (const auto& secret : batch.secret_deletes) {
    out.push_back(expecting("DELETE FROM secrets WHERE tenant_id = $1 AND name = $2",
                            PgParams().add(secret.tenant_id).add(secret.name), Expect::kOneRow, Code::kNotFound,
                            "secret '" + secret.name + "' not found"));
  }
  for (const auto& key : batch.data_key_updates) {
    out.push_back(expecting("UPDATE data_keys SET kek_version = $1, wrapped_key = $2, destroyed_at_ms = $3 "
                            "WHERE tenant_id = $4 AND scope = $5 AND version = $6",
                            PgParams().add(key.kek_version).add_bytes(key.wrapped_key).add(key.destroyed_at_ms)
                                .add(key.tenant_id).add(key.scope).add(key.version),
                            Expect::kOneRow, Code::kNotFound,
                            "data key " + key.scope + " v" + std::to_string(key.version)));
  }
  compile_governance(batch, out);
  return out;
}

Status check(const Statement& statement, const Result<PgResult>& result) {
  if (!result.is_ok()) return result.status();
  bool holds = true;
  if (statement.expect == Expect::kOneRow) holds = result->affected_rows() == 1 || result->rows() == 1;
  if (statement.expect == Expect::kNoRows) holds = result->rows() == 0;
  return holds ? Status::ok() : Status(statement.violation_code, statement.violation_message);
}

// The first failure among results[begin, begin + statements.size()).
Status check_all(const std::vector<Statement>& statements, const std::vector<Result<PgResult>>& results,
                 size_t begin) {
  for (size_t i = 0; i < statements.size(); ++i) RETURN_IF_ERROR(check(statements[i], results[begin + i]));
  return Status::ok();
}

bool is_connection_failure(const Status& status) { return status.code() == Code::kUnavailable; }

}  // namespace

PostgresStore::PostgresStore(PostgresStoreOptions options, const Clock& clock, MetricsRegistry* metrics)
    : options_(std::move(options)),
      clock_(clock),
      writes_(clock, static_cast<size_t>(options_.batches_per_transaction_max), metrics) {
  if (metrics) reconnects_ = &metrics->counter("continuum_store_reconnects_total", "Reconnections to the database.");
}

Result<std::unique_ptr<PostgresStore>> PostgresStore::open(PostgresStoreOptions options, const Clock& clock,
                                                           MetricsRegistry* metrics) {
  std::unique_ptr<PostgresStore> store(new PostgresStore(std::move(options), clock, metrics));
  ASSIGN_OR_RETURN(store->writer_, PgConnection::connect(store->options_.url));
  RETURN_IF_ERROR(migrate_postgres(*store->writer_));
  store->writes_.start(nullptr, [raw = store.get()](std::vector<PendingBatch>& group) { raw->commit_group(group); });
  return store;
}

PostgresStore::~PostgresStore() { writes_.stop(); }

void PostgresStore::commit(WriteBatch batch, std::function<void(Status)> done) {
  writes_.submit(std::move(batch), std::move(done));
}

void PostgresStore::commit_many(std::vector<CommitRequest> requests, CommitPacing pacing) {
  writes_.submit_all(std::move(requests), pacing);
}

void PostgresStore::release_held_commits() { writes_.release(); }

StoreStats PostgresStore::stats() { return writes_.stats(); }

// One advisory lock per tenant whose audit chain the group appends to, in
// tenant order (two groups never wait for each other's locks in a cycle).
std::vector<PgQuery> audit_chain_locks(const std::vector<PendingBatch>& group) {
  std::set<std::string> tenants;
  for (const auto& pending : group) {
    for (const auto& event : pending.batch.audit_events) tenants.insert(event.tenant_id);
  }
  std::vector<PgQuery> locks;
  for (const auto& tenant : tenants) {
    locks.push_back(PgQuery{"SELECT pg_advisory_xact_lock(hashtextextended('continuum-audit/' || $1, 0))",
                            PgParams().add(tenant)});
  }
  return locks;
}

void PostgresStore::commit_group(std::vector<PendingBatch>& group) {
  std::vector<std::vector<PgStatement>> batches;
  batches.reserve(group.size());
  for (const auto& pending : group) batches.push_back(compile(pending.batch));
  std::vector<PgQuery> opening = audit_chain_locks(group);
  std::vector<Status> results(group.size());
  Status transaction;
  for (int attempt = 1;; ++attempt) {
    transaction = ensure_writer();
    if (!transaction.is_ok()) break;
    bool commit_sent = false;
    auto together = commit_together(opening, batches, &commit_sent);
    if (together.is_ok()) {
      if (!*together) transaction = commit_one_by_one(opening, batches, results);
      break;
    }
    transaction = together.status();
    // A connection lost before COMMIT was sent rolled the transaction back:
    // nothing of the group is durable, so it is safe to send it once more (a
    // server restart is usually noticed only by the next write). After COMMIT
    // was sent the outcome is unknown and the callers must reload.
    if (commit_sent || !is_connection_failure(transaction) || attempt == 2) break;
  }
  if (!transaction.is_ok()) log::warn("store commit failed", {{"error", transaction.to_string()}});
  writes_.finish(group, results, transaction);
}

Status PostgresStore::ensure_writer() {
  if (writer_->healthy()) return Status::ok();
  int64_t deadline_ms = clock_.monotonic_us() / 1000 + options_.reconnect_timeout_ms;
  int64_t delay_ms = 50;
  for (;;) {
    if (reconnects_) reconnects_->inc();
    Status status = writer_->reconnect();
    if (status.is_ok()) {
      log::info("store reconnected", {{"store", "postgres"}});
      return status;
    }
    if (clock_.monotonic_us() / 1000 + delay_ms > deadline_ms) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    delay_ms = std::min<int64_t>(delay_ms * 2, 1000);
  }
}

Result<bool> PostgresStore::commit_together(const std::vector<PgQuery>& opening,
                                            const std::vector<std::vector<PgStatement>>& batches, bool* commit_sent) {
  std::vector<PgQuery> queries{PgQuery{"BEGIN", {}}};
  queries.insert(queries.end(), opening.begin(), opening.end());
  for (const auto& batch : batches) {
    for (const auto& statement : batch) queries.push_back(statement.query);
  }
  ASSIGN_OR_RETURN(auto results, writer_->pipeline(queries));
  bool all_hold = results[0].is_ok();
  for (size_t i = 1; i <= opening.size() && all_hold; ++i) {
    if (is_connection_failure(results[i].status())) return results[i].status();
    all_hold = results[i].is_ok();
  }
  size_t offset = 1 + opening.size();
  for (const auto& batch : batches) {
    if (!all_hold) break;
    Status status = check_all(batch, results, offset);
    if (is_connection_failure(status)) return status;
    all_hold = status.is_ok();
    offset += batch.size();
  }
  if (!all_hold) {
    RETURN_IF_ERROR(writer_->exec("ROLLBACK", PgParams()).status());
    return false;
  }
  *commit_sent = true;
  RETURN_IF_ERROR(writer_->exec("COMMIT", PgParams()).status());  // synchronous_commit: WAL flushed
  return true;
}

Status PostgresStore::commit_one_by_one(const std::vector<PgQuery>& opening,
                                        const std::vector<std::vector<PgStatement>>& batches,
                                        std::vector<Status>& results) {
  RETURN_IF_ERROR(writer_->exec("BEGIN", PgParams()).status());
  for (const auto& lock : opening) RETURN_IF_ERROR(writer_->exec(lock.sql, lock.params).status());
  for (size_t i = 0; i < batches.size(); ++i) {
    std::vector<PgQuery> queries{PgQuery{"SAVEPOINT batch", {}}};
    for (const auto& statement : batches[i]) queries.push_back(statement.query);
    ASSIGN_OR_RETURN(auto outcome, writer_->pipeline(queries));
    results[i] = outcome[0].is_ok() ? check_all(batches[i], outcome, 1) : outcome[0].status();
    if (is_connection_failure(results[i])) return results[i];
    const char* end = results[i].is_ok() ? "RELEASE SAVEPOINT batch" : "ROLLBACK TO SAVEPOINT batch";
    RETURN_IF_ERROR(writer_->exec(end, PgParams()).status());
  }
  return writer_->exec("COMMIT", PgParams()).status();
}

// ---- reads ----

Result<std::unique_ptr<PgConnection>> PostgresStore::acquire_reader() {
  {
    std::unique_lock lock(readers_mutex_);
    reader_released_.wait(lock, [this] { return !idle_readers_.empty() || readers_open_ < options_.read_connections_max; });
    if (!idle_readers_.empty()) {
      auto connection = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return connection;
    }
    ++readers_open_;
  }
  auto connection = PgConnection::connect(options_.url);
  if (!connection.is_ok()) {
    std::lock_guard lock(readers_mutex_);
    --readers_open_;
    reader_released_.notify_one();
  }
  return connection;
}

void PostgresStore::release_reader(std::unique_ptr<PgConnection> connection) {
  std::lock_guard lock(readers_mutex_);
  if (connection->healthy()) {
    idle_readers_.push_back(std::move(connection));
  } else {
    --readers_open_;  // dropped: the next reader connects afresh
  }
  reader_released_.notify_one();
}

Result<PgResult> PostgresStore::read(const std::string& sql, const PgParams& params) {
  Status last;
  for (int attempt = 0; attempt < 2; ++attempt) {
    ASSIGN_OR_RETURN(auto connection, acquire_reader());
    auto result = connection->exec(sql, params);
    release_reader(std::move(connection));
    if (result.is_ok() || !is_connection_failure(result.status())) return result;
    last = result.status();
  }
  return last;
}

Result<AgentRecord> PostgresStore::get_agent(const std::string& tenant, const std::string& name,
                                             std::optional<int64_t> version) {
  int64_t wanted = version.value_or(0);
  ASSIGN_OR_RETURN(auto rows, read("SELECT tenant_id, name, version, spec, created_at_ms FROM agents "
                                   "WHERE tenant_id = $1 AND name = $2 AND ($3 = 0 OR version = $3) "
                                   "ORDER BY version DESC LIMIT 1",
                                   PgParams().add(tenant).add(name).add(wanted)));
  if (rows.rows() == 1) return read_agent(rows, 0);
  return not_found("agent '" + name + "'" + (version ? " version " + std::to_string(*version) : "") +
                   " not found");
}

Result<std::vector<AgentRecord>> PostgresStore::list_agents(const std::string& tenant) {
  ASSIGN_OR_RETURN(auto rows, read("SELECT DISTINCT ON (name) tenant_id, name, version, spec, created_at_ms "
                                   "FROM agents WHERE tenant_id = $1 ORDER BY name, version DESC",
                                   PgParams().add(tenant)));
  return collect_rows(rows, read_agent);
}

Result<SessionRecord> PostgresStore::get_session(const std::string& tenant, const std::string& id) {
  ASSIGN_OR_RETURN(auto rows, read("SELECT tenant_id, id, agent_name, metadata, created_at_ms, user_id FROM sessions "
                                   "WHERE tenant_id = $1 AND id = $2",
                                   PgParams().add(tenant).add(id)));
  if (rows.rows() == 1) return read_session(rows, 0);
  return not_found("session '" + id + "' not found");
}

Result<std::vector<SessionRecord>> PostgresStore::list_sessions(const std::string& tenant,
                                                                const std::optional<std::string>& user_id,
                                                                const std::string& after_id, int limit) {
  ASSIGN_OR_RETURN(auto rows, read("SELECT tenant_id, id, agent_name, metadata, created_at_ms, user_id FROM sessions "
                                   "WHERE tenant_id = $1 AND ($2 = '' OR position < (SELECT position FROM sessions "
                                   "WHERE tenant_id = $1 AND id = $2)) AND ($4 = 0 OR user_id = $5) "
                                   "ORDER BY position DESC LIMIT $3",
                                   PgParams().add(tenant).add(after_id).add(static_cast<int64_t>(limit))
                                       .add(static_cast<int64_t>(user_id.has_value())).add(user_id.value_or(""))));
  return collect_rows(rows, read_session);
}

Result<std::vector<ItemRecord>> PostgresStore::list_items(const std::string& tenant, const std::string& session,
                                                          int64_t after_seq, int limit) {
  ASSIGN_OR_RETURN(auto rows, read("SELECT seq, tenant_id, session_id, run_id, message, created_at_ms, id FROM items "
                                   "WHERE tenant_id = $1 AND session_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
                                   PgParams().add(tenant).add(session).add(after_seq).add(static_cast<int64_t>(limit))));
  return collect_rows(rows, read_item);
}

Result<std::vector<ItemRecord>> PostgresStore::recent_items(const std::string& tenant, const std::string& session,
                                                            int64_t before_seq, int limit) {
  ASSIGN_OR_RETURN(auto rows, read("SELECT seq, tenant_id, session_id, run_id, message, created_at_ms, id FROM items "
                                   "WHERE tenant_id = $1 AND session_id = $2 AND ($3 = 0 OR seq < $3) "
                                   "ORDER BY seq DESC LIMIT $4",
                                   PgParams().add(tenant).add(session).add(before_seq).add(static_cast<int64_t>(limit))));
  return collect_rows(rows, read_item);
}

Result<RunRecord> PostgresStore::get_run(const std::string& tenant, const std::string& id) {
  ASSIGN_OR_RETURN(auto rows, read(std::string("SELECT ") + kRunColumns + " FROM runs WHERE tenant_id = $1 AND id = $2",
                                   PgParams().add(tenant).add(id)));
  if (rows.rows() == 1) return read_run(rows, 0);
  return not_found("run '" + id + "' not found");
}

Result<std::vector<RunRecord>> PostgresStore::list_runs(const std::string& tenant, const std::string& session,
                                                        int limit) {
  ASSIGN_OR_RETURN(auto rows, read(std::string("SELECT ") + kRunColumns +
                                       " FROM runs WHERE tenant_id = $1 AND session_id = $2 ORDER BY position LIMIT $3",
                                   PgParams().add(tenant).add(session).add(static_cast<int64_t>(limit))));
  return collect_rows(rows, read_run);
}

Result<std::vector<RunRecord>> PostgresStore::list_queued_runs(const std::string& tenant, const std::string& session,
                                                               int limit) {
  ASSIGN_OR_RETURN(auto rows, read(std::string("SELECT ") + kRunColumns +
                                       " FROM runs WHERE tenant_id = $1 AND session_id = $2 AND status = 'queued' "
                                       "ORDER BY position LIMIT $3",
                                   PgParams().add(tenant).add(session).add(static_cast<int64_t>(limit))));
  return collect_rows(rows, read_run);
}

Result<std::vector<RunRecord>> PostgresStore::list_unfinished_runs_of_session(const std::string& tenant,
                                                                              const std::string& session, int limit) {
  ASSIGN_OR_RETURN(auto rows, read(std::string("SELECT ") + kRunColumns +
                                       " FROM runs WHERE tenant_id = $1 AND session_id = $2 AND status IN "
                                       "('queued', 'running', 'waiting') ORDER BY position LIMIT $3",
                                   PgParams().add(tenant).add(session).add(static_cast<int64_t>(limit))));
  return collect_rows(rows, read_run);
}

Result<std::vector<RunRecord>> PostgresStore::list_unfinished_runs() {
  ASSIGN_OR_RETURN(auto rows, read(std::string("SELECT ") + kRunColumns +
                                       " FROM runs WHERE status NOT IN ('completed', 'failed', 'cancelled') "
                                       "ORDER BY position",
                                   PgParams()));
  return collect_rows(rows, read_run);
}

Result<std::vector<StepRecord>> PostgresStore::list_steps(const std::string& tenant, const std::string& run,
                                                          int64_t after_seq, int limit) {
  ASSIGN_OR_RETURN(auto rows, read("SELECT tenant_id, run_id, seq, kind, payload, created_at_ms, lease_epoch FROM steps "
                                   "WHERE tenant_id = $1 AND run_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
                                   PgParams().add(tenant).add(run).add(after_seq).add(static_cast<int64_t>(limit))));
  return collect_rows(rows, read_step);
}

Result<std::vector<McpToolPinRecord>> PostgresStore::list_mcp_tool_pins(const std::string& tenant,
                                                                        const std::string& server) {
  ASSIGN_OR_RETURN(auto rows, read(std::string("SELECT ") + kMcpPinColumns +
                                       " FROM mcp_tool_pins WHERE tenant_id = $1 AND ($2 = '' OR server = $2) "
                                       "ORDER BY server, tool",
                                   PgParams().add(tenant).add(server)));
  return collect_rows(rows, read_mcp_pin);
}

Result<std::vector<DataKeyRecord>> PostgresStore::list_data_keys(const std::string& tenant) {
  ASSIGN_OR_RETURN(auto rows, read("SELECT tenant_id, scope, version, kek_version, wrapped_key, created_at_ms, "
                                   "destroyed_at_ms FROM data_keys WHERE $1 = '' OR tenant_id = $1 "
                                   "ORDER BY tenant_id, scope, version",
                                   PgParams().add(tenant)));
  return collect_rows(rows, read_data_key);
}

Result<SecretRecord> PostgresStore::get_secret(const std::string& tenant, const std::string& name) {
  ASSIGN_OR_RETURN(auto rows, read("SELECT tenant_id, name, value, created_at_ms, updated_at_ms FROM secrets "
                                   "WHERE tenant_id = $1 AND name = $2",
                                   PgParams().add(tenant).add(name)));
  if (rows.rows() == 1) {
    return SecretRecord{rows.text(0, 0), rows.text(0, 1), rows.text(0, 2), rows.int64(0, 3), rows.int64(0, 4)};
  }
  return not_found("secret '" + name + "' not found");
}

Result<std::vector<SecretRecord>> PostgresStore::list_secrets(const std::string& tenant) {
  ASSIGN_OR_RETURN(auto rows, read("SELECT tenant_id, name, created_at_ms, updated_at_ms FROM secrets "
                                   "WHERE tenant_id = $1 ORDER BY name",
                                   PgParams().add(tenant)));
  return collect_rows(rows, [](const PgResult& result, int row) {
    return SecretRecord{result.text(row, 0), result.text(row, 1), "", result.int64(row, 2), result.int64(row, 3)};
  });
}

Result<ApiKeyRecord> PostgresStore::get_api_key(const std::string& id) {
  ASSIGN_OR_RETURN(auto rows, read(std::string("SELECT ") + kApiKeyColumns + " FROM api_keys WHERE id = $1",
                                   PgParams().add(id)));
  if (rows.rows() == 1) return read_api_key(rows, 0);
  return not_found("API key '" + id + "' not found");
}

Result<std::vector<ApiKeyRecord>> PostgresStore::list_api_keys(const std::string& tenant) {
  ASSIGN_OR_RETURN(auto rows, read(std::string("SELECT ") + kApiKeyColumns +
                                       " FROM api_keys WHERE tenant_id = $1 ORDER BY created_at_ms, id",
                                   PgParams().add(tenant)));
  return collect_rows(rows, read_api_key);
}

Result<PolicyRecord> PostgresStore::get_policy(const std::string& tenant, std::optional<int64_t> version) {
  ASSIGN_OR_RETURN(auto rows, read("SELECT tenant_id, version, document, created_at_ms, created_by FROM policies "
                                   "WHERE tenant_id = $1 AND ($2 = 0 OR version = $2) ORDER BY version DESC LIMIT 1",
                                   PgParams().add(tenant).add(version.value_or(0))));
  if (rows.rows() == 1) return read_policy(rows, 0);
  return not_found(version ? "policy version " + std::to_string(*version) + " not found"
                           : "the tenant has no policy document");
}

Result<std::vector<PolicyRecord>> PostgresStore::list_policies(const std::string& tenant, int limit) {
  ASSIGN_OR_RETURN(auto rows, read("SELECT tenant_id, version, document, created_at_ms, created_by FROM policies "
                                   "WHERE tenant_id = $1 ORDER BY version DESC LIMIT $2",
                                   PgParams().add(tenant).add(static_cast<int64_t>(limit))));
  return collect_rows(rows, read_policy);
}

Result<ApprovalRecord> PostgresStore::get_approval(const std::string& tenant, const std::string& id) {
  ASSIGN_OR_RETURN(auto rows, read(std::string("SELECT ") + kApprovalColumns +
                                       " FROM approvals WHERE tenant_id = $1 AND id = $2",
                                   PgParams().add(tenant).add(id)));
  if (rows.rows() == 1) return read_approval(rows, 0);
  return not_found("approval '" + id + "' not found");
}

Result<std::vector<ApprovalRecord>> PostgresStore::list_approvals(const std::string& tenant, const std::string& status,
                                                                  int64_t now_ms, const std::string& after_id,
                                                                  int limit) {
  ASSIGN_OR_RETURN(auto rows, read(std::string("SELECT ") + kApprovalColumns +
                                       " FROM approvals WHERE tenant_id = $1 AND ($2 = '' OR status = $2 OR ($2 = 'expired' AND "
                                       "status = 'pending' AND expires_at_ms <= $3)) "
                                       "AND ($2 <> 'pending' OR expires_at_ms > $3) AND ($4 = '' OR "
                                       "(created_at_ms, id) > (SELECT created_at_ms, id FROM approvals "
                                       "WHERE tenant_id = $1 AND id = $4)) ORDER BY created_at_ms, id LIMIT $5",
                                   PgParams().add(tenant).add(status).add(now_ms).add(after_id)
                                       .add(static_cast<int64_t>(limit))));
  return collect_rows(rows, read_approval);
}

Result<std::vector<AuditEventRecord>> PostgresStore::list_audit_events(const std::string& tenant,
                                                                       const AuditQuery& query) {
  ASSIGN_OR_RETURN(auto rows, read(std::string("SELECT ") + kAuditColumns +
                                       " FROM audit_events WHERE tenant_id = $1 AND seq > $2 AND at_ms >= $3 "
                                       "AND ($4 = 0 OR at_ms < $4) AND ($5 = '' OR principal = $5) "
                                       "AND ($6 = '' OR action = $6) AND ($7 = '' OR run_id = $7) "
                                       "ORDER BY seq LIMIT $8",
                                   PgParams().add(tenant).add(query.after_seq).add(query.since_ms).add(query.until_ms)
                                       .add(query.principal).add(query.action).add(query.run_id)
                                       .add(static_cast<int64_t>(query.limit))));
  return collect_rows(rows, read_audit_event);
}

Result<std::vector<AuditCheckpointRecord>> PostgresStore::list_audit_checkpoints(const std::string& tenant,
                                                                                int64_t after_seq, int limit) {
  ASSIGN_OR_RETURN(auto rows, read("SELECT tenant_id, seq, hash, at_ms, key_id, public_key, signature FROM "
                                   "audit_checkpoints WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                                   PgParams().add(tenant).add(after_seq).add(static_cast<int64_t>(limit))));
  return collect_rows(rows, read_audit_checkpoint);
}

Result<std::vector<AuditEventRecord>> PostgresStore::list_audit_heads() {
  ASSIGN_OR_RETURN(auto rows, read("SELECT DISTINCT ON (tenant_id) tenant_id, seq, hash FROM audit_events "
                                   "ORDER BY tenant_id, seq DESC",
                                   PgParams()));
  return collect_rows(rows, [](const PgResult& result, int row) {
    AuditEventRecord head;
    head.tenant_id = result.text(row, 0);
    head.seq = result.int64(row, 1);
    head.hash = result.text(row, 2);
    return head;
  });
}

}  // namespace continuum
