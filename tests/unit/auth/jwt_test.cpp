// Inbound JWT verification: valid RS256, ES256 and EdDSA tokens pass; every
// classic attack is refused (expired, not yet valid, wrong issuer or audience,
// alg none, HS256 signed with the public key, unknown kid, tampered payload).
// Outbound client assertions (sign_jwt_pem) verify with OpenSSL itself.
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <algorithm>
#include <string>
#include <vector>

#include "auth/jwt.h"
#include "crypto/signing.h"

namespace continuum {
namespace {

constexpr int64_t kNow = 1'800'000'000;

std::string bn_bytes(EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(key, name, &bn);
  std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  return out;
}

// A signing key of one algorithm, with its public JWK.
struct TestKey {
  std::string alg;
  std::string kid;
  EVP_PKEY* key = nullptr;
  ~TestKey() { EVP_PKEY_free(key); }

  json::object jwk() const {
    if (alg == "RS256") {
      return {{"kty", "RSA"}, {"kid", kid}, {"n", base64url_encode(bn_bytes(key, OSSL_PKEY_PARAM_RSA_N))},
              {"e", base64url_encode(bn_bytes(key, OSSL_PKEY_PARAM_RSA_E))}};
    }
    if (alg == "ES256") {
      unsigned char point[65];
      size_t length = 0;
      EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &length);
      std::string raw(reinterpret_cast<char*>(point) + 1, 64);
      return {{"kty", "EC"}, {"crv", "P-256"}, {"kid", kid}, {"x", base64url_encode(raw.substr(0, 32))},
              {"y", base64url_encode(raw.substr(32))}};
    }
    unsigned char raw[32];
    size_t length = sizeof(raw);
    EVP_PKEY_get_raw_public_key(key, raw, &length);
    return {{"kty", "OKP"}, {"crv", "Ed25519"}, {"kid", kid}, {"x", base64url_encode(std::string(reinterpret_cast<char*>(raw), 32))}};
  }

  std::string sign(std::string_view message) const {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, nullptr, alg == "EdDSA" ? nullptr : EVP_sha256(), nullptr, key);
    size_t length = 0;
    EVP_DigestSign(ctx, nullptr, &length, reinterpret_cast<const unsigned char*>(message.data()), message.size());
    std::string signature(length, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(signature.data()), &length,
                   reinterpret_cast<const unsigned char*>(message.data()), message.size());
    EVP_MD_CTX_free(ctx);
    signature.resize(length);
    if (alg != "ES256") return signature;
    const unsigned char* der = reinterpret_cast<const unsigned char*>(signature.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(signature.size()));
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(sig);
    return raw;
  }
};

std::unique_ptr<TestKey> make_key(const std::string& alg, const std::string& kid) {
  auto key = std::make_unique<TestKey>();
  key->alg = alg;
  key->kid = kid;
  if (alg == "RS256") key->key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
  if (alg == "ES256") key->key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (alg == "EdDSA") key->key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  return key;
}

json::object good_claims() {
  return {{"iss", "https://idp.test"}, {"aud", "continuum"}, {"sub", "alice"}, {"exp", kNow + 300},
          {"nbf", kNow - 10}, {"iat", kNow - 10}};
}

std::string token(const TestKey& key, const json::object& claims, json::object header = {}) {
  if (header.empty()) header = {{"alg", key.alg}, {"kid", key.kid}, {"typ", "JWT"}};
  std::string signed_part = base64url_encode(to_json(header)) + "." + base64url_encode(to_json(claims));
  return signed_part + "." + base64url_encode(key.sign(signed_part));
}

class JwtTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    key_ = make_key(GetParam(), "k1");
    auto keys = parse_jwks(to_json(json::object{{"keys", json::array{key_->jwk()}}}));
    ASSERT_TRUE(keys.is_ok()) << keys.status().to_string();
    keys_ = *keys;
  }
  Result<json::object> verify(const std::string& jwt) {
    return verify_jwt(jwt, keys_, JwtExpectations{"https://idp.test", {"continuum"}, kNow, 60});
  }
  std::unique_ptr<TestKey> key_;
  std::vector<Jwk> keys_;
};

TEST_P(JwtTest, ValidTokenGivesItsClaims) {
  auto claims = verify(token(*key_, good_claims()));
  ASSERT_TRUE(claims.is_ok()) << claims.status().to_string();
  EXPECT_EQ(claims->at("sub").as_string(), "alice");
}

TEST_P(JwtTest, ExpiredOrNotYetValidIsRefusedBeyondTheLeeway) {
  json::object expired = good_claims();
  expired["exp"] = kNow - 61;
  EXPECT_EQ(verify(token(*key_, expired)).status().code(), Code::kUnauthenticated);
  expired["exp"] = kNow - 30;  // within the 60 s skew
  EXPECT_TRUE(verify(token(*key_, expired)).is_ok());
  json::object early = good_claims();
  early["nbf"] = kNow + 120;
  EXPECT_EQ(verify(token(*key_, early)).status().code(), Code::kUnauthenticated);
  json::object no_exp = good_claims();
  no_exp.erase("exp");
  EXPECT_FALSE(verify(token(*key_, no_exp)).is_ok());
}

TEST_P(JwtTest, WrongIssuerOrAudienceIsRefused) {
  json::object issuer = good_claims();
  issuer["iss"] = "https://evil.test";
  EXPECT_FALSE(verify(token(*key_, issuer)).is_ok());
  json::object audience = good_claims();
  audience["aud"] = json::array{"other", "another"};
  EXPECT_FALSE(verify(token(*key_, audience)).is_ok());
  audience["aud"] = json::array{"other", "continuum"};
  EXPECT_TRUE(verify(token(*key_, audience)).is_ok()) << "one of several audiences";
}

TEST_P(JwtTest, AlgNoneIsRefused) {
  std::string unsigned_token = base64url_encode(R"({"alg":"none","kid":"k1"})") + "." +
                               base64url_encode(to_json(good_claims())) + ".";
  auto result = verify(unsigned_token);
  EXPECT_EQ(result.status().code(), Code::kUnauthenticated);
}

TEST_P(JwtTest, Hs256SignedWithThePublicKeyIsRefused) {
  // The classic confusion: an HMAC keyed with the public key's bytes.
  std::string public_bytes = to_json(key_->jwk());
  std::string signed_part = base64url_encode(R"({"alg":"HS256","kid":"k1"})") + "." +
                            base64url_encode(to_json(good_claims()));
  unsigned char mac[32];
  unsigned int length = 0;
  HMAC(EVP_sha256(), public_bytes.data(), static_cast<int>(public_bytes.size()),
       reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac, &length);
  std::string forged = signed_part + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), length));
  EXPECT_EQ(verify(forged).status().code(), Code::kUnauthenticated);
}

TEST_P(JwtTest, UnknownKidIsRefused) {
  auto other = make_key(GetParam(), "k2");
  EXPECT_FALSE(verify(token(*other, good_claims())).is_ok()) << "signed by a key not in the set";
  json::object header{{"alg", key_->alg}, {"kid", "nope"}};
  EXPECT_FALSE(verify(token(*key_, good_claims(), header)).is_ok()) << "right key, unknown kid";
}

TEST_P(JwtTest, TamperedPayloadOrSignatureIsRefused) {
  std::string jwt = token(*key_, good_claims());
  size_t first = jwt.find('.'), second = jwt.rfind('.');
  json::object changed = good_claims();
  changed["sub"] = "admin";
  std::string tampered = jwt.substr(0, first + 1) + base64url_encode(to_json(changed)) + jwt.substr(second);
  EXPECT_FALSE(verify(tampered).is_ok());
  std::string bad_signature = jwt;
  bad_signature[second + 2] = bad_signature[second + 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verify(bad_signature).is_ok());
}

INSTANTIATE_TEST_SUITE_P(Algorithms, JwtTest, ::testing::Values("RS256", "ES256", "EdDSA"));

TEST(JwtCrossAlgorithmTest, AKeyVerifiesOnlyItsOwnAlgorithm) {
  auto ec = make_key("ES256", "k1");
  auto keys = parse_jwks(to_json(json::object{{"keys", json::array{ec->jwk()}}}));
  ASSERT_TRUE(keys.is_ok());
  auto ed = make_key("EdDSA", "k1");  // same kid, other algorithm
  EXPECT_FALSE(verify_jwt(token(*ed, good_claims()), *keys, JwtExpectations{"https://idp.test", {"continuum"}, kNow, 60})
                   .is_ok());
}

TEST(JwtSigningTest, EdDsaTokensVerifyAgainstThePublishedJwk) {
  auto key = Ed25519Key::generate();
  ASSERT_TRUE(key.is_ok());
  auto jwt = sign_jwt_eddsa(good_claims(), *key, "tid_1");
  ASSERT_TRUE(jwt.is_ok());
  auto keys = parse_jwks(to_json(json::object{{"keys", json::array{ed25519_jwk(*key, "tid_1")}}}));
  ASSERT_TRUE(keys.is_ok());
  EXPECT_TRUE(verify_jwt(*jwt, *keys, JwtExpectations{"https://idp.test", {"continuum"}, kNow, 60}).is_ok());
}

TEST(Base64UrlTest, RoundTripsAndRejectsNonCanonicalInput) {
  for (const std::string& raw : std::vector<std::string>{"", "f", "fo", "foo", "foob", std::string("\xff\x00\x10", 3)}) {
    EXPECT_EQ(*base64url_decode(base64url_encode(raw)), raw);
  }
  EXPECT_FALSE(base64url_decode("Zm9v=").is_ok()) << "padding";
  EXPECT_FALSE(base64url_decode("Zm+v").is_ok()) << "standard alphabet";
  EXPECT_FALSE(base64url_decode("Zh").is_ok()) << "non-zero trailing bits";
}

// --- sign_jwt_pem: client assertions (RFC 7523, private_key_jwt) ------------

// The PKCS#8 PEM of a private key.
std::string private_key_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(length));
  BIO_free(bio);
  return pem;
}

// A JWS ECDSA signature (R||S, 32 bytes each) as the DER OpenSSL verifies.
std::string ecdsa_raw_to_der(const std::string& raw) {
  if (raw.size() != 64) return "";
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(bytes, 32, nullptr), BN_bin2bn(bytes + 32, 32, nullptr));
  unsigned char* der = nullptr;
  int length = i2d_ECDSA_SIG(sig, &der);
  std::string out = length > 0 ? std::string(reinterpret_cast<char*>(der), static_cast<size_t>(length)) : "";
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  return out;
}

std::vector<std::string> jwt_parts(const std::string& jwt) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = jwt.find('.', start);
    parts.push_back(jwt.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

// Whether `jwt`'s signature over "header.payload" verifies with `key` (SHA-256).
bool signature_verifies(EVP_PKEY* key, const std::string& jwt, bool raw_ecdsa) {
  size_t last_dot = jwt.rfind('.');
  if (last_dot == std::string::npos) return false;
  std::string signed_part = jwt.substr(0, last_dot);
  auto signature = base64url_decode(jwt.substr(last_dot + 1));
  if (!signature.is_ok()) return false;
  std::string der = raw_ecdsa ? ecdsa_raw_to_der(*signature) : *signature;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(der.data()), der.size(),
                             reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

json::object assertion_claims() { return {{"iss", "c"}, {"sub", "c"}, {"aud", "http://as"}}; }

json::object decoded_part(const std::string& part) {
  auto text = base64url_decode(part);
  EXPECT_TRUE(text.is_ok()) << part;
  if (!text.is_ok()) return {};
  auto object = parse_json_object(*text);
  EXPECT_TRUE(object.is_ok()) << *text;
  return object.is_ok() ? *object : json::object{};
}

TEST(SignJwtPemTest, Es256SignsWithAP256KeyAsRawRAndS) {
  auto key = make_key("ES256", "unused");
  auto jwt = sign_jwt_pem(assertion_claims(), private_key_pem(key->key), "ES256");
  ASSERT_TRUE(jwt.is_ok()) << jwt.status().to_string();
  std::vector<std::string> parts = jwt_parts(*jwt);
  ASSERT_EQ(parts.size(), 3u) << *jwt;
  EXPECT_EQ(json::value(decoded_part(parts[0])), json::value(json::object{{"alg", "ES256"}, {"typ", "JWT"}}));
  EXPECT_EQ(json::value(decoded_part(parts[1])), json::value(assertion_claims()));
  auto signature = base64url_decode(parts[2]);
  ASSERT_TRUE(signature.is_ok());
  EXPECT_EQ(signature->size(), 64u) << "JWS ES256 is R||S, not DER";
  EXPECT_TRUE(signature_verifies(key->key, *jwt, true));
  auto other = make_key("ES256", "unused");
  EXPECT_FALSE(signature_verifies(other->key, *jwt, true)) << "the check can fail";
}

TEST(SignJwtPemTest, APemWhoseLineBreaksBecameSpacesStillSigns) {
  auto key = make_key("ES256", "unused");
  std::string pem = private_key_pem(key->key);
  std::replace(pem.begin(), pem.end(), '\n', ' ');
  ASSERT_EQ(pem.find('\n'), std::string::npos);
  auto jwt = sign_jwt_pem(assertion_claims(), pem, "ES256");
  ASSERT_TRUE(jwt.is_ok()) << jwt.status().to_string();
  EXPECT_TRUE(signature_verifies(key->key, *jwt, true));
}

TEST(SignJwtPemTest, Rs256SignsWithA2048BitRsaKey) {
  auto key = make_key("RS256", "unused");
  auto jwt = sign_jwt_pem(assertion_claims(), private_key_pem(key->key), "RS256");
  ASSERT_TRUE(jwt.is_ok()) << jwt.status().to_string();
  std::vector<std::string> parts = jwt_parts(*jwt);
  ASSERT_EQ(parts.size(), 3u) << *jwt;
  EXPECT_EQ(json::value(decoded_part(parts[0])), json::value(json::object{{"alg", "RS256"}, {"typ", "JWT"}}));
  EXPECT_EQ(json::value(decoded_part(parts[1])), json::value(assertion_claims()));
  auto signature = base64url_decode(parts[2]);
  ASSERT_TRUE(signature.is_ok());
  EXPECT_EQ(signature->size(), 256u);
  EXPECT_TRUE(signature_verifies(key->key, *jwt, false));
}

TEST(SignJwtPemTest, RefusesWhatItCannotSignWith) {
  auto ec = make_key("ES256", "unused");
  auto rsa = make_key("RS256", "unused");
  std::string ec_pem = private_key_pem(ec->key);
  std::string rsa_pem = private_key_pem(rsa->key);

  auto garbage = sign_jwt_pem(assertion_claims(), "garbage", "ES256");
  ASSERT_FALSE(garbage.is_ok());
  EXPECT_EQ(garbage.status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(sign_jwt_pem(assertion_claims(), "", "RS256").is_ok());
  EXPECT_FALSE(
      sign_jwt_pem(assertion_claims(), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "ES256").is_ok());

  auto hmac = sign_jwt_pem(assertion_claims(), ec_pem, "HS256");
  ASSERT_FALSE(hmac.is_ok());
  EXPECT_EQ(hmac.status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(sign_jwt_pem(assertion_claims(), ec_pem, "none").is_ok());
  EXPECT_FALSE(sign_jwt_pem(assertion_claims(), ec_pem, "es256").is_ok()) << "algorithm names are case-sensitive";

  auto es256_with_rsa = sign_jwt_pem(assertion_claims(), rsa_pem, "ES256");
  ASSERT_FALSE(es256_with_rsa.is_ok());
  EXPECT_EQ(es256_with_rsa.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(es256_with_rsa.status().message().find(rsa_pem.substr(40, 16)), std::string::npos)
      << "errors name no key material";
  auto rs256_with_ec = sign_jwt_pem(assertion_claims(), ec_pem, "RS256");
  ASSERT_FALSE(rs256_with_ec.is_ok());
  EXPECT_EQ(rs256_with_ec.status().code(), Code::kInvalidArgument);
}

// ES256 is P-256 only (RFC 7518 §3.4), but the key check counts bits, so any
// 256-bit curve passes and the token names the wrong algorithm. Enable once
// the curve itself is checked.
TEST(SignJwtPemTest, Es256RefusesAnother256BitCurve) {
  EVP_PKEY* secp256k1 = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp256k1");
  ASSERT_NE(secp256k1, nullptr);
  std::string pem = private_key_pem(secp256k1);
  EVP_PKEY_free(secp256k1);
  EXPECT_FALSE(sign_jwt_pem(assertion_claims(), pem, "ES256").is_ok());
}

}  // namespace
}  // namespace continuum
