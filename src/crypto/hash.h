// Digests and their text forms (OpenSSL underneath).
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace continuum {

// The 32-byte SHA-256 digest of `data`.
std::string sha256(std::string_view data);
// Lowercase hex of raw bytes.
std::string to_hex(std::string_view raw);
// Raw bytes of hex text (either case); kInvalidArgument on anything else.
Result<std::string> from_hex(std::string_view hex);
// Lowercase hex of the SHA-256 of `data`.
inline std::string sha256_hex(std::string_view data) { return to_hex(sha256(data)); }
// Constant-time comparison (for secrets and their digests).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace continuum
