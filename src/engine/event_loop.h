// The executor the engine runs on: a single-threaded event loop. All engine
// state is touched only from callbacks run by the loop, so it needs no locks.
// Production: net/event_loop.h (Boost.Asio). Tests: ManualEventLoop.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "core/clock.h"

namespace continuum {

class EventLoop {
 public:
  virtual ~EventLoop() = default;
  // Runs `task` on the loop thread soon. Callable from any thread.
  virtual void post(std::function<void()> task) = 0;
  // Runs `task` on the loop thread soon, as a continuation of the work now
  // running (an in-process effect's result, the next step of a run): called
  // on the loop thread, it runs right after the task that posted it, before
  // tasks posted earlier, so a run's in-process steps go depth first rather
  // than interleaved with every other run's. A loop bounds how many run in a
  // row before other work. Callable from any thread; off the loop thread, or
  // by default, the same as post().
  virtual void post_continuation(std::function<void()> task) { post(std::move(task)); }
  // Runs `task` on the loop thread after `delay_ms`. Callable from any thread.
  virtual void post_after(int64_t delay_ms, std::function<void()> task) = 0;
  // Whether tasks given to post() wait to run (timers and I/O not counted).
  // Callable from any thread; a hint, true or false a moment later.
  virtual bool has_pending_tasks() const = 0;
};

// A loop driven by hand, with a ManualClock for timers. For engine unit tests.
class ManualEventLoop final : public EventLoop {
 public:
  explicit ManualEventLoop(ManualClock& clock) : clock_(clock) {}
  void post(std::function<void()> task) override;
  // Off by default (continuations are posted in order). On: continuations
  // posted by a task that run_ready() runs go first in line, in order, as the
  // production loop runs them (a run's in-process steps depth first).
  void set_continuations_first(bool on) { continuations_first_ = on; }
  void post_continuation(std::function<void()> task) override;
  void post_after(int64_t delay_ms, std::function<void()> task) override;
  bool has_pending_tasks() const override;
  // Runs ready tasks until none is left; returns how many ran.
  int run_ready();
  // Advances the clock to the next timer and runs it; false if no timer.
  bool fire_next_timer();
  // Drops every pending task and timer (tests: simulating a process death).
  void clear();

 private:
  ManualClock& clock_;
  mutable std::mutex mutex_;
  std::deque<std::function<void()>> ready_;
  std::multimap<int64_t, std::function<void()>> timers_;
  bool continuations_first_ = false;
  // While run_ready() runs a task: its thread, and (that thread only) the continuations it posted.
  std::atomic<std::thread::id> running_thread_{};
  std::vector<std::function<void()>>* posted_by_running_ = nullptr;
};

}  // namespace continuum
