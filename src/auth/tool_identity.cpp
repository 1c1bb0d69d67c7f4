#include "auth/tool_identity.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "auth/jwt.h"
#include "crypto/hash.h"

namespace continuum {

namespace {

Result<std::string> seed_from_hex(const std::string& hex) {
  if (hex.size() != 64) return invalid_argument("a key seed is 64 hex digits");
  std::string raw;
  for (size_t i = 0; i < hex.size(); i += 2) {
    char* end = nullptr;
    std::string pair = hex.substr(i, 2);
    long value = std::strtol(pair.c_str(), &end, 16);
    if (*end != '\0') return invalid_argument("a key seed is 64 hex digits");
    raw.push_back(static_cast<char>(value));
  }
  return raw;
}

}  // namespace

Result<std::unique_ptr<ToolIdentity>> ToolIdentity::open(const std::string& key_file, std::string issuer,
                                                         int64_t lifetime_s, const Clock& clock, Random& random) {
  if (lifetime_s < 1 || lifetime_s > kTokenLifetimeMaxS) {
    return invalid_argument("tool token lifetime must be 1-300 s", "tool_token_ttl_s");
  }
  std::unique_ptr<ToolIdentity> identity(new ToolIdentity(key_file, std::move(issuer), lifetime_s, clock, random));
  RETURN_IF_ERROR(identity->load());
  return identity;
}

Status ToolIdentity::load() {
  std::lock_guard lock(mutex_);
  std::ifstream file(key_file_);
  std::string line;
  while (file && std::getline(file, line)) {
    std::istringstream fields(line);
    std::string kid, hex;
    if (!(fields >> kid >> hex)) continue;
    auto seed = seed_from_hex(hex);
    if (!seed.is_ok()) return invalid_argument(key_file_ + ": " + seed.status().message());
    ASSIGN_OR_RETURN(auto key, Ed25519Key::from_seed(*seed));
    keys_.emplace_back(kid, std::move(key));
  }
  return keys_.empty() ? append_key() : Status::ok();
}

Status ToolIdentity::append_key() {
  std::string hex = random_.hex(32);
  ASSIGN_OR_RETURN(auto raw, seed_from_hex(hex));
  ASSIGN_OR_RETURN(auto key, Ed25519Key::from_seed(raw));
  std::string kid = "tid_" + key.key_id();
  int fd = ::open(key_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return internal_error("cannot write " + key_file_);
  std::string line = kid + " " + hex + "\n";
  bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!written) return internal_error("cannot write " + key_file_);
  keys_.emplace_back(std::move(kid), std::move(key));
  return Status::ok();
}

Result<std::string> ToolIdentity::rotate() {
  std::lock_guard lock(mutex_);
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
  return sign_jwt_eddsa(payload, keys_.back().second, keys_.back().first);
}

json::object ToolIdentity::jwks() {
  std::lock_guard lock(mutex_);
  json::array keys;
  size_t published = 0;
  for (auto key = keys_.rbegin(); key != keys_.rend() && published < kKeysPublished; ++key, ++published) {
    keys.push_back(ed25519_jwk(key->second, key->first));
  }
  return json::object{{"keys", std::move(keys)}};
}

}  // namespace continuum
