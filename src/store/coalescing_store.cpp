#include "store/coalescing_store.h"

#include <future>

namespace continuum {

CoalescingStore::CoalescingStore(Store& inner, EventLoop& loop, const Clock& clock, Options options)
    : ForwardingStore(inner), loop_(loop), clock_(clock), options_(options) {}

CoalescingStore::~CoalescingStore() {
  std::lock_guard lock(mutex_);
  hand_over({});
}

void CoalescingStore::attach_to_loop_thread() {
  if (options_.max_delay_us > 0) loop_thread_.store(std::this_thread::get_id());
}

bool CoalescingStore::on_loop_thread() const { return loop_thread_.load() == std::this_thread::get_id(); }

void CoalescingStore::commit(WriteBatch batch, std::function<void(Status)> done) {
  std::vector<CommitRequest> one;
  one.push_back(CommitRequest{std::move(batch), std::move(done)});
  commit_many(std::move(one));
}

void CoalescingStore::commit_many(std::vector<CommitRequest> requests) {
  std::lock_guard lock(mutex_);
  if (!on_loop_thread()) return hand_over(std::move(requests));
  if (waiting_.empty()) oldest_waiting_us_ = clock_.monotonic_us();
  for (auto& request : requests) waiting_.push_back(std::move(request));
  if (waiting_.size() >= options_.max_batches) return hand_over({});
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
    std::vector<CommitRequest> one;
    one.push_back(CommitRequest{std::move(batch), [&promise](Status status) { promise.set_value(std::move(status)); }});
    hand_over(std::move(one));
  }
  return future.get();
}

void CoalescingStore::hand_over(std::vector<CommitRequest> more) {
  std::vector<CommitRequest> all = std::move(waiting_);
  waiting_.clear();
  for (auto& request : more) all.push_back(std::move(request));
  if (!all.empty()) inner_.commit_many(std::move(all));
}

// Runs as a posted task: while other posted tasks wait (the steps of runs
// going on in process), it goes to the back of the queue again, so what they
// commit joins the same group.
void CoalescingStore::flush_when_idle() {
  std::lock_guard lock(mutex_);
  bool young = clock_.monotonic_us() - oldest_waiting_us_ < options_.max_delay_us;
  if (!waiting_.empty() && young && loop_.has_pending_tasks()) {
    loop_.post([this] { flush_when_idle(); });
    return;
  }
  flush_posted_ = false;
  hand_over({});
}

}  // namespace continuum
