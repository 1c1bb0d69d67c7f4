// Session leases between nodes, on a real PostgreSQL (CONTINUUM_TEST_POSTGRES_URL).
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "cluster/postgres_cluster.h"
#include "store/postgres/pg_store.h"
#include "tests/unit/store/store_test_env.h"

namespace continuum {
namespace {

class PostgresClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CONTINUUM_USE_TEST_POSTGRES(url_);
    auto store = PostgresStore::open(PostgresStoreOptions{url_}, clock_, nullptr);  // migrates
    ASSERT_TRUE(store.is_ok());
    store_ = std::move(*store);
  }
  std::unique_ptr<PostgresCluster> node(const std::string& id) {
    PostgresClusterOptions options{url_, id, id + ":8080", /*lease_ttl_ms=*/1500, /*poll_ms=*/100};
    auto cluster = PostgresCluster::open(options, clock_);
    EXPECT_TRUE(cluster.is_ok()) << cluster.status().to_string();
    return cluster.is_ok() ? std::move(*cluster) : nullptr;
  }
  void add_running_run(const std::string& session) {
    WriteBatch batch;
    batch.session_inserts.push_back(SessionRecord{"t1", session, "a", "{}", 1});
    batch.run_inserts.push_back(RunRecord{"t1", "run-" + session, session, "a", 1, kRunRunning, "in", "{}", 1, 1, 1});
    ASSERT_TRUE(store_->commit_and_wait(std::move(batch)).is_ok());
  }

  std::string url_;
  SystemClock& clock_ = SystemClock::instance();
  std::unique_ptr<PostgresStore> store_;
};

TEST_F(PostgresClusterTest, OneHolderAtATimeAndEveryAcquisitionBumpsTheEpoch) {
  auto a = node("node-a");
  auto b = node("node-b");
  auto first = a->acquire("t1", "s1");
  ASSERT_TRUE(first.is_ok());
  EXPECT_EQ(b->acquire("t1", "s1").status().code(), Code::kConflict) << "a live lease of another node stands";
  a->release("t1", "s1", *first);
  auto second = b->acquire("t1", "s1");
  ASSERT_TRUE(second.is_ok()) << "a released lease is free";
  EXPECT_GT(*second, *first) << "epochs only grow, across nodes";
}

TEST_F(PostgresClusterTest, AnExpiredLeaseWithWorkIsClaimedByExactlyOneNode) {
  add_running_run("s1");
  auto dead = node("node-dead");
  auto dead_epoch = dead->acquire("t1", "s1");  // its thread never runs: the lease is not renewed
  ASSERT_TRUE(dead_epoch.is_ok());

  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::pair<std::string, int64_t>> claims;  // (node, epoch)
  auto handlers_for = [&](const std::string& id) {
    return ClusterHandlers{[&, id](const std::string&, const std::string&, int64_t epoch) {
                             std::lock_guard lock(mutex);
                             claims.emplace_back(id, epoch);
                             changed.notify_all();
                           },
                           [](const std::string&, const std::string&) {},
                           [](const std::string&, const std::string&) {}};
  };
  auto b = node("node-b");
  auto c = node("node-c");
  b->start(handlers_for("node-b"));
  c->start(handlers_for("node-c"));
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(30), [&] { return !claims.empty(); }))
        << "the orphaned session is claimed after its lease expires";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let a double claim show up if there is one
  b->stop();
  c->stop();
  std::lock_guard lock(mutex);
  ASSERT_EQ(claims.size(), 1u) << "claimed exactly once";
  EXPECT_GT(claims[0].second, *dead_epoch);
  EXPECT_EQ(dead->acquire("t1", "s1").status().code(), Code::kConflict) << "the old holder cannot take it back";
}

TEST_F(PostgresClusterTest, ANodeThatStopsRenewingIsToldItLostTheLease) {
  add_running_run("s1");
  auto a = node("node-a");
  std::mutex mutex;
  std::condition_variable changed;
  bool lost = false;
  a->start(ClusterHandlers{[](const std::string&, const std::string&, int64_t) {},
                           [&](const std::string&, const std::string&) {
                             std::lock_guard lock(mutex);
                             lost = true;
                             changed.notify_all();
                           },
                           [](const std::string&, const std::string&) {}});
  ASSERT_TRUE(a->acquire("t1", "s1").is_ok());
  // Another node takes it over (as after a pause longer than the TTL).
  auto admin = PgConnection::connect(url_);
  ASSERT_TRUE((*admin)->exec_script("UPDATE session_leases SET node_id = 'node-b', epoch = epoch + 1").is_ok());
  std::unique_lock lock(mutex);
  EXPECT_TRUE(changed.wait_for(lock, std::chrono::seconds(30), [&] { return lost; }));
  lock.unlock();
  a->stop();
}

TEST_F(PostgresClusterTest, CancelRequestsOfEndedRunsAndLongSilentNodesAreForgotten) {
  WriteBatch batch;
  batch.session_inserts.push_back(SessionRecord{"t1", "s1", "a", "{}", 1});
  batch.run_inserts.push_back(RunRecord{"t1", "done", "s1", "a", 1, kRunCompleted, "in", "{}", 1, 1, 1});
  batch.run_inserts.push_back(RunRecord{"t1", "live", "s1", "a", 1, kRunRunning, "in", "{}", 1, 1, 1});
  ASSERT_TRUE(store_->commit_and_wait(std::move(batch)).is_ok());
  auto admin = PgConnection::connect(url_);
  ASSERT_TRUE((*admin)->exec_script("INSERT INTO cancel_requests VALUES ('t1', 'done', 1), ('t1', 'live', 1); "
                                    "INSERT INTO nodes VALUES ('node-gone', 'x:1', 0, 0)")
                  .is_ok());
  auto a = node("node-a");
  a->start(ClusterHandlers{[](const std::string&, const std::string&, int64_t) {},
                           [](const std::string&, const std::string&) {},
                           [](const std::string&, const std::string&) {}});
  auto count = [&](const char* query) {
    auto rows = (*admin)->exec(query, PgParams());
    return rows.is_ok() ? rows->int64(0, 0) : -1;
  };
  for (int attempt = 0; attempt < 300 && count("SELECT COUNT(*) FROM nodes WHERE node_id = 'node-gone'") != 0;
       ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  a->stop();
  EXPECT_EQ(count("SELECT COUNT(*) FROM nodes WHERE node_id = 'node-gone'"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cancel_requests WHERE run_id = 'done'"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cancel_requests WHERE run_id = 'live'"), 1) << "still to be carried out";
}

TEST_F(PostgresClusterTest, DescribeListsNodesAndWhatTheyHold) {
  auto a = node("node-a");
  a->start(ClusterHandlers{[](const std::string&, const std::string&, int64_t) {},
                           [](const std::string&, const std::string&) {},
                           [](const std::string&, const std::string&) {}});
  ASSERT_TRUE(a->acquire("t1", "s1").is_ok());
  json::object view;
  for (int attempt = 0; attempt < 300; ++attempt) {  // the first heartbeat registers the node
    auto described = a->describe();
    ASSERT_TRUE(described.is_ok());
    view = *described;
    if (!view.at("nodes").as_array().empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  a->stop();
  ASSERT_EQ(view.at("nodes").as_array().size(), 1u);
  const auto& entry = view.at("nodes").as_array()[0].as_object();
  EXPECT_EQ(entry.at("id").as_string(), "node-a");
  EXPECT_EQ(entry.at("sessions_leased").as_int64(), 1);
  ASSERT_EQ(entry.at("leases").as_array().size(), 1u);
  EXPECT_EQ(entry.at("leases").as_array()[0].at("session_id").as_string(), "s1");
  EXPECT_TRUE(entry.at("alive").as_bool());
}

}  // namespace
}  // namespace continuum
