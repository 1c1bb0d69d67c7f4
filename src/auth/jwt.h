// JSON Web Tokens, signed compact form (JWS), over OpenSSL.
//
// Why not a JWT library: Debian 12's libjwt (1.10) and cjose (0.6) lack EdDSA,
// which inbound OIDC and the identity given to tools both need. This file is
// the smallest strict subset: compact serialization only, algorithms RS256,
// ES256 and EdDSA (Ed25519) only, each bound to its key type, so `none` and
// HMAC-with-a-public-key confusions cannot be expressed. Fuzzed
// (tests/fuzz/jwt_fuzzer.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace continuum {

class Ed25519Key;

std::string base64url_encode(std::string_view raw);
// Strict: the URL-safe alphabet without padding; anything else is an error.
Result<std::string> base64url_decode(std::string_view text);

// A public key from a JWK Set. Holds an OpenSSL key; copyable (shared).
struct Jwk {
  std::string kid;
  std::string kty;  // "RSA", "EC" (P-256), "OKP" (Ed25519)
  std::string alg;  // the only algorithm it verifies: RS256, ES256, EdDSA
  std::shared_ptr<void> key;  // EVP_PKEY, freed with it
};

// Parses {"keys": [...]}. Keys of other types, curves or uses are skipped;
// a key without "alg" gets its type's algorithm. Errors only if nothing is usable.
Result<std::vector<Jwk>> parse_jwks(std::string_view text);

struct JwtExpectations {
  std::string issuer;                  // must equal "iss"
  std::vector<std::string> audiences;  // "aud" must contain one of them
  int64_t now_s = 0;
  int64_t leeway_s = 60;               // clock skew allowed on exp and nbf
  int64_t lifetime_s_max = 24 * 3600;  // exp - now may not exceed this
};

// Verifies signature and claims; returns the claims. Errors are
// kUnauthenticated with a reason that names no key material.
Result<json::object> verify_jwt(std::string_view token, const std::vector<Jwk>& keys,
                                const JwtExpectations& expected);

// Signs `claims` with EdDSA; the header carries `kid`.
Result<std::string> sign_jwt_eddsa(const json::object& claims, const Ed25519Key& key, const std::string& kid);

// Signs `claims` with a private key in PEM (PKCS#8 or traditional): ES256
// (P-256, signature as raw R||S) or RS256. For OAuth client assertions
// (RFC 7523, private_key_jwt). The PEM's line breaks may be spaces (as the
// vault keeps it). Errors name no key material.
Result<std::string> sign_jwt_pem(const json::object& claims, std::string_view private_key_pem, const std::string& alg);

// The public JWK of an Ed25519 key: {kty: OKP, crv: Ed25519, x, kid, alg: EdDSA, use: sig}.
json::object ed25519_jwk(const Ed25519Key& key, const std::string& kid);

}  // namespace continuum
