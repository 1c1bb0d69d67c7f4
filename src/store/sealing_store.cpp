#include "store/sealing_store.h"

#include "core/log.h"
#include "store/sealed_value.h"

namespace continuum {

namespace {

constexpr size_t kScopeCachedMax = 200'000;  // per map; cleared when full (a cache, not state)

std::string cache_key(const std::string& tenant, const std::string& id) { return tenant + '\0' + id; }

std::string step_row(const std::string& run, int64_t seq) { return run + '\0' + std::to_string(seq); }
std::string agent_row(const AgentRecord& agent) { return agent.name + '\0' + std::to_string(agent.version); }

}  // namespace

std::string key_scope_of(const SessionRecord& session) {
  return session.user_id.empty() ? "tenant" : "user:" + session.user_id;
}

Result<std::string> SealingStore::seal(const std::string& tenant, const std::string& scope, std::string_view table,
                                       std::string_view row, std::string_view column, std::string_view plaintext,
                                       KeyMemo* memo) {
  if (scope.size() > 255) return invalid_argument("user id too long to key a scope", "user");
  std::shared_ptr<const DataKey> key;
  if (memo != nullptr && memo->key && memo->tenant == tenant && memo->scope == scope) {
    key = memo->key;
  } else {
    ASSIGN_OR_RETURN(key, keyring_.current(tenant, scope));
    if (memo != nullptr) *memo = KeyMemo{tenant, scope, key};
  }
  std::string sealed = sealed_header(scope, key->version);
  thread_local std::string aad;  // its buffer is reused: sealing runs per field of every step
  payload_aad_into(aad, tenant, table, row, column, sealed);
  sealed.reserve(sealed.size() + kAeadNonceBytes + plaintext.size() + kAeadTagBytes);
  RETURN_IF_ERROR(aead_seal_append(key->key, plaintext, aad, sealed));
  return sealed;
}

Result<std::string> SealingStore::open(const std::string& tenant, std::string_view table, std::string_view row,
                                       std::string_view column, std::string_view sealed) {
  ASSIGN_OR_RETURN(auto parsed, parse_sealed_header(sealed));
  ASSIGN_OR_RETURN(auto key, keyring_.find(tenant, parsed.scope, parsed.version));
  auto plaintext = aead_open(key->key, sealed.substr(parsed.size),
                             payload_aad(tenant, table, row, column, sealed.substr(0, parsed.size)));
  if (!plaintext.is_ok()) {
    return Status(Code::kDataLoss, std::string(table) + " row failed its integrity check: " +
                                       plaintext.status().message());
  }
  return plaintext;
}

void SealingStore::remember_scope(std::unordered_map<std::string, std::string>& map, std::string key,
                                  std::string scope) {
  std::lock_guard lock(scopes_mutex_);
  if (map.size() >= kScopeCachedMax) map.clear();
  map[std::move(key)] = std::move(scope);
}

Result<std::string> SealingStore::session_scope(const std::string& tenant, const std::string& session) {
  {
    std::lock_guard lock(scopes_mutex_);
    if (auto found = scope_by_session_.find(cache_key(tenant, session)); found != scope_by_session_.end()) {
      return found->second;
    }
  }
  ASSIGN_OR_RETURN(auto record, inner_.get_session(tenant, session));  // user_id is stored plain
  std::string scope = key_scope_of(record);
  remember_scope(scope_by_session_, cache_key(tenant, session), scope);
  return scope;
}

Result<std::string> SealingStore::run_scope(const std::string& tenant, const std::string& run) {
  {
    std::lock_guard lock(scopes_mutex_);
    if (auto found = scope_by_run_.find(cache_key(tenant, run)); found != scope_by_run_.end()) return found->second;
  }
  ASSIGN_OR_RETURN(auto record, inner_.get_run(tenant, run));  // session_id is stored plain
  ASSIGN_OR_RETURN(auto scope, session_scope(tenant, record.session_id));
  remember_scope(scope_by_run_, cache_key(tenant, run), scope);
  return scope;
}

// ---- writes ----

Status SealingStore::seal_batch(WriteBatch& batch) {
  KeyMemo memo;
  // A step's fields share their run: its scope is looked up once per batch.
  std::string memo_tenant, memo_run, memo_run_scope;
  auto scope_of_run = [&](const std::string& tenant, const std::string& run) -> Result<std::string> {
    if (!memo_run.empty() && run == memo_run && tenant == memo_tenant) return memo_run_scope;
    ASSIGN_OR_RETURN(auto scope, run_scope(tenant, run));
    memo_tenant = tenant;
    memo_run = run;
    memo_run_scope = scope;
    return scope;
  };
  for (const auto& session : batch.session_inserts) {
    remember_scope(scope_by_session_, cache_key(session.tenant_id, session.id), key_scope_of(session));
  }
  for (const auto& run : batch.run_inserts) {
    ASSIGN_OR_RETURN(auto scope, session_scope(run.tenant_id, run.session_id));
    remember_scope(scope_by_run_, cache_key(run.tenant_id, run.id), scope);
  }
  for (auto& agent : batch.agent_inserts) {
    ASSIGN_OR_RETURN(agent.spec_json,
                     seal(agent.tenant_id, "tenant", "agents", agent_row(agent), "spec", agent.spec_json, &memo));
  }
  for (auto* sessions : {&batch.session_inserts, &batch.session_metadata_updates}) {
    for (auto& session : *sessions) {
      ASSIGN_OR_RETURN(session.metadata_json, seal(session.tenant_id, key_scope_of(session), "sessions", session.id,
                                                   "metadata", session.metadata_json, &memo));
    }
  }
  for (auto& run : batch.run_inserts) {
    ASSIGN_OR_RETURN(auto scope, scope_of_run(run.tenant_id, run.id));
    ASSIGN_OR_RETURN(run.input, seal(run.tenant_id, scope, "runs", run.id, "input", run.input, &memo));
    ASSIGN_OR_RETURN(run.snapshot_json,
                     seal(run.tenant_id, scope, "runs", run.id, "snapshot", run.snapshot_json, &memo));
  }
  for (auto& run : batch.run_updates) {  // an update writes status and snapshot only
    ASSIGN_OR_RETURN(auto scope, scope_of_run(run.tenant_id, run.id));
    ASSIGN_OR_RETURN(run.snapshot_json,
                     seal(run.tenant_id, scope, "runs", run.id, "snapshot", run.snapshot_json, &memo));
  }
  for (auto& step : batch.steps) {
    ASSIGN_OR_RETURN(auto scope, scope_of_run(step.tenant_id, step.run_id));
    ASSIGN_OR_RETURN(step.payload_json, seal(step.tenant_id, scope, "steps", step_row(step.run_id, step.seq),
                                             "payload", step.payload_json, &memo));
  }
  for (auto& approval : batch.approval_inserts) {
    ASSIGN_OR_RETURN(auto scope, run_scope(approval.tenant_id, approval.run_id));
    ASSIGN_OR_RETURN(approval.arguments_json, seal(approval.tenant_id, scope, "approvals", approval.id, "arguments",
                                                   approval.arguments_json, &memo));
  }
  for (auto& secret : batch.secret_upserts) {
    ASSIGN_OR_RETURN(secret.value,
                     seal(secret.tenant_id, "tenant", "secrets", secret.name, "value", secret.value, &memo));
  }
  for (auto& item : batch.items) {
    if (item.id.empty()) item.id = "item_" + random_.hex(12);
    ASSIGN_OR_RETURN(auto scope, session_scope(item.tenant_id, item.session_id));
    ASSIGN_OR_RETURN(item.message_json,
                     seal(item.tenant_id, scope, "items", item.id, "message", item.message_json, &memo));
  }
  return Status::ok();
}

void SealingStore::commit(WriteBatch batch, std::function<void(Status)> done) {
  Status sealed = seal_batch(batch);
  if (!sealed.is_ok()) {
    done(std::move(sealed));
    return;
  }
  inner_.commit(std::move(batch), std::move(done));
}

void SealingStore::commit_many(std::vector<CommitRequest> requests, CommitPacing pacing) {
  std::vector<CommitRequest> sealed;
  sealed.reserve(requests.size());
  for (auto& request : requests) {
    Status status = seal_batch(request.batch);
    if (status.is_ok()) {
      sealed.push_back(std::move(request));
    } else {
      // Batches before it are queued first, so completions stay in order.
      inner_.commit_many(std::move(sealed), CommitPacing::kMoreFollow);
      sealed.clear();
      request.done(std::move(status));
    }
  }
  inner_.commit_many(std::move(sealed), pacing);
}

// ---- reads ----

Result<AgentRecord> SealingStore::get_agent(const std::string& tenant, const std::string& name,
                                            std::optional<int64_t> version) {
  ASSIGN_OR_RETURN(auto agent, inner_.get_agent(tenant, name, version));
  ASSIGN_OR_RETURN(agent.spec_json, open(tenant, "agents", agent_row(agent), "spec", agent.spec_json));
  return agent;
}

Result<std::vector<AgentRecord>> SealingStore::list_agents(const std::string& tenant) {
  ASSIGN_OR_RETURN(auto agents, inner_.list_agents(tenant));
  for (auto& agent : agents) {
    ASSIGN_OR_RETURN(agent.spec_json, open(tenant, "agents", agent_row(agent), "spec", agent.spec_json));
  }
  return agents;
}

void SealingStore::open_session_metadata(SessionRecord& session) {
  auto metadata = open(session.tenant_id, "sessions", session.id, "metadata", session.metadata_json);
  if (metadata.is_ok()) {
    session.metadata_json = std::move(*metadata);
    return;
  }
  // The session itself (id, agent, user, times) is plain and stays usable: it
  // can be listed and deleted after its user was shredded.
  log::warn("session metadata unreadable; shown as null",
            {{"session_id", session.id}, {"error", metadata.status().to_string()}});
  session.metadata_json = "null";
}

Result<SessionRecord> SealingStore::get_session(const std::string& tenant, const std::string& id) {
  ASSIGN_OR_RETURN(auto session, inner_.get_session(tenant, id));
  open_session_metadata(session);
  return session;
}

Result<std::vector<SessionRecord>> SealingStore::list_sessions(const std::string& tenant,
                                                               const std::optional<std::string>& user_id,
                                                               const std::string& after_id, int limit) {
  ASSIGN_OR_RETURN(auto sessions, inner_.list_sessions(tenant, user_id, after_id, limit));
  for (auto& session : sessions) open_session_metadata(session);
  return sessions;
}

Result<std::vector<ItemRecord>> SealingStore::open_items(Result<std::vector<ItemRecord>> items) {
  if (!items.is_ok()) return items;
  for (auto& item : *items) {
    ASSIGN_OR_RETURN(item.message_json, open(item.tenant_id, "items", item.id, "message", item.message_json));
  }
  return items;
}

Result<std::vector<ItemRecord>> SealingStore::list_items(const std::string& tenant, const std::string& session,
                                                         int64_t after_seq, int limit) {
  return open_items(inner_.list_items(tenant, session, after_seq, limit));
}

Result<std::vector<ItemRecord>> SealingStore::recent_items(const std::string& tenant, const std::string& session,
                                                           int64_t before_seq, int limit) {
  return open_items(inner_.recent_items(tenant, session, before_seq, limit));
}

Status SealingStore::open_run(RunRecord& run) {
  ASSIGN_OR_RETURN(run.input, open(run.tenant_id, "runs", run.id, "input", run.input));
  ASSIGN_OR_RETURN(run.snapshot_json, open(run.tenant_id, "runs", run.id, "snapshot", run.snapshot_json));
  return Status::ok();
}

Result<std::vector<RunRecord>> SealingStore::open_runs(Result<std::vector<RunRecord>> runs) {
  if (!runs.is_ok()) return runs;
  for (auto& run : *runs) RETURN_IF_ERROR(open_run(run));
  return runs;
}

Result<RunRecord> SealingStore::get_run(const std::string& tenant, const std::string& id) {
  ASSIGN_OR_RETURN(auto run, inner_.get_run(tenant, id));
  RETURN_IF_ERROR(open_run(run));
  return run;
}

Result<std::vector<RunRecord>> SealingStore::list_runs(const std::string& tenant, const std::string& session,
                                                       int limit) {
  return open_runs(inner_.list_runs(tenant, session, limit));
}

Result<std::vector<RunRecord>> SealingStore::list_queued_runs(const std::string& tenant,
                                                              const std::string& session, int limit) {
  return open_runs(inner_.list_queued_runs(tenant, session, limit));
}

Result<std::vector<RunRecord>> SealingStore::list_unfinished_runs_of_session(const std::string& tenant,
                                                                             const std::string& session, int limit) {
  return open_runs(inner_.list_unfinished_runs_of_session(tenant, session, limit));
}

Result<std::vector<RunRecord>> SealingStore::list_unfinished_runs() {
  ASSIGN_OR_RETURN(auto runs, inner_.list_unfinished_runs());
  std::vector<RunRecord> readable;
  for (auto& run : runs) {
    Status opened = open_run(run);
    if (opened.is_ok()) {
      readable.push_back(std::move(run));
    } else {
      log::error("unfinished run is unreadable and is not resumed",
                 {{"run_id", run.id}, {"tenant", run.tenant_id}, {"error", opened.to_string()}});
    }
  }
  return readable;
}

// Arguments that do not open (a shredded user, damage) read as null: the
// approval stays listable and decidable (its hash still binds the call).
void SealingStore::open_approval(ApprovalRecord& approval) {
  auto opened = open(approval.tenant_id, "approvals", approval.id, "arguments", approval.arguments_json);
  approval.arguments_json = opened.is_ok() ? std::move(*opened) : "null";
}

Result<ApprovalRecord> SealingStore::get_approval(const std::string& tenant, const std::string& id) {
  ASSIGN_OR_RETURN(auto approval, inner_.get_approval(tenant, id));
  open_approval(approval);
  return approval;
}

Result<std::vector<ApprovalRecord>> SealingStore::list_approvals(const std::string& tenant, const std::string& status,
                                                                 int64_t now_ms, const std::string& after_id,
                                                                 int limit) {
  ASSIGN_OR_RETURN(auto approvals, inner_.list_approvals(tenant, status, now_ms, after_id, limit));
  for (auto& approval : approvals) open_approval(approval);
  return approvals;
}

Result<SecretRecord> SealingStore::get_secret(const std::string& tenant, const std::string& name) {
  ASSIGN_OR_RETURN(auto secret, inner_.get_secret(tenant, name));
  ASSIGN_OR_RETURN(secret.value, open(tenant, "secrets", secret.name, "value", secret.value));
  return secret;
}

Result<std::vector<StepRecord>> SealingStore::list_steps(const std::string& tenant, const std::string& run,
                                                         int64_t after_seq, int limit) {
  ASSIGN_OR_RETURN(auto steps, inner_.list_steps(tenant, run, after_seq, limit));
  for (auto& step : steps) {
    ASSIGN_OR_RETURN(step.payload_json,
                     open(tenant, "steps", step_row(step.run_id, step.seq), "payload", step.payload_json));
  }
  return steps;
}

}  // namespace continuum
