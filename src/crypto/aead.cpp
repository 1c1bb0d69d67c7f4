#include "crypto/aead.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

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
  if (RAND_bytes(nonce, static_cast<int>(kAeadNonceBytes)) != 1) return internal_error("no randomness for a nonce");
  auto context = new_context();
  int length = 0;
  bool ok = context && EVP_EncryptInit_ex(context.get(), aes_256_gcm(), nullptr, key.data(), nonce) == 1 &&
            EVP_EncryptUpdate(context.get(), nullptr, &length, bytes(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_EncryptUpdate(context.get(), nonce + kAeadNonceBytes, &length, bytes(plaintext),
                              static_cast<int>(plaintext.size())) == 1 &&
            EVP_EncryptFinal_ex(context.get(), nonce + kAeadNonceBytes + length, &length) == 1 &&
            EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kAeadTagBytes),
                                nonce + kAeadNonceBytes + plaintext.size()) == 1;
  if (!ok) {
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
  auto context = new_context();
  int length = 0;
  bool ok = context &&
            EVP_DecryptInit_ex(context.get(), aes_256_gcm(), nullptr, key.data(), bytes(sealed)) == 1 &&
            EVP_DecryptUpdate(context.get(), nullptr, &length, bytes(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(context.get(), bytes(plaintext), &length, bytes(sealed) + kAeadNonceBytes,
                              static_cast<int>(text_size)) == 1 &&
            EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kAeadTagBytes),
                                bytes(tag)) == 1;
  int final_length = 0;
  if (!ok || EVP_DecryptFinal_ex(context.get(), bytes(plaintext) + length, &final_length) != 1) {
    return Status(Code::kDataLoss, "sealed value failed its integrity check (damaged, moved, or wrong key)");
  }
  return plaintext;
}

}  // namespace continuum
