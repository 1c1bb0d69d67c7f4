// The write path shared by the store backends: one writer thread drains a
// queue of batches and hands every batch waiting when it wakes (up to a limit)
// to the backend as one group, to be committed in one transaction with one
// durable flush (group commit).
//
// Held transactions: batches submitted with CommitPacing::kMoreFollow are
// given to the backend's ApplyPart at once, but the transaction is not ended
// (no fsync, no `done`) until a submission without it, release(), stop(), the
// group limit, or `hold_max_us` after its first batch. So the writer writes
// a run's steps while the event loop still computes the next ones, and all
// of them still share one fsync.
//
// Waking: before the writer sleeps (for the first batch of a transaction, or
// for more of a held one) it polls, once per part it takes, for up to
// `spin_us` (kSpinUsDefault; 0 on a single core): a sleeping thread takes
// ~20 us to wake on a VM, as long as a step's statements take to run, and a
// run going on step by step would pay that twice per step. The polling is
// bounded, so an idle store costs nothing.
//
// Contract:
// - submit() may be called from any thread; `done` runs on the writer thread,
//   exactly once per batch, in submission order within a group.
// - ApplyPart writes a part of the open transaction (beginning it if none is
//   open); CommitGroup ends it for all the parts given since the last end,
//   computes one Status per batch and reports them through finish(). Both are
//   called on the writer thread only. A backend without ApplyPart gets the
//   whole group at its end.
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
  using ApplyPart = std::function<void(std::vector<PendingBatch>& part)>;
  using CommitGroup = std::function<void(std::vector<PendingBatch>& group)>;
  static constexpr int64_t kHoldMaxUsDefault = 5000;
  static constexpr int64_t kSpinUsDefault = 100;

  // `metrics` may be null; if given it must outlive the queue.
  GroupCommitQueue(const Clock& clock, size_t batches_per_group_max, MetricsRegistry* metrics,
                   int64_t hold_max_us = kHoldMaxUsDefault, int64_t spin_us = kSpinUsDefault);
  ~GroupCommitQueue();  // stops if still running

  // `apply_part` may be null (the backend writes whole groups only).
  void start(ApplyPart apply_part, CommitGroup commit_group);
  void stop();
  void submit(WriteBatch batch, std::function<void(Status)> done);
  // Queues them all under one lock, in order: the writer sees them together.
  void submit_all(std::vector<CommitRequest> requests, CommitPacing pacing);
  // Ends the hold of kMoreFollow submissions: the open transaction commits.
  void release();

  // Delivers `results[i]` to `group[i]` (or `transaction` to all, if it failed)
  // and records metrics. Called by CommitGroup, once per group.
  void finish(std::vector<PendingBatch>& group, std::vector<Status>& results, const Status& transaction);

  StoreStats stats() const;

 private:
  void writer_loop();
  // Waits for work and takes the next part; says whether the open
  // transaction (`open_batches` applied so far, the oldest enqueued at
  // `open_since_us`) ends after it.
  bool take_part(std::vector<PendingBatch>& part, size_t open_batches, int64_t open_since_us);
  // Unlocks and polls until a submission or release comes or spin_us_ pass;
  // returns locked. The caller then checks its condition again.
  void spin_while_quiet(std::unique_lock<std::mutex>& lock);

  const Clock& clock_;
  const size_t batches_per_group_max_;
  const int64_t hold_max_us_;
  const int64_t spin_us_;
  ApplyPart apply_part_;
  CommitGroup commit_group_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<PendingBatch> queue_;  // guarded by mutex_
  // Guarded by mutex_: a release (or a kNow submission) came for what is
  // open or queued; the writer ends the transaction at its next look.
  bool release_pending_ = false;
  bool writer_open_ = false;        // guarded by mutex_: the writer holds a transaction open
  bool stopping_ = false;           // guarded by mutex_
  // Counts submissions, releases and stop (changed under mutex_): what the
  // writer polls while it spins.
  std::atomic<uint64_t> news_{0};
  std::thread writer_;

  std::atomic<int64_t> batches_committed_{0};
  std::atomic<int64_t> transactions_committed_{0};
  Histogram* commit_latency_ = nullptr;
  Histogram* group_size_ = nullptr;
  Counter* commit_errors_ = nullptr;
};

}  // namespace continuum
