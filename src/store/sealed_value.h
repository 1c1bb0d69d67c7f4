// The stored form of a sealed payload (see sealing_store.h):
//   "\0cs1" | scope length (1 byte) | scope | key version (8 bytes, big endian)
//   | nonce | ciphertext | tag
// and the associated data that binds it to its row. No JSON document starts
// with a NUL byte, so a sealed value is never mistaken for a plaintext one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace continuum {

struct SealedHeader {
  std::string scope;
  int64_t version = 0;
  size_t size = 0;  // bytes of header before the AEAD value
};

std::string sealed_header(const std::string& scope, int64_t version);
// kDataLoss if `sealed` is not a sealed value or is cut short.
Result<SealedHeader> parse_sealed_header(std::string_view sealed);
std::string payload_aad(std::string_view tenant, std::string_view table, std::string_view row,
                        std::string_view column, std::string_view sealed_header);
// The same written into `out` (replacing what it held), reusing its buffer.
void payload_aad_into(std::string& out, std::string_view tenant, std::string_view table, std::string_view row,
                      std::string_view column, std::string_view sealed_header);

}  // namespace continuum
