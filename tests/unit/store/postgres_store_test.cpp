// PostgreSQL-only behaviour: what the store does when the database drops its
// connections (a restart, a failover, an administrator).
#include <gtest/gtest.h>

#include "core/clock.h"
#include "store/postgres/pg_store.h"
#include "tests/unit/store/store_test_env.h"

namespace continuum {
namespace {

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CONTINUUM_USE_TEST_POSTGRES(url_);
    auto store = PostgresStore::open(PostgresStoreOptions{url_}, clock_, nullptr);
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(*store);
    auto admin = PgConnection::connect(url_);
    ASSERT_TRUE(admin.is_ok());
    admin_ = std::move(*admin);
  }
  // Ends every other connection to the test database, as a server restart would.
  void terminate_other_connections() {
    ASSERT_TRUE(admin_->exec_script("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")
                    .is_ok());
  }
  Status add_step(int64_t seq) {
    WriteBatch batch;
    batch.steps.push_back(StepRecord{"t1", "r1", seq, "k", "{}", 0});
    return store_->commit_and_wait(std::move(batch));
  }

  std::string url_;
  SystemClock& clock_ = SystemClock::instance();
  std::unique_ptr<PostgresStore> store_;
  std::unique_ptr<PgConnection> admin_;
};

TEST_F(PostgresStoreTest, WriterAndReadersReconnectAfterTheirConnectionsAreKilled) {
  ASSERT_TRUE(add_step(0).is_ok());
  ASSERT_EQ(store_->list_steps("t1", "r1", -1, 10)->size(), 1u);  // opens a reader
  terminate_other_connections();
  EXPECT_TRUE(add_step(1).is_ok()) << "the writer reconnects before committing";
  auto steps = store_->list_steps("t1", "r1", -1, 10);
  ASSERT_TRUE(steps.is_ok()) << "a reader retries once on a new connection: " << steps.status().to_string();
  EXPECT_EQ(steps->size(), 2u);
}

TEST_F(PostgresStoreTest, ManyNodesMigratingAtOnceMigrateOnce) {
  ASSERT_TRUE(reset_postgres_schema(url_).is_ok());
  std::vector<std::thread> nodes;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    nodes.emplace_back([&] {
      if (PostgresStore::open(PostgresStoreOptions{url_}, clock_, nullptr).is_ok()) opened.fetch_add(1);
    });
  }
  for (auto& node : nodes) node.join();
  EXPECT_EQ(opened.load(), 4);
  auto versions = admin_->exec(
      "SELECT COUNT(*)::bigint, COUNT(DISTINCT version)::bigint, MAX(version)::bigint FROM schema_version", PgParams());
  ASSERT_TRUE(versions.is_ok());
  EXPECT_EQ(versions->int64(0, 0), versions->int64(0, 1)) << "each migration recorded once";
  EXPECT_GE(versions->int64(0, 2), 2) << "all migrations applied";
}

TEST_F(PostgresStoreTest, UnreachableDatabaseIsAClearError) {
  auto store = PostgresStore::open(PostgresStoreOptions{"postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"},
                                   clock_, nullptr);
  ASSERT_FALSE(store.is_ok());
  EXPECT_EQ(store.status().code(), Code::kUnavailable);
  EXPECT_NE(store.status().message().find("cannot connect to PostgreSQL"), std::string::npos);
}

}  // namespace
}  // namespace continuum

namespace continuum {
namespace {

// Fencing: a run update names the session lease epoch it was made under.
TEST_F(PostgresStoreTest, RunUpdatesAreFencedByTheSessionLease) {
  WriteBatch setup;
  setup.session_inserts.push_back(SessionRecord{"t1", "s1", "a", "{}", 1});
  setup.run_inserts.push_back(RunRecord{"t1", "r1", "s1", "a", 1, kRunRunning, "in", "{}", 1, 1, 1});
  ASSERT_TRUE(store_->commit_and_wait(std::move(setup)).is_ok());
  ASSERT_TRUE(admin_->exec_script("INSERT INTO session_leases VALUES ('t1', 's1', 'node-b', 2, "
                                  CONTINUUM_PG_NOW_MS " + 60000)")
                  .is_ok());
  int64_t version = 1;
  auto update = [&](int64_t epoch) {
    WriteBatch batch;
    RunRecord run{"t1", "r1", "s1", "a", 1, kRunRunning, "", "{}", 1, 1, version + 1};
    run.lease_epoch = epoch;
    batch.run_updates.push_back(run);
    batch.steps.push_back(StepRecord{"t1", "r1", version, "k", "{}", 1, epoch});
    Status status = store_->commit_and_wait(std::move(batch));
    if (status.is_ok()) ++version;
    return status;
  };
  EXPECT_TRUE(update(2).is_ok()) << "the current epoch writes";
  EXPECT_EQ(update(1).code(), Code::kConflict) << "a stale epoch is refused";
  EXPECT_TRUE(update(0).is_ok()) << "epoch 0 is unfenced (single node)";
  ASSERT_TRUE(admin_->exec_script("UPDATE session_leases SET expires_at_ms = 0").is_ok());
  EXPECT_EQ(update(2).code(), Code::kConflict) << "an expired lease is refused even at its epoch";
  auto steps = store_->list_steps("t1", "r1", -1, 10);
  ASSERT_EQ(steps->size(), 2u) << "refused appends left nothing";
  EXPECT_EQ((*steps)[0].lease_epoch, 2);
}

}  // namespace
}  // namespace continuum
