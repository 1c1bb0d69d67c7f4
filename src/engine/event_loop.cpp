#include "engine/event_loop.h"

namespace continuum {

void ManualEventLoop::post(std::function<void()> task) {
  std::lock_guard lock(mutex_);
  ready_.push_back(std::move(task));
}

void ManualEventLoop::post_continuation(std::function<void()> task) {
  if (continuations_first_ && std::this_thread::get_id() == running_thread_.load()) {
    posted_by_running_->push_back(std::move(task));
    return;
  }
  post(std::move(task));
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
    std::vector<std::function<void()>> continuations;
    posted_by_running_ = &continuations;
    running_thread_.store(std::this_thread::get_id());
    task();  // tasks it posts run after those already waiting; its continuations (if first) before them
    running_thread_.store(std::thread::id{});
    posted_by_running_ = nullptr;
    if (!continuations.empty()) {
      std::lock_guard lock(mutex_);
      ready_.insert(ready_.begin(), std::make_move_iterator(continuations.begin()),
                    std::make_move_iterator(continuations.end()));
    }
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
