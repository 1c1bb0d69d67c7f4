// CoalescingStore: commits made on the loop thread wait while the loop has
// posted work, then reach the inner store together and in order.
#include "store/coalescing_store.h"

#include <gtest/gtest.h>

#include <thread>

namespace continuum {
namespace {

// Records what reaches it as the transactions a writer would make: the run
// ids of the batches passed since the last end (a kNow commit or a release).
// Only commits are recorded; it is never read from.
class RecordingStore final : public ForwardingStore {
 public:
  RecordingStore() : ForwardingStore(*this) {}
  std::vector<std::vector<std::string>> handed_over;  // ended transactions
  std::vector<std::string> held;                      // passed with kMoreFollow, not yet ended
  std::vector<std::function<void(Status)>> callbacks;

  void commit(WriteBatch batch, std::function<void(Status)> done) override {
    std::vector<CommitRequest> one;
    one.push_back(CommitRequest{std::move(batch), std::move(done)});
    commit_many(std::move(one), CommitPacing::kNow);
  }
  void commit_many(std::vector<CommitRequest> requests, CommitPacing pacing) override {
    for (auto& request : requests) {
      held.push_back(request.batch.steps.front().run_id);
      callbacks.push_back(std::move(request.done));
    }
    if (pacing == CommitPacing::kNow) release_held_commits();
  }
  void release_held_commits() override {
    if (!held.empty()) handed_over.push_back(std::move(held));
    held.clear();
  }
};

WriteBatch batch_named(const std::string& name) {
  WriteBatch batch;
  batch.steps.push_back(StepRecord{"t", name, 0, "run_created", "{}", 0});
  return batch;
}

class CoalescingStoreTest : public ::testing::Test {
 protected:
  ManualClock clock;
  ManualEventLoop loop{clock};
  RecordingStore inner;
  std::unique_ptr<CoalescingStore> store;

  void open(int64_t max_delay_us = 1000, size_t max_batches = 1024) {
    store = std::make_unique<CoalescingStore>(inner, loop, clock,
                                              CoalescingStore::Options{max_delay_us, max_batches});
    store->attach_to_loop_thread();  // this test's thread plays the loop thread
  }
  using Strings = std::vector<std::string>;
  using Groups = std::vector<Strings>;
};

TEST_F(CoalescingStoreTest, CommitsMadeWhileTheLoopIsBusyGoTogetherOnceItIsIdle) {
  open();
  store->commit(batch_named("a"), [](Status) {});
  // Work queued behind the flush commits more, as a run running ahead does.
  loop.post([this] {
    store->commit(batch_named("b"), [](Status) {});
    loop.post([this] { store->commit(batch_named("c"), [](Status) {}); });
  });
  EXPECT_TRUE(inner.handed_over.empty());
  EXPECT_EQ(inner.held, (Strings{"a"})) << "passed on at once, to be written while the loop goes on";
  loop.run_ready();
  EXPECT_EQ(inner.handed_over, (Groups{{"a", "b", "c"}}));
}

TEST_F(CoalescingStoreTest, AnIdleLoopHandsACommitOverAtOnce) {
  open();
  store->commit(batch_named("a"), [](Status) {});
  EXPECT_EQ(loop.run_ready(), 1);
  EXPECT_EQ(inner.handed_over, (Groups{{"a"}}));
}

TEST_F(CoalescingStoreTest, ABatchWaitsNoLongerThanTheMaximumDelay) {
  open(/*max_delay_us=*/1000);
  store->commit(batch_named("a"), [](Status) {});
  // A loop that never runs out of work: each task posts the next.
  int tasks_run = 0, tasks_before_hand_over = -1;
  std::function<void()> busy = [&] {
    if (tasks_before_hand_over < 0 && !inner.handed_over.empty()) tasks_before_hand_over = tasks_run;
    clock.advance_ms(1);  // 1000 us
    if (++tasks_run < 50) loop.post(busy);
  };
  loop.post(busy);
  loop.run_ready();
  ASSERT_FALSE(inner.handed_over.empty());
  EXPECT_EQ(inner.handed_over.front(), (Strings{"a"}));
  EXPECT_EQ(tasks_before_hand_over, 1);  // after the first millisecond, not when the loop went idle
}

TEST_F(CoalescingStoreTest, TooManyWaitingBatchesAreHandedOverAtOnce) {
  open(1000, /*max_batches=*/3);
  for (const char* name : {"a", "b", "c", "d"}) store->commit(batch_named(name), [](Status) {});
  EXPECT_EQ(inner.handed_over, (Groups{{"a", "b", "c"}}));
  loop.run_ready();
  EXPECT_EQ(inner.handed_over, (Groups{{"a", "b", "c"}, {"d"}}));
}

TEST_F(CoalescingStoreTest, ACommitFromAnotherThreadGoesAfterWhatWaitsAndAtOnce) {
  open();
  store->commit(batch_named("a"), [](Status) {});
  std::thread other([this] { store->commit(batch_named("b"), [](Status) {}); });
  other.join();
  EXPECT_EQ(inner.handed_over, (Groups{{"a", "b"}}));
  loop.run_ready();  // the posted flush finds nothing left
  EXPECT_EQ(inner.handed_over.size(), 1u);
}

TEST_F(CoalescingStoreTest, WithoutAttachingOrWithNoDelayNothingWaits) {
  store = std::make_unique<CoalescingStore>(inner, loop, clock, CoalescingStore::Options{});
  store->commit(batch_named("a"), [](Status) {});  // not attached to this thread
  EXPECT_EQ(inner.handed_over, (Groups{{"a"}}));
  open(/*max_delay_us=*/0);
  store->commit(batch_named("b"), [](Status) {});
  EXPECT_EQ(inner.handed_over, (Groups{{"a"}, {"b"}}));
}

TEST_F(CoalescingStoreTest, DestroyingHandsOverWhatWaitsAndCallbacksComeFromTheInnerStore) {
  open();
  Status seen(Code::kInternal, "not yet");
  store->commit(batch_named("a"), [&seen](Status status) { seen = status; });
  store.reset();
  ASSERT_EQ(inner.handed_over, (Groups{{"a"}}));
  EXPECT_FALSE(seen.is_ok());  // not acknowledged before the inner store says so
  inner.callbacks.front()(Status::ok());
  EXPECT_TRUE(seen.is_ok());
}

}  // namespace
}  // namespace continuum
