#include "store/group_commit.h"

#include <algorithm>
#include <chrono>

namespace continuum {

namespace {
// Polling helps only where the thread that would wake the writer runs at the same time.
int64_t spin_budget_us(int64_t wanted) {
  return std::thread::hardware_concurrency() > 1 ? std::max<int64_t>(0, wanted) : 0;
}

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
}  // namespace

GroupCommitQueue::GroupCommitQueue(const Clock& clock, size_t batches_per_group_max, MetricsRegistry* metrics,
                                   int64_t hold_max_us, int64_t spin_us)
    : clock_(clock), batches_per_group_max_(std::max<size_t>(1, batches_per_group_max)),
      hold_max_us_(std::max<int64_t>(0, hold_max_us)), spin_us_(spin_budget_us(spin_us)) {
  if (metrics == nullptr) return;
  commit_latency_ = &metrics->histogram("continuum_store_commit_duration_seconds",
                                        "Time from commit request to durable commit.", latency_buckets_seconds());
  group_size_ = &metrics->histogram("continuum_store_group_commit_batches",
                                    "Batches per transaction (group commit size).",
                                    {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048});
  commit_errors_ = &metrics->counter("continuum_store_commit_errors_total", "Batches that failed to commit.");
}

GroupCommitQueue::~GroupCommitQueue() { stop(); }

void GroupCommitQueue::start(ApplyPart apply_part, CommitGroup commit_group) {
  apply_part_ = std::move(apply_part);
  commit_group_ = std::move(commit_group);
  writer_ = std::thread([this] { writer_loop(); });
}

void GroupCommitQueue::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    news_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void GroupCommitQueue::submit(WriteBatch batch, std::function<void(Status)> done) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      queue_.push_back(PendingBatch{std::move(batch), std::move(done), clock_.monotonic_us()});
      release_pending_ = true;
      news_.fetch_add(1, std::memory_order_release);
      wake_.notify_one();
      return;
    }
  }
  done(Status(Code::kUnavailable, "store is closing"));
}

void GroupCommitQueue::submit_all(std::vector<CommitRequest> requests, CommitPacing pacing) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      int64_t now_us = clock_.monotonic_us();
      for (auto& request : requests) {
        queue_.push_back(PendingBatch{std::move(request.batch), std::move(request.done), now_us});
      }
      if (pacing == CommitPacing::kNow && (!queue_.empty() || writer_open_)) release_pending_ = true;
      news_.fetch_add(1, std::memory_order_release);
      wake_.notify_one();
      return;
    }
  }
  for (auto& request : requests) request.done(Status(Code::kUnavailable, "store is closing"));
}

void GroupCommitQueue::release() {
  std::lock_guard lock(mutex_);
  if (queue_.empty() && !writer_open_) return;  // nothing held: the next batches are not released by this
  release_pending_ = true;
  news_.fetch_add(1, std::memory_order_release);
  wake_.notify_one();
}

bool GroupCommitQueue::take_part(std::vector<PendingBatch>& part, size_t open_batches, int64_t open_since_us) {
  std::unique_lock lock(mutex_);
  bool spun = false;  // once per part: after the spin, the writer sleeps
  if (open_batches == 0) {
    while (!stopping_ && queue_.empty()) {
      if (!spun) {
        spun = true;
        spin_while_quiet(lock);
      } else {
        wake_.wait(lock);
      }
    }
    if (!queue_.empty()) open_since_us = queue_.front().enqueued_us;
  }
  int64_t deadline_us = open_since_us + hold_max_us_;
  // With a backend that writes whole groups only, held batches wait in the queue.
  bool can_apply_now = apply_part_ != nullptr;
  for (;;) {
    bool expired = clock_.monotonic_us() >= deadline_us;
    bool must_end =
        stopping_ || release_pending_ || expired || open_batches + queue_.size() >= batches_per_group_max_;
    if (must_end || (can_apply_now && !queue_.empty())) break;
    if (!spun) {
      spun = true;
      spin_while_quiet(lock);
      continue;
    }
    wake_.wait_for(lock, std::chrono::microseconds(std::max<int64_t>(1, deadline_us - clock_.monotonic_us())));
  }
  size_t take = std::min(queue_.size(), batches_per_group_max_ - std::min(open_batches, batches_per_group_max_));
  part.reserve(take);
  for (size_t i = 0; i < take; ++i) {
    part.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  bool full = open_batches + part.size() >= batches_per_group_max_;
  bool end = stopping_ || release_pending_ || full || clock_.monotonic_us() >= deadline_us || !queue_.empty();
  if (end) release_pending_ = !queue_.empty() && release_pending_;  // what stays queued keeps its release
  writer_open_ = !end && open_batches + part.size() > 0;
  return end;
}

void GroupCommitQueue::spin_while_quiet(std::unique_lock<std::mutex>& lock) {
  if (spin_us_ == 0) return;
  uint64_t seen = news_.load(std::memory_order_relaxed);
  lock.unlock();
  // Real time, not the injected clock: this is about how long a wake-up takes.
  auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us_);
  while (news_.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 16; ++i) cpu_relax();
  }
  lock.lock();
}

void GroupCommitQueue::writer_loop() {
  std::vector<PendingBatch> open;  // applied (or, without ApplyPart, taken); the transaction not ended
  int64_t open_since_us = 0;
  for (;;) {
    std::vector<PendingBatch> part;
    bool end = take_part(part, open.size(), open_since_us);
    if (open.empty() && part.empty()) {
      std::lock_guard lock(mutex_);
      if (stopping_ && queue_.empty()) return;
      continue;
    }
    if (open.empty()) open_since_us = part.front().enqueued_us;
    if (apply_part_ && !part.empty()) apply_part_(part);
    for (auto& batch : part) open.push_back(std::move(batch));
    if (!end) continue;
    commit_group_(open);
    open.clear();
  }
}

void GroupCommitQueue::finish(std::vector<PendingBatch>& group, std::vector<Status>& results,
                              const Status& transaction) {
  CONTINUUM_CHECK(results.size() == group.size(), "a backend reports one status per batch of the group");
  int64_t now_us = clock_.monotonic_us();
  if (group_size_) group_size_->observe(static_cast<double>(group.size()));
  if (transaction.is_ok()) transactions_committed_.fetch_add(1);
  for (size_t i = 0; i < group.size(); ++i) {
    Status status = transaction.is_ok() ? std::move(results[i]) : transaction;
    if (status.is_ok()) {
      batches_committed_.fetch_add(1);
      if (commit_latency_) commit_latency_->observe(static_cast<double>(now_us - group[i].enqueued_us) / 1e6);
    } else if (commit_errors_) {
      commit_errors_->inc();
    }
    group[i].done(std::move(status));
  }
}

StoreStats GroupCommitQueue::stats() const {
  return StoreStats{batches_committed_.load(), transactions_committed_.load()};
}

}  // namespace continuum
