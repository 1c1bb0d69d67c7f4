#include "store/coalescing_store.h"

#include <future>

namespace continuum {

CoalescingStore::CoalescingStore(Store& inner, EventLoop& loop, const Clock& clock, Options options)
    : ForwardingStore(inner), loop_(loop), clock_(clock), options_(options) {}

CoalescingStore::~CoalescingStore() {
  std::lock_guard lock(mutex_);
  release();
}

void CoalescingStore::attach_to_loop_thread() {
  if (options_.max_delay_us > 0) loop_thread_.store(std::this_thread::get_id());
}

bool CoalescingStore::on_loop_thread() const { return loop_thread_.load() == std::this_thread::get_id(); }

void CoalescingStore::commit(WriteBatch batch, std::function<void(Status)> done) {
  std::vector<CommitRequest> one;
  one.push_back(CommitRequest{std::move(batch), std::move(done)});
  commit_many(std::move(one), CommitPacing::kNow);
}

void CoalescingStore::commit_many(std::vector<CommitRequest> requests, CommitPacing pacing) {
  std::lock_guard lock(mutex_);
  if (!on_loop_thread()) {
    held_batches_ = 0;  // what is held below ends with these
    return inner_.commit_many(std::move(requests), pacing);
  }
  if (held_batches_ == 0) holding_since_us_ = clock_.monotonic_us();
  held_batches_ += requests.size();
  if (held_batches_ >= options_.max_batches) {
    held_batches_ = 0;
    return inner_.commit_many(std::move(requests), CommitPacing::kNow);
  }
  inner_.commit_many(std::move(requests), CommitPacing::kMoreFollow);
  if (!flush_posted_) {
    flush_posted_ = true;
    loop_.post([this] { flush_when_idle(); });
  }
}

Status CoalescingStore::commit_and_wait(WriteBatch batch) {
  std::promise<Status> promise;
  auto future = promise.get_future();
  {
    std::lock_guard lock(mutex_);
    held_batches_ = 0;
    std::vector<CommitRequest> one;
    one.push_back(CommitRequest{std::move(batch), [&promise](Status status) { promise.set_value(std::move(status)); }});
    inner_.commit_many(std::move(one), CommitPacing::kNow);
  }
  return future.get();
}

void CoalescingStore::release() {
  if (held_batches_ == 0) return;
  held_batches_ = 0;
  inner_.release_held_commits();
}

// Runs as a posted task: while other posted tasks wait (the steps of runs
// going on in process), it goes to the back of the queue again, so what they
// commit joins the same transaction.
void CoalescingStore::flush_when_idle() {
  std::lock_guard lock(mutex_);
  bool young = clock_.monotonic_us() - holding_since_us_ < options_.max_delay_us;
  if (held_batches_ > 0 && young && loop_.has_pending_tasks()) {
    loop_.post([this] { flush_when_idle(); });
    return;
  }
  flush_posted_ = false;
  release();
}

}  // namespace continuum
