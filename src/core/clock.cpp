#include "core/clock.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstring>

#include <chrono>
#include <cstdio>
#include <vector>

namespace continuum {

int64_t SystemClock::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t SystemClock::monotonic_us() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

SystemClock& SystemClock::instance() {
  static SystemClock clock;
  return clock;
}

namespace {
std::string to_hex(const unsigned char* bytes, int count) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(static_cast<size_t>(count) * 2);
  for (int i = 0; i < count; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xF]);
  }
  return out;
}
}  // namespace

namespace {

// Bytes from OpenSSL's CSPRNG, drawn 4 KiB at a time per thread: ids are made
// for every run, item and step batch, and each call into the CSPRNG costs far
// more than the bytes. Handed-out bytes are wiped from the pool.
void random_bytes(unsigned char* out, size_t count) {
  thread_local std::array<unsigned char, 4096> pool;
  thread_local size_t used = pool.size();
  if (count > pool.size() / 8) {
    if (RAND_bytes(out, static_cast<int>(count)) != 1) {
      std::fprintf(stderr, "RAND_bytes failed\n");
      std::abort();
    }
    return;
  }
  if (pool.size() - used < count) {
    if (RAND_bytes(pool.data(), static_cast<int>(pool.size())) != 1) {
      std::fprintf(stderr, "RAND_bytes failed\n");
      std::abort();
    }
    used = 0;
  }
  std::memcpy(out, pool.data() + used, count);
  OPENSSL_cleanse(pool.data() + used, count);
  used += count;
}

}  // namespace

double SystemRandom::uniform() {
  uint64_t value = 0;
  random_bytes(reinterpret_cast<unsigned char*>(&value), sizeof(value));
  return static_cast<double>(value >> 11) / static_cast<double>(1ULL << 53);
}

std::string SystemRandom::hex(int byte_count) {
  std::vector<unsigned char> bytes(static_cast<size_t>(byte_count));
  random_bytes(bytes.data(), bytes.size());
  return to_hex(bytes.data(), byte_count);
}

std::string time_ordered_hex(int64_t now_ms, Random& random, int random_bytes) {
  static const char kDigits[] = "0123456789abcdef";
  auto time = static_cast<uint64_t>(std::max<int64_t>(now_ms, 0));
  std::string out(12, '0');
  for (int i = 11; i >= 0; --i, time >>= 4) out[static_cast<size_t>(i)] = kDigits[time & 0xF];
  return out + random.hex(random_bytes);
}

SystemRandom& SystemRandom::instance() {
  static SystemRandom random;
  return random;
}

double SeededRandom::uniform() {
  std::lock_guard lock(mutex_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine_);
}

std::string SeededRandom::hex(int byte_count) {
  std::lock_guard lock(mutex_);
  std::vector<unsigned char> bytes(static_cast<size_t>(byte_count));
  for (auto& byte : bytes) byte = static_cast<unsigned char>(engine_() & 0xFF);
  return to_hex(bytes.data(), byte_count);
}

}  // namespace continuum
