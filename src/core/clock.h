// Time and randomness, injectable. Nothing outside src/core/ reads the system
// clock or an entropy source directly: production code takes a Clock& / Random&
// at construction, tests pass ManualClock / SeededRandom.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>

namespace continuum {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock milliseconds since the Unix epoch (for timestamps and deadlines).
  virtual int64_t now_ms() const = 0;
  // Monotonic microseconds (for latency measurement only).
  virtual int64_t monotonic_us() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override;
  int64_t monotonic_us() const override;
  static SystemClock& instance();
};

// A clock that moves only when told. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'700'000'000'000) : now_ms_(start_ms) {}
  int64_t now_ms() const override { return now_ms_.load(); }
  int64_t monotonic_us() const override { return now_ms_.load() * 1000; }
  void advance_ms(int64_t delta_ms) { now_ms_ += delta_ms; }

 private:
  std::atomic<int64_t> now_ms_;
};

class Random {
 public:
  virtual ~Random() = default;
  // Uniform in [0, 1).
  virtual double uniform() = 0;
  // n random bytes rendered as lowercase hex (2n characters).
  virtual std::string hex(int byte_count) = 0;
};

// An id body that sorts by creation time: `now_ms` as 12 hex digits (48 bits,
// enough until the year 10889), then `random_bytes` random bytes as hex. Rows
// keyed by such ids (runs, sessions, and the steps, items and audit entries
// indexed by them) land next to each other in the B-trees, so a commit of
// many concurrent runs dirties a few pages instead of one per run. Ids stay
// unique by their random part; they were never secrets (every read is
// authenticated and tenant-scoped).
std::string time_ordered_hex(int64_t now_ms, Random& random, int random_bytes = 6);

// Cryptographically strong (OpenSSL RAND_bytes). Thread-safe.
class SystemRandom final : public Random {
 public:
  double uniform() override;
  std::string hex(int byte_count) override;
  static SystemRandom& instance();
};

// Deterministic, for tests. Thread-safe.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(uint64_t seed) : engine_(seed) {}
  double uniform() override;
  std::string hex(int byte_count) override;

 private:
  std::mutex mutex_;
  std::mt19937_64 engine_;
};

}  // namespace continuum
