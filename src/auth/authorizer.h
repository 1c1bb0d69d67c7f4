// Decides whether an identity chain may perform an action on a resource,
// under the policy in force for its tenant (policy/policy.h).
//
// The policy in force is the tenant's newest stored version or, when it has
// none, the built-in default (version 0, default_policy_text()). Documents are
// cached per tenant for `cache_ms`, so a version written on another node takes
// effect within that time; forget() drops the cache after a local write.
// Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "auth/principal.h"
#include "core/clock.h"
#include "policy/policy.h"
#include "store/store.h"

namespace continuum {

struct PolicyInForce {
  int64_t version = 0;  // 0 = the built-in default
  std::shared_ptr<const policy::PolicyDocument> document;
};

class Authorizer {
 public:
  Authorizer(Store& store, const Clock& clock, int64_t cache_ms = 1000);

  Result<PolicyInForce> policy_in_force(const std::string& tenant);
  void forget(const std::string& tenant);

  // Evaluates `request` under the tenant's policy. An unreadable policy is an
  // error (the caller refuses: fail closed).
  Result<policy::Decision> decide(const std::string& tenant, const policy::Request& request);

  // The YAML of the policy a tenant has before it writes its own.
  static const char* default_policy_text();

 private:
  struct Cached {
    PolicyInForce policy;
    int64_t loaded_at_ms = 0;
  };
  Store& store_;
  const Clock& clock_;
  int64_t cache_ms_;
  std::shared_ptr<const policy::PolicyDocument> default_policy_;
  std::mutex mutex_;
  std::map<std::string, Cached> cache_;  // GUARDED_BY(mutex_)
};

// The context `when` expressions see for an API call by `who` on a resource
// described by `resource` ({type, id, owner, ...}).
json::object api_request_context(const Principal& who, json::object resource);

}  // namespace continuum
