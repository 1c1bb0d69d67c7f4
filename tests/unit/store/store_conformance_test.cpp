// The store conformance suite: the same tests against every backend, bare
// and under the sealing layer (encryption at rest).
// SQLite runs on a temp file; PostgreSQL on the database named by
// CONTINUUM_TEST_POSTGRES_URL (scripts/test.sh starts a throwaway cluster).
// Without that variable the PostgreSQL cases are skipped, unless
// CONTINUUM_REQUIRE_POSTGRES=1 (CI), which makes them fail instead.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "core/config.h"
#include "store/postgres/pg_connection.h"
#include "crypto/keyring.h"
#include "store/postgres/pg_store.h"
#include "audit/chain.h"
#include "store/sealing_store.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/unit/store/store_test_env.h"

namespace continuum {
namespace {

class StoreConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  bool postgres() const { return GetParam().starts_with("postgres"); }
  bool sealed() const { return GetParam().ends_with("sealed"); }

  void SetUp() override {
    if (postgres()) {
      CONTINUUM_USE_TEST_POSTGRES(url_);
    } else {
      path_ = std::filesystem::temp_directory_path() /
              ("continuum-store-test-" + std::to_string(::getpid()) + ".db");
      remove_sqlite_files();
    }
    key_file_ = std::filesystem::temp_directory_path() / ("continuum-store-test-" + std::to_string(::getpid()) + ".key");
    std::filesystem::remove(key_file_);
    reopen();
  }
  void TearDown() override {
    close();
    if (!path_.empty()) remove_sqlite_files();
    std::filesystem::remove(key_file_);
  }
  void close() {
    sealing_.reset();
    keyring_.reset();
    backend_.reset();
    store_ = nullptr;
  }
  void remove_sqlite_files() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_.string() + suffix);
  }
  void reopen() {
    close();
    if (postgres()) {
      auto store = PostgresStore::open(PostgresStoreOptions{url_}, clock_, nullptr);
      ASSERT_TRUE(store.is_ok()) << store.status().to_string();
      backend_ = std::move(*store);
    } else {
      auto store = SqliteStore::open(SqliteStoreOptions{path_.string()}, clock_, nullptr);
      ASSERT_TRUE(store.is_ok()) << store.status().to_string();
      backend_ = std::move(*store);
    }
    store_ = backend_.get();
    if (sealed()) {
      auto keks = LocalKeyEncryptionKeys::open("file:" + key_file_.string(), read_process_env);
      ASSERT_TRUE(keks.is_ok()) << keks.status().to_string();
      keks_ = std::move(*keks);
      keyring_ = std::make_unique<Keyring>(*backend_, *keks_, clock_);
      sealing_ = std::make_unique<SealingStore>(*backend_, *keyring_, random_);
      store_ = sealing_.get();
    }
  }
  Status commit(WriteBatch batch) { return store_->commit_and_wait(std::move(batch)); }
  void add_session(const std::string& tenant, const std::string& id) {
    WriteBatch batch;
    batch.session_inserts.push_back(SessionRecord{tenant, id, "a", "{}", 1});
    ASSERT_TRUE(commit(std::move(batch)).is_ok());
  }
  void add_run(const std::string& tenant, const std::string& session, const std::string& id, const char* status) {
    WriteBatch batch;
    batch.run_inserts.push_back(RunRecord{tenant, id, session, "a", 1, status, "in", "{}", 1, 1, 1});
    ASSERT_TRUE(commit(std::move(batch)).is_ok());
  }
  static std::vector<std::string> run_ids(const Result<std::vector<RunRecord>>& runs) {
    std::vector<std::string> ids;
    for (const auto& run : *runs) ids.push_back(run.id);
    return ids;
  }

  std::filesystem::path path_;
  std::filesystem::path key_file_;
  std::string url_;
  ManualClock clock_;
  SeededRandom random_{7};
  std::unique_ptr<Store> backend_;
  std::unique_ptr<LocalKeyEncryptionKeys> keks_;
  std::unique_ptr<Keyring> keyring_;
  std::unique_ptr<SealingStore> sealing_;
  Store* store_ = nullptr;  // backend_, or sealing_ over it
};

TEST_P(StoreConformanceTest, CommittedDataSurvivesReopenAndIsTenantScoped) {
  WriteBatch batch;
  batch.agent_inserts.push_back(AgentRecord{"t1", "a", 1, "{}", 1});
  batch.session_inserts.push_back(SessionRecord{"t1", "s1", "a", "{}", 1});
  batch.run_inserts.push_back(RunRecord{"t1", "r1", "s1", "a", 1, kRunRunning, "in", "{}", 1, 1});
  batch.steps.push_back(StepRecord{"t1", "r1", 0, "run_created", "{}", 1});
  batch.items.push_back(ItemRecord{0, "t1", "s1", "r1", R"({"role":"user"})", 1});
  ASSERT_TRUE(commit(std::move(batch)).is_ok());
  reopen();
  EXPECT_TRUE(store_->get_run("t1", "r1").is_ok());
  EXPECT_EQ(store_->get_run("t2", "r1").status().code(), Code::kNotFound) << "other tenant";
  EXPECT_EQ(store_->get_session("t2", "s1").status().code(), Code::kNotFound) << "other tenant";
  EXPECT_EQ(store_->get_agent("t2", "a", std::nullopt).status().code(), Code::kNotFound) << "other tenant";
  EXPECT_TRUE(store_->list_steps("t2", "r1", -1, 10)->empty()) << "other tenant";
  EXPECT_TRUE(store_->list_items("t2", "s1", 0, 10)->empty()) << "other tenant";
  EXPECT_EQ(store_->list_steps("t1", "r1", -1, 10)->size(), 1u);
  EXPECT_EQ(store_->list_items("t1", "s1", 0, 10)->size(), 1u);
  EXPECT_EQ(store_->list_unfinished_runs()->size(), 1u);
}

TEST_P(StoreConformanceTest, FailingBatchFailsAloneInsideGroupCommit) {
  add_session("t1", "s");
  add_run("t1", "s", "r", kRunRunning);
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
  for (auto& result : results) {
    Status status = result.get();
    if (!status.is_ok()) {
      ++failures;
      EXPECT_EQ(status.code(), Code::kConflict) << status.to_string();
    }
  }
  EXPECT_EQ(failures, 1);
  EXPECT_EQ(store_->list_steps("t1", "r", -1, 100)->size(), 49u);
  EXPECT_LT(store_->stats().transactions_committed, 50) << "batches share transactions";
}

// Steps of one run, committed together (CoalescingStore hands them over with
// commit_many): the run's updates apply in order, each checked against the
// version before it, whether or not the backend writes the row once.
TEST_P(StoreConformanceTest, ConsecutiveRunUpdatesInOneGroupKeepTheirVersionChecks) {
  add_session("t1", "s");
  add_run("t1", "s", "r", kRunRunning);  // version 1
  auto update = [](int64_t version, int64_t seq, const char* status = kRunRunning) {
    WriteBatch batch;
    batch.run_updates.push_back(RunRecord{"t1", "r", "s", "a", 1, status, "", "{\"v\":" + std::to_string(version) + "}",
                                          1, 1, version});
    batch.steps.push_back(StepRecord{"t1", "r", seq, "k", "{}", 0});
    return batch;
  };
  auto commit_group = [this](std::vector<WriteBatch> batches) {
    std::vector<std::future<Status>> futures;
    std::vector<CommitRequest> requests;
    for (auto& batch : batches) {
      auto promise = std::make_shared<std::promise<Status>>();
      futures.push_back(promise->get_future());
      requests.push_back(CommitRequest{std::move(batch), [promise](Status status) { promise->set_value(status); }});
    }
    store_->commit_many(std::move(requests), CommitPacing::kNow);
    std::vector<Code> codes;
    for (auto& future : futures) codes.push_back(future.get().code());
    return codes;
  };
  std::vector<WriteBatch> chain;
  for (int64_t v = 2; v <= 4; ++v) chain.push_back(update(v, v, v == 4 ? kRunCompleted : kRunRunning));
  EXPECT_EQ(commit_group(std::move(chain)), (std::vector<Code>{Code::kOk, Code::kOk, Code::kOk}));
  auto run = store_->get_run("t1", "r");
  EXPECT_EQ(run->version, 4);
  EXPECT_EQ(run->status, kRunCompleted);
  EXPECT_EQ(run->snapshot_json, "{\"v\":4}");
  EXPECT_EQ(store_->list_steps("t1", "r", -1, 10)->size(), 3u);

  // A gap in the versions: the later update is refused, the earlier kept.
  std::vector<WriteBatch> gap;
  gap.push_back(update(5, 5));
  gap.push_back(update(7, 6));
  EXPECT_EQ(commit_group(std::move(gap)), (std::vector<Code>{Code::kOk, Code::kConflict}));
  EXPECT_EQ(store_->get_run("t1", "r")->version, 5);

  // A batch of the chain failing for another reason (its step exists) takes
  // the updates after it down too; the one before it stands.
  std::vector<WriteBatch> broken;
  broken.push_back(update(6, 7));
  broken.push_back(update(7, 2));  // seq 2 is taken
  broken.push_back(update(8, 8));
  EXPECT_EQ(commit_group(std::move(broken)), (std::vector<Code>{Code::kOk, Code::kConflict, Code::kConflict}));
  run = store_->get_run("t1", "r");
  EXPECT_EQ(run->version, 6);
  EXPECT_EQ(run->snapshot_json, "{\"v\":6}");
}

// The event loop's commits while it is busy (CoalescingStore): each passed
// on its own with kMoreFollow, then released. Written in parts of one
// transaction; a failing batch fails alone, the others stand.
TEST_P(StoreConformanceTest, HeldCommitsEndTogetherAndFailOneByOne) {
  add_session("t1", "s");
  add_run("t1", "s", "r", kRunRunning);  // version 1
  std::vector<std::future<Status>> futures;
  auto commit_held = [&](int64_t version, int64_t seq) {
    WriteBatch batch;
    batch.run_updates.push_back(RunRecord{"t1", "r", "s", "a", 1, kRunRunning, "", "{}", 1, 1, version});
    batch.steps.push_back(StepRecord{"t1", "r", seq, "k", "{}", 0});
    auto promise = std::make_shared<std::promise<Status>>();
    futures.push_back(promise->get_future());
    std::vector<CommitRequest> one;
    one.push_back(CommitRequest{std::move(batch), [promise](Status status) { promise->set_value(status); }});
    store_->commit_many(std::move(one), CommitPacing::kMoreFollow);
  };
  int64_t transactions_before = store_->stats().transactions_committed;
  commit_held(2, 1);
  commit_held(3, 2);
  commit_held(9, 3);  // not the next version
  commit_held(4, 4);
  store_->release_held_commits();
  std::vector<Code> codes;
  for (auto& future : futures) codes.push_back(future.get().code());
  EXPECT_EQ(codes, (std::vector<Code>{Code::kOk, Code::kOk, Code::kConflict, Code::kOk}));
  EXPECT_EQ(store_->get_run("t1", "r")->version, 4);
  EXPECT_EQ(store_->list_steps("t1", "r", -1, 10)->size(), 3u);
  EXPECT_GE(store_->stats().transactions_committed, transactions_before + 1);
}

TEST_P(StoreConformanceTest, FailingBatchLeavesNothingBehind) {
  add_session("t1", "s1");
  add_run("t1", "s1", "r1", kRunRunning);
  WriteBatch first;
  first.steps.push_back(StepRecord{"t1", "r1", 0, "k", "{}", 0});
  ASSERT_TRUE(commit(std::move(first)).is_ok());
  WriteBatch mixed;  // a run, an item and a duplicate step: all or nothing
  mixed.run_inserts.push_back(RunRecord{"t1", "r2", "s1", "a", 1, kRunRunning, "in", "{}", 1, 1, 1});
  mixed.items.push_back(ItemRecord{0, "t1", "s1", "r2", "{}", 1});
  mixed.steps.push_back(StepRecord{"t1", "r1", 0, "k", "{}", 0});
  EXPECT_EQ(commit(std::move(mixed)).code(), Code::kConflict);
  EXPECT_EQ(store_->get_run("t1", "r2").status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->list_items("t1", "s1", 0, 10)->empty());
}

TEST_P(StoreConformanceTest, VersionedRunUpdateRefusesAStaleVersion) {
  add_session("t1", "s1");
  add_run("t1", "s1", "r1", kRunRunning);
  RunRecord update{"t1", "r1", "s1", "a", 1, kRunWaiting, "", R"({"n":2})", 1, 5, 2};
  WriteBatch second;
  second.run_updates.push_back(update);
  ASSERT_TRUE(commit(std::move(second)).is_ok());
  WriteBatch stale;  // built on version 1 again
  update.snapshot_json = R"({"n":"stale"})";
  stale.run_updates.push_back(update);
  EXPECT_EQ(commit(std::move(stale)).code(), Code::kConflict);
  WriteBatch missing;
  missing.run_updates.push_back(RunRecord{"t1", "nope", "s1", "a", 1, kRunWaiting, "", "{}", 1, 5, 2});
  Code missing_code = commit(std::move(missing)).code();  // sealing looks the run up first: not found
  EXPECT_TRUE(missing_code == Code::kConflict || (sealed() && missing_code == Code::kNotFound));
  auto run = store_->get_run("t1", "r1");
  ASSERT_TRUE(run.is_ok());
  EXPECT_EQ(run->version, 2);
  EXPECT_EQ(run->status, kRunWaiting);
  EXPECT_EQ(run->snapshot_json, R"({"n":2})");
  EXPECT_EQ(run->input, "in") << "an update leaves the input alone";
  EXPECT_EQ(run->updated_at_ms, 5);
}

// SQLite writes an update that keeps the status without touching the status
// indexes: they must still answer as the rows say.
TEST_P(StoreConformanceTest, RunUpdatesKeepingOrChangingTheStatusKeepItsListsRight) {
  add_session("t1", "s1");
  add_run("t1", "s1", "r1", kRunRunning);
  auto update_to = [&](const std::string& status, int64_t version) {
    WriteBatch batch;
    batch.run_updates.push_back(RunRecord{"t1", "r1", "s1", "a", 1, status, "", "{}", 1, version, version});
    return commit(std::move(batch));
  };
  ASSERT_TRUE(update_to(kRunRunning, 2).is_ok());
  ASSERT_TRUE(update_to(kRunRunning, 3).is_ok());
  EXPECT_EQ(update_to(kRunRunning, 3).code(), Code::kConflict) << "same status, stale version";
  ASSERT_EQ(store_->list_unfinished_runs()->size(), 1u);
  ASSERT_EQ(store_->list_unfinished_runs_of_session("t1", "s1", 10)->size(), 1u);
  ASSERT_TRUE(update_to(kRunCompleted, 4).is_ok());
  EXPECT_TRUE(store_->list_unfinished_runs()->empty());
  EXPECT_TRUE(store_->list_unfinished_runs_of_session("t1", "s1", 10)->empty());
  EXPECT_EQ(update_to(kRunCompleted, 4).code(), Code::kConflict) << "same status, stale version";
  auto run = store_->get_run("t1", "r1");
  ASSERT_TRUE(run.is_ok());
  EXPECT_EQ(run->status, kRunCompleted);
  EXPECT_EQ(run->version, 4);
}

TEST_P(StoreConformanceTest, AgentVersionsLatestAndSpecific) {
  WriteBatch batch;
  batch.agent_inserts.push_back(AgentRecord{"t1", "a", 1, R"({"v":1})", 1});
  batch.agent_inserts.push_back(AgentRecord{"t1", "a", 2, R"({"v":2})", 2});
  batch.agent_inserts.push_back(AgentRecord{"t1", "b", 1, R"({"b":1})", 3});
  ASSERT_TRUE(commit(std::move(batch)).is_ok());
  EXPECT_EQ(store_->get_agent("t1", "a", std::nullopt)->version, 2);
  EXPECT_EQ(store_->get_agent("t1", "a", 1)->spec_json, R"({"v":1})");
  EXPECT_EQ(store_->get_agent("t1", "a", 3).status().code(), Code::kNotFound);
  auto agents = store_->list_agents("t1");
  ASSERT_EQ(agents->size(), 2u);
  EXPECT_EQ((*agents)[0].name, "a");
  EXPECT_EQ((*agents)[0].version, 2);
  EXPECT_EQ((*agents)[0].spec_json, R"({"v":2})") << "the row of the latest version";
  EXPECT_EQ((*agents)[1].name, "b");
  WriteBatch duplicate;
  duplicate.agent_inserts.push_back(AgentRecord{"t1", "a", 2, "{}", 4});
  EXPECT_EQ(commit(std::move(duplicate)).code(), Code::kConflict);
}

TEST_P(StoreConformanceTest, ItemsInOrderPagedBothWays) {
  add_session("t1", "s1");
  add_session("t1", "s2");
  for (int i = 0; i < 6; ++i) {
    WriteBatch batch;
    batch.items.push_back(ItemRecord{0, "t1", i % 2 ? "s2" : "s1", "r", "{\"i\":" + std::to_string(i) + "}", i});
    ASSERT_TRUE(commit(std::move(batch)).is_ok());
  }
  auto all = store_->list_items("t1", "s1", 0, 10);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].message_json, R"({"i":0})");
  EXPECT_EQ((*all)[2].message_json, R"({"i":4})");
  EXPECT_LT((*all)[0].seq, (*all)[1].seq);
  auto after = store_->list_items("t1", "s1", (*all)[0].seq, 1);
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].message_json, R"({"i":2})");
  auto newest = store_->recent_items("t1", "s1", 0, 2);
  ASSERT_EQ(newest->size(), 2u);
  EXPECT_EQ((*newest)[0].message_json, R"({"i":4})");
  auto older = store_->recent_items("t1", "s1", (*newest)[1].seq, 5);
  ASSERT_EQ(older->size(), 1u);
  EXPECT_EQ((*older)[0].message_json, R"({"i":0})");
}

TEST_P(StoreConformanceTest, SessionMetadataReplacedAndItemsDeletedOneByOne) {
  add_session("t1", "s1");
  WriteBatch update;
  update.session_metadata_updates.push_back(SessionRecord{"t1", "s1", "a", R"({"k":"v"})", 1});
  ASSERT_TRUE(commit(std::move(update)).is_ok());
  EXPECT_EQ(store_->get_session("t1", "s1")->metadata_json, R"({"k":"v"})");
  WriteBatch missing;
  missing.session_metadata_updates.push_back(SessionRecord{"t2", "s1", "a", "{}", 1});
  EXPECT_EQ(commit(std::move(missing)).code(), Code::kNotFound) << "tenant-scoped";

  for (int i = 0; i < 3; ++i) {
    WriteBatch batch;
    batch.items.push_back(ItemRecord{0, "t1", "s1", "r", "{\"i\":" + std::to_string(i) + "}", i});
    ASSERT_TRUE(commit(std::move(batch)).is_ok());
  }
  auto items = store_->list_items("t1", "s1", 0, 10);
  ASSERT_EQ(items->size(), 3u);
  WriteBatch remove;
  remove.item_deletes.push_back((*items)[1]);
  ASSERT_TRUE(commit(std::move(remove)).is_ok());
  auto left = store_->list_items("t1", "s1", 0, 10);
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ((*left)[1].message_json, R"({"i":2})");
  WriteBatch again;
  again.item_deletes.push_back((*items)[1]);
  EXPECT_EQ(commit(std::move(again)).code(), Code::kNotFound);
}

TEST_P(StoreConformanceTest, OnlyFinishedRunsAreDeletedWithTheirJournals) {
  add_session("t1", "s1");
  add_run("t1", "s1", "done", kRunCompleted);
  add_run("t1", "s1", "busy", kRunRunning);
  WriteBatch steps;
  steps.steps.push_back(StepRecord{"t1", "done", 0, "run_created", "{}", 1});
  steps.steps.push_back(StepRecord{"t1", "busy", 0, "run_created", "{}", 1});
  ASSERT_TRUE(commit(std::move(steps)).is_ok());
  WriteBatch unfinished;
  unfinished.run_deletes.push_back(*store_->get_run("t1", "busy"));
  EXPECT_EQ(commit(std::move(unfinished)).code(), Code::kConflict);
  WriteBatch finished;
  finished.run_deletes.push_back(*store_->get_run("t1", "done"));
  ASSERT_TRUE(commit(std::move(finished)).is_ok());
  EXPECT_EQ(store_->get_run("t1", "done").status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->list_steps("t1", "done", -1, 10)->empty());
  EXPECT_EQ(store_->list_steps("t1", "busy", -1, 10)->size(), 1u);
}

TEST_P(StoreConformanceTest, RunListsByStatusOldestFirst) {
  add_session("t1", "s1");
  add_session("t2", "s1");
  add_run("t1", "s1", "done", kRunCompleted);
  add_run("t1", "s1", "q1", kRunQueued);
  add_run("t1", "s1", "w1", kRunWaiting);
  add_run("t1", "s1", "q2", kRunQueued);
  add_run("t2", "s1", "other", kRunRunning);
  EXPECT_EQ(run_ids(store_->list_runs("t1", "s1", 10)), (std::vector<std::string>{"done", "q1", "w1", "q2"}));
  EXPECT_EQ(run_ids(store_->list_runs("t1", "s1", 2)), (std::vector<std::string>{"done", "q1"}));
  EXPECT_EQ(run_ids(store_->list_queued_runs("t1", "s1", 10)), (std::vector<std::string>{"q1", "q2"}));
  EXPECT_EQ(run_ids(store_->list_unfinished_runs_of_session("t1", "s1", 10)),
            (std::vector<std::string>{"q1", "w1", "q2"}));
  EXPECT_EQ(run_ids(store_->list_unfinished_runs()), (std::vector<std::string>{"q1", "w1", "q2", "other"}))
      << "across tenants, for recovery";
}

TEST_P(StoreConformanceTest, PayloadsRoundTripByteForByte) {
  add_session("t1", "s1");
  std::string unicode = R"({"text":"Grüße, 東京 — \"quoted\" \\ 🙂"})";
  std::string large = "{\"blob\":\"" + std::string(3 * 1024 * 1024, 'x') + "\"}";
  WriteBatch batch;
  batch.run_inserts.push_back(RunRecord{"t1", "r1", "s1", "a", 1, kRunRunning, unicode, large, 1, 1, 1});
  batch.steps.push_back(StepRecord{"t1", "r1", 0, "k", large, 1});
  batch.steps.push_back(StepRecord{"t1", "r1", 1, "k", "", 1});
  batch.items.push_back(ItemRecord{0, "t1", "s1", "r1", unicode, 1});
  ASSERT_TRUE(commit(std::move(batch)).is_ok());
  reopen();
  EXPECT_EQ(store_->get_run("t1", "r1")->input, unicode);
  EXPECT_EQ(store_->get_run("t1", "r1")->snapshot_json, large);
  EXPECT_EQ((*store_->list_steps("t1", "r1", -1, 1))[0].payload_json, large);
  EXPECT_EQ((*store_->list_items("t1", "s1", 0, 1))[0].message_json, unicode);
}

TEST_P(StoreConformanceTest, SessionPaginationNewestFirstAndDeleteCascades) {
  for (int i = 0; i < 5; ++i) add_session("t1", "s" + std::to_string(i));
  add_session("t2", "s9");
  auto page1 = store_->list_sessions("t1", std::nullopt, "", 2);
  ASSERT_EQ(page1->size(), 2u);
  EXPECT_EQ((*page1)[0].id, "s4");
  auto page2 = store_->list_sessions("t1", std::nullopt, (*page1)[1].id, 2);
  ASSERT_EQ(page2->size(), 2u);
  EXPECT_EQ((*page2)[0].id, "s2");
  EXPECT_EQ(store_->list_sessions("t1", std::nullopt, "", 100)->size(), 5u) << "other tenant's session not listed";

  add_run("t1", "s4", "r1", kRunCompleted);
  add_run("t1", "s3", "r0", kRunCompleted);
  WriteBatch history;
  history.steps.push_back(StepRecord{"t1", "r1", 0, "k", "{}", 0});
  history.items.push_back(ItemRecord{0, "t1", "s4", "r1", "{}", 1});
  ASSERT_TRUE(commit(std::move(history)).is_ok());
  WriteBatch del;
  del.session_deletes.push_back(SessionRecord{"t1", "s4", "a", "{}", 0});
  ASSERT_TRUE(commit(std::move(del)).is_ok());
  EXPECT_EQ(store_->get_session("t1", "s4").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->get_run("t1", "r1").status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->list_steps("t1", "r1", -1, 10)->empty());
  EXPECT_TRUE(store_->list_items("t1", "s4", 0, 10)->empty());
  WriteBatch again;
  again.session_deletes.push_back(SessionRecord{"t1", "s4", "a", "{}", 0});
  EXPECT_EQ(commit(std::move(again)).code(), Code::kNotFound);
}

TEST_P(StoreConformanceTest, SecretsUpsertListWithoutValuesAndDelete) {
  WriteBatch first;
  first.secret_upserts.push_back(SecretRecord{"t1", "crm", "v1-token", 10, 10});
  first.secret_upserts.push_back(SecretRecord{"t1", "billing", "b-token", 11, 11});
  ASSERT_TRUE(commit(std::move(first)).is_ok());
  WriteBatch replace;
  replace.secret_upserts.push_back(SecretRecord{"t1", "crm", "v2-token", 20, 20});
  ASSERT_TRUE(commit(std::move(replace)).is_ok());
  reopen();
  auto crm = store_->get_secret("t1", "crm");
  ASSERT_TRUE(crm.is_ok()) << crm.status().to_string();
  EXPECT_EQ(crm->value, "v2-token");
  EXPECT_EQ(crm->created_at_ms, 10) << "replacing keeps the creation time";
  EXPECT_EQ(crm->updated_at_ms, 20);
  EXPECT_EQ(store_->get_secret("t2", "crm").status().code(), Code::kNotFound) << "other tenant";
  auto listed = store_->list_secrets("t1");
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].name, "billing");
  EXPECT_TRUE((*listed)[0].value.empty() && (*listed)[1].value.empty()) << "listing never reads values";
  WriteBatch remove;
  remove.secret_deletes.push_back(SecretRecord{"t1", "crm", "", 0, 0});
  ASSERT_TRUE(commit(std::move(remove)).is_ok());
  EXPECT_EQ(store_->get_secret("t1", "crm").status().code(), Code::kNotFound);
  WriteBatch again;
  again.secret_deletes.push_back(SecretRecord{"t1", "crm", "", 0, 0});
  EXPECT_EQ(commit(std::move(again)).code(), Code::kNotFound);
}

TEST_P(StoreConformanceTest, McpToolPinsUpsertPerServerAndTenant) {
  McpToolPinRecord echo{"t1", "fs", "echo", kMcpPinApproved, "h1", "{\"name\":\"echo\"}", 10, "first use",
                        "h1", "{\"name\":\"echo\"}", 0};
  McpToolPinRecord other{"t1", "mem", "read_graph", kMcpPinApproved, "h9", "{}", 11, "first use", "h9", "{}", 0};
  McpToolPinRecord foreign = echo;
  foreign.tenant_id = "t2";
  WriteBatch first;
  first.mcp_tool_pin_upserts = {echo, other, foreign};
  ASSERT_TRUE(commit(std::move(first)).is_ok());
  McpToolPinRecord changed = echo;
  changed.status = kMcpPinChanged;
  changed.seen_hash = "h2";
  changed.seen_definition_json = "{\"name\":\"echo\",\"description\":\"new\"}";
  changed.changed_at_ms = 20;
  WriteBatch second;
  second.mcp_tool_pin_upserts.push_back(changed);
  ASSERT_TRUE(commit(std::move(second)).is_ok());
  reopen();
  auto pins = store_->list_mcp_tool_pins("t1", "fs");
  ASSERT_TRUE(pins.is_ok()) << pins.status().to_string();
  ASSERT_EQ(pins->size(), 1u);
  const McpToolPinRecord& read = (*pins)[0];
  EXPECT_EQ(read.status, kMcpPinChanged);
  EXPECT_EQ(read.approved_hash, "h1") << "the approved definition stays until re-approved";
  EXPECT_EQ(read.approved_by, "first use");
  EXPECT_EQ(read.seen_hash, "h2");
  EXPECT_EQ(read.seen_definition_json, changed.seen_definition_json);
  EXPECT_EQ(read.changed_at_ms, 20);
  auto all = store_->list_mcp_tool_pins("t1", "");
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].server, "fs");
  EXPECT_EQ((*all)[1].server, "mem");
  EXPECT_EQ(store_->list_mcp_tool_pins("t2", "")->size(), 1u) << "tenants see only their pins";
  EXPECT_EQ((*store_->list_mcp_tool_pins("t2", ""))[0].status, kMcpPinApproved);
  // A first pin written by a second node (or run) that read before the first committed: ignored.
  McpToolPinRecord late_first = echo;
  late_first.approved_hash = late_first.seen_hash = "h3";
  WriteBatch third;
  third.mcp_tool_pin_inserts.push_back(late_first);
  McpToolPinRecord brand_new = echo;
  brand_new.tool = "write";
  third.mcp_tool_pin_inserts.push_back(brand_new);
  ASSERT_TRUE(commit(std::move(third)).is_ok());
  auto after = store_->list_mcp_tool_pins("t1", "fs");
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ((*after)[0].approved_hash, "h1") << "an existing pin is never replaced by a first pin";
  EXPECT_EQ((*after)[1].tool, "write");
}

TEST_P(StoreConformanceTest, SessionsListedPerEndUser) {
  WriteBatch batch;
  batch.session_inserts.push_back(SessionRecord{"t1", "s1", "a", "{}", 1, "alice"});
  batch.session_inserts.push_back(SessionRecord{"t1", "s2", "a", "{}", 2, "bob"});
  batch.session_inserts.push_back(SessionRecord{"t1", "s3", "a", "{}", 3, "alice"});
  batch.session_inserts.push_back(SessionRecord{"t2", "s4", "a", "{}", 4, "alice"});
  ASSERT_TRUE(commit(std::move(batch)).is_ok());
  auto alice = store_->list_sessions("t1", std::string("alice"), "", 10);
  ASSERT_TRUE(alice.is_ok()) << alice.status().to_string();
  ASSERT_EQ(alice->size(), 2u) << "bob's session and the other tenant's are not listed";
  EXPECT_EQ((*alice)[0].id, "s3");
  auto next = store_->list_sessions("t1", std::string("alice"), "s3", 10);
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].id, "s1");
  EXPECT_TRUE(store_->list_sessions("t1", std::string("carol"), "", 10)->empty());
  EXPECT_EQ(store_->list_sessions("t1", std::nullopt, "", 10)->size(), 3u);
}

TEST_P(StoreConformanceTest, ApiKeysFoundByIdAcrossTenantsAndRevokedOnce) {
  WriteBatch batch;
  batch.api_key_inserts.push_back(
      ApiKeyRecord{"key_a", "t1", "alice", R"(["member"])", "laptop", "hash-a", 10, 0, "admin"});
  batch.api_key_inserts.push_back(ApiKeyRecord{"key_b", "t2", "bob", "[]", "", "hash-b", 11, 0, ""});
  ASSERT_TRUE(commit(std::move(batch)).is_ok());
  WriteBatch duplicate;
  duplicate.api_key_inserts.push_back(ApiKeyRecord{"key_a", "t2", "eve", "[]", "", "x", 12, 0, ""});
  EXPECT_EQ(commit(std::move(duplicate)).code(), Code::kConflict) << "ids are unique across tenants";
  reopen();
  auto found = store_->get_api_key("key_a");
  ASSERT_TRUE(found.is_ok()) << found.status().to_string();
  EXPECT_EQ(found->tenant_id, "t1");
  EXPECT_EQ(found->user_id, "alice");
  EXPECT_EQ(found->roles_json, R"(["member"])");
  EXPECT_EQ(found->secret_hash, "hash-a");
  EXPECT_EQ(found->created_by, "admin");
  EXPECT_EQ(store_->get_api_key("key_z").status().code(), Code::kNotFound);
  ASSERT_EQ(store_->list_api_keys("t1")->size(), 1u);

  WriteBatch wrong_tenant;
  wrong_tenant.api_key_revokes.push_back(ApiKeyRecord{"key_a", "t2", "", "", "", "", 0, 50, ""});
  EXPECT_EQ(commit(std::move(wrong_tenant)).code(), Code::kNotFound) << "a tenant cannot revoke another's key";
  WriteBatch revoke;
  revoke.api_key_revokes.push_back(ApiKeyRecord{"key_a", "t1", "", "", "", "", 0, 50, ""});
  ASSERT_TRUE(commit(std::move(revoke)).is_ok());
  EXPECT_EQ(store_->get_api_key("key_a")->revoked_at_ms, 50);
  WriteBatch again;
  again.api_key_revokes.push_back(ApiKeyRecord{"key_a", "t1", "", "", "", "", 0, 60, ""});
  EXPECT_EQ(commit(std::move(again)).code(), Code::kNotFound) << "revoked once";
  EXPECT_EQ(store_->get_api_key("key_a")->revoked_at_ms, 50);
}

TEST_P(StoreConformanceTest, PolicyVersionsNewestInForce) {
  EXPECT_EQ(store_->get_policy("t1", std::nullopt).status().code(), Code::kNotFound);
  WriteBatch batch;
  batch.policy_inserts.push_back(PolicyRecord{"t1", 1, R"({"statements":[]})", 10, "admin"});
  batch.policy_inserts.push_back(PolicyRecord{"t1", 2, R"({"statements":[{"effect":"allow"}]})", 20, "admin"});
  batch.policy_inserts.push_back(PolicyRecord{"t2", 1, "{}", 30, ""});
  ASSERT_TRUE(commit(std::move(batch)).is_ok());
  WriteBatch same_version;
  same_version.policy_inserts.push_back(PolicyRecord{"t1", 2, "{}", 40, ""});
  EXPECT_EQ(commit(std::move(same_version)).code(), Code::kConflict) << "versions are immutable";
  reopen();
  auto newest = store_->get_policy("t1", std::nullopt);
  ASSERT_TRUE(newest.is_ok()) << newest.status().to_string();
  EXPECT_EQ(newest->version, 2);
  EXPECT_EQ(newest->document_json, R"({"statements":[{"effect":"allow"}]})");
  EXPECT_EQ(store_->get_policy("t1", 1)->created_at_ms, 10);
  EXPECT_EQ(store_->get_policy("t1", 3).status().code(), Code::kNotFound);
  auto listed = store_->list_policies("t1", 10);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].version, 2);
  EXPECT_EQ(store_->list_policies("t1", 1)->size(), 1u);
}

ApprovalRecord approval_for_test(const std::string& id, int64_t created, int64_t expires) {
  ApprovalRecord approval;
  approval.tenant_id = "t1";
  approval.id = id;
  approval.run_id = "r1";
  approval.session_id = "s1";
  approval.seq = 3;
  approval.tool = "refund";
  approval.arguments_json = R"({"amount":2500})";
  approval.arguments_hash = "hash";
  approval.statement = "big-refunds";
  approval.requested_by = "alice";
  approval.agent = "support";
  approval.created_at_ms = created;
  approval.expires_at_ms = expires;
  return approval;
}

ApprovalRecord decision_for_test(const std::string& id, const char* status, int64_t at, const std::string& by) {
  ApprovalRecord decision;
  decision.tenant_id = "t1";
  decision.id = id;
  decision.status = status;
  decision.decided_at_ms = at;
  decision.decided_by = by;
  decision.comment = "ok";
  return decision;
}

TEST_P(StoreConformanceTest, ApprovalsDecidedOnceAndNotAfterExpiry) {
  add_session("t1", "s1");
  add_run("t1", "s1", "r1", kRunRunning);
  WriteBatch batch;
  batch.approval_inserts.push_back(approval_for_test("apr_b", 10, 1000));
  batch.approval_inserts.push_back(approval_for_test("apr_a", 20, 1000));
  batch.approval_inserts.push_back(approval_for_test("apr_c", 30, 100));
  ASSERT_TRUE(commit(std::move(batch)).is_ok());
  WriteBatch duplicate;
  duplicate.approval_inserts.push_back(approval_for_test("apr_a", 40, 1000));
  EXPECT_EQ(commit(std::move(duplicate)).code(), Code::kConflict) << "one approval per call";
  reopen();
  auto found = store_->get_approval("t1", "apr_a");
  ASSERT_TRUE(found.is_ok()) << found.status().to_string();
  EXPECT_EQ(found->arguments_json, R"({"amount":2500})");
  EXPECT_EQ(found->status, kApprovalPending);
  EXPECT_EQ(found->requested_by, "alice");
  EXPECT_EQ(store_->get_approval("t2", "apr_a").status().code(), Code::kNotFound) << "other tenant";

  auto pending = store_->list_approvals("t1", kApprovalPending, 200, "", 10);
  ASSERT_TRUE(pending.is_ok()) << pending.status().to_string();
  ASSERT_EQ(pending->size(), 2u) << "apr_c expired at 100";
  EXPECT_EQ((*pending)[0].id, "apr_b") << "oldest first";
  auto expired = store_->list_approvals("t1", kApprovalExpired, 200, "", 10);
  ASSERT_EQ(expired->size(), 1u) << "pending past its expiry counts as expired";
  EXPECT_EQ((*expired)[0].id, "apr_c");
  auto next = store_->list_approvals("t1", kApprovalPending, 200, "apr_b", 10);
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].id, "apr_a");

  WriteBatch approve;
  approve.approval_decisions.push_back(decision_for_test("apr_a", kApprovalApproved, 500, "bob"));
  ASSERT_TRUE(commit(std::move(approve)).is_ok());
  WriteBatch again;
  again.approval_decisions.push_back(decision_for_test("apr_a", kApprovalDenied, 501, "carol"));
  EXPECT_EQ(commit(std::move(again)).code(), Code::kConflict) << "decided once";
  auto decided = store_->get_approval("t1", "apr_a");
  EXPECT_EQ(decided->status, kApprovalApproved);
  EXPECT_EQ(decided->decided_by, "bob");
  EXPECT_EQ(decided->decided_at_ms, 500);

  WriteBatch late;
  late.approval_decisions.push_back(decision_for_test("apr_c", kApprovalApproved, 200, "bob"));
  EXPECT_EQ(commit(std::move(late)).code(), Code::kConflict) << "not after expiry";
  WriteBatch expire;
  expire.approval_decisions.push_back(decision_for_test("apr_c", kApprovalExpired, 200, "system"));
  EXPECT_TRUE(commit(std::move(expire)).is_ok()) << "an expiry is recorded after the deadline";
  EXPECT_EQ(store_->list_approvals("t1", "", 200, "", 10)->size(), 3u);
}

TEST_P(StoreConformanceTest, AuditEventsOfOneRunComeInSeqOrderWithTheOtherFilters) {
  auto event = [](const std::string& run, const std::string& action, int64_t at_ms) {
    AuditEventRecord record;
    record.tenant_id = "t1";
    record.at_ms = at_ms;
    record.principal = "user:alice";
    record.action = action;
    record.resource = "run:" + run;
    record.run_id = run;
    record.outcome = "ok";
    record.details_json = "{}";
    return record;
  };
  WriteBatch batch;
  for (int i = 0; i < 6; ++i) {
    batch.audit_events.push_back(event("r1", i % 2 ? "tool:invoke" : "model:invoke", 10 + i));
    batch.audit_events.push_back(event("r2", "model:invoke", 10 + i));
  }
  batch.audit_events.push_back(event("", "session:create", 20));
  ASSERT_TRUE(commit(std::move(batch)).is_ok());
  AuditQuery query;
  query.run_id = "r1";
  auto of_run = store_->list_audit_events("t1", query);
  ASSERT_TRUE(of_run.is_ok()) << of_run.status().to_string();
  ASSERT_EQ(of_run->size(), 6u);
  for (size_t i = 0; i < of_run->size(); ++i) {
    EXPECT_EQ((*of_run)[i].run_id, "r1");
    EXPECT_EQ((*of_run)[i].seq, static_cast<int64_t>(2 * i + 1)) << "in seq order";
  }
  query.after_seq = 3;
  query.limit = 2;
  query.action = "tool:invoke";
  auto page = store_->list_audit_events("t1", query);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].seq, 7);
  EXPECT_EQ((*page)[1].seq, 11);
  query = AuditQuery{};
  query.run_id = "r2";
  query.since_ms = 12;
  query.until_ms = 14;
  auto in_time = store_->list_audit_events("t1", query);
  ASSERT_EQ(in_time->size(), 2u);
  EXPECT_EQ((*in_time)[0].at_ms, 12);
  EXPECT_EQ((*in_time)[1].at_ms, 13);
  query = AuditQuery{};
  query.since_ms = 15;
  EXPECT_EQ(store_->list_audit_events("t1", query)->size(), 3u) << "no run filter: every run's and none";
  query.run_id = "nope";
  EXPECT_TRUE(store_->list_audit_events("t1", query)->empty());
}

TEST_P(StoreConformanceTest, AuditEventsChainPerTenantInCommitOrder) {
  auto event = [](const std::string& tenant, const std::string& action) {
    AuditEventRecord record;
    record.tenant_id = tenant;
    record.at_ms = 7;
    record.principal = "user:alice";
    record.action = action;
    record.resource = "run:r1";
    record.outcome = "ok";
    record.details_json = R"({"b":1,"a":2})";
    return record;
  };
  WriteBatch first;
  first.audit_events = {event("t1", "a1"), event("t2", "b1"), event("t1", "a2")};
  ASSERT_TRUE(commit(std::move(first)).is_ok());
  WriteBatch failing;  // its events must not take seqs
  failing.audit_events = {event("t1", "lost")};
  failing.secret_deletes.push_back(SecretRecord{"t1", "absent", "", 0, 0});
  EXPECT_FALSE(commit(std::move(failing)).is_ok());
  WriteBatch second;
  second.audit_events = {event("t1", "a3")};
  ASSERT_TRUE(commit(std::move(second)).is_ok());
  reopen();
  AuditQuery query;
  auto events = store_->list_audit_events("t1", query);
  ASSERT_TRUE(events.is_ok()) << events.status().to_string();
  ASSERT_EQ(events->size(), 3u);
  std::string prev = audit_genesis_hash();
  for (size_t i = 0; i < events->size(); ++i) {
    const auto& stored = (*events)[i];
    EXPECT_EQ(stored.seq, static_cast<int64_t>(i + 1));
    EXPECT_EQ(stored.action, "a" + std::to_string(i + 1));
    EXPECT_EQ(stored.prev_hash, prev) << "linked to the record before";
    EXPECT_EQ(stored.canonical, canonical_event(stored)) << "stored canonically";
    EXPECT_EQ(stored.hash, audit_chain_hash(prev, stored.seq, stored.canonical));
    EXPECT_EQ(stored.details_json, R"({"a":2,"b":1})");
    prev = stored.hash;
  }
  EXPECT_EQ(store_->list_audit_events("t2", query)->size(), 1u) << "each tenant its own chain";
  query.action = "a2";
  EXPECT_EQ(store_->list_audit_events("t1", query)->size(), 1u);
  auto heads = store_->list_audit_heads();
  ASSERT_EQ(heads->size(), 2u);
  EXPECT_EQ((*heads)[0].seq, 3);
  EXPECT_EQ((*heads)[0].hash, prev);
  WriteBatch checkpoint;
  checkpoint.audit_checkpoints.push_back(AuditCheckpointRecord{"t1", 3, prev, 9, "kid", std::string(32, 'k'),
                                                               std::string(64, 's')});
  ASSERT_TRUE(commit(std::move(checkpoint)).is_ok());
  auto checkpoints = store_->list_audit_checkpoints("t1", 0, 10);
  ASSERT_EQ(checkpoints->size(), 1u);
  EXPECT_EQ((*checkpoints)[0].hash, prev);
  EXPECT_EQ((*checkpoints)[0].signature, std::string(64, 's'));
}

// Regression: a run submitted between the API's "no unfinished runs" check and
// the delete's commit used to land in a deleted session. The writer now checks.
TEST_P(StoreConformanceTest, SessionDeleteAndRunInsertCannotInterleave) {
  add_session("t1", "s1");
  add_run("t1", "s1", "r1", kRunQueued);
  WriteBatch del;
  del.session_deletes.push_back(SessionRecord{"t1", "s1", "a", "{}", 0});
  EXPECT_EQ(commit(std::move(del)).code(), Code::kConflict) << "a queued run blocks the delete";

  add_session("t1", "s2");
  WriteBatch delete_s2;
  delete_s2.session_deletes.push_back(SessionRecord{"t1", "s2", "a", "{}", 0});
  ASSERT_TRUE(commit(std::move(delete_s2)).is_ok());
  WriteBatch late_run;
  late_run.run_inserts.push_back(RunRecord{"t1", "r2", "s2", "a", 1, kRunQueued, "in", "{}", 1, 1});
  EXPECT_EQ(commit(std::move(late_run)).code(), Code::kNotFound);
}

// ---- sealing only ----

class SealedStoreTest : public StoreConformanceTest {};

TEST_P(SealedStoreTest, SealedPayloadsAreCiphertextBoundToTheirRow) {
  WriteBatch batch;
  batch.session_inserts.push_back(SessionRecord{"t1", "s1", "a", R"({"canary":"meta-7f3a"})", 1, "alice"});
  ASSERT_TRUE(commit(std::move(batch)).is_ok());
  add_run("t1", "s1", "r1", kRunRunning);
  WriteBatch items;
  items.items.push_back(ItemRecord{0, "t1", "s1", "r1", R"({"content":"canary-one"})", 1});
  items.items.push_back(ItemRecord{0, "t1", "s1", "r1", R"({"content":"canary-two"})", 1});
  ASSERT_TRUE(commit(std::move(items)).is_ok());

  auto raw = backend_->list_items("t1", "s1", 0, 10);
  ASSERT_EQ(raw->size(), 2u);
  for (const auto& item : *raw) {
    EXPECT_TRUE(item.message_json.starts_with(std::string("\0cs1", 4)));
    EXPECT_EQ(item.message_json.find("canary"), std::string::npos);
    EXPECT_FALSE(item.id.empty()) << "an item gets an id to bind its ciphertext to";
  }
  EXPECT_EQ(backend_->get_session("t1", "s1")->metadata_json.find("meta-7f3a"), std::string::npos);
  EXPECT_EQ((*store_->list_items("t1", "s1", 0, 10))[1].message_json, R"({"content":"canary-two"})");
  EXPECT_NE(store_->list_data_keys("t1")->front().scope.find("alice"), std::string::npos) << "user-scoped key";

  // Move the second item's ciphertext into a new row: it must not open there.
  WriteBatch moved;
  moved.items.push_back(ItemRecord{0, "t1", "s1", "r1", (*raw)[1].message_json, 2, "item_moved"});
  ASSERT_TRUE(backend_->commit_and_wait(std::move(moved)).is_ok());
  EXPECT_EQ(store_->list_items("t1", "s1", 0, 10).status().code(), Code::kDataLoss);
  EXPECT_EQ(store_->list_items("t1", "s1", 0, 2)->size(), 2u) << "the rows before it still open";
}

TEST_P(SealedStoreTest, SecretValuesAreSealed) {
  WriteBatch batch;
  batch.secret_upserts.push_back(SecretRecord{"t1", "crm", "canary-secret-91f2", 1, 1});
  ASSERT_TRUE(commit(std::move(batch)).is_ok());
  auto raw = backend_->get_secret("t1", "crm");
  ASSERT_TRUE(raw.is_ok());
  EXPECT_EQ(raw->value.find("canary"), std::string::npos);
  EXPECT_EQ(store_->get_secret("t1", "crm")->value, "canary-secret-91f2");
}

TEST_P(SealedStoreTest, ShreddedUserIsUnreadableOthersIntact) {
  for (const char* user : {"alice", "bob", ""}) {
    std::string session = std::string("s-") + user;
    WriteBatch batch;
    batch.session_inserts.push_back(SessionRecord{"t1", session, "a", "{}", 1, user});
    ASSERT_TRUE(commit(std::move(batch)).is_ok());
    add_run("t1", session, "r-" + session, kRunCompleted);
    WriteBatch items;
    items.items.push_back(ItemRecord{0, "t1", session, "r-" + session, R"({"content":"hi"})", 1});
    items.steps.push_back(StepRecord{"t1", "r-" + session, 0, "k", R"({"out":1})", 1});
    ASSERT_TRUE(commit(std::move(items)).is_ok());
  }
  ASSERT_EQ(keyring_->shred("t1", "user:alice")->destroyed.size(), 1u);
  reopen();
  EXPECT_EQ(store_->list_items("t1", "s-alice", 0, 10).status().code(), Code::kDataLoss);
  EXPECT_EQ(store_->list_steps("t1", "r-s-alice", -1, 10).status().code(), Code::kDataLoss);
  EXPECT_EQ(store_->get_run("t1", "r-s-alice").status().code(), Code::kDataLoss);
  EXPECT_EQ((*store_->list_items("t1", "s-bob", 0, 10))[0].message_json, R"({"content":"hi"})");
  EXPECT_EQ((*store_->list_items("t1", "s-", 0, 10))[0].message_json, R"({"content":"hi"})");
  EXPECT_EQ((*store_->list_steps("t1", "r-s-bob", -1, 10))[0].payload_json, R"({"out":1})");
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformanceTest,
                         ::testing::Values("sqlite", "postgres", "sqlite_sealed", "postgres_sealed"),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Backends, SealedStoreTest, ::testing::Values("sqlite_sealed", "postgres_sealed"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace continuum
