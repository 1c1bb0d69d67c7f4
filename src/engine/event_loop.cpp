#include "engine/event_loop.h"

namespace continuum {

void ManualEventLoop::post(std::function<void()> task) {
  std::lock_guard lock(mutex_);
  ready_.push_back(std::move(task));
}

void ManualEventLoop::post_after(int64_t delay_ms, std::function<void()> task) {
  std::lock_guard lock(mutex_);
  timers_.emplace(clock_.now_ms() + delay_ms, std::move(task));
}

bool ManualEventLoop::has_pending_tasks() const {
  std::lock_guard lock(mutex_);
  return !ready_.empty();
}

int ManualEventLoop::run_ready() {
  int count = 0;
  for (;;) {
    std::function<void()> task;
    {
      std::lock_guard lock(mutex_);
      if (ready_.empty()) return count;
      task = std::move(ready_.front());
      ready_.pop_front();
    }
    task();  // tasks it posts run after those already waiting
    ++count;
  }
}

bool ManualEventLoop::fire_next_timer() {
  std::function<void()> task;
  {
    std::lock_guard lock(mutex_);
    if (timers_.empty()) return false;
    auto first = timers_.begin();
    int64_t delta = first->first - clock_.now_ms();
    if (delta > 0) clock_.advance_ms(delta);
    task = std::move(first->second);
    timers_.erase(first);
  }
  task();
  return true;
}

void ManualEventLoop::clear() {
  std::lock_guard lock(mutex_);
  ready_.clear();
  timers_.clear();
}

}  // namespace continuum
