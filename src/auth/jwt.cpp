#include "auth/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "crypto/signing.h"

namespace continuum {

namespace {

constexpr size_t kTokenBytesMax = 16 * 1024;
constexpr const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

Status rejected(const std::string& reason) { return Status(Code::kUnauthenticated, "invalid token: " + reason); }

void free_pkey(void* key) { EVP_PKEY_free(static_cast<EVP_PKEY*>(key)); }

std::shared_ptr<void> wrap(EVP_PKEY* key) { return key ? std::shared_ptr<void>(key, free_pkey) : nullptr; }

// RSA (n, e) or EC P-256 (x, y) public keys from their big-endian bytes.
std::shared_ptr<void> key_from_params(const char* type, OSSL_PARAM_BLD* build) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(build);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* key = nullptr;
  if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1) EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return wrap(key);
}

std::shared_ptr<void> rsa_key(const std::string& n, const std::string& e) {
  BIGNUM* modulus = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr);
  BIGNUM* exponent = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* build = OSSL_PARAM_BLD_new();
  std::shared_ptr<void> key;
  if (modulus && exponent && build && BN_num_bits(modulus) >= 2048 &&
      OSSL_PARAM_BLD_push_BN(build, OSSL_PKEY_PARAM_RSA_N, modulus) == 1 &&
      OSSL_PARAM_BLD_push_BN(build, OSSL_PKEY_PARAM_RSA_E, exponent) == 1) {
    key = key_from_params("RSA", build);
  }
  OSSL_PARAM_BLD_free(build);
  BN_free(modulus);
  BN_free(exponent);
  return key;
}

std::shared_ptr<void> p256_key(const std::string& x, const std::string& y) {
  if (x.size() != 32 || y.size() != 32) return nullptr;
  std::string point = "\x04" + x + y;
  OSSL_PARAM_BLD* build = OSSL_PARAM_BLD_new();
  std::shared_ptr<void> key;
  if (build && OSSL_PARAM_BLD_push_utf8_string(build, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(build, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) == 1) {
    key = key_from_params("EC", build);
  }
  OSSL_PARAM_BLD_free(build);
  return key;
}

std::string text_field(const json::object& object, const char* key) {
  const json::value* value = object.if_contains(key);
  return value && value->is_string() ? std::string(value->as_string()) : "";
}

// One JWK, or nothing if it is not a usable signature key.
std::optional<Jwk> parse_jwk(const json::object& jwk) {
  Jwk parsed{text_field(jwk, "kid"), text_field(jwk, "kty"), text_field(jwk, "alg"), nullptr};
  std::string use = text_field(jwk, "use");
  if (!use.empty() && use != "sig") return std::nullopt;
  auto field = [&](const char* key) { return base64url_decode(text_field(jwk, key)); };
  if (parsed.kty == "RSA" && (parsed.alg.empty() || parsed.alg == "RS256")) {
    auto n = field("n"), e = field("e");
    if (n.is_ok() && e.is_ok()) parsed.key = rsa_key(*n, *e);
    parsed.alg = "RS256";
  } else if (parsed.kty == "EC" && text_field(jwk, "crv") == "P-256" && (parsed.alg.empty() || parsed.alg == "ES256")) {
    auto x = field("x"), y = field("y");
    if (x.is_ok() && y.is_ok()) parsed.key = p256_key(*x, *y);
    parsed.alg = "ES256";
  } else if (parsed.kty == "OKP" && text_field(jwk, "crv") == "Ed25519" &&
             (parsed.alg.empty() || parsed.alg == "EdDSA")) {
    auto x = field("x");
    if (x.is_ok() && x->size() == 32) {
      parsed.key = wrap(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                                    reinterpret_cast<const unsigned char*>(x->data()), x->size()));
    }
    parsed.alg = "EdDSA";
  }
  if (!parsed.key) return std::nullopt;
  return parsed;
}

// ES256 signatures are r||s (32 bytes each); OpenSSL verifies DER.
std::optional<std::string> es256_der(const std::string& raw) {
  if (raw.size() != 64) return std::nullopt;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  int length = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (length <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

bool verify_signature(const Jwk& jwk, std::string_view signed_part, const std::string& signature) {
  std::string der;
  const std::string* checked = &signature;
  if (jwk.alg == "ES256") {
    auto converted = es256_der(signature);
    if (!converted) return false;
    der = std::move(*converted);
    checked = &der;
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const EVP_MD* digest = jwk.alg == "EdDSA" ? nullptr : EVP_sha256();
  bool ok = ctx && EVP_DigestVerifyInit(ctx, nullptr, digest, nullptr, static_cast<EVP_PKEY*>(jwk.key.get())) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(checked->data()), checked->size(),
                             reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

Status check_claims(const json::object& claims, const JwtExpectations& expected) {
  const json::value* exp = claims.if_contains("exp");
  if (!exp || !exp->is_number()) return rejected("no exp");
  int64_t expires = exp->to_number<int64_t>();
  if (expires + expected.leeway_s <= expected.now_s) return rejected("expired");
  if (expires - expected.now_s > expected.lifetime_s_max) return rejected("lifetime too long");
  if (const json::value* nbf = claims.if_contains("nbf")) {
    if (!nbf->is_number() || nbf->to_number<int64_t>() - expected.leeway_s > expected.now_s) {
      return rejected("not yet valid");
    }
  }
  if (text_field(claims, "iss") != expected.issuer) return rejected("wrong issuer");
  const json::value* aud = claims.if_contains("aud");
  bool audience_ok = false;
  auto accepts = [&](const json::value& value) {
    return value.is_string() && std::find(expected.audiences.begin(), expected.audiences.end(),
                                          std::string(value.as_string())) != expected.audiences.end();
  };
  if (aud && aud->is_array()) {
    for (const auto& entry : aud->as_array()) audience_ok = audience_ok || accepts(entry);
  } else if (aud) {
    audience_ok = accepts(*aud);
  }
  if (!audience_ok) return rejected("wrong audience");
  return Status::ok();
}

}  // namespace

std::string base64url_encode(std::string_view raw) {
  std::string out;
  size_t i = 0;
  for (; i + 2 < raw.size(); i += 3) {
    uint32_t n = (uint8_t(raw[i]) << 16) | (uint8_t(raw[i + 1]) << 8) | uint8_t(raw[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(n >> shift) & 63]);
  }
  if (i + 1 == raw.size()) {
    uint32_t n = uint8_t(raw[i]) << 16;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
  } else if (i + 2 == raw.size()) {
    uint32_t n = (uint8_t(raw[i]) << 16) | (uint8_t(raw[i + 1]) << 8);
    for (int shift : {18, 12, 6}) out.push_back(kAlphabet[(n >> shift) & 63]);
  }
  return out;
}

Result<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return invalid_argument("bad base64url length");
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    const char* found = std::strchr(kAlphabet, c);
    if (c == '\0' || found == nullptr) return invalid_argument("bad base64url character");
    buffer = (buffer << 6) | static_cast<uint32_t>(found - kAlphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  if (bits > 0 && (buffer & ((1u << bits) - 1)) != 0) return invalid_argument("non-canonical base64url");
  return out;
}

Result<std::vector<Jwk>> parse_jwks(std::string_view text) {
  ASSIGN_OR_RETURN(auto set, parse_json_object(text));
  const json::value* keys = set.if_contains("keys");
  if (!keys || !keys->is_array()) return invalid_argument("a JWK Set has a \"keys\" array");
  std::vector<Jwk> parsed;
  for (const auto& entry : keys->as_array()) {
    if (!entry.is_object()) continue;
    if (auto jwk = parse_jwk(entry.as_object())) parsed.push_back(std::move(*jwk));
  }
  if (parsed.empty()) return invalid_argument("the JWK Set has no usable RS256, ES256 or EdDSA key");
  return parsed;
}

Result<json::object> verify_jwt(std::string_view token, const std::vector<Jwk>& keys,
                                const JwtExpectations& expected) {
  if (token.size() > kTokenBytesMax) return rejected("too long");
  size_t first = token.find('.');
  size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return rejected("not a compact JWS");
  }
  auto header_text = base64url_decode(token.substr(0, first));
  auto payload_text = base64url_decode(token.substr(first + 1, second - first - 1));
  auto signature = base64url_decode(token.substr(second + 1));
  if (!header_text.is_ok() || !payload_text.is_ok() || !signature.is_ok()) return rejected("bad encoding");
  auto header = parse_json_object(*header_text);
  if (!header.is_ok()) return rejected("bad header");
  std::string alg = text_field(*header, "alg");
  if (alg != "RS256" && alg != "ES256" && alg != "EdDSA") return rejected("algorithm '" + alg + "' not accepted");
  if (header->contains("crit")) return rejected("critical header extensions are not supported");
  std::string kid = text_field(*header, "kid");
  const Jwk* chosen = nullptr;
  for (const auto& jwk : keys) {
    bool id_matches = kid.empty() ? keys.size() == 1 : jwk.kid == kid;
    if (id_matches && jwk.alg == alg) chosen = &jwk;
  }
  if (chosen == nullptr) return rejected(kid.empty() ? "no kid" : "unknown kid");
  if (!verify_signature(*chosen, token.substr(0, second), *signature)) return rejected("bad signature");
  auto claims = parse_json_object(*payload_text);
  if (!claims.is_ok()) return rejected("bad payload");
  RETURN_IF_ERROR(check_claims(*claims, expected));
  return std::move(*claims);
}

Result<std::string> sign_jwt_eddsa(const json::object& claims, const Ed25519Key& key, const std::string& kid) {
  std::string signed_part = base64url_encode(to_json(json::object{{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", kid}})) +
                            "." + base64url_encode(to_json(claims));
  ASSIGN_OR_RETURN(auto signature, key.sign(signed_part));
  return signed_part + "." + base64url_encode(signature);
}

namespace {

// The raw R||S form JWS uses for ECDSA (RFC 7518 §3.4), from OpenSSL's DER.
Result<std::string> ecdsa_der_to_raw(const std::string& der, int component_bytes) {
  const unsigned char* cursor = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der.size()));
  if (sig == nullptr) return Status(Code::kInternal, "cannot read the ECDSA signature");
  std::string raw(static_cast<std::size_t>(component_bytes) * 2, '\0');
  const BIGNUM* r = ECDSA_SIG_get0_r(sig);
  const BIGNUM* s = ECDSA_SIG_get0_s(sig);
  bool ok = BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), component_bytes) == component_bytes &&
            BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + component_bytes, component_bytes) ==
                component_bytes;
  ECDSA_SIG_free(sig);
  if (!ok) return Status(Code::kInternal, "cannot encode the ECDSA signature");
  return raw;
}

// A PEM block whose line breaks became spaces (the vault holds one line)
// made whole again: the armour lines, then the base64 in lines of 64.
std::string normalized_pem(std::string_view text) {
  std::size_t begin = text.find("-----BEGIN ");
  std::size_t begin_end = begin == std::string_view::npos ? begin : text.find("-----", begin + 11);
  std::size_t end = begin_end == std::string_view::npos ? begin_end : text.find("-----END ", begin_end + 5);
  std::size_t end_end = end == std::string_view::npos ? end : text.find("-----", end + 9);
  if (end_end == std::string_view::npos) return std::string(text);
  std::string body;
  for (char c : text.substr(begin_end + 5, end - begin_end - 5)) {
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') body.push_back(c);
  }
  std::string out(text.substr(begin, begin_end + 5 - begin));
  for (std::size_t i = 0; i < body.size(); i += 64) out += "\n" + body.substr(i, 64);
  out += "\n" + std::string(text.substr(end, end_end + 5 - end)) + "\n";
  return out;
}

}  // namespace

Result<std::string> sign_jwt_pem(const json::object& claims, std::string_view private_key_pem, const std::string& alg) {
  if (alg != "ES256" && alg != "RS256") return invalid_argument("signing algorithm must be ES256 or RS256");
  std::string pem = normalized_pem(private_key_pem);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return Status(Code::kInternal, "out of memory");
  // No passphrase: an encrypted key is refused rather than asked about on a terminal.
  pem_password_cb* no_passphrase = [](char*, int, int, void*) { return -1; };
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(PEM_read_bio_PrivateKey(bio, nullptr, no_passphrase, nullptr),
                                                     EVP_PKEY_free);
  BIO_free(bio);
  if (!key) return invalid_argument("the private key is not a PEM private key");
  bool ec = EVP_PKEY_is_a(key.get(), "EC");
  char group[64] = {0};
  bool p256 = ec && EVP_PKEY_get_utf8_string_param(key.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), nullptr) == 1 &&
              (std::string_view(group) == "prime256v1" || std::string_view(group) == "P-256");
  if (alg == "ES256" && !p256) {
    return invalid_argument("ES256 needs a P-256 private key");
  }
  if (alg == "RS256" && (!EVP_PKEY_is_a(key.get(), "RSA") || EVP_PKEY_get_bits(key.get()) < 2048)) {
    return invalid_argument("RS256 needs an RSA private key of at least 2048 bits");
  }
  std::string signed_part =
      base64url_encode(to_json(json::object{{"alg", alg}, {"typ", "JWT"}})) + "." + base64url_encode(to_json(claims));
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t length = 0;
  const auto* message = reinterpret_cast<const unsigned char*>(signed_part.data());
  if (!context || EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(context.get(), nullptr, &length, message, signed_part.size()) != 1) {
    return Status(Code::kInternal, "cannot sign the client assertion");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, message,
                     signed_part.size()) != 1) {
    return Status(Code::kInternal, "cannot sign the client assertion");
  }
  signature.resize(length);
  if (ec) {
    ASSIGN_OR_RETURN(signature, ecdsa_der_to_raw(signature, 32));
  }
  return signed_part + "." + base64url_encode(signature);
}

json::object ed25519_jwk(const Ed25519Key& key, const std::string& kid) {
  return json::object{{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", base64url_encode(key.public_key())},
                      {"kid", kid},   {"alg", "EdDSA"},   {"use", "sig"}};
}

}  // namespace continuum
