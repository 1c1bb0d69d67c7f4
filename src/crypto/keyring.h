// Data keys: one or more versions per (tenant, scope), scope "tenant" or
// "user:<id>". Each is a random AES-256 key, stored only wrapped by a
// key-encryption key (KEK) in the store's data_keys table; unwrapped copies
// live in this process's memory.
//
// Thread safety: all methods may be called from any thread. current() may
// block on one durable commit the first time a (tenant, scope) needs a key.
// Several nodes: a key created concurrently elsewhere wins (ours fails on the
// unique key and the stored one is loaded). A shred on another node is seen
// here only after a restart (keys are cached).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "core/clock.h"
#include "crypto/aead.h"
#include "crypto/kek.h"
#include "store/store.h"

namespace continuum {

struct DataKey {
  std::string scope;
  int64_t version = 0;
  AeadKey key{};
};

struct KeyRotationReport {
  int64_t kek_version = 0;
  int64_t data_keys_created = 0;    // one new version per live (tenant, scope)
  int64_t data_keys_rewrapped = 0;  // older keys moved under the current KEK
};

struct KeyShredReport {
  std::vector<DataKeyRecord> destroyed;  // wrapped_key already emptied
};

class Keyring {
 public:
  Keyring(Store& store, KeyEncryptionKeys& keks, const Clock& clock) : store_(store), keks_(keks), clock_(clock) {}

  // The key new writes of (tenant, scope) use: the newest version, created
  // (and committed) if there is none. kDataLoss if the scope was shredded.
  Result<std::shared_ptr<const DataKey>> current(const std::string& tenant, const std::string& scope);
  // kDataLoss if that version is missing, destroyed or fails to unwrap.
  Result<std::shared_ptr<const DataKey>> find(const std::string& tenant, const std::string& scope, int64_t version);

  // New data key versions for every live (tenant, scope) of `tenant` ("" =
  // all), and every older key rewrapped under the current KEK (payloads are
  // not re-encrypted). Re-reads the KEK source first.
  Result<KeyRotationReport> rotate(const std::string& tenant);
  // Destroys the keys of `scope` in `tenant` ("" = every scope of the tenant):
  // whatever they sealed is unreadable from then on.
  Result<KeyShredReport> shred(const std::string& tenant, const std::string& scope);

 private:
  using ScopeKey = std::pair<std::string, std::string>;  // (tenant, scope)
  struct ScopeKeys {
    std::map<int64_t, std::shared_ptr<const DataKey>> live;  // by version
    std::set<int64_t> destroyed;
  };

  Status load_tenant(const std::string& tenant);  // REQUIRES mutex_
  Result<std::shared_ptr<const DataKey>> create(const std::string& tenant, const std::string& scope,
                                                int64_t version);  // REQUIRES mutex_
  static std::string wrap_aad(const DataKeyRecord& record);

  Store& store_;
  KeyEncryptionKeys& keks_;
  const Clock& clock_;
  std::mutex mutex_;
  std::set<std::string> loaded_tenants_;  // guarded by mutex_
  std::map<ScopeKey, ScopeKeys> keys_;    // guarded by mutex_
};

}  // namespace continuum
