#include "crypto/signing.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <fstream>

#include "core/private_file.h"
#include "crypto/hash.h"

namespace continuum {

namespace {

constexpr size_t kSeedBytes = 32;
constexpr size_t kSignatureBytes = 64;

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

Pkey private_key(std::string_view seed) {
  return Pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                           reinterpret_cast<const unsigned char*>(seed.data()), seed.size()));
}

}  // namespace

Result<Ed25519Key> Ed25519Key::from_seed(std::string_view seed) {
  if (seed.size() != kSeedBytes) return invalid_argument("an Ed25519 seed is 32 bytes");
  Pkey key = private_key(seed);
  if (!key) return internal_error("cannot load an Ed25519 key");
  std::string public_key(32, '\0');
  size_t length = public_key.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(public_key.data()), &length) != 1 ||
      length != 32) {
    return internal_error("cannot derive an Ed25519 public key");
  }
  Ed25519Key result;
  result.seed_ = std::string(seed);
  result.public_key_ = std::move(public_key);
  return result;
}

Result<Ed25519Key> Ed25519Key::generate() {
  std::string seed(kSeedBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(seed.data()), static_cast<int>(seed.size())) != 1) {
    return internal_error("no randomness for a new key");
  }
  return from_seed(seed);
}

Result<Ed25519Key> Ed25519Key::load_or_create(const std::string& path) {
  std::ifstream existing(path);
  std::string hex;
  if (existing && std::getline(existing, hex) && !hex.empty()) {
    auto seed = from_hex(hex);
    if (!seed.is_ok()) return invalid_argument("key file " + path + " is damaged: " + seed.status().message());
    return from_seed(*seed);
  }
  ASSIGN_OR_RETURN(auto key, generate());
  RETURN_IF_ERROR(write_private_file(path, to_hex(key.seed_) + "\n"));
  return key;
}

std::string Ed25519Key::key_id() const { return ed25519_key_id(public_key_); }

Result<std::string> Ed25519Key::sign(std::string_view message) const {
  Pkey key = private_key(seed_);
  MdCtx ctx(EVP_MD_CTX_new());
  std::string signature(kSignatureBytes, '\0');
  size_t length = signature.size();
  if (!key || !ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return internal_error("Ed25519 signing failed");
  }
  return signature;
}

bool ed25519_verify(std::string_view public_key, std::string_view message, std::string_view signature) {
  if (public_key.size() != 32 || signature.size() != kSignatureBytes) return false;
  Pkey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                       reinterpret_cast<const unsigned char*>(public_key.data()), public_key.size()));
  MdCtx ctx(EVP_MD_CTX_new());
  if (!key || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                          reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
}

std::string ed25519_key_id(std::string_view public_key) { return sha256_hex(public_key).substr(0, 16); }

}  // namespace continuum
