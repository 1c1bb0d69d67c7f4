#include "auth/tool_identity.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "auth/jwt.h"
#include "core/private_file.h"
#include "crypto/hash.h"

namespace continuum {

namespace {

Result<std::string> seed_from_hex(const std::string& hex) {
  auto raw = from_hex(hex);
  if (!raw.is_ok() || raw->size() != 32) return invalid_argument("a key seed is 64 hex digits");
  return raw;
}

}  // namespace

Result<std::unique_ptr<ToolIdentity>> ToolIdentity::open(const std::string& key_file, std::string issuer,
                                                         int64_t lifetime_s, const Clock& clock, Random& random) {
  if (lifetime_s < 1 || lifetime_s > kTokenLifetimeMaxS) {
    return invalid_argument("tool token lifetime must be 1-300 s", "tool_token_ttl_s");
  }
  std::unique_ptr<ToolIdentity> identity(new ToolIdentity(key_file, std::move(issuer), lifetime_s, clock, random));
  std::lock_guard lock(identity->mutex_);
  RETURN_IF_ERROR(identity->load());
  if (identity->keys_.empty()) RETURN_IF_ERROR(identity->append_key());
  return identity;
}

Status ToolIdentity::load() {
  std::ifstream file(key_file_);
  std::vector<std::pair<std::string, Ed25519Key>> keys;
  std::string line;
  while (file && std::getline(file, line)) {
    std::istringstream fields(line);
    std::string kid, hex;
    if (!(fields >> kid >> hex)) continue;
    auto seed = seed_from_hex(hex);
    if (!seed.is_ok()) return invalid_argument(key_file_ + ": " + seed.status().message());
    ASSIGN_OR_RETURN(auto key, Ed25519Key::from_seed(*seed));
    keys.emplace_back(kid, std::move(key));
  }
  std::error_code ignored;
  file_size_ = static_cast<int64_t>(std::filesystem::file_size(key_file_, ignored));
  if (!keys.empty() && (keys_.empty() || keys.back().first != keys_.back().first)) {
    // A key current before this process read it: as old as the file, at most.
    auto modified = std::filesystem::last_write_time(key_file_, ignored);
    auto age = std::filesystem::file_time_type::clock::now() - modified;
    current_since_ms_ = clock_.now_ms() - std::chrono::duration_cast<std::chrono::milliseconds>(age).count();
  }
  if (!keys.empty()) keys_ = std::move(keys);
  return Status::ok();
}

void ToolIdentity::reload_if_changed() {
  int64_t now = clock_.now_ms();
  if (now - checked_at_ms_ < 1000) return;
  checked_at_ms_ = now;
  std::error_code error;
  auto size = static_cast<int64_t>(std::filesystem::file_size(key_file_, error));
  if (error || size == file_size_) return;  // keys are only appended: a new size means new keys
  (void)load();                              // a damaged file keeps the keys in memory
}

Status ToolIdentity::append_key() {
  std::string hex = random_.hex(32);
  ASSIGN_OR_RETURN(auto raw, seed_from_hex(hex));
  ASSIGN_OR_RETURN(auto key, Ed25519Key::from_seed(raw));
  std::string kid = "tid_" + key.key_id();
  std::string line = kid + " " + hex + "\n";
  RETURN_IF_ERROR(append_private_file(key_file_, line));
  keys_.emplace_back(std::move(kid), std::move(key));
  file_size_ += static_cast<int64_t>(line.size());
  current_since_ms_ = clock_.now_ms();
  return Status::ok();
}

Result<std::string> ToolIdentity::rotate() {
  std::lock_guard lock(mutex_);
  reload_if_changed();
  if (clock_.now_ms() - current_since_ms_ < lifetime_s_ * 1000) {
    return conflict("the current identity key is younger than the token lifetime (" + std::to_string(lifetime_s_) +
                    " s); rotate again later");
  }
  RETURN_IF_ERROR(append_key());
  return keys_.back().first;
}

Result<std::string> ToolIdentity::token_for(const ToolIdentityClaims& claims) {
  int64_t now_s = clock_.now_ms() / 1000;
  json::object payload{{"iss", issuer_},
                       {"sub", claims.user_id.empty() ? "agent:" + claims.agent : claims.user_id},
                       {"act", json::object{{"sub", claims.agent}}},
                       {"aud", claims.audience},
                       {"tenant", claims.tenant},
                       {"run_id", claims.run_id},
                       {"session_id", claims.session_id},
                       {"step", claims.step},
                       {"jti", "jti_" + random_.hex(12)},
                       {"iat", now_s},
                       {"exp", now_s + lifetime_s_}};
  std::lock_guard lock(mutex_);
  reload_if_changed();
  return sign_jwt_eddsa(payload, keys_.back().second, keys_.back().first);
}

json::object ToolIdentity::jwks() {
  std::lock_guard lock(mutex_);
  reload_if_changed();
  json::array keys;
  size_t published = 0;
  for (auto key = keys_.rbegin(); key != keys_.rend() && published < kKeysPublished; ++key, ++published) {
    keys.push_back(ed25519_jwk(key->second, key->first));
  }
  return json::object{{"keys", std::move(keys)}};
}

}  // namespace continuum
