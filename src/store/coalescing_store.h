// Paces the commits made on the event loop thread: while the loop still has
// posted tasks to run, they go to the inner store at once but marked
// CommitPacing::kMoreFollow, so its writer writes them while the loop goes on
// and ends the transaction (one fsync) only when the loop is idle: steps that
// follow one another in process (a run running ahead, see the engine) share
// one transaction and one fsync, and writing them overlaps computing them.
//
// Contract:
// - Order: batches reach the inner store in the order commit() was called,
//   whatever the thread. `done` runs as the inner store runs it: once the
//   batch is durable or failed. Nothing is acknowledged earlier than before.
// - Pacing begins once attach_to_loop_thread() was called on the loop thread,
//   and applies only to commits made on that thread. Held commits are
//   released when the loop runs out of posted tasks, `max_delay_us` after the
//   first of them, or once `max_batches` are held, whichever comes first.
// - Commits from other threads and commit_and_wait() are passed with kNow
//   (ending what is held). The destructor releases what is held; the inner
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
  void commit_many(std::vector<CommitRequest> requests, CommitPacing pacing) override;
  Status commit_and_wait(WriteBatch batch) override;

 private:
  bool on_loop_thread() const;
  // Ends the hold below. Locked by the caller.
  void release();
  void flush_when_idle();

  EventLoop& loop_;
  const Clock& clock_;
  const Options options_;
  std::atomic<std::thread::id> loop_thread_{};
  // Recursive: a `done` run synchronously by the inner store (a batch it
  // refused at once) may commit again on the same thread.
  std::recursive_mutex mutex_;
  size_t held_batches_ = 0;         // guarded by mutex_: passed with kMoreFollow, not yet released
  int64_t holding_since_us_ = 0;    // guarded by mutex_
  bool flush_posted_ = false;       // guarded by mutex_
};

}  // namespace continuum
