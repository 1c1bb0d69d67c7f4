#include "obs/metrics.h"

#include <cstdio>
#include <sstream>

namespace continuum {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<int64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i] = 0;
}

void Histogram::observe(double value) {
  size_t bucket = 0;
  while (bucket < bounds_.size() && value > bounds_[bucket]) ++bucket;
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micro_.fetch_add(static_cast<int64_t>(value * 1e6), std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snap;
  snap.bounds = bounds_;
  int64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    snap.cumulative_counts.push_back(running);
  }
  snap.count = count_.load(std::memory_order_relaxed);
  snap.sum = static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) / 1e6;
  return snap;
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help, const std::string& labels) {
  std::lock_guard lock(mutex_);
  Family& family = families_[name];
  family.type = "counter";
  family.help = help;
  auto& slot = family.counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                      std::vector<double> bounds) {
  std::lock_guard lock(mutex_);
  Family& family = families_[name];
  family.type = "histogram";
  family.help = help;
  if (!family.histogram) family.histogram = std::make_unique<Histogram>(std::move(bounds));
  return *family.histogram;
}

void MetricsRegistry::gauge(const std::string& name, const std::string& help, std::function<double()> read) {
  std::lock_guard lock(mutex_);
  Family& family = families_[name];
  family.type = "gauge";
  family.help = help;
  family.gauge = std::move(read);
}

namespace {
std::string format_number(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.17g", value);
  return buffer;
}
}  // namespace

std::string MetricsRegistry::render() const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  for (const auto& [name, family] : families_) {
    out << "# HELP " << name << ' ' << family.help << '\n';
    out << "# TYPE " << name << ' ' << family.type << '\n';
    if (family.type == "counter") {
      for (const auto& [labels, counter] : family.counters) {
        out << name;
        if (!labels.empty()) out << '{' << labels << '}';
        out << ' ' << counter->value() << '\n';
      }
    } else if (family.type == "gauge") {
      out << name << ' ' << format_number(family.gauge()) << '\n';
    } else if (family.histogram) {
      Histogram::Snapshot snap = family.histogram->snapshot();
      for (size_t i = 0; i < snap.bounds.size(); ++i) {
        out << name << "_bucket{le=\"" << format_number(snap.bounds[i]) << "\"} "
            << snap.cumulative_counts[i] << '\n';
      }
      out << name << "_bucket{le=\"+Inf\"} " << snap.cumulative_counts.back() << '\n';
      out << name << "_sum " << format_number(snap.sum) << '\n';
      out << name << "_count " << snap.count << '\n';
    }
  }
  return out.str();
}

std::vector<double> latency_buckets_seconds() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
}

}  // namespace continuum
