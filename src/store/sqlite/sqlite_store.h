// Store on one SQLite file: WAL journal, synchronous=FULL, group commit.
//
// One writer thread owns the write connection and drains the commit queue:
// every batch waiting when it wakes goes into one transaction (one fsync),
// each under a savepoint so a failing batch fails alone. Reads use a separate
// connection guarded by a mutex (WAL lets them run beside the writer).
// Checkpoints (the WAL copied back into the database file, with its fsync)
// run on a thread of their own, so commits do not wait for them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/clock.h"
#include "obs/metrics.h"
#include "store/group_commit.h"
#include "store/sqlite/sqlite_db.h"
#include "store/store.h"

namespace continuum {

// Rows of the audit tables (shared with the offline verifier, audit/verifier.cpp).
inline constexpr const char* kSqliteAuditColumns =
    "tenant_id, seq, at_ms, principal, action, resource, run_id, outcome, event, prev_hash, hash";
AuditEventRecord read_audit_event(const SqliteStatement& row);       // kSqliteAuditColumns, in order
AuditCheckpointRecord read_audit_checkpoint(const SqliteStatement& row);  // tenant_id, seq, hash, at_ms, key_id,
                                                                          // public_key, signature

struct SqliteStoreOptions {
  std::string path;                 // the database file
  int batches_per_transaction_max = 2048;
};

class SqliteStore final : public Store {
 public:
  // `metrics` may be null; if given it must outlive the store.
  static Result<std::unique_ptr<SqliteStore>> open(SqliteStoreOptions options, const Clock& clock,
                                                   MetricsRegistry* metrics);
  ~SqliteStore() override;

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
  SqliteStore(SqliteStoreOptions options, const Clock& clock, MetricsRegistry* metrics);
  Status open_connections();
  // The writer's two steps (see GroupCommitQueue): write a part of the open
  // transaction (beginning it), then end it for every batch written since.
  void apply_part(std::vector<PendingBatch>& part);
  void commit_group(std::vector<PendingBatch>& group);
  Status commit_each_under_savepoint(std::vector<PendingBatch>& group, std::vector<Status>& results);
  // What the run updates of a part (the batches the writer takes at once)
  // become when they are written together: per
  // batch, per index in its run_updates, kSkip or the version to check
  // against (instead of version - 1). See plan_run_updates.
  using RunUpdatePlan = std::map<size_t, int64_t>;
  static constexpr int64_t kSkip = -1;
  static std::vector<RunUpdatePlan> plan_run_updates(const std::vector<PendingBatch>& group);
  Status apply(const WriteBatch& batch, const RunUpdatePlan* run_updates = nullptr);
  Status apply_session_delete(const SessionRecord& session);
  // Moves the run from `expected_version` to its new version; conflict if it is not there.
  Status update_run(const RunRecord& run, int64_t expected_version);
  Status apply_governance(const WriteBatch& batch);  // API keys and policies
  Status apply_approvals(const WriteBatch& batch);
  Status apply_audit(const WriteBatch& batch);
  Status insert_audit_run_span(const std::string& tenant, const std::string& run, int64_t first_seq,
                               int64_t last_seq);
  Status load_item_seq();
  // Writes the item counter (if items were added) into the open transaction, before its COMMIT.
  Status save_item_seq();

  SqliteStoreOptions options_;
  SqliteDb write_db_;  // writer thread only
  // Each tenant's newest audit event (seq, hash) as written in the open
  // transaction; writer thread only. Cleared whenever a write is rolled back.
  std::unordered_map<std::string, std::pair<int64_t, std::string>> audit_heads_;
  // The last item seq given out (writer thread only): read from `sequences`
  // at open, written back there by each transaction that gave out more, so
  // no committed item's seq is ever given again (seqs of a write rolled back
  // are skipped: a gap).
  int64_t item_seq_ = 0;
  int64_t item_seq_saved_ = 0;
  // The open transaction (writer thread only): begun (or why not), and
  // whether a batch of it failed (it is then done again batch by batch).
  bool transaction_open_ = false;
  Status transaction_begun_;
  bool transaction_failed_ = false;
  std::mutex read_mutex_;
  SqliteDb read_db_;   // guarded by read_mutex_

  // Checkpoints: after a commit leaves kCheckpointFrames frames or more in
  // the WAL, the writer asks the checkpointer thread for a passive checkpoint
  // (SQLite's own would run inside that commit, holding up every batch of the
  // next group for the copy of the whole WAL and the database file's fsync).
  // Once the checkpointer has copied it, the writer copies what came since
  // (a few commits) itself, between two transactions, and the WAL starts
  // over. Past kCheckpointFramesMax (the checkpointer cannot keep up) the
  // writer checkpoints itself, as SQLite would.
  static constexpr int kCheckpointFrames = 10000;
  static constexpr int kCheckpointFramesMax = 40000;
  static int on_wal_commit(void* store, sqlite3* db, const char* schema, int frames);  // sqlite3_wal_hook
  void checkpoint_loop();
  void stop_checkpointer();
  SqliteDb checkpoint_db_;  // checkpointer_ thread only
  std::mutex checkpoint_mutex_;
  std::condition_variable checkpoint_wanted_;
  bool checkpoint_requested_ = false;   // guarded by checkpoint_mutex_
  bool checkpointer_stopping_ = false;  // guarded by checkpoint_mutex_
  std::atomic<bool> bulk_checkpointed_{false};  // the checkpointer copied the WAL; the writer copies the rest
  // continuum_store_wal_checkpoints_total{by="checkpointer"|"writer"}; null without metrics.
  Counter* checkpoints_by_checkpointer_ = nullptr;
  Counter* checkpoints_by_writer_ = nullptr;
  std::thread checkpointer_;

  GroupCommitQueue writes_;  // declared last: stopped first, while the connections live
};

}  // namespace continuum
