// A Store that passes every call to another Store: the base of decorators
// (sealing, fault injection), which override only what they change.
// The inner store must outlive this one.
#pragma once

#include "store/store.h"

namespace continuum {

class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(Store& inner) : inner_(inner) {}

  Result<AgentRecord> get_agent(const std::string& tenant, const std::string& name,
                                std::optional<int64_t> version) override {
    return inner_.get_agent(tenant, name, version);
  }
  Result<std::vector<AgentRecord>> list_agents(const std::string& tenant) override {
    return inner_.list_agents(tenant);
  }
  Result<SessionRecord> get_session(const std::string& tenant, const std::string& id) override {
    return inner_.get_session(tenant, id);
  }
  Result<std::vector<SessionRecord>> list_sessions(const std::string& tenant,
                                                   const std::optional<std::string>& user_id,
                                                   const std::string& after_id, int limit) override {
    return inner_.list_sessions(tenant, user_id, after_id, limit);
  }
  Result<std::vector<ItemRecord>> list_items(const std::string& tenant, const std::string& session,
                                             int64_t after_seq, int limit) override {
    return inner_.list_items(tenant, session, after_seq, limit);
  }
  Result<std::vector<ItemRecord>> recent_items(const std::string& tenant, const std::string& session,
                                               int64_t before_seq, int limit) override {
    return inner_.recent_items(tenant, session, before_seq, limit);
  }
  Result<RunRecord> get_run(const std::string& tenant, const std::string& id) override {
    return inner_.get_run(tenant, id);
  }
  Result<std::vector<RunRecord>> list_runs(const std::string& tenant, const std::string& session,
                                           int limit) override {
    return inner_.list_runs(tenant, session, limit);
  }
  Result<std::vector<RunRecord>> list_queued_runs(const std::string& tenant, const std::string& session,
                                                  int limit) override {
    return inner_.list_queued_runs(tenant, session, limit);
  }
  Result<std::vector<RunRecord>> list_unfinished_runs_of_session(const std::string& tenant,
                                                                 const std::string& session, int limit) override {
    return inner_.list_unfinished_runs_of_session(tenant, session, limit);
  }
  Result<std::vector<RunRecord>> list_unfinished_runs() override { return inner_.list_unfinished_runs(); }
  Result<std::vector<StepRecord>> list_steps(const std::string& tenant, const std::string& run, int64_t after_seq,
                                             int limit) override {
    return inner_.list_steps(tenant, run, after_seq, limit);
  }
  Result<ApiKeyRecord> get_api_key(const std::string& id) override { return inner_.get_api_key(id); }
  Result<std::vector<ApiKeyRecord>> list_api_keys(const std::string& tenant) override {
    return inner_.list_api_keys(tenant);
  }
  Result<std::vector<McpToolPinRecord>> list_mcp_tool_pins(const std::string& tenant,
                                                           const std::string& server) override {
    return inner_.list_mcp_tool_pins(tenant, server);
  }
  Result<PolicyRecord> get_policy(const std::string& tenant, std::optional<int64_t> version) override {
    return inner_.get_policy(tenant, version);
  }
  Result<std::vector<PolicyRecord>> list_policies(const std::string& tenant, int limit) override {
    return inner_.list_policies(tenant, limit);
  }
  Result<ApprovalRecord> get_approval(const std::string& tenant, const std::string& id) override {
    return inner_.get_approval(tenant, id);
  }
  Result<std::vector<ApprovalRecord>> list_approvals(const std::string& tenant, const std::string& status,
                                                     int64_t now_ms, const std::string& after_id,
                                                     int limit) override {
    return inner_.list_approvals(tenant, status, now_ms, after_id, limit);
  }
  Result<std::vector<AuditEventRecord>> list_audit_events(const std::string& tenant,
                                                          const AuditQuery& query) override {
    return inner_.list_audit_events(tenant, query);
  }
  Result<std::vector<AuditCheckpointRecord>> list_audit_checkpoints(const std::string& tenant, int64_t after_seq,
                                                                   int limit) override {
    return inner_.list_audit_checkpoints(tenant, after_seq, limit);
  }
  Result<std::vector<AuditEventRecord>> list_audit_heads() override { return inner_.list_audit_heads(); }
  Result<SecretRecord> get_secret(const std::string& tenant, const std::string& name) override {
    return inner_.get_secret(tenant, name);
  }
  Result<std::vector<SecretRecord>> list_secrets(const std::string& tenant) override {
    return inner_.list_secrets(tenant);
  }
  Result<std::vector<DataKeyRecord>> list_data_keys(const std::string& tenant) override {
    return inner_.list_data_keys(tenant);
  }
  void commit(WriteBatch batch, std::function<void(Status)> done) override {
    inner_.commit(std::move(batch), std::move(done));
  }
  StoreStats stats() override { return inner_.stats(); }

 protected:
  Store& inner_;
};

}  // namespace continuum
