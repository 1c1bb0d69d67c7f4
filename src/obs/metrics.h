// Prometheus metrics: counters, gauges and histograms, rendered in the text
// exposition format. Names carry the `continuum_` prefix and base units;
// labels never hold ids. Thread-safe: metrics are created once (under a lock)
// and updated lock-free.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace continuum {

class Counter {
 public:
  void inc(int64_t delta = 1) { value_.fetch_add(delta, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<int64_t> cumulative_counts;  // one per bound, then +Inf
    double sum = 0;
    int64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<int64_t>[]> counts_;  // bounds_.size() + 1 buckets
  std::atomic<int64_t> count_{0};
  std::atomic<int64_t> sum_micro_{0};  // sum in millionths, to stay atomic
};

class MetricsRegistry {
 public:
  // `labels` is a rendered label set such as `status="completed"` (or "").
  Counter& counter(const std::string& name, const std::string& help, const std::string& labels = "");
  Histogram& histogram(const std::string& name, const std::string& help, std::vector<double> bounds);
  // A gauge read at render time.
  void gauge(const std::string& name, const std::string& help, std::function<double()> read);
  std::string render() const;

 private:
  struct Family {
    std::string type;
    std::string help;
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> gauge;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
};

// Latency buckets in seconds, from 50 µs to 10 s.
std::vector<double> latency_buckets_seconds();

}  // namespace continuum
