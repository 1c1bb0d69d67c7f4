// Untrusted bytes where the store keeps sealed values (a damaged or forged
// row) and where the server reads its key-encryption keys: every input must
// end in a clear error or a value, never a crash, and a forged value must
// never open.
#include <cstddef>
#include <cstdint>
#include <string>

#include "crypto/aead.h"
#include "crypto/kek.h"
#include "store/sealed_value.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  static const continuum::AeadKey kKey = continuum::aead_key_from(std::string(32, 'k'));

  auto header = continuum::parse_sealed_header(input);
  if (header.is_ok()) {
    std::string aad = continuum::payload_aad("t", "items", "row", "message", std::string_view(input).substr(0, header->size));
    auto opened = continuum::aead_open(kKey, std::string_view(input).substr(header->size), aad);
    // Forging a GCM tag by chance is out of reach: anything that opens was sealed by us.
    if (opened.is_ok()) __builtin_trap();
  }
  (void)continuum::parse_key_list(input);
  return 0;
}
