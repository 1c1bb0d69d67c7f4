// Fuzzes the JWT verifier and the JWK Set parser with untrusted text: no
// input may crash, leak or be accepted without a valid signature.
#include <cstddef>
#include <cstdint>
#include <string>

#include "auth/jwt.h"
#include "crypto/signing.h"

namespace {

const std::vector<continuum::Jwk>& keys() {
  static const std::vector<continuum::Jwk> kKeys = [] {
    auto key = continuum::Ed25519Key::from_seed(std::string(32, '\x07'));
    auto jwks = continuum::json::object{{"keys", continuum::json::array{continuum::ed25519_jwk(*key, "k1")}}};
    return *continuum::parse_jwks(continuum::to_json(jwks));
  }();
  return kKeys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    (void)continuum::parse_jwks(text);
    return 0;
  }
  continuum::JwtExpectations expected{"https://idp.test", {"continuum"}, 1'800'000'000, 60};
  auto claims = continuum::verify_jwt(text, keys(), expected);
  // Nothing here holds the private key's signature: acceptance would be a forgery.
  if (claims.is_ok()) __builtin_trap();
  (void)continuum::base64url_decode(text);
  return 0;
}
