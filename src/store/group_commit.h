// The write path shared by the store backends: one writer thread drains a
// queue of batches and hands every batch waiting when it wakes (up to a limit)
// to the backend as one group, to be committed in one transaction with one
// durable flush (group commit).
//
// Contract:
// - submit() may be called from any thread; `done` runs on the writer thread,
//   exactly once per batch, in submission order within a group.
// - The backend's CommitGroup computes one Status per batch and reports it
//   through finish(); it is called on the writer thread only.
// - stop() lets the writer commit everything already queued, then joins it;
//   batches submitted after stop() fail with kUnavailable. It must be called
//   before the backend's state used by CommitGroup is destroyed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "obs/metrics.h"
#include "store/store.h"

namespace continuum {

struct PendingBatch {
  WriteBatch batch;
  std::function<void(Status)> done;
  int64_t enqueued_us = 0;
};

class GroupCommitQueue {
 public:
  using CommitGroup = std::function<void(std::vector<PendingBatch>& group)>;

  // `metrics` may be null; if given it must outlive the queue.
  GroupCommitQueue(const Clock& clock, size_t batches_per_group_max, MetricsRegistry* metrics);
  ~GroupCommitQueue();  // stops if still running

  void start(CommitGroup commit_group);
  void stop();
  void submit(WriteBatch batch, std::function<void(Status)> done);
  // Queues them all under one lock, in order: the writer sees them together.
  void submit_all(std::vector<CommitRequest> requests);

  // Delivers `results[i]` to `group[i]` (or `transaction` to all, if it failed)
  // and records metrics. Called by CommitGroup, once per group.
  void finish(std::vector<PendingBatch>& group, std::vector<Status>& results, const Status& transaction);

  StoreStats stats() const;

 private:
  void writer_loop();

  const Clock& clock_;
  const size_t batches_per_group_max_;
  CommitGroup commit_group_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<PendingBatch> queue_;  // guarded by mutex_
  bool stopping_ = false;           // guarded by mutex_
  std::thread writer_;

  std::atomic<int64_t> batches_committed_{0};
  std::atomic<int64_t> transactions_committed_{0};
  Histogram* commit_latency_ = nullptr;
  Histogram* group_size_ = nullptr;
  Counter* commit_errors_ = nullptr;
};

}  // namespace continuum
