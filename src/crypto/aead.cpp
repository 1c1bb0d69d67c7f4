#include "crypto/aead.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <openssl/crypto.h>

#include <cstring>
#include <memory>

namespace continuum {

namespace {

using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

CipherContext new_context() { return CipherContext(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free); }

// Fetched once: with OpenSSL 3, EVP_aes_256_gcm() makes every Init look the
// algorithm up in the provider tables again (a measurable cost per value).
const EVP_CIPHER* aes_256_gcm() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  CONTINUUM_CHECK(cipher != nullptr, "OpenSSL provides AES-256-GCM");
  return cipher;
}

// A context with its key schedule already set up, reused by this thread
// while the key stays the same (the common case: one tenant's key seals a
// run's steps one after another). Only the nonce is set per value.
struct KeyedContext {
  AeadKey key{};
  CipherContext context{nullptr, &EVP_CIPHER_CTX_free};
  ~KeyedContext() { OPENSSL_cleanse(key.data(), key.size()); }
};

EVP_CIPHER_CTX* context_for(KeyedContext& cached, const AeadKey& key, bool encrypt) {
  if (cached.context && CRYPTO_memcmp(cached.key.data(), key.data(), key.size()) == 0) return cached.context.get();
  cached.context = new_context();
  if (!cached.context) return nullptr;
  int ok = encrypt ? EVP_EncryptInit_ex(cached.context.get(), aes_256_gcm(), nullptr, key.data(), nullptr)
                   : EVP_DecryptInit_ex(cached.context.get(), aes_256_gcm(), nullptr, key.data(), nullptr);
  if (ok != 1) {
    cached.context.reset();
    return nullptr;
  }
  cached.key = key;
  return cached.context.get();
}

// Nonces come from OpenSSL's CSPRNG, drawn a few hundred at a time: a call
// into it costs more than sealing a small value.
bool fill_nonce(unsigned char* nonce) {
  thread_local std::array<unsigned char, kAeadNonceBytes * 256> pool;
  thread_local size_t used = pool.size();
  if (used == pool.size()) {
    if (RAND_bytes(pool.data(), static_cast<int>(pool.size())) != 1) return false;
    used = 0;
  }
  std::memcpy(nonce, pool.data() + used, kAeadNonceBytes);
  used += kAeadNonceBytes;
  return true;
}

const unsigned char* bytes(std::string_view text) { return reinterpret_cast<const unsigned char*>(text.data()); }
unsigned char* bytes(std::string& text) { return reinterpret_cast<unsigned char*>(text.data()); }

}  // namespace

AeadKey random_aead_key() {
  AeadKey key;
  CONTINUUM_CHECK(RAND_bytes(key.data(), static_cast<int>(key.size())) == 1, "the CSPRNG yields key material");
  return key;
}

AeadKey aead_key_from(std::string_view raw) {
  CONTINUUM_CHECK(raw.size() == kAeadKeyBytes, "a data key is 32 bytes");
  AeadKey key;
  std::copy(raw.begin(), raw.end(), key.begin());
  return key;
}

std::string_view aead_key_bytes(const AeadKey& key) {
  return std::string_view(reinterpret_cast<const char*>(key.data()), key.size());
}

Status aead_seal_append(const AeadKey& key, std::string_view plaintext, std::string_view aad, std::string& out) {
  size_t start = out.size();
  out.resize(start + kAeadNonceBytes + plaintext.size() + kAeadTagBytes);
  unsigned char* nonce = bytes(out) + start;
  if (!fill_nonce(nonce)) {
    out.resize(start);
    return internal_error("no randomness for a nonce");
  }
  thread_local KeyedContext cached;
  EVP_CIPHER_CTX* context = context_for(cached, key, /*encrypt=*/true);
  int length = 0;
  bool ok = context && EVP_EncryptInit_ex(context, nullptr, nullptr, nullptr, nonce) == 1 &&
            EVP_EncryptUpdate(context, nullptr, &length, bytes(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_EncryptUpdate(context, nonce + kAeadNonceBytes, &length, bytes(plaintext),
                              static_cast<int>(plaintext.size())) == 1 &&
            EVP_EncryptFinal_ex(context, nonce + kAeadNonceBytes + length, &length) == 1 &&
            EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kAeadTagBytes),
                                nonce + kAeadNonceBytes + plaintext.size()) == 1;
  if (!ok) {
    cached.context.reset();  // a context in an unknown state is not reused
    out.resize(start);
    return internal_error("AES-256-GCM encryption failed");
  }
  return Status::ok();
}

Result<std::string> aead_seal(const AeadKey& key, std::string_view plaintext, std::string_view aad) {
  std::string sealed;
  RETURN_IF_ERROR(aead_seal_append(key, plaintext, aad, sealed));
  return sealed;
}

Result<std::string> aead_open(const AeadKey& key, std::string_view sealed, std::string_view aad) {
  if (sealed.size() < kAeadNonceBytes + kAeadTagBytes) {
    return Status(Code::kDataLoss, "sealed value is truncated");
  }
  size_t text_size = sealed.size() - kAeadNonceBytes - kAeadTagBytes;
  std::string plaintext(text_size, '\0');
  std::string tag(sealed.substr(kAeadNonceBytes + text_size));
  thread_local KeyedContext cached;
  EVP_CIPHER_CTX* context = context_for(cached, key, /*encrypt=*/false);
  int length = 0;
  bool ok = context && EVP_DecryptInit_ex(context, nullptr, nullptr, nullptr, bytes(sealed)) == 1 &&
            EVP_DecryptUpdate(context, nullptr, &length, bytes(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(context, bytes(plaintext), &length, bytes(sealed) + kAeadNonceBytes,
                              static_cast<int>(text_size)) == 1 &&
            EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kAeadTagBytes),
                                bytes(tag)) == 1;
  int final_length = 0;
  if (!ok || EVP_DecryptFinal_ex(context, bytes(plaintext) + length, &final_length) != 1) {
    cached.context.reset();
    return Status(Code::kDataLoss, "sealed value failed its integrity check (damaged, moved, or wrong key)");
  }
  return plaintext;
}

}  // namespace continuum
