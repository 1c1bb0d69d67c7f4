// AsioEventLoop: posted tasks run in order; continuations run depth first,
// right after the task that posted them, a bounded number in a row.
#include "net/event_loop.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace continuum {
namespace {

// Runs `setup` on the loop thread, then the loop until `stop` is posted.
void run_loop(AsioEventLoop& loop, std::function<void()> setup) {
  loop.post(std::move(setup));
  loop.run();
}

TEST(AsioEventLoop, PostedTasksRunInOrder) {
  AsioEventLoop loop;
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) loop.post([&order, i] { order.push_back(i); });
  loop.post([&loop] { loop.stop(); });
  loop.run();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(AsioEventLoop, ContinuationsRunDepthFirstBeforeEarlierPosts) {
  AsioEventLoop loop;
  std::vector<std::string> order;
  // Two "runs" a and b, each a chain of three continuations, started by
  // tasks posted one after the other; a posted task queued before them all.
  std::function<void(std::string, int)> step = [&](std::string run, int n) {
    order.push_back(run + std::to_string(n));
    if (n < 3) loop.post_continuation([&step, run, n] { step(run, n + 1); });
  };
  run_loop(loop, [&] {
    loop.post([&] { order.push_back("posted"); });
    loop.post_continuation([&step] { step("a", 1); });
    loop.post_continuation([&step] { step("b", 1); });
    loop.post([&loop] { loop.stop(); });
  });
  EXPECT_EQ(order, (std::vector<std::string>{"a1", "a2", "a3", "b1", "b2", "b3", "posted"}));
}

TEST(AsioEventLoop, SiblingContinuationsKeepTheirOrder) {
  AsioEventLoop loop;
  std::vector<std::string> order;
  run_loop(loop, [&] {
    loop.post_continuation([&] {
      order.push_back("x");
      loop.post_continuation([&] { order.push_back("x.1"); });
      loop.post_continuation([&] { order.push_back("x.2"); });
    });
    loop.post_continuation([&] { order.push_back("y"); });
    loop.post([&loop] { loop.stop(); });
  });
  EXPECT_EQ(order, (std::vector<std::string>{"x", "x.1", "x.2", "y"}));
}

TEST(AsioEventLoop, AnEndlessChainLetsPostedTasksRun) {
  AsioEventLoop loop;
  int chain_steps = 0;
  bool posted_ran = false;
  std::function<void()> chain = [&] {
    ++chain_steps;
    // Stops by itself at 10,000 so that a loop without the bound fails the test rather than hangs.
    if (!posted_ran && chain_steps < 10'000) loop.post_continuation(chain);
  };
  run_loop(loop, [&] {
    loop.post_continuation(chain);
    loop.post([&] {
      posted_ran = true;
      loop.stop();
    });
  });
  EXPECT_TRUE(posted_ran);
  EXPECT_GT(chain_steps, 1);
  EXPECT_LT(chain_steps, 1000);  // bounded by the loop's continuations-in-a-row limit
}

TEST(AsioEventLoop, PendingTasksCountContinuations) {
  AsioEventLoop loop;
  bool pending_seen = false;
  run_loop(loop, [&] {
    loop.post_continuation([] {});
    pending_seen = loop.has_pending_tasks();
    loop.post([&loop] { loop.stop(); });
  });
  EXPECT_TRUE(pending_seen);
  EXPECT_FALSE(loop.has_pending_tasks());
}

TEST(AsioEventLoop, ContinuationFromAnotherThreadIsAPost) {
  AsioEventLoop loop;
  std::vector<std::string> order;
  loop.post([&] { order.push_back("first"); });
  std::thread other([&] { loop.post_continuation([&] { order.push_back("from other thread"); }); });
  other.join();
  loop.post([&loop] { loop.stop(); });
  loop.run();
  EXPECT_EQ(order, (std::vector<std::string>{"first", "from other thread"}));
}

}  // namespace
}  // namespace continuum
