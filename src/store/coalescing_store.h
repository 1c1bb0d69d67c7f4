// Holds back the commits made on the event loop thread while the loop still
// has posted tasks to run, then hands them to the inner store together: steps
// that follow one another in process (a run running ahead, see the engine)
// reach the writer as one group, one transaction and one fsync, instead of
// one fsync for the first and another for all that came during it.
//
// Contract:
// - Order: batches reach the inner store in the order commit() was called,
//   whatever the thread. `done` runs as the inner store runs it: once the
//   batch is durable or failed. Nothing is acknowledged earlier than before.
// - Holding back begins once attach_to_loop_thread() was called on the loop
//   thread, and applies only to commits made on that thread. A batch waits
//   until the loop runs out of posted tasks, `max_delay_us` after the oldest
//   waiting batch, or `max_batches` wait, whichever comes first.
// - Commits from other threads and commit_and_wait() go through at once,
//   after what waits. The destructor hands over what still waits; the inner
//   store must outlive this one.
#pragma once

#include <atomic>
#include <mutex>
#include <thread>

#include "core/clock.h"
#include "engine/event_loop.h"
#include "store/forwarding_store.h"

namespace continuum {

class CoalescingStore final : public ForwardingStore {
 public:
  struct Options {
    int64_t max_delay_us = 1000;  // 0 = no holding back
    size_t max_batches = 1024;
  };

  CoalescingStore(Store& inner, EventLoop& loop, const Clock& clock, Options options);
  ~CoalescingStore() override;

  void attach_to_loop_thread();

  void commit(WriteBatch batch, std::function<void(Status)> done) override;
  void commit_many(std::vector<CommitRequest> requests) override;
  Status commit_and_wait(WriteBatch batch) override;

 private:
  bool on_loop_thread() const;
  // Hands what waits, then `more`, to the inner store. Locked by the caller.
  void hand_over(std::vector<CommitRequest> more);
  void flush_when_idle();

  EventLoop& loop_;
  const Clock& clock_;
  const Options options_;
  std::atomic<std::thread::id> loop_thread_{};
  // Recursive: a `done` run synchronously by the inner store (a batch it
  // refused at once) may commit again on the same thread.
  std::recursive_mutex mutex_;
  std::vector<CommitRequest> waiting_;  // guarded by mutex_
  int64_t oldest_waiting_us_ = 0;       // guarded by mutex_
  bool flush_posted_ = false;           // guarded by mutex_
};

}  // namespace continuum
