// Store on PostgreSQL (libpq): several Continuum nodes may share one database.
//
// Writes: one writer connection on the group-commit thread. A group of
// batches is sent as one pipeline inside one transaction (one round trip, one
// WAL flush at COMMIT). Every statement carries an expectation (a versioned
// update touches one row, ...); if any batch fails, the transaction is rolled
// back and the group is applied again batch by batch under savepoints, so a
// failing batch fails alone. The writer reconnects with bounded backoff; a
// group whose connection was lost before COMMIT is sent once more, one lost
// during COMMIT fails with kUnavailable (its outcome is unknown; callers
// reload what is durable).
//
// Reads: a bounded pool of connections; a read that finds its connection
// lost is retried once on a new one.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "core/clock.h"
#include "obs/metrics.h"
#include "store/group_commit.h"
#include "store/postgres/pg_connection.h"
#include "store/store.h"

namespace continuum {

struct PgStatement;  // one statement of a compiled batch (pg_store.cpp)

struct PostgresStoreOptions {
  std::string url;                        // postgres://... or a libpq connection string
  int read_connections_max = 8;
  int batches_per_transaction_max = 512;
  int64_t reconnect_timeout_ms = 10'000;  // per attempt to commit a group
};

class PostgresStore final : public Store {
 public:
  // Connects, migrates the schema and starts the writer.
  static Result<std::unique_ptr<PostgresStore>> open(PostgresStoreOptions options, const Clock& clock,
                                                     MetricsRegistry* metrics);
  ~PostgresStore() override;

  Result<AgentRecord> get_agent(const std::string& tenant, const std::string& name,
                                std::optional<int64_t> version) override;
  Result<std::vector<AgentRecord>> list_agents(const std::string& tenant) override;
  Result<SessionRecord> get_session(const std::string& tenant, const std::string& id) override;
  Result<std::vector<SessionRecord>> list_sessions(const std::string& tenant,
                                                   const std::optional<std::string>& user_id,
                                                   const std::string& after_id, int limit) override;
  Result<std::vector<ItemRecord>> list_items(const std::string& tenant, const std::string& session,
                                             int64_t after_seq, int limit) override;
  Result<std::vector<ItemRecord>> recent_items(const std::string& tenant, const std::string& session,
                                               int64_t before_seq, int limit) override;
  Result<RunRecord> get_run(const std::string& tenant, const std::string& id) override;
  Result<std::vector<RunRecord>> list_runs(const std::string& tenant, const std::string& session,
                                           int limit) override;
  Result<std::vector<RunRecord>> list_queued_runs(const std::string& tenant, const std::string& session,
                                                  int limit) override;
  Result<std::vector<RunRecord>> list_unfinished_runs_of_session(const std::string& tenant,
                                                                 const std::string& session, int limit) override;
  Result<std::vector<RunRecord>> list_unfinished_runs() override;
  Result<std::vector<StepRecord>> list_steps(const std::string& tenant, const std::string& run,
                                             int64_t after_seq, int limit) override;
  Result<ApiKeyRecord> get_api_key(const std::string& id) override;
  Result<std::vector<ApiKeyRecord>> list_api_keys(const std::string& tenant) override;
  Result<PolicyRecord> get_policy(const std::string& tenant, std::optional<int64_t> version) override;
  Result<std::vector<PolicyRecord>> list_policies(const std::string& tenant, int limit) override;
  Result<ApprovalRecord> get_approval(const std::string& tenant, const std::string& id) override;
  Result<std::vector<ApprovalRecord>> list_approvals(const std::string& tenant, const std::string& status,
                                                     int64_t now_ms, const std::string& after_id,
                                                     int limit) override;
  Result<std::vector<AuditEventRecord>> list_audit_events(const std::string& tenant,
                                                          const AuditQuery& query) override;
  Result<std::vector<AuditCheckpointRecord>> list_audit_checkpoints(const std::string& tenant, int64_t after_seq,
                                                                   int limit) override;
  Result<std::vector<AuditEventRecord>> list_audit_heads() override;
  Result<SecretRecord> get_secret(const std::string& tenant, const std::string& name) override;
  Result<std::vector<SecretRecord>> list_secrets(const std::string& tenant) override;
  Result<std::vector<DataKeyRecord>> list_data_keys(const std::string& tenant) override;
  Result<std::vector<McpToolPinRecord>> list_mcp_tool_pins(const std::string& tenant,
                                                           const std::string& server) override;
  void commit(WriteBatch batch, std::function<void(Status)> done) override;
  void commit_many(std::vector<CommitRequest> requests, CommitPacing pacing) override;
  void release_held_commits() override;
  StoreStats stats() override;

 private:
  PostgresStore(PostgresStoreOptions options, const Clock& clock, MetricsRegistry* metrics);

  // ---- writer thread ----
  void commit_group(std::vector<PendingBatch>& group);
  Status ensure_writer();
  // true: committed; false: some batch failed and all was rolled back.
  // `commit_sent` tells a failure before COMMIT (nothing durable) from one after.
  // `opening`: what each transaction runs first (the audit chain locks).
  Result<bool> commit_together(const std::vector<PgQuery>& opening,
                               const std::vector<std::vector<PgStatement>>& batches, bool* commit_sent);
  Status commit_one_by_one(const std::vector<PgQuery>& opening, const std::vector<std::vector<PgStatement>>& batches,
                           std::vector<Status>& results);

  // ---- readers ----
  Result<PgResult> read(const std::string& sql, const PgParams& params);
  Result<std::unique_ptr<PgConnection>> acquire_reader();
  void release_reader(std::unique_ptr<PgConnection> connection);

  PostgresStoreOptions options_;
  const Clock& clock_;
  std::unique_ptr<PgConnection> writer_;  // writer thread only (after open)

  std::mutex readers_mutex_;
  std::condition_variable reader_released_;
  std::vector<std::unique_ptr<PgConnection>> idle_readers_;  // guarded by readers_mutex_
  int readers_open_ = 0;                                     // guarded by readers_mutex_

  Counter* reconnects_ = nullptr;
  GroupCommitQueue writes_;  // declared last: stopped first, while the connections live
};

}  // namespace continuum
