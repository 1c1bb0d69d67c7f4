#include "auth/authorizer.h"

#include "core/log.h"

namespace continuum {

namespace {

// Admins of a tenant do anything in it; members work with agents and their own
// sessions; agents may use their tools and model. Tenants replace this with
// their own document (PUT /v1/policy); see docs/policy.md.
constexpr const char* kDefaultPolicy = R"yaml(
statements:
  - id: admins-do-everything
    effect: allow
    principal: role:admin
    action: "*"
    resource: "*"
  - id: auditors-read-audit-and-policy
    effect: allow
    principal: role:auditor
    action: [audit:read, policy:read]
    resource: "*"
  - id: approvers-decide-approvals
    effect: allow
    principal: role:approver
    action: [approval:read, approval:decide]
    resource: "*"
  - id: members-read-agents
    effect: allow
    principal: role:member
    action: agent:read
    resource: "*"
  - id: members-own-sessions-and-runs
    effect: allow
    principal: role:member
    action: ["session:*", "run:*"]
    resource: ["session:*", "run:*"]
    when: resource.owner == principal.id
  - id: agents-use-tools-and-models
    effect: allow
    principal: "agent:*"
    action: [tool:invoke, model:invoke]
    resource: "*"
)yaml";

}  // namespace

Authorizer::Authorizer(Store& store, const Clock& clock, int64_t cache_ms)
    : store_(store), clock_(clock), cache_ms_(cache_ms) {
  auto parsed = policy::PolicyDocument::parse(kDefaultPolicy);
  // The built-in text is a constant checked by unit tests; failing here is a bug.
  if (!parsed.is_ok()) {
    log::error("the built-in default policy does not parse", {{"error", parsed.status().to_string()}});
    std::abort();
  }
  default_policy_ = std::make_shared<const policy::PolicyDocument>(std::move(*parsed));
}

const char* Authorizer::default_policy_text() { return kDefaultPolicy; }

Result<PolicyInForce> Authorizer::policy_in_force(const std::string& tenant) {
  int64_t now = clock_.now_ms();
  {
    std::lock_guard lock(mutex_);
    auto found = cache_.find(tenant);
    if (found != cache_.end() && now - found->second.loaded_at_ms < cache_ms_) return found->second.policy;
  }
  PolicyInForce loaded{0, default_policy_};
  auto stored = store_.get_policy(tenant, std::nullopt);
  if (stored.is_ok()) {
    auto document = policy::PolicyDocument::parse(stored->document_json);
    if (!document.is_ok()) {
      return internal_error("stored policy version " + std::to_string(stored->version) +
                            " does not parse: " + document.status().message());
    }
    loaded = PolicyInForce{stored->version, std::make_shared<const policy::PolicyDocument>(std::move(*document))};
  } else if (stored.status().code() != Code::kNotFound) {
    return stored.status();
  }
  std::lock_guard lock(mutex_);
  cache_[tenant] = Cached{loaded, now};
  return loaded;
}

void Authorizer::forget(const std::string& tenant) {
  std::lock_guard lock(mutex_);
  cache_.erase(tenant);
}

Result<policy::Decision> Authorizer::decide(const std::string& tenant, const policy::Request& request) {
  ASSIGN_OR_RETURN(auto in_force, policy_in_force(tenant));
  return policy::evaluate(*in_force.document, request);
}

json::object api_request_context(const Principal& who, json::object resource) {
  return json::object{{"principal", who.to_context()},
                      {"user", json::object{{"id", who.user_id}}},
                      {"resource", std::move(resource)}};
}

}  // namespace continuum
