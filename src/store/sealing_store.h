// Encryption at rest as a Store decorator: payloads are sealed on their way
// into the inner store and opened on their way out, so both backends store
// only ciphertext for them.
//
// Sealed: agent specs, session metadata, conversation items, run inputs and
// snapshots, journal step payloads (model inputs and outputs, tool arguments
// and results), vault secret values. Ids, names, statuses, sequence numbers and times stay plain:
// they are what rows are found and ordered by.
//
// Each value is sealed with AES-256-GCM under the data key of its scope: the
// session's end user ("user:<id>") when the session has one, else the tenant.
// Format: "\0cs1" | scope length (1 byte) | scope | key version (8 bytes, big
// endian) | nonce | ciphertext | tag. The associated data binds the value to
// tenant, table, row and column (and to this header): a value copied to
// another row, or damaged, fails to open with kDataLoss, never as garbage.
//
// Session metadata that does not open reads as null (the session stays
// listable and deletable); every other payload that does not open fails the
// read with kDataLoss.
//
// Thread safety: as the inner store. The keyring must outlive this store.
#pragma once

#include <mutex>
#include <unordered_map>

#include "core/clock.h"
#include "crypto/keyring.h"
#include "store/forwarding_store.h"

namespace continuum {

class SealingStore final : public ForwardingStore {
 public:
  SealingStore(Store& inner, Keyring& keyring, Random& random)
      : ForwardingStore(inner), keyring_(keyring), random_(random) {}

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
  // Runs whose data no longer opens (a shredded user) are left out and logged:
  // they cannot be resumed, and must not stop the others from recovering.
  Result<std::vector<RunRecord>> list_unfinished_runs() override;
  Result<std::vector<StepRecord>> list_steps(const std::string& tenant, const std::string& run, int64_t after_seq,
                                             int limit) override;
  Result<ApprovalRecord> get_approval(const std::string& tenant, const std::string& id) override;
  Result<std::vector<ApprovalRecord>> list_approvals(const std::string& tenant, const std::string& status,
                                                     int64_t now_ms, const std::string& after_id,
                                                     int limit) override;
  Result<SecretRecord> get_secret(const std::string& tenant, const std::string& name) override;
  void commit(WriteBatch batch, std::function<void(Status)> done) override;
  void commit_many(std::vector<CommitRequest> requests, CommitPacing pacing) override;
  void release_held_commits() override { inner_.release_held_commits(); }

 private:
  // The data key last used while sealing one batch (its fields mostly share
  // a tenant and scope): looked up once, not per field.
  struct KeyMemo {
    std::string tenant;
    std::string scope;
    std::shared_ptr<const DataKey> key;
  };
  Result<std::string> seal(const std::string& tenant, const std::string& scope, std::string_view table,
                           std::string_view row, std::string_view column, std::string_view plaintext,
                           KeyMemo* memo = nullptr);
  Result<std::string> open(const std::string& tenant, std::string_view table, std::string_view row,
                           std::string_view column, std::string_view sealed);
  Status seal_batch(WriteBatch& batch);
  // A session whose metadata does not open (shredded user, damage) keeps its
  // plain fields and gets metadata null.
  void open_session_metadata(SessionRecord& session);
  void open_approval(ApprovalRecord& approval);
  Status open_run(RunRecord& run);
  Result<std::vector<RunRecord>> open_runs(Result<std::vector<RunRecord>> runs);
  Result<std::vector<ItemRecord>> open_items(Result<std::vector<ItemRecord>> items);
  // The key scope of a session's data, and of a run's (through its session).
  Result<std::string> session_scope(const std::string& tenant, const std::string& session);
  Result<std::string> run_scope(const std::string& tenant, const std::string& run);
  void remember_scope(std::unordered_map<std::string, std::string>& map, std::string key, std::string scope);

  Keyring& keyring_;
  Random& random_;
  std::mutex scopes_mutex_;
  std::unordered_map<std::string, std::string> scope_by_session_;  // guarded by scopes_mutex_
  std::unordered_map<std::string, std::string> scope_by_run_;      // guarded by scopes_mutex_
};

// "user:<id>" for a session with an end user, else "tenant".
std::string key_scope_of(const SessionRecord& session);

}  // namespace continuum
