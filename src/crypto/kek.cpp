#include "crypto/kek.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "core/private_file.h"
#include "crypto/hash.h"

namespace continuum {

namespace {

Result<AeadKey> key_from_hex(const std::string& hex) {
  auto raw = from_hex(hex);
  if (hex.size() != 2 * kAeadKeyBytes || !raw.is_ok()) return invalid_argument("a key must be 64 hex digits");
  return aead_key_from(*raw);
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return Status(Code::kNotFound, "cannot read key file " + path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// Writes `text` to a new file with mode 0600, or appends to an existing one.
std::string wrap_aad(int64_t version, std::string_view aad) {
  return "continuum/kek/" + std::to_string(version) + "/" + std::string(aad);
}

}  // namespace

Result<std::map<int64_t, AeadKey>> parse_key_list(const std::string& text) {
  std::map<int64_t, AeadKey> keys;
  std::string normalized = text;
  std::replace(normalized.begin(), normalized.end(), ';', '\n');
  std::istringstream lines(normalized);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    std::string version_text, hex, extra;
    if (!(fields >> version_text)) continue;  // blank line
    char* end = nullptr;
    long long version = std::strtoll(version_text.c_str(), &end, 10);
    auto key = (fields >> hex) ? key_from_hex(hex) : Result<AeadKey>(invalid_argument("missing key"));
    if (*end != '\0' || version <= 0 || !key.is_ok() || (fields >> extra) || keys.count(version)) {
      return invalid_argument("key list line " + std::to_string(number) +
                              ": expected '<version> <64 hex digits>' with a new positive version");
    }
    keys[version] = *key;
  }
  if (keys.empty()) return invalid_argument("the key list holds no key");
  return keys;
}

Result<int64_t> add_key_to_file(const std::string& path) {
  int64_t version = 1;
  if (auto existing = read_file(path); existing.is_ok()) {
    ASSIGN_OR_RETURN(auto keys, parse_key_list(*existing));
    version = keys.rbegin()->first + 1;
  }
  AeadKey key = random_aead_key();
  RETURN_IF_ERROR(append_private_file(path, std::to_string(version) + " " + to_hex(aead_key_bytes(key)) + "\n"));
  return version;
}

Result<std::unique_ptr<LocalKeyEncryptionKeys>> LocalKeyEncryptionKeys::open(const std::string& source,
                                                                             const EnvReader& env) {
  if (!source.starts_with("file:") && !source.starts_with("env:")) {
    return invalid_argument("encryption_keys must be file:PATH or env:NAME", "encryption_keys");
  }
  if (source.starts_with("file:") && ::access(source.c_str() + 5, F_OK) != 0) {
    RETURN_IF_ERROR(add_key_to_file(source.substr(5)).status());
  }
  std::unique_ptr<LocalKeyEncryptionKeys> keys(new LocalKeyEncryptionKeys(source, env));
  RETURN_IF_ERROR(keys->reload());
  return keys;
}

Status LocalKeyEncryptionKeys::reload() {
  std::string text;
  if (source_.starts_with("env:")) {
    text = env_(source_.substr(4));
    if (text.empty()) return invalid_argument("environment variable " + source_.substr(4) + " holds no keys");
  } else {
    ASSIGN_OR_RETURN(text, read_file(source_.substr(5)));
  }
  ASSIGN_OR_RETURN(keys_, parse_key_list(text));
  return Status::ok();
}

Result<std::string> LocalKeyEncryptionKeys::wrap(int64_t version, std::string_view data_key,
                                                 std::string_view aad) const {
  auto key = keys_.find(version);
  if (key == keys_.end()) return not_found("key-encryption key version " + std::to_string(version) + " is unknown");
  return aead_seal(key->second, data_key, wrap_aad(version, aad));
}

Result<std::string> LocalKeyEncryptionKeys::unwrap(int64_t version, std::string_view wrapped,
                                                   std::string_view aad) const {
  auto key = keys_.find(version);
  if (key == keys_.end()) return not_found("key-encryption key version " + std::to_string(version) + " is unknown");
  return aead_open(key->second, wrapped, wrap_aad(version, aad));
}

}  // namespace continuum
