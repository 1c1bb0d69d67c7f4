#include "store/sqlite/sqlite_store.h"

#include "audit/chain.h"

#include "core/log.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/wal_vfs.h"

namespace continuum {

namespace {

// Page cache per connection, in KiB. The writer's is small on purpose: it
// only needs the right edges of the B-trees it appends to and the recent runs
// it updates, and SQLite walks the writer's whole page cache at the end of
// every transaction while the database is under 1 GiB (B-tree balancing
// re-keys pages through the pending-byte page, page 262,145 with 4 KiB pages,
// so the cache's largest page number stays above the database's size and each
// commit's truncation of the cache to that size visits every cached page: with
// 64 MiB, a tenth of the writer's time).
constexpr int kWriterCacheKiB = 8 << 10;
constexpr int kReaderCacheKiB = 64 << 10;

Status apply_pragmas(SqliteDb& db, int cache_kib) {
  RETURN_IF_ERROR(db.exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(db.exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(db.exec("PRAGMA foreign_keys=OFF"));
  RETURN_IF_ERROR(db.exec("PRAGMA cache_size=-" + std::to_string(cache_kib)));
  // The savepoint each batch of a group runs under keeps the pages it changes
  // in a sub-journal: in memory, not in a temporary file written for every batch.
  RETURN_IF_ERROR(db.exec("PRAGMA temp_store=MEMORY"));
  // Readers never commit; the writer's automatic checkpoints are replaced (SqliteStore::on_wal_commit).
  return db.exec("PRAGMA wal_autocheckpoint=10000");
}

Status migrate(SqliteDb& db) {
  RETURN_IF_ERROR(db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
  int64_t current = 0;
  {  // finished before migrating: a statement left open locks the schema (DROP fails)
    ASSIGN_OR_RETURN(auto query, db.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
    current = query.step() ? query.column_int(0) : 0;
  }
  const auto& migrations = sqlite_migrations();
  if (current > static_cast<int64_t>(migrations.size())) {
    return internal_error("database schema version " + std::to_string(current) +
                          " is newer than this binary supports");
  }
  for (size_t next = static_cast<size_t>(current); next < migrations.size(); ++next) {
    RETURN_IF_ERROR(db.exec("BEGIN IMMEDIATE"));
    Status status = db.exec(migrations[next]);
    if (status.is_ok()) {
      status = db.exec("INSERT INTO schema_version (version) VALUES (" + std::to_string(next + 1) + ")");
    }
    if (!status.is_ok()) {
      (void)db.exec("ROLLBACK");
      return status;
    }
    RETURN_IF_ERROR(db.exec("COMMIT"));
    log::info("schema migrated", {{"version", std::to_string(next + 1)}});
  }
  return Status::ok();
}

AgentRecord read_agent(const SqliteStatement& row) {
  return AgentRecord{row.column_text(0), row.column_text(1), row.column_int(2), row.column_text(3),
                     row.column_int(4)};
}
SessionRecord read_session(const SqliteStatement& row) {
  return SessionRecord{row.column_text(0), row.column_text(1), row.column_text(2), row.column_text(3),
                       row.column_int(4), row.column_text(5)};
}
ItemRecord read_item(const SqliteStatement& row) {
  return ItemRecord{row.column_int(0),  row.column_text(1), row.column_text(2), row.column_text(3),
                    row.column_text(4), row.column_int(5),  row.column_text(6)};
}
DataKeyRecord read_data_key(const SqliteStatement& row) {
  return DataKeyRecord{row.column_text(0), row.column_text(1), row.column_int(2), row.column_int(3),
                       row.column_text(4), row.column_int(5), row.column_int(6)};
}
ApiKeyRecord read_api_key(const SqliteStatement& row) {
  return ApiKeyRecord{row.column_text(0), row.column_text(1), row.column_text(2), row.column_text(3),
                      row.column_text(4), row.column_text(5), row.column_int(6),  row.column_int(7),
                      row.column_text(8)};
}
PolicyRecord read_policy(const SqliteStatement& row) {
  return PolicyRecord{row.column_text(0), row.column_int(1), row.column_text(2), row.column_int(3),
                      row.column_text(4)};
}
ApprovalRecord read_approval(const SqliteStatement& row) {
  ApprovalRecord approval;
  approval.tenant_id = row.column_text(0);
  approval.id = row.column_text(1);
  approval.run_id = row.column_text(2);
  approval.session_id = row.column_text(3);
  approval.seq = row.column_int(4);
  approval.tool = row.column_text(5);
  approval.arguments_json = row.column_text(6);
  approval.arguments_hash = row.column_text(7);
  approval.statement = row.column_text(8);
  approval.requested_by = row.column_text(9);
  approval.agent = row.column_text(10);
  approval.status = row.column_text(11);
  approval.created_at_ms = row.column_int(12);
  approval.expires_at_ms = row.column_int(13);
  approval.decided_at_ms = row.column_int(14);
  approval.decided_by = row.column_text(15);
  approval.comment = row.column_text(16);
  return approval;
}
}  // namespace

AuditEventRecord read_audit_event(const SqliteStatement& row) {
  AuditEventRecord event;
  event.tenant_id = row.column_text(0);
  event.seq = row.column_int(1);
  event.at_ms = row.column_int(2);
  event.principal = row.column_text(3);
  event.action = row.column_text(4);
  event.resource = row.column_text(5);
  event.run_id = row.column_text(6);
  event.outcome = row.column_text(7);
  event.canonical = row.column_text(8);
  event.prev_hash = row.column_text(9);
  event.hash = row.column_text(10);
  AuditEventRecord parsed;
  if (parse_canonical_event(event.canonical, parsed).is_ok()) event.details_json = parsed.details_json;
  return event;
}
AuditCheckpointRecord read_audit_checkpoint(const SqliteStatement& row) {
  return AuditCheckpointRecord{row.column_text(0), row.column_int(1),  row.column_text(2), row.column_int(3),
                               row.column_text(4), row.column_text(5), row.column_text(6)};
}

namespace {

constexpr const char* kAuditColumns = kSqliteAuditColumns;
constexpr const char* kApprovalColumns =
    "tenant_id, id, run_id, session_id, seq, tool, arguments, arguments_hash, statement, requested_by, agent, "
    "status, created_at_ms, expires_at_ms, decided_at_ms, decided_by, comment";
constexpr const char* kApiKeyColumns =
    "id, tenant_id, user_id, roles, name, secret_hash, created_at_ms, revoked_at_ms, created_by";
constexpr const char* kMcpPinColumns =
    "tenant_id, server, tool, status, approved_hash, approved_definition, approved_at_ms, approved_by, seen_hash, "
    "seen_definition, changed_at_ms";
McpToolPinRecord read_mcp_pin(const SqliteStatement& row) {
  return McpToolPinRecord{row.column_text(0), row.column_text(1), row.column_text(2),  row.column_text(3),
                          row.column_text(4), row.column_text(5), row.column_int(6),   row.column_text(7),
                          row.column_text(8), row.column_text(9), row.column_int(10)};
}
RunRecord read_run(const SqliteStatement& row) {
  RunRecord run;
  run.tenant_id = row.column_text(0);
  run.id = row.column_text(1);
  run.session_id = row.column_text(2);
  run.agent_name = row.column_text(3);
  run.agent_version = row.column_int(4);
  run.status = row.column_text(5);
  run.input = row.column_text(6);
  run.snapshot_json = row.column_text(7);
  run.created_at_ms = row.column_int(8);
  run.updated_at_ms = row.column_int(9);
  run.version = row.column_int(10);
  return run;
}
StepRecord read_step(const SqliteStatement& row) {
  return StepRecord{row.column_text(0), row.column_text(1), row.column_int(2), row.column_text(3),
                    row.column_text(4), row.column_int(5),  row.column_int(6)};
}

// Runs a statement prepared once per connection (transaction control is hot).
Status run_cached(SqliteDb& db, const std::string& sql) {
  ASSIGN_OR_RETURN(auto statement, db.prepare_cached(sql));
  return statement.run();
}

// Steps `query` to the end, reading each row with `read_row`.
template <typename ReadRow>
auto collect_rows(SqliteStatement& query, ReadRow read_row) -> Result<std::vector<decltype(read_row(query))>> {
  std::vector<decltype(read_row(query))> rows;
  while (query.step()) rows.push_back(read_row(query));
  RETURN_IF_ERROR(query.step_status());
  return rows;
}

constexpr const char* kRunColumns =
    "tenant_id, id, session_id, agent_name, agent_version, status, input, snapshot, created_at_ms, "
    "updated_at_ms, version";

}  // namespace

SqliteStore::SqliteStore(SqliteStoreOptions options, const Clock& clock, MetricsRegistry* metrics)
    : options_(std::move(options)), writes_(clock, static_cast<size_t>(options_.batches_per_transaction_max), metrics) {
  if (metrics == nullptr) return;
  const char* help = "WAL checkpoints of the SQLite store, by the thread that ran them.";
  checkpoints_by_checkpointer_ = &metrics->counter("continuum_store_wal_checkpoints_total", help, "by=\"checkpointer\"");
  checkpoints_by_writer_ = &metrics->counter("continuum_store_wal_checkpoints_total", help, "by=\"writer\"");
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(SqliteStoreOptions options, const Clock& clock,
                                                       MetricsRegistry* metrics) {
  std::unique_ptr<SqliteStore> store(new SqliteStore(std::move(options), clock, metrics));
  RETURN_IF_ERROR(store->open_connections());
  store->checkpointer_ = std::thread([raw = store.get()] { raw->checkpoint_loop(); });
  // Replaces the writer's automatic checkpoints (the same hook): see on_wal_commit.
  sqlite3_wal_hook(store->write_db_.handle(), &SqliteStore::on_wal_commit, store.get());
  store->writes_.start([raw = store.get()](std::vector<PendingBatch>& part) { raw->apply_part(part); },
                       [raw = store.get()](std::vector<PendingBatch>& group) { raw->commit_group(group); });
  return store;
}

Status SqliteStore::open_connections() {
  // The writer commits with synchronous=FULL: the WAL VFS's contract.
  RETURN_IF_ERROR(write_db_.open(options_.path, sqlite_wal_vfs_name()));
  RETURN_IF_ERROR(apply_pragmas(write_db_, kWriterCacheKiB));
  RETURN_IF_ERROR(migrate(write_db_));
  RETURN_IF_ERROR(load_item_seq());
  RETURN_IF_ERROR(read_db_.open(options_.path));
  RETURN_IF_ERROR(apply_pragmas(read_db_, kReaderCacheKiB));
  RETURN_IF_ERROR(checkpoint_db_.open(options_.path));
  return apply_pragmas(checkpoint_db_, kWriterCacheKiB);  // synchronous=FULL: a checkpoint syncs the WAL, then the database file
}

SqliteStore::~SqliteStore() {
  writes_.stop();
  stop_checkpointer();
}  // the write connection, closed last, checkpoints what is left and removes the WAL

int SqliteStore::on_wal_commit(void* store, sqlite3* db, const char* schema, int frames) {
  auto* self = static_cast<SqliteStore*>(store);
  if (frames < kCheckpointFrames) return SQLITE_OK;  // (the WAL started over at this transaction)
  if (self->bulk_checkpointed_.exchange(false) || frames >= kCheckpointFramesMax) {
    // What was committed since the checkpointer's copy: copied here, between
    // two transactions, so that the next one finds all of the WAL in the
    // database file and starts it over.
    int rc = sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (rc == SQLITE_OK && self->checkpoints_by_writer_) self->checkpoints_by_writer_->inc();
    return SQLITE_OK;
  }
  std::lock_guard lock(self->checkpoint_mutex_);
  self->checkpoint_requested_ = true;
  self->checkpoint_wanted_.notify_one();
  return SQLITE_OK;
}

// Passive: copies what no reader still needs and waits for nobody; the
// writer goes on committing meanwhile (see on_wal_commit for the rest).
void SqliteStore::checkpoint_loop() {
  std::unique_lock lock(checkpoint_mutex_);
  for (;;) {
    checkpoint_wanted_.wait(lock, [this] { return checkpoint_requested_ || checkpointer_stopping_; });
    if (checkpointer_stopping_) return;
    checkpoint_requested_ = false;
    lock.unlock();
    int rc = sqlite3_wal_checkpoint_v2(checkpoint_db_.handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (rc == SQLITE_OK) {
      bulk_checkpointed_.store(true);
      if (checkpoints_by_checkpointer_) checkpoints_by_checkpointer_->inc();
    } else if (rc != SQLITE_BUSY) {
      log::warn("WAL checkpoint failed; asked again at a later commit", {{"error", sqlite3_errstr(rc)}});
    }
    lock.lock();
  }
}

void SqliteStore::stop_checkpointer() {
  {
    std::lock_guard lock(checkpoint_mutex_);
    checkpointer_stopping_ = true;
  }
  checkpoint_wanted_.notify_one();
  if (checkpointer_.joinable()) checkpointer_.join();
}

void SqliteStore::commit(WriteBatch batch, std::function<void(Status)> done) {
  writes_.submit(std::move(batch), std::move(done));
}

void SqliteStore::commit_many(std::vector<CommitRequest> requests, CommitPacing pacing) {
  writes_.submit_all(std::move(requests), pacing);
}

void SqliteStore::release_held_commits() { writes_.release(); }

// Optimistically first: every batch applied in one transaction without
// savepoints (they cost a sub-journal write of each page a batch changes),
// part by part as they come. After the first failure nothing more is written;
// at the end the transaction is rolled back and the group applied again, each
// batch under its own savepoint, so only the failing ones fail.
void SqliteStore::apply_part(std::vector<PendingBatch>& part) {
  if (!transaction_open_) {
    transaction_open_ = true;
    transaction_begun_ = run_cached(write_db_, "BEGIN IMMEDIATE");
    transaction_failed_ = false;
  }
  if (!transaction_begun_.is_ok() || transaction_failed_) return;
  std::vector<RunUpdatePlan> plan = plan_run_updates(part);
  for (size_t i = 0; !transaction_failed_ && i < part.size(); ++i) {
    transaction_failed_ = !apply(part[i].batch, &plan[i]).is_ok();
  }
}

void SqliteStore::commit_group(std::vector<PendingBatch>& group) {
  if (!transaction_open_) apply_part(group);
  transaction_open_ = false;
  std::vector<Status> results(group.size());
  Status commit = transaction_begun_;
  if (commit.is_ok() && !transaction_failed_) {
    commit = save_item_seq();
    if (commit.is_ok()) commit = run_cached(write_db_, "COMMIT");  // with synchronous=FULL this fsyncs the WAL
    if (!commit.is_ok()) (void)write_db_.exec("ROLLBACK");
  } else if (commit.is_ok()) {
    (void)write_db_.exec("ROLLBACK");
    audit_heads_.clear();
    commit = commit_each_under_savepoint(group, results);
  }
  if (!commit.is_ok()) audit_heads_.clear();
  writes_.finish(group, results, commit);
}

// A run updated by several batches of one part (what the writer takes at
// once; a held transaction may have several) with consecutive versions
// (its steps, one after another) is written once, by the last of them, which
// checks the version the first one expected: the same outcome in the same
// transaction, without rewriting the row (and its sealed snapshot) per step.
std::vector<SqliteStore::RunUpdatePlan> SqliteStore::plan_run_updates(const std::vector<PendingBatch>& group) {
  struct Last {
    size_t batch = 0, index = 0;
    int64_t first_expected = 0, version = 0;
    bool chained = true;
  };
  std::vector<RunUpdatePlan> plan(group.size());
  std::map<std::pair<std::string, std::string>, Last> last_update;  // by (tenant, run)
  for (size_t b = 0; b < group.size(); ++b) {
    const auto& updates = group[b].batch.run_updates;
    for (size_t u = 0; u < updates.size(); ++u) {
      auto [entry, first] = last_update.try_emplace({updates[u].tenant_id, updates[u].id});
      Last& last = entry->second;
      if (!first && last.chained && updates[u].version == last.version + 1) {
        plan[last.batch][last.index] = kSkip;
        plan[b][u] = last.first_expected;
      } else if (!first) {
        last.chained = false;  // not the next version: written and checked as it is
      } else {
        last.first_expected = updates[u].version - 1;
      }
      last.batch = b;
      last.index = u;
      last.version = updates[u].version;
    }
  }
  return plan;
}

Status SqliteStore::commit_each_under_savepoint(std::vector<PendingBatch>& group, std::vector<Status>& results) {
  RETURN_IF_ERROR(run_cached(write_db_, "BEGIN IMMEDIATE"));
  for (size_t i = 0; i < group.size(); ++i) {
    Status savepoint = run_cached(write_db_, "SAVEPOINT batch");
    results[i] = savepoint.is_ok() ? apply(group[i].batch) : savepoint;
    if (!results[i].is_ok()) {
      (void)run_cached(write_db_, "ROLLBACK TO batch");
      audit_heads_.clear();
    }
    (void)run_cached(write_db_, "RELEASE batch");
  }
  Status commit = save_item_seq();
  if (commit.is_ok()) commit = run_cached(write_db_, "COMMIT");
  if (!commit.is_ok()) (void)write_db_.exec("ROLLBACK");
  return commit;
}

Status SqliteStore::apply(const WriteBatch& batch, const RunUpdatePlan* run_updates) {
  for (const auto& agent : batch.agent_inserts) {
    ASSIGN_OR_RETURN(auto insert, write_db_.prepare_cached(
                                      "INSERT INTO agents (tenant_id, name, version, spec, created_at_ms) "
                                      "VALUES (?, ?, ?, ?, ?)"));
    insert.bind(1, agent.tenant_id).bind(2, agent.name).bind(3, agent.version).bind(4, agent.spec_json)
        .bind(5, agent.created_at_ms);
    RETURN_IF_ERROR(insert.run());
  }
  for (const auto& session : batch.session_inserts) {
    ASSIGN_OR_RETURN(auto insert, write_db_.prepare_cached(
                                      "INSERT INTO sessions (tenant_id, id, agent_name, metadata, created_at_ms, user_id) "
                                      "VALUES (?, ?, ?, ?, ?, ?)"));
    insert.bind(1, session.tenant_id).bind(2, session.id).bind(3, session.agent_name)
        .bind(4, session.metadata_json).bind(5, session.created_at_ms).bind(6, session.user_id);
    RETURN_IF_ERROR(insert.run());
  }
  for (const auto& session : batch.session_deletes) RETURN_IF_ERROR(apply_session_delete(session));
  for (const auto& session : batch.session_metadata_updates) {
    ASSIGN_OR_RETURN(auto update,
                     write_db_.prepare_cached("UPDATE sessions SET metadata = ? WHERE tenant_id = ? AND id = ?"));
    update.bind(1, session.metadata_json).bind(2, session.tenant_id).bind(3, session.id);
    RETURN_IF_ERROR(update.run());
    if (write_db_.changes() != 1) return not_found("session " + session.id + " not found");
  }
  for (const auto& item : batch.item_deletes) {
    ASSIGN_OR_RETURN(auto remove, write_db_.prepare_cached(
                                      "DELETE FROM items WHERE tenant_id = ? AND session_id = ? AND seq = ?"));
    remove.bind(1, item.tenant_id).bind(2, item.session_id).bind(3, item.seq);
    RETURN_IF_ERROR(remove.run());
    if (write_db_.changes() != 1) return not_found("item " + std::to_string(item.seq) + " not found");
  }
  for (const auto& run : batch.run_deletes) {
    ASSIGN_OR_RETURN(auto remove, write_db_.prepare_cached(
                                      "DELETE FROM runs WHERE tenant_id = ? AND id = ? AND "
                                      "status IN ('completed', 'failed', 'cancelled')"));
    remove.bind(1, run.tenant_id).bind(2, run.id);
    RETURN_IF_ERROR(remove.run());
    if (write_db_.changes() != 1) return conflict("run " + run.id + " is missing or not finished");
    ASSIGN_OR_RETURN(auto journal, write_db_.prepare_cached("DELETE FROM steps WHERE tenant_id = ? AND run_id = ?"));
    journal.bind(1, run.tenant_id).bind(2, run.id);
    RETURN_IF_ERROR(journal.run());
  }
  for (const auto& run : batch.run_inserts) {
    // Checked in the writer, so a run can never land in a session deleted meanwhile.
    ASSIGN_OR_RETURN(auto session, write_db_.prepare_cached("SELECT 1 FROM sessions WHERE tenant_id = ? AND id = ?"));
    session.bind(1, run.tenant_id).bind(2, run.session_id);
    if (!session.step()) {
      RETURN_IF_ERROR(session.step_status());
      return not_found("session '" + run.session_id + "' not found");
    }
    ASSIGN_OR_RETURN(auto insert, write_db_.prepare_cached(std::string("INSERT INTO runs (") + kRunColumns +
                                                           ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    insert.bind(1, run.tenant_id).bind(2, run.id).bind(3, run.session_id).bind(4, run.agent_name)
        .bind(5, run.agent_version).bind(6, run.status).bind(7, run.input).bind(8, run.snapshot_json)
        .bind(9, run.created_at_ms).bind(10, run.updated_at_ms).bind(11, run.version);
    RETURN_IF_ERROR(insert.run());
  }
  for (size_t u = 0; u < batch.run_updates.size(); ++u) {
    const auto& run = batch.run_updates[u];
    int64_t expected = run.version - 1;
    if (run_updates != nullptr) {
      if (auto planned = run_updates->find(u); planned != run_updates->end()) {
        if (planned->second == kSkip) continue;
        expected = planned->second;
      }
    }
    RETURN_IF_ERROR(update_run(run, expected));
  }
  for (const auto& step : batch.steps) {
    ASSIGN_OR_RETURN(auto insert, write_db_.prepare_cached(
                                      "INSERT INTO steps (tenant_id, run_id, seq, kind, payload, created_at_ms, lease_epoch) "
                                      "VALUES (?, ?, ?, ?, ?, ?, ?)"));
    insert.bind(1, step.tenant_id).bind(2, step.run_id).bind(3, step.seq).bind(4, step.kind)
        .bind(5, step.payload_json).bind(6, step.created_at_ms).bind(7, step.lease_epoch);
    RETURN_IF_ERROR(insert.run());
  }
  for (const auto& item : batch.items) {
    ASSIGN_OR_RETURN(auto insert, write_db_.prepare_cached(
                                      "INSERT INTO items (seq, tenant_id, session_id, run_id, message, created_at_ms, id) "
                                      "VALUES (?, ?, ?, ?, ?, ?, ?)"));
    insert.bind(1, ++item_seq_).bind(2, item.tenant_id).bind(3, item.session_id).bind(4, item.run_id)
        .bind(5, item.message_json).bind(6, item.created_at_ms).bind(7, item.id);
    RETURN_IF_ERROR(insert.run());
  }
  for (const auto& key : batch.data_key_inserts) {
    ASSIGN_OR_RETURN(auto insert, write_db_.prepare_cached(
                                      "INSERT INTO data_keys (tenant_id, scope, version, kek_version, wrapped_key, "
                                      "created_at_ms, destroyed_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)"));
    insert.bind(1, key.tenant_id).bind(2, key.scope).bind(3, key.version).bind(4, key.kek_version)
        .bind(5, key.wrapped_key).bind(6, key.created_at_ms).bind(7, key.destroyed_at_ms);
    RETURN_IF_ERROR(insert.run());
  }
  for (const auto& secret : batch.secret_upserts) {
    ASSIGN_OR_RETURN(auto upsert, write_db_.prepare_cached(
                                      "INSERT INTO secrets (tenant_id, name, value, created_at_ms, updated_at_ms) "
                                      "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, name) DO UPDATE SET "
                                      "value = excluded.value, updated_at_ms = excluded.updated_at_ms"));
    upsert.bind(1, secret.tenant_id).bind(2, secret.name).bind(3, secret.value).bind(4, secret.created_at_ms)
        .bind(5, secret.updated_at_ms);
    RETURN_IF_ERROR(upsert.run());
  }
  for (const auto& secret : batch.secret_deletes) {
    ASSIGN_OR_RETURN(auto remove, write_db_.prepare_cached("DELETE FROM secrets WHERE tenant_id = ? AND name = ?"));
    remove.bind(1, secret.tenant_id).bind(2, secret.name);
    RETURN_IF_ERROR(remove.run());
    if (write_db_.changes() != 1) return not_found("secret '" + secret.name + "' not found");
  }
  for (const auto& key : batch.data_key_updates) {
    ASSIGN_OR_RETURN(auto update, write_db_.prepare_cached(
                                      "UPDATE data_keys SET kek_version = ?, wrapped_key = ?, destroyed_at_ms = ? "
                                      "WHERE tenant_id = ? AND scope = ? AND version = ?"));
    update.bind(1, key.kek_version).bind(2, key.wrapped_key).bind(3, key.destroyed_at_ms).bind(4, key.tenant_id)
        .bind(5, key.scope).bind(6, key.version);
    RETURN_IF_ERROR(update.run());
    if (write_db_.changes() != 1) return not_found("data key " + key.scope + " v" + std::to_string(key.version));
  }
  return apply_governance(batch);
}

// Most updates keep the status (a step of a running run). SQLite rewrites the
// entries of every index over a column an UPDATE sets, changed or not: setting
// `status` to its own value would touch both status indexes (8 WAL pages per
// update instead of 1, measured). So the update that keeps the status is tried first, and the one
// that sets it only if that matched no row.
Status SqliteStore::update_run(const RunRecord& run, int64_t expected_version) {
  ASSIGN_OR_RETURN(auto same_status, write_db_.prepare_cached(
                                         "UPDATE runs SET snapshot = ?, updated_at_ms = ?, version = ? "
                                         "WHERE tenant_id = ? AND id = ? AND version = ? AND status = ?"));
  same_status.bind(1, run.snapshot_json).bind(2, run.updated_at_ms).bind(3, run.version).bind(4, run.tenant_id)
      .bind(5, run.id).bind(6, expected_version).bind(7, run.status);
  RETURN_IF_ERROR(same_status.run());
  if (write_db_.changes() == 1) return Status::ok();
  ASSIGN_OR_RETURN(auto update, write_db_.prepare_cached(
                                    "UPDATE runs SET status = ?, snapshot = ?, updated_at_ms = ?, version = ? "
                                    "WHERE tenant_id = ? AND id = ? AND version = ?"));
  update.bind(1, run.status).bind(2, run.snapshot_json).bind(3, run.updated_at_ms).bind(4, run.version)
      .bind(5, run.tenant_id).bind(6, run.id).bind(7, expected_version);
  RETURN_IF_ERROR(update.run());
  if (write_db_.changes() != 1) {
    return conflict("run " + run.id + " is missing or not at version " + std::to_string(expected_version));
  }
  return Status::ok();
}

Status SqliteStore::apply_governance(const WriteBatch& batch) {
  for (const auto& key : batch.api_key_inserts) {
    ASSIGN_OR_RETURN(auto insert, write_db_.prepare_cached(std::string("INSERT INTO api_keys (") + kApiKeyColumns +
                                                           ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    insert.bind(1, key.id).bind(2, key.tenant_id).bind(3, key.user_id).bind(4, key.roles_json).bind(5, key.name)
        .bind(6, key.secret_hash).bind(7, key.created_at_ms).bind(8, key.revoked_at_ms).bind(9, key.created_by);
    RETURN_IF_ERROR(insert.run());
  }
  for (const auto& key : batch.api_key_revokes) {
    ASSIGN_OR_RETURN(auto revoke, write_db_.prepare_cached(
                                      "UPDATE api_keys SET revoked_at_ms = ? WHERE tenant_id = ? AND id = ? "
                                      "AND revoked_at_ms = 0"));
    revoke.bind(1, key.revoked_at_ms).bind(2, key.tenant_id).bind(3, key.id);
    RETURN_IF_ERROR(revoke.run());
    if (write_db_.changes() != 1) return not_found("active API key '" + key.id + "' not found");
  }
  for (bool replace : {false, true}) {
    for (const auto& pin : replace ? batch.mcp_tool_pin_upserts : batch.mcp_tool_pin_inserts) {
      ASSIGN_OR_RETURN(auto write, write_db_.prepare_cached(std::string(replace ? "INSERT OR REPLACE" : "INSERT OR IGNORE") +
                                                            " INTO mcp_tool_pins (" + kMcpPinColumns +
                                                            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
      write.bind(1, pin.tenant_id).bind(2, pin.server).bind(3, pin.tool).bind(4, pin.status)
          .bind(5, pin.approved_hash).bind(6, pin.approved_definition_json).bind(7, pin.approved_at_ms)
          .bind(8, pin.approved_by).bind(9, pin.seen_hash).bind(10, pin.seen_definition_json)
          .bind(11, pin.changed_at_ms);
      RETURN_IF_ERROR(write.run());
    }
  }
  for (const auto& policy : batch.policy_inserts) {
    ASSIGN_OR_RETURN(auto insert, write_db_.prepare_cached(
                                      "INSERT INTO policies (tenant_id, version, document, created_at_ms, created_by) "
                                      "VALUES (?, ?, ?, ?, ?)"));
    insert.bind(1, policy.tenant_id).bind(2, policy.version).bind(3, policy.document_json)
        .bind(4, policy.created_at_ms).bind(5, policy.created_by);
    RETURN_IF_ERROR(insert.run());
  }
  return apply_approvals(batch);
}

Status SqliteStore::apply_approvals(const WriteBatch& batch) {
  for (const auto& a : batch.approval_inserts) {
    ASSIGN_OR_RETURN(auto insert, write_db_.prepare_cached(std::string("INSERT INTO approvals (") + kApprovalColumns +
                                                           ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    insert.bind(1, a.tenant_id).bind(2, a.id).bind(3, a.run_id).bind(4, a.session_id).bind(5, a.seq)
        .bind(6, a.tool).bind(7, a.arguments_json).bind(8, a.arguments_hash).bind(9, a.statement)
        .bind(10, a.requested_by).bind(11, a.agent).bind(12, a.status).bind(13, a.created_at_ms)
        .bind(14, a.expires_at_ms).bind(15, a.decided_at_ms).bind(16, a.decided_by).bind(17, a.comment);
    RETURN_IF_ERROR(insert.run());
  }
  for (const auto& a : batch.approval_decisions) {
    ASSIGN_OR_RETURN(auto decide, write_db_.prepare_cached(
                                      "UPDATE approvals SET status = ?1, decided_at_ms = ?2, decided_by = ?3, "
                                      "comment = ?4 WHERE tenant_id = ?5 AND id = ?6 AND status = 'pending' "
                                      "AND (?1 IN ('expired', 'withdrawn') OR expires_at_ms > ?2)"));
    decide.bind(1, a.status).bind(2, a.decided_at_ms).bind(3, a.decided_by).bind(4, a.comment).bind(5, a.tenant_id)
        .bind(6, a.id);
    RETURN_IF_ERROR(decide.run());
    if (write_db_.changes() != 1 && a.status != kApprovalWithdrawn) {
      return conflict("approval " + a.id + " is missing, decided or expired");
    }
  }
  return apply_audit(batch);
}

// Appends to each tenant's chain after its newest event, read inside this
// transaction (the single writer), so the chain has no gaps or forks. Each
// run of consecutive events of one run (in a tenant) is recorded as a span.
Status SqliteStore::apply_audit(const WriteBatch& batch) {
  const AuditEventRecord* span_of = nullptr;  // the first event of the open span, if any
  int64_t span_first = 0, span_last = 0;
  auto close_span = [&]() -> Status {
    if (span_of == nullptr || span_of->run_id.empty()) return Status::ok();
    return insert_audit_run_span(span_of->tenant_id, span_of->run_id, span_first, span_last);
  };
  for (const auto& event : batch.audit_events) {
    auto head = audit_heads_.find(event.tenant_id);
    if (head == audit_heads_.end()) {
      ASSIGN_OR_RETURN(auto newest, write_db_.prepare_cached(
                                        "SELECT seq, hash FROM audit_events WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1"));
      newest.bind(1, event.tenant_id);
      std::pair<int64_t, std::string> found{0, audit_genesis_hash()};
      if (newest.step()) found = {newest.column_int(0), newest.column_text(1)};
      RETURN_IF_ERROR(newest.step_status());
      head = audit_heads_.emplace(event.tenant_id, std::move(found)).first;
    }
    int64_t seq = head->second.first + 1;
    const std::string& prev = head->second.second;
    std::string canonical = canonical_event(event);
    std::string hash = audit_chain_hash(prev, seq, canonical);
    static const std::string kInsert =
        std::string("INSERT INTO audit_events (") + kAuditColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    ASSIGN_OR_RETURN(auto insert, write_db_.prepare_cached(kInsert));
    insert.bind(1, event.tenant_id).bind(2, seq).bind(3, event.at_ms).bind(4, event.principal).bind(5, event.action)
        .bind(6, event.resource).bind(7, event.run_id).bind(8, event.outcome).bind(9, canonical)
        .bind_blob(10, prev).bind_blob(11, hash);
    RETURN_IF_ERROR(insert.run());
    head->second = {seq, std::move(hash)};
    bool extends = span_of != nullptr && seq == span_last + 1 && event.run_id == span_of->run_id &&
                   event.tenant_id == span_of->tenant_id;
    if (!extends) {
      RETURN_IF_ERROR(close_span());
      span_of = &event;
      span_first = seq;
    }
    span_last = seq;
  }
  RETURN_IF_ERROR(close_span());
  for (const auto& c : batch.audit_checkpoints) {
    ASSIGN_OR_RETURN(auto insert, write_db_.prepare_cached(
                                      "INSERT INTO audit_checkpoints (tenant_id, seq, hash, at_ms, key_id, public_key, "
                                      "signature) VALUES (?, ?, ?, ?, ?, ?, ?)"));
    insert.bind(1, c.tenant_id).bind(2, c.seq).bind_blob(3, c.hash).bind(4, c.at_ms).bind(5, c.key_id)
        .bind_blob(6, c.public_key).bind_blob(7, c.signature);
    RETURN_IF_ERROR(insert.run());
  }
  return Status::ok();
}

Status SqliteStore::insert_audit_run_span(const std::string& tenant, const std::string& run, int64_t first_seq,
                                          int64_t last_seq) {
  ASSIGN_OR_RETURN(auto insert, write_db_.prepare_cached("INSERT INTO audit_run_spans (tenant_id, run_id, first_seq, "
                                                         "last_seq) VALUES (?, ?, ?, ?)"));
  insert.bind(1, tenant).bind(2, run).bind(3, first_seq).bind(4, last_seq);
  return insert.run();
}

Status SqliteStore::load_item_seq() {
  ASSIGN_OR_RETURN(auto query, write_db_.prepare_cached("SELECT value FROM sequences WHERE name = 'items'"));
  if (!query.step()) {
    RETURN_IF_ERROR(query.step_status());
    return internal_error("the items counter is missing from the sequences table");
  }
  item_seq_ = item_seq_saved_ = query.column_int(0);
  return Status::ok();
}

Status SqliteStore::save_item_seq() {
  if (item_seq_ == item_seq_saved_) return Status::ok();
  ASSIGN_OR_RETURN(auto update, write_db_.prepare_cached("UPDATE sequences SET value = ? WHERE name = 'items'"));
  update.bind(1, item_seq_);
  RETURN_IF_ERROR(update.run());
  // If the COMMIT then fails, the seqs it gave out were never visible: this
  // process skips them (a gap); a restart may give them again.
  item_seq_saved_ = item_seq_;
  return Status::ok();
}

Status SqliteStore::apply_session_delete(const SessionRecord& session) {
  // Checked in the writer, so a run submitted just before the delete is seen.
  ASSIGN_OR_RETURN(auto active, write_db_.prepare_cached(
                                    "SELECT id FROM runs INDEXED BY runs_by_session WHERE tenant_id = ? AND "
                                    "session_id = ? AND status IN ('queued', 'running', 'waiting') LIMIT 1"));
  active.bind(1, session.tenant_id).bind(2, session.id);
  if (active.step()) return conflict("session has an unfinished run " + active.column_text(0) + "; cancel it first");
  RETURN_IF_ERROR(active.step_status());
  static const char* kStatements[] = {
      "DELETE FROM steps WHERE tenant_id = ?1 AND run_id IN "
      "(SELECT id FROM runs WHERE tenant_id = ?1 AND session_id = ?2)",
      "DELETE FROM runs WHERE tenant_id = ?1 AND session_id = ?2",
      "DELETE FROM items WHERE tenant_id = ?1 AND session_id = ?2",
      "DELETE FROM sessions WHERE tenant_id = ?1 AND id = ?2",
  };
  for (const char* sql : kStatements) {
    ASSIGN_OR_RETURN(auto statement, write_db_.prepare_cached(sql));
    statement.bind(1, session.tenant_id).bind(2, session.id);
    RETURN_IF_ERROR(statement.run());
  }
  if (write_db_.changes() != 1) return not_found("session " + session.id + " does not exist");
  return Status::ok();
}

StoreStats SqliteStore::stats() { return writes_.stats(); }

// ---- reads ----

Result<AgentRecord> SqliteStore::get_agent(const std::string& tenant, const std::string& name,
                                           std::optional<int64_t> version) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(
                                   "SELECT tenant_id, name, version, spec, created_at_ms FROM agents "
                                   "WHERE tenant_id = ? AND name = ? AND (? = 0 OR version = ?) "
                                   "ORDER BY version DESC LIMIT 1"));
  int64_t wanted = version.value_or(0);
  query.bind(1, tenant).bind(2, name).bind(3, wanted).bind(4, wanted);
  if (query.step()) return read_agent(query);
  RETURN_IF_ERROR(query.step_status());
  return not_found("agent '" + name + "'" + (version ? " version " + std::to_string(*version) : "") +
                   " not found");
}

Result<std::vector<AgentRecord>> SqliteStore::list_agents(const std::string& tenant) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(
                                   "SELECT tenant_id, name, MAX(version), spec, created_at_ms FROM agents "
                                   "WHERE tenant_id = ? GROUP BY name ORDER BY name"));
  query.bind(1, tenant);
  return collect_rows(query, read_agent);
}

Result<SessionRecord> SqliteStore::get_session(const std::string& tenant, const std::string& id) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(
                                   "SELECT tenant_id, id, agent_name, metadata, created_at_ms, user_id FROM sessions "
                                   "WHERE tenant_id = ? AND id = ?"));
  query.bind(1, tenant).bind(2, id);
  if (query.step()) return read_session(query);
  RETURN_IF_ERROR(query.step_status());
  return not_found("session '" + id + "' not found");
}

Result<std::vector<SessionRecord>> SqliteStore::list_sessions(const std::string& tenant,
                                                              const std::optional<std::string>& user_id,
                                                              const std::string& after_id, int limit) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query,
                   read_db_.prepare_cached(
                       "SELECT tenant_id, id, agent_name, metadata, created_at_ms, user_id FROM sessions "
                       "WHERE tenant_id = ?1 AND (?2 = '' OR rowid < (SELECT rowid FROM sessions "
                       "WHERE tenant_id = ?1 AND id = ?2)) AND (?4 = 0 OR user_id = ?5) "
                       "ORDER BY rowid DESC LIMIT ?3"));
  query.bind(1, tenant).bind(2, after_id).bind(3, static_cast<int64_t>(limit))
      .bind(4, static_cast<int64_t>(user_id.has_value())).bind(5, user_id.value_or(""));
  return collect_rows(query, read_session);
}

Result<std::vector<ItemRecord>> SqliteStore::list_items(const std::string& tenant, const std::string& session,
                                                        int64_t after_seq, int limit) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(
                                   "SELECT seq, tenant_id, session_id, run_id, message, created_at_ms, id FROM items "
                                   "WHERE tenant_id = ? AND session_id = ? AND seq > ? ORDER BY seq LIMIT ?"));
  query.bind(1, tenant).bind(2, session).bind(3, after_seq).bind(4, static_cast<int64_t>(limit));
  return collect_rows(query, read_item);
}

Result<std::vector<ItemRecord>> SqliteStore::recent_items(const std::string& tenant, const std::string& session,
                                                          int64_t before_seq, int limit) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(
                                   "SELECT seq, tenant_id, session_id, run_id, message, created_at_ms, id FROM items "
                                   "WHERE tenant_id = ? AND session_id = ? AND (? = 0 OR seq < ?) "
                                   "ORDER BY seq DESC LIMIT ?"));
  query.bind(1, tenant).bind(2, session).bind(3, before_seq).bind(4, before_seq).bind(5, static_cast<int64_t>(limit));
  return collect_rows(query, read_item);
}

Result<RunRecord> SqliteStore::get_run(const std::string& tenant, const std::string& id) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(std::string("SELECT ") + kRunColumns +
                                                       " FROM runs WHERE tenant_id = ? AND id = ?"));
  query.bind(1, tenant).bind(2, id);
  if (query.step()) return read_run(query);
  RETURN_IF_ERROR(query.step_status());
  return not_found("run '" + id + "' not found");
}

Result<std::vector<RunRecord>> SqliteStore::list_runs(const std::string& tenant, const std::string& session,
                                                      int limit) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(std::string("SELECT ") + kRunColumns +
                                                       " FROM runs WHERE tenant_id = ? AND session_id = ? "
                                                       "ORDER BY rowid LIMIT ?"));
  query.bind(1, tenant).bind(2, session).bind(3, static_cast<int64_t>(limit));
  return collect_rows(query, read_run);
}

Result<std::vector<RunRecord>> SqliteStore::list_queued_runs(const std::string& tenant,
                                                             const std::string& session, int limit) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(std::string("SELECT ") + kRunColumns +
                                                       " FROM runs INDEXED BY runs_by_session WHERE tenant_id = ? "
                                                       "AND session_id = ? AND status = 'queued' ORDER BY rowid LIMIT ?"));
  query.bind(1, tenant).bind(2, session).bind(3, static_cast<int64_t>(limit));
  return collect_rows(query, read_run);
}

Result<std::vector<RunRecord>> SqliteStore::list_unfinished_runs_of_session(const std::string& tenant,
                                                                            const std::string& session, int limit) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(std::string("SELECT ") + kRunColumns +
                                                       " FROM runs INDEXED BY runs_by_session WHERE tenant_id = ? "
                                                       "AND session_id = ? AND status IN ('queued', 'running', "
                                                       "'waiting') ORDER BY rowid LIMIT ?"));
  query.bind(1, tenant).bind(2, session).bind(3, static_cast<int64_t>(limit));
  return collect_rows(query, read_run);
}

Result<std::vector<RunRecord>> SqliteStore::list_unfinished_runs() {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(
                                   std::string("SELECT ") + kRunColumns +
                                   " FROM runs INDEXED BY runs_unfinished WHERE status <> 'completed' "
                                   "AND status <> 'failed' AND status <> 'cancelled' ORDER BY rowid"));
  return collect_rows(query, read_run);
}

Result<std::vector<StepRecord>> SqliteStore::list_steps(const std::string& tenant, const std::string& run,
                                                        int64_t after_seq, int limit) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(
                                   "SELECT tenant_id, run_id, seq, kind, payload, created_at_ms, lease_epoch FROM steps "
                                   "WHERE tenant_id = ? AND run_id = ? AND seq > ? ORDER BY seq LIMIT ?"));
  query.bind(1, tenant).bind(2, run).bind(3, after_seq).bind(4, static_cast<int64_t>(limit));
  return collect_rows(query, read_step);
}

Result<std::vector<McpToolPinRecord>> SqliteStore::list_mcp_tool_pins(const std::string& tenant,
                                                                      const std::string& server) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(std::string("SELECT ") + kMcpPinColumns +
                                                       " FROM mcp_tool_pins WHERE tenant_id = ?1 AND (?2 = '' OR "
                                                       "server = ?2) ORDER BY server, tool"));
  query.bind(1, tenant).bind(2, server);
  return collect_rows(query, read_mcp_pin);
}

Result<std::vector<DataKeyRecord>> SqliteStore::list_data_keys(const std::string& tenant) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(
                                   "SELECT tenant_id, scope, version, kek_version, wrapped_key, created_at_ms, "
                                   "destroyed_at_ms FROM data_keys WHERE ?1 = '' OR tenant_id = ?1 "
                                   "ORDER BY tenant_id, scope, version"));
  query.bind(1, tenant);
  return collect_rows(query, read_data_key);
}

Result<SecretRecord> SqliteStore::get_secret(const std::string& tenant, const std::string& name) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached("SELECT tenant_id, name, value, created_at_ms, updated_at_ms "
                                                       "FROM secrets WHERE tenant_id = ? AND name = ?"));
  query.bind(1, tenant).bind(2, name);
  if (query.step()) {
    return SecretRecord{query.column_text(0), query.column_text(1), query.column_text(2), query.column_int(3),
                        query.column_int(4)};
  }
  RETURN_IF_ERROR(query.step_status());
  return not_found("secret '" + name + "' not found");
}

Result<std::vector<SecretRecord>> SqliteStore::list_secrets(const std::string& tenant) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached("SELECT tenant_id, name, created_at_ms, updated_at_ms "
                                                       "FROM secrets WHERE tenant_id = ? ORDER BY name"));
  query.bind(1, tenant);
  return collect_rows(query, [](const SqliteStatement& row) {
    return SecretRecord{row.column_text(0), row.column_text(1), "", row.column_int(2), row.column_int(3)};
  });
}

Result<ApiKeyRecord> SqliteStore::get_api_key(const std::string& id) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(std::string("SELECT ") + kApiKeyColumns +
                                                       " FROM api_keys WHERE id = ?"));
  query.bind(1, id);
  if (query.step()) return read_api_key(query);
  RETURN_IF_ERROR(query.step_status());
  return not_found("API key '" + id + "' not found");
}

Result<std::vector<ApiKeyRecord>> SqliteStore::list_api_keys(const std::string& tenant) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(std::string("SELECT ") + kApiKeyColumns +
                                                       " FROM api_keys WHERE tenant_id = ? "
                                                       "ORDER BY created_at_ms, id"));
  query.bind(1, tenant);
  return collect_rows(query, read_api_key);
}

Result<PolicyRecord> SqliteStore::get_policy(const std::string& tenant, std::optional<int64_t> version) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(
                                   "SELECT tenant_id, version, document, created_at_ms, created_by FROM policies "
                                   "WHERE tenant_id = ?1 AND (?2 = 0 OR version = ?2) ORDER BY version DESC LIMIT 1"));
  query.bind(1, tenant).bind(2, version.value_or(0));
  if (query.step()) return read_policy(query);
  RETURN_IF_ERROR(query.step_status());
  return not_found(version ? "policy version " + std::to_string(*version) + " not found"
                           : "the tenant has no policy document");
}

Result<std::vector<PolicyRecord>> SqliteStore::list_policies(const std::string& tenant, int limit) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(
                                   "SELECT tenant_id, version, document, created_at_ms, created_by FROM policies "
                                   "WHERE tenant_id = ? ORDER BY version DESC LIMIT ?"));
  query.bind(1, tenant).bind(2, static_cast<int64_t>(limit));
  return collect_rows(query, read_policy);
}

Result<ApprovalRecord> SqliteStore::get_approval(const std::string& tenant, const std::string& id) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query, read_db_.prepare_cached(std::string("SELECT ") + kApprovalColumns +
                                                       " FROM approvals WHERE tenant_id = ? AND id = ?"));
  query.bind(1, tenant).bind(2, id);
  if (query.step()) return read_approval(query);
  RETURN_IF_ERROR(query.step_status());
  return not_found("approval '" + id + "' not found");
}

Result<std::vector<ApprovalRecord>> SqliteStore::list_approvals(const std::string& tenant, const std::string& status,
                                                                int64_t now_ms, const std::string& after_id,
                                                                int limit) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto query,
                   read_db_.prepare_cached(std::string("SELECT ") + kApprovalColumns +
                                           " FROM approvals WHERE tenant_id = ?1 AND (?2 = '' OR status = ?2 OR (?2 = 'expired' AND "
                                           "status = 'pending' AND expires_at_ms <= ?3)) "
                                           "AND (?2 <> 'pending' OR expires_at_ms > ?3) AND (?4 = '' OR "
                                           "(created_at_ms, id) > (SELECT created_at_ms, id FROM approvals "
                                           "WHERE tenant_id = ?1 AND id = ?4)) ORDER BY created_at_ms, id LIMIT ?5"));
  query.bind(1, tenant).bind(2, status).bind(3, now_ms).bind(4, after_id).bind(5, static_cast<int64_t>(limit));
  return collect_rows(query, read_approval);
}

Result<std::vector<AuditEventRecord>> SqliteStore::list_audit_events(const std::string& tenant,
                                                                     const AuditQuery& query) {
  std::lock_guard lock(read_mutex_);
  static const std::string kFilters =
      "seq > ?2 AND at_ms >= ?3 AND (?4 = 0 OR at_ms < ?4) AND (?5 = '' OR principal = ?5) "
      "AND (?6 = '' OR action = ?6) ORDER BY seq LIMIT ?8";
  // One run's events through its spans (the planner would scan the
  // tenant's whole chain in seq order otherwise); spans wholly before the
  // cursor are skipped. The subquery names only first_seq and last_seq, so
  // the other columns are the events'.
  static const std::string kOfRun = std::string("SELECT ") + kAuditColumns +
                                    " FROM (SELECT first_seq, last_seq FROM audit_run_spans WHERE tenant_id = ?1 "
                                    "AND run_id = ?7 AND last_seq > ?2) CROSS JOIN audit_events "
                                    "WHERE tenant_id = ?1 AND seq BETWEEN first_seq AND last_seq AND run_id = ?7 AND " +
                                    kFilters;
  // ?7 (the run, empty here) stays in the text so both take the same bindings.
  static const std::string kAll = std::string("SELECT ") + kAuditColumns +
                                  " FROM audit_events WHERE tenant_id = ?1 AND ?7 = '' AND " + kFilters;
  ASSIGN_OR_RETURN(auto statement, read_db_.prepare_cached(query.run_id.empty() ? kAll : kOfRun));
  statement.bind(1, tenant).bind(2, query.after_seq).bind(3, query.since_ms).bind(4, query.until_ms)
      .bind(5, query.principal).bind(6, query.action).bind(7, query.run_id)
      .bind(8, static_cast<int64_t>(query.limit));
  return collect_rows(statement, read_audit_event);
}

Result<std::vector<AuditCheckpointRecord>> SqliteStore::list_audit_checkpoints(const std::string& tenant,
                                                                              int64_t after_seq, int limit) {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto statement, read_db_.prepare_cached(
                                       "SELECT tenant_id, seq, hash, at_ms, key_id, public_key, signature FROM "
                                       "audit_checkpoints WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?"));
  statement.bind(1, tenant).bind(2, after_seq).bind(3, static_cast<int64_t>(limit));
  return collect_rows(statement, read_audit_checkpoint);
}

Result<std::vector<AuditEventRecord>> SqliteStore::list_audit_heads() {
  std::lock_guard lock(read_mutex_);
  ASSIGN_OR_RETURN(auto statement, read_db_.prepare_cached(
                                       "SELECT tenant_id, MAX(seq) FROM audit_events GROUP BY tenant_id"));
  ASSIGN_OR_RETURN(auto tenants, collect_rows(statement, [](const SqliteStatement& row) {
                     AuditEventRecord head;
                     head.tenant_id = row.column_text(0);
                     head.seq = row.column_int(1);
                     return head;
                   }));
  for (auto& head : tenants) {
    ASSIGN_OR_RETURN(auto hash, read_db_.prepare_cached("SELECT hash FROM audit_events WHERE tenant_id = ? AND seq = ?"));
    hash.bind(1, head.tenant_id).bind(2, head.seq);
    if (hash.step()) head.hash = hash.column_text(0);
    RETURN_IF_ERROR(hash.step_status());
  }
  return tenants;
}

}  // namespace continuum
