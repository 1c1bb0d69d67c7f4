// Key-encryption keys (KEKs): they wrap the data keys that seal payloads, and
// never touch payloads themselves. Behind an interface so a KMS can replace
// the local source.
//
// The local source holds versioned 256-bit keys, one per line:
//     <version> <64 hex digits>
// ('#' starts a comment). The highest version wraps new data keys; older
// versions stay to unwrap keys not yet rewrapped (`continuum keys rotate`).
// It comes from a file ("file:PATH", created with one key, mode 0600, if
// missing) or an environment variable ("env:NAME"; lines may be separated by
// ';'). Key material is never logged.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/config.h"
#include "crypto/aead.h"

namespace continuum {

class KeyEncryptionKeys {
 public:
  virtual ~KeyEncryptionKeys() = default;
  virtual int64_t current_version() const = 0;
  virtual Result<std::string> wrap(int64_t version, std::string_view data_key, std::string_view aad) const = 0;
  // kDataLoss if the wrapped key is damaged; kNotFound if `version` is unknown.
  virtual Result<std::string> unwrap(int64_t version, std::string_view wrapped, std::string_view aad) const = 0;
  // Reads the source again (after an operator added a version).
  virtual Status reload() = 0;
};

class LocalKeyEncryptionKeys final : public KeyEncryptionKeys {
 public:
  // `source`: "file:PATH" or "env:NAME". Not thread-safe against reload().
  static Result<std::unique_ptr<LocalKeyEncryptionKeys>> open(const std::string& source, const EnvReader& env);

  int64_t current_version() const override { return keys_.rbegin()->first; }
  Result<std::string> wrap(int64_t version, std::string_view data_key, std::string_view aad) const override;
  Result<std::string> unwrap(int64_t version, std::string_view wrapped, std::string_view aad) const override;
  Status reload() override;

 private:
  LocalKeyEncryptionKeys(std::string source, EnvReader env) : source_(std::move(source)), env_(std::move(env)) {}
  std::string source_;
  EnvReader env_;
  std::map<int64_t, AeadKey> keys_;  // never empty after open()
};

// Parses the key list format above; InvalidArgument naming the bad line.
Result<std::map<int64_t, AeadKey>> parse_key_list(const std::string& text);
// Appends a new random key (next version) to a key file, creating it (0600)
// if missing. Returns the new version.
Result<int64_t> add_key_to_file(const std::string& path);

}  // namespace continuum
