// Ed25519 signing keys (OpenSSL): audit checkpoints and the JWTs the runtime
// gives tools. A key file holds the 32-byte private seed in hex, mode 0600.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace continuum {

class Ed25519Key {
 public:
  // Reads `path`, or creates it with a new random key.
  static Result<Ed25519Key> load_or_create(const std::string& path);
  static Result<Ed25519Key> from_seed(std::string_view seed);  // 32 raw bytes
  static Result<Ed25519Key> generate();

  const std::string& public_key() const { return public_key_; }  // 32 raw bytes
  // Hex SHA-256 prefix (16 chars) of the public key: names the key.
  std::string key_id() const;
  Result<std::string> sign(std::string_view message) const;      // 64 raw bytes

 private:
  std::string seed_;
  std::string public_key_;
};

// Whether `signature` (64 raw bytes) by `public_key` (32 raw bytes) covers `message`.
bool ed25519_verify(std::string_view public_key, std::string_view message, std::string_view signature);

// Key id of a raw public key (as Ed25519Key::key_id).
std::string ed25519_key_id(std::string_view public_key);

}  // namespace continuum
