// GroupCommitQueue: held transactions are written in parts at once and
// ended (committed, acknowledged) only when released, at the group limit,
// at stop(), or at the hold bound.
#include "store/group_commit.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>

namespace continuum {
namespace {

// Records the writer's calls: parts applied and groups ended (by size).
struct Backend {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<size_t> parts;
  std::vector<size_t> groups;
  GroupCommitQueue* queue = nullptr;

  void apply(std::vector<PendingBatch>& part) {
    std::lock_guard lock(mutex);
    parts.push_back(part.size());
    changed.notify_all();
  }
  void commit(std::vector<PendingBatch>& group) {
    {
      std::lock_guard lock(mutex);
      groups.push_back(group.size());
      changed.notify_all();
    }
    std::vector<Status> results(group.size());
    queue->finish(group, results, Status::ok());
  }
  void wait_for_parts(size_t count) {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return parts.size() >= count; });
  }
  std::vector<size_t> ended() {
    std::lock_guard lock(mutex);
    return groups;
  }
};

std::vector<CommitRequest> requests(int count, std::atomic<int>* acknowledged) {
  std::vector<CommitRequest> out;
  for (int i = 0; i < count; ++i) {
    out.push_back(CommitRequest{WriteBatch{}, [acknowledged](Status status) {
                                  EXPECT_TRUE(status.is_ok());
                                  ++*acknowledged;
                                }});
  }
  return out;
}

class GroupCommitTest : public ::testing::Test {
 protected:
  Backend backend;
  std::unique_ptr<GroupCommitQueue> queue;
  std::atomic<int> acknowledged{0};

  void start(int64_t hold_max_us, size_t group_max = 100, bool parts = true) {
    queue = std::make_unique<GroupCommitQueue>(SystemClock::instance(), group_max, nullptr, hold_max_us);
    backend.queue = queue.get();
    GroupCommitQueue::ApplyPart apply;
    if (parts) apply = [this](std::vector<PendingBatch>& part) { backend.apply(part); };
    queue->start(apply, [this](std::vector<PendingBatch>& group) { backend.commit(group); });
  }
};

constexpr int64_t kForever = 3'600'000'000;  // an hour: only a release ends the hold

TEST_F(GroupCommitTest, HeldBatchesAreWrittenAtOnceAndEndTogetherWhenReleased) {
  start(kForever);
  queue->submit_all(requests(2, &acknowledged), CommitPacing::kMoreFollow);
  backend.wait_for_parts(1);
  queue->submit_all(requests(3, &acknowledged), CommitPacing::kMoreFollow);
  backend.wait_for_parts(2);
  EXPECT_TRUE(backend.ended().empty());
  EXPECT_EQ(acknowledged.load(), 0) << "nothing is acknowledged before its transaction ends";
  queue->release();
  queue->stop();
  EXPECT_EQ(backend.ended(), (std::vector<size_t>{5}));
  EXPECT_EQ(acknowledged.load(), 5);
}

TEST_F(GroupCommitTest, ASubmissionWithoutMoreFollowEndsTheHold) {
  start(kForever);
  queue->submit_all(requests(2, &acknowledged), CommitPacing::kMoreFollow);
  backend.wait_for_parts(1);
  std::promise<Status> last;
  queue->submit(WriteBatch{}, [&last](Status status) { last.set_value(status); });
  EXPECT_TRUE(last.get_future().get().is_ok());
  EXPECT_EQ(backend.ended(), (std::vector<size_t>{3}));
  EXPECT_EQ(acknowledged.load(), 2);
}

TEST_F(GroupCommitTest, TheHoldEndsByItselfAfterItsBound) {
  start(/*hold_max_us=*/1000);
  std::promise<Status> done;
  std::vector<CommitRequest> one;
  one.push_back(CommitRequest{WriteBatch{}, [&done](Status status) { done.set_value(status); }});
  queue->submit_all(std::move(one), CommitPacing::kMoreFollow);
  EXPECT_TRUE(done.get_future().get().is_ok());  // never released: the bound ends it
  EXPECT_EQ(backend.ended(), (std::vector<size_t>{1}));
}

TEST_F(GroupCommitTest, AFullGroupEndsAndTheRestStartsTheNext) {
  start(kForever, /*group_max=*/4);
  queue->submit_all(requests(6, &acknowledged), CommitPacing::kMoreFollow);
  backend.wait_for_parts(2);
  EXPECT_EQ(backend.ended(), (std::vector<size_t>{4}));
  queue->release();
  queue->stop();
  EXPECT_EQ(backend.ended(), (std::vector<size_t>{4, 2}));
  EXPECT_EQ(acknowledged.load(), 6);
}

TEST_F(GroupCommitTest, ABackendWithoutPartsGetsTheHeldBatchesAsOneGroup) {
  start(kForever, 100, /*parts=*/false);
  queue->submit_all(requests(2, &acknowledged), CommitPacing::kMoreFollow);
  queue->submit_all(requests(1, &acknowledged), CommitPacing::kMoreFollow);
  queue->release();
  queue->stop();
  EXPECT_EQ(backend.ended(), (std::vector<size_t>{3}));
  EXPECT_TRUE(backend.parts.empty());
  EXPECT_EQ(acknowledged.load(), 3);
}

TEST_F(GroupCommitTest, StopEndsWhatIsHeldAndRefusesWhatComesAfter) {
  start(kForever);
  queue->submit_all(requests(2, &acknowledged), CommitPacing::kMoreFollow);
  queue->stop();
  EXPECT_EQ(acknowledged.load(), 2);
  std::promise<Status> late;
  queue->submit(WriteBatch{}, [&late](Status status) { late.set_value(status); });
  EXPECT_EQ(late.get_future().get().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace continuum
