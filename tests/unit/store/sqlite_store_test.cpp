#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "store/sqlite/sqlite_store.h"

namespace continuum {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() / ("continuum-store-test-" + std::to_string(::getpid()) + ".db");
    std::filesystem::remove(path_);
    reopen();
  }
  void TearDown() override {
    store_.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_.string() + suffix);
  }
  void reopen() {
    store_.reset();
    auto store = SqliteStore::open(SqliteStoreOptions{path_.string()}, clock_, nullptr);
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(*store);
  }
  std::filesystem::path path_;
  ManualClock clock_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(SqliteStoreTest, CommittedDataSurvivesReopenAndIsTenantScoped) {
  WriteBatch batch;
  batch.agent_inserts.push_back(AgentRecord{"t1", "a", 1, "{}", 1});
  batch.session_inserts.push_back(SessionRecord{"t1", "s1", "a", "{}", 1});
  batch.run_inserts.push_back(RunRecord{"t1", "r1", "s1", "a", 1, kRunRunning, "in", "{}", 1, 1});
  batch.steps.push_back(StepRecord{"t1", "r1", 0, "run_created", "{}", 1});
  batch.items.push_back(ItemRecord{0, "t1", "s1", "r1", R"({"role":"user"})", 1});
  ASSERT_TRUE(store_->commit_and_wait(std::move(batch)).is_ok());
  reopen();
  EXPECT_TRUE(store_->get_run("t1", "r1").is_ok());
  EXPECT_EQ(store_->get_run("t2", "r1").status().code(), Code::kNotFound) << "other tenant";
  EXPECT_EQ(store_->list_steps("t1", "r1", -1, 10)->size(), 1u);
  EXPECT_EQ(store_->list_items("t1", "s1", 0, 10)->size(), 1u);
  EXPECT_EQ(store_->list_unfinished_runs()->size(), 1u);
}

TEST_F(SqliteStoreTest, FailingBatchFailsAloneInsideGroupCommit) {
  std::vector<std::future<Status>> results;
  for (int i = 0; i < 50; ++i) {
    WriteBatch batch;
    // Batch 25 repeats step seq 0 of run r: a conflict that must not affect the others.
    batch.steps.push_back(StepRecord{"t1", "r", i == 25 ? 0 : i, "k", "{}", 0});
    auto promise = std::make_shared<std::promise<Status>>();
    results.push_back(promise->get_future());
    store_->commit(std::move(batch), [promise](Status status) { promise->set_value(status); });
  }
  int failures = 0;
  for (auto& result : results) failures += result.get().is_ok() ? 0 : 1;
  EXPECT_EQ(failures, 1);
  EXPECT_EQ(store_->list_steps("t1", "r", -1, 100)->size(), 49u);
  EXPECT_LT(store_->stats().transactions_committed, 50) << "batches share transactions";
}

TEST_F(SqliteStoreTest, SessionPaginationNewestFirstAndDeleteCascades) {
  for (int i = 0; i < 5; ++i) {
    WriteBatch batch;
    batch.session_inserts.push_back(SessionRecord{"t1", "s" + std::to_string(i), "a", "{}", i});
    ASSERT_TRUE(store_->commit_and_wait(std::move(batch)).is_ok());
  }
  auto page1 = store_->list_sessions("t1", "", 2);
  ASSERT_EQ(page1->size(), 2u);
  EXPECT_EQ((*page1)[0].id, "s4");
  auto page2 = store_->list_sessions("t1", (*page1)[1].id, 2);
  EXPECT_EQ((*page2)[0].id, "s2");
  WriteBatch del;
  del.session_deletes.push_back(SessionRecord{"t1", "s4", "a", "{}", 0});
  ASSERT_TRUE(store_->commit_and_wait(std::move(del)).is_ok());
  EXPECT_EQ(store_->get_session("t1", "s4").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace continuum

namespace continuum {
namespace {

// Regression: a run submitted between the API's "no unfinished runs" check and
// the delete's commit used to land in a deleted session. The writer now checks.
TEST_F(SqliteStoreTest, SessionDeleteAndRunInsertCannotInterleave) {
  WriteBatch setup;
  setup.session_inserts.push_back(SessionRecord{"t1", "s1", "a", "{}", 1});
  setup.run_inserts.push_back(RunRecord{"t1", "r1", "s1", "a", 1, kRunQueued, "in", "{}", 1, 1});
  ASSERT_TRUE(store_->commit_and_wait(std::move(setup)).is_ok());
  WriteBatch del;
  del.session_deletes.push_back(SessionRecord{"t1", "s1", "a", "{}", 0});
  EXPECT_EQ(store_->commit_and_wait(std::move(del)).code(), Code::kConflict) << "a queued run blocks the delete";

  WriteBatch other;
  other.session_inserts.push_back(SessionRecord{"t1", "s2", "a", "{}", 1});
  ASSERT_TRUE(store_->commit_and_wait(std::move(other)).is_ok());
  WriteBatch delete_s2;
  delete_s2.session_deletes.push_back(SessionRecord{"t1", "s2", "a", "{}", 0});
  ASSERT_TRUE(store_->commit_and_wait(std::move(delete_s2)).is_ok());
  WriteBatch late_run;
  late_run.run_inserts.push_back(RunRecord{"t1", "r2", "s2", "a", 1, kRunQueued, "in", "{}", 1, 1});
  EXPECT_EQ(store_->commit_and_wait(std::move(late_run)).code(), Code::kNotFound);
}

}  // namespace
}  // namespace continuum
