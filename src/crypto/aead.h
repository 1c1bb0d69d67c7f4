// AES-256-GCM (OpenSSL EVP) for sealing payloads and wrapping data keys.
//
// A sealed value is nonce (12 random bytes) || ciphertext || tag (16 bytes).
// The associated data (AAD) is authenticated, not stored: opening with other
// AAD than sealing fails, which binds a ciphertext to where it belongs.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "core/status.h"

namespace continuum {

inline constexpr size_t kAeadKeyBytes = 32;
inline constexpr size_t kAeadNonceBytes = 12;
inline constexpr size_t kAeadTagBytes = 16;

using AeadKey = std::array<unsigned char, kAeadKeyBytes>;

// A fresh key from OpenSSL's CSPRNG.
AeadKey random_aead_key();
AeadKey aead_key_from(std::string_view bytes);  // exactly kAeadKeyBytes bytes (checked)
std::string_view aead_key_bytes(const AeadKey& key);

Result<std::string> aead_seal(const AeadKey& key, std::string_view plaintext, std::string_view aad);
// The same, appended to `out` (one allocation for header and value).
Status aead_seal_append(const AeadKey& key, std::string_view plaintext, std::string_view aad, std::string& out);
// kDataLoss if the value is damaged, truncated, or sealed with another key or AAD.
Result<std::string> aead_open(const AeadKey& key, std::string_view sealed, std::string_view aad);

}  // namespace continuum
