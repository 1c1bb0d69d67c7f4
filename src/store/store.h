// The Store: durable state behind one interface, so the engine can run on
// SQLite, PostgreSQL or a fault-injecting double.
//
// Contract:
// - Reads are synchronous and see every batch whose commit callback has run.
// - commit() is asynchronous: `done` runs (on the store's writer thread) only
//   after the batch is durable (fsynced) or has failed as a whole. Batches are
//   applied in the order commit() was called.
// - Thread safety: all methods may be called from any thread.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/records.h"

namespace continuum {

struct AuditQuery {
  int64_t after_seq = 0;
  int64_t since_ms = 0;       // at_ms >= since_ms
  int64_t until_ms = 0;       // at_ms < until_ms (0 = no bound)
  std::string principal;
  std::string action;
  std::string run_id;
  int limit = 100;
};

// A batch and what to call once it is durable (or failed), for commit_many.
struct CommitRequest {
  WriteBatch batch;
  std::function<void(Status)> done;
};

// What a committer says about the commits after these (see commit_many).
enum class CommitPacing {
  kNow,         // end the transaction when these are written
  kMoreFollow,  // more follow at once: the transaction may stay open for them
};

struct StoreStats {
  int64_t batches_committed = 0;
  int64_t transactions_committed = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  virtual Result<AgentRecord> get_agent(const std::string& tenant, const std::string& name,
                                        std::optional<int64_t> version) = 0;
  // Latest version of every agent, by name.
  virtual Result<std::vector<AgentRecord>> list_agents(const std::string& tenant) = 0;

  virtual Result<SessionRecord> get_session(const std::string& tenant, const std::string& id) = 0;
  // Newest first; `after_id` is the cursor (the last id of the previous page).
  // With `user_id`, only that end user's sessions.
  virtual Result<std::vector<SessionRecord>> list_sessions(const std::string& tenant,
                                                           const std::optional<std::string>& user_id,
                                                           const std::string& after_id, int limit) = 0;

  // Oldest first, items with seq > after_seq.
  virtual Result<std::vector<ItemRecord>> list_items(const std::string& tenant, const std::string& session,
                                                     int64_t after_seq, int limit) = 0;
  // Newest first: up to `limit` items with seq < before_seq (0 = from the newest).
  virtual Result<std::vector<ItemRecord>> recent_items(const std::string& tenant, const std::string& session,
                                                       int64_t before_seq, int limit) = 0;

  virtual Result<RunRecord> get_run(const std::string& tenant, const std::string& id) = 0;
  virtual Result<std::vector<RunRecord>> list_runs(const std::string& tenant, const std::string& session,
                                                   int limit) = 0;
  // Queued runs of one session, oldest first.
  virtual Result<std::vector<RunRecord>> list_queued_runs(const std::string& tenant, const std::string& session,
                                                          int limit) = 0;
  // Unfinished (queued, running, waiting) runs of one session, oldest first.
  virtual Result<std::vector<RunRecord>> list_unfinished_runs_of_session(const std::string& tenant,
                                                                         const std::string& session, int limit) = 0;
  // Runs not in a terminal status, across tenants, oldest first (for recovery).
  virtual Result<std::vector<RunRecord>> list_unfinished_runs() = 0;

  virtual Result<std::vector<StepRecord>> list_steps(const std::string& tenant, const std::string& run,
                                                     int64_t after_seq, int limit) = 0;

  virtual Result<SecretRecord> get_secret(const std::string& tenant, const std::string& name) = 0;
  // By name; `value` is left empty (listing never reads secret values).
  virtual Result<std::vector<SecretRecord>> list_secrets(const std::string& tenant) = 0;

  // The authentication lookup: by id across tenants (the key names its tenant).
  virtual Result<ApiKeyRecord> get_api_key(const std::string& id) = 0;
  // Oldest first, revoked ones included.
  virtual Result<std::vector<ApiKeyRecord>> list_api_keys(const std::string& tenant) = 0;

  // The newest version when `version` is empty; kNotFound when the tenant has none.
  virtual Result<PolicyRecord> get_policy(const std::string& tenant, std::optional<int64_t> version) = 0;
  // Newest first.
  virtual Result<std::vector<PolicyRecord>> list_policies(const std::string& tenant, int limit) = 0;

  virtual Result<ApprovalRecord> get_approval(const std::string& tenant, const std::string& id) = 0;
  // Oldest first, after the approval `after_id` ("" = from the start); `status` "" = any. "pending" lists
  // only those not yet expired at `now_ms`; "expired" also those pending past their expiry.
  virtual Result<std::vector<ApprovalRecord>> list_approvals(const std::string& tenant, const std::string& status,
                                                             int64_t now_ms, const std::string& after_id,
                                                             int limit) = 0;

  // Audit events of a tenant in seq order, filtered (empty fields = any).
  virtual Result<std::vector<AuditEventRecord>> list_audit_events(const std::string& tenant,
                                                                  const AuditQuery& query) = 0;
  virtual Result<std::vector<AuditCheckpointRecord>> list_audit_checkpoints(const std::string& tenant,
                                                                           int64_t after_seq, int limit) = 0;
  // The newest event of each tenant's chain (seq and hash only), for checkpointing.
  virtual Result<std::vector<AuditEventRecord>> list_audit_heads() = 0;

  // Every data key of `tenant`, or of all tenants if `tenant` is "".
  virtual Result<std::vector<DataKeyRecord>> list_data_keys(const std::string& tenant) = 0;
  // The tenant's tool pins of `server` ("" = every server), by server and tool.
  virtual Result<std::vector<McpToolPinRecord>> list_mcp_tool_pins(const std::string& tenant,
                                                                   const std::string& server) = 0;

  virtual void commit(WriteBatch batch, std::function<void(Status)> done) = 0;
  // As commit() for each request, in order. Backends queue them all at once,
  // so their writer can take them into one transaction. With kMoreFollow a
  // backend may write them at once but keep the transaction (and its fsync)
  // open for what follows, until a commit with kNow, release_held_commits(),
  // or a bound of its own; `done` still runs only once a batch is durable.
  virtual void commit_many(std::vector<CommitRequest> requests, CommitPacing pacing);
  // Nothing more follows the kMoreFollow commits: end their transaction.
  virtual void release_held_commits() {}
  // Convenience: commit and wait. Must not be called on a thread that the
  // commit's completion depends on (see CoalescingStore).
  virtual Status commit_and_wait(WriteBatch batch);

  virtual StoreStats stats() = 0;
};

}  // namespace continuum
