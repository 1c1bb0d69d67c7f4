#include "crypto/keyring.h"

#include "core/log.h"

namespace continuum {

std::string Keyring::wrap_aad(const DataKeyRecord& record) {
  return "continuum/data-key/" + record.tenant_id + '\0' + record.scope + '\0' + std::to_string(record.version);
}

Status Keyring::load_tenant(const std::string& tenant) {
  if (loaded_tenants_.count(tenant)) return Status::ok();
  ASSIGN_OR_RETURN(auto records, store_.list_data_keys(tenant));
  for (const auto& record : records) {
    ScopeKeys& scope = keys_[{tenant, record.scope}];
    if (record.wrapped_key.empty()) {
      scope.destroyed.insert(record.version);
      continue;
    }
    auto raw = keks_.unwrap(record.kek_version, record.wrapped_key, wrap_aad(record));
    if (!raw.is_ok() || raw->size() != kAeadKeyBytes) {
      log::error("data key does not unwrap; what it sealed is unreadable",
                 {{"tenant", tenant}, {"scope", record.scope}, {"version", std::to_string(record.version)}});
      scope.destroyed.insert(record.version);
      continue;
    }
    scope.live[record.version] = std::make_shared<const DataKey>(DataKey{record.scope, record.version, aead_key_from(*raw)});
  }
  loaded_tenants_.insert(tenant);
  return Status::ok();
}

Result<std::shared_ptr<const DataKey>> Keyring::create(const std::string& tenant, const std::string& scope,
                                                       int64_t version) {
  AeadKey key = random_aead_key();
  DataKeyRecord record{tenant, scope, version, keks_.current_version(), "", clock_.now_ms(), 0};
  ASSIGN_OR_RETURN(record.wrapped_key, keks_.wrap(record.kek_version, aead_key_bytes(key), wrap_aad(record)));
  WriteBatch batch;
  batch.data_key_inserts.push_back(record);
  Status committed = store_.commit_and_wait(std::move(batch));
  if (committed.code() == Code::kConflict) {  // another node created it first: use theirs
    loaded_tenants_.erase(tenant);
    keys_.erase({tenant, scope});
    RETURN_IF_ERROR(load_tenant(tenant));
    auto& live = keys_[{tenant, scope}].live;
    if (!live.empty()) return live.rbegin()->second;
  }
  RETURN_IF_ERROR(committed);
  auto data_key = std::make_shared<const DataKey>(DataKey{scope, version, key});
  keys_[{tenant, scope}].live[version] = data_key;
  return data_key;
}

Result<std::shared_ptr<const DataKey>> Keyring::current(const std::string& tenant, const std::string& scope) {
  std::lock_guard lock(mutex_);
  RETURN_IF_ERROR(load_tenant(tenant));
  ScopeKeys& keys = keys_[{tenant, scope}];
  int64_t newest_destroyed = keys.destroyed.empty() ? 0 : *keys.destroyed.rbegin();
  if (!keys.live.empty() && keys.live.rbegin()->first > newest_destroyed) return keys.live.rbegin()->second;
  // None yet, or the scope was shredded: new data gets a new key.
  int64_t newest_live = keys.live.empty() ? 0 : keys.live.rbegin()->first;
  return create(tenant, scope, std::max(newest_live, newest_destroyed) + 1);
}

Result<std::shared_ptr<const DataKey>> Keyring::find(const std::string& tenant, const std::string& scope,
                                                     int64_t version) {
  std::lock_guard lock(mutex_);
  RETURN_IF_ERROR(load_tenant(tenant));
  auto scope_keys = keys_.find({tenant, scope});
  if (scope_keys != keys_.end()) {
    auto key = scope_keys->second.live.find(version);
    if (key != scope_keys->second.live.end()) return key->second;
    if (scope_keys->second.destroyed.count(version)) {
      return Status(Code::kDataLoss, "sealed with a destroyed key (" + scope + " v" + std::to_string(version) + ")");
    }
  }
  return Status(Code::kDataLoss, "sealed with an unknown key (" + scope + " v" + std::to_string(version) + ")");
}

Result<KeyRotationReport> Keyring::rotate(const std::string& tenant) {
  std::lock_guard lock(mutex_);
  RETURN_IF_ERROR(keks_.reload());
  ASSIGN_OR_RETURN(auto records, store_.list_data_keys(tenant));
  KeyRotationReport report;
  report.kek_version = keks_.current_version();
  WriteBatch batch;
  std::map<ScopeKey, int64_t> newest_version;  // of every scope, live or not
  std::set<ScopeKey> live_scopes;
  for (auto record : records) {
    ScopeKey scope{record.tenant_id, record.scope};
    newest_version[scope] = std::max(newest_version[scope], record.version);
    if (record.wrapped_key.empty()) continue;
    live_scopes.insert(scope);
    if (record.kek_version == report.kek_version) continue;
    ASSIGN_OR_RETURN(auto raw, keks_.unwrap(record.kek_version, record.wrapped_key, wrap_aad(record)));
    record.kek_version = report.kek_version;
    ASSIGN_OR_RETURN(record.wrapped_key, keks_.wrap(record.kek_version, raw, wrap_aad(record)));
    batch.data_key_updates.push_back(std::move(record));
    ++report.data_keys_rewrapped;
  }
  for (const auto& scope : live_scopes) {
    DataKeyRecord record{scope.first, scope.second, newest_version[scope] + 1, report.kek_version, "",
                         clock_.now_ms(), 0};
    AeadKey key = random_aead_key();
    ASSIGN_OR_RETURN(record.wrapped_key, keks_.wrap(record.kek_version, aead_key_bytes(key), wrap_aad(record)));
    batch.data_key_inserts.push_back(std::move(record));
    ++report.data_keys_created;
  }
  if (!batch.empty()) RETURN_IF_ERROR(store_.commit_and_wait(std::move(batch)));
  loaded_tenants_.clear();  // reload from the store: it is the truth for versions and wraps
  keys_.clear();
  return report;
}

Result<KeyShredReport> Keyring::shred(const std::string& tenant, const std::string& scope) {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(auto records, store_.list_data_keys(tenant));
  KeyShredReport report;
  WriteBatch batch;
  for (auto record : records) {
    if (record.wrapped_key.empty() || (!scope.empty() && record.scope != scope)) continue;
    record.wrapped_key.clear();
    record.destroyed_at_ms = clock_.now_ms();
    batch.data_key_updates.push_back(record);
    report.destroyed.push_back(std::move(record));
  }
  if (!batch.empty()) RETURN_IF_ERROR(store_.commit_and_wait(std::move(batch)));
  for (const auto& record : report.destroyed) {
    ScopeKeys& keys = keys_[{record.tenant_id, record.scope}];
    keys.live.erase(record.version);
    keys.destroyed.insert(record.version);
  }
  return report;
}

}  // namespace continuum
