// The SQLite store checkpoints on a thread of its own: the WAL is copied back
// into the database file and then started over, so it stays bounded, and
// every committed step stays readable, also after the store is reopened.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "obs/metrics.h"
#include "store/sqlite/sqlite_store.h"

namespace continuum {
namespace {

constexpr int64_t kMiB = 1 << 20;

class SqliteCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("continuum-checkpoint-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "test.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<SqliteStore> open() {
    auto store = SqliteStore::open(SqliteStoreOptions{path_}, clock_, &metrics_);
    EXPECT_TRUE(store.is_ok()) << store.status().to_string();
    return store.is_ok() ? std::move(*store) : nullptr;
  }
  // Steps [first, first + count) of run "r", 1 MiB each, one transaction each.
  static void write_steps(SqliteStore& store, int first, int count) {
    for (int seq = first; seq < first + count; ++seq) {
      WriteBatch batch;
      batch.steps.push_back(StepRecord{"t", "r", seq, "k", std::string(kMiB, static_cast<char>('a' + seq % 26)), 0});
      ASSERT_TRUE(store.commit_and_wait(std::move(batch)).is_ok());
    }
  }
  int64_t size_of(const std::string& suffix) {
    std::error_code error;
    auto size = std::filesystem::file_size(path_ + suffix, error);
    return error ? 0 : static_cast<int64_t>(size);
  }

  int64_t checkpoints_by(const std::string& thread) {
    return metrics_.counter("continuum_store_wal_checkpoints_total", "", "by=\"" + thread + "\"").value();
  }

  SystemClock clock_;
  MetricsRegistry metrics_;
  std::filesystem::path dir_;
  std::string path_;
};

// 150 MiB in 1 MiB commits: ~38,700 WAL frames, under the size at which the
// writer would checkpoint all of it itself (40,000).
TEST_F(SqliteCheckpointTest, TheWalIsCheckpointedAndStartedOverWhileCommitsGoOn) {
  constexpr int kSteps = 150;
  auto store = open();
  ASSERT_NE(store, nullptr);
  write_steps(*store, 0, kSteps);
  EXPECT_GE(size_of(""), 40 * kMiB) << "checkpointed at least once";
  EXPECT_LT(size_of("-wal"), (kSteps - 10) * kMiB) << "started over at least once";
  EXPECT_GE(checkpoints_by("checkpointer"), 1) << "the bulk of the WAL copied off the writer";
  EXPECT_GE(checkpoints_by("writer"), 1) << "the rest copied between two transactions";
  auto steps = store->list_steps("t", "r", -1, 1000);
  ASSERT_TRUE(steps.is_ok());
  ASSERT_EQ(steps->size(), static_cast<size_t>(kSteps));
  store.reset();
  EXPECT_EQ(size_of("-wal"), 0) << "closing checkpoints the rest and removes the WAL";

  auto reopened = open();
  ASSERT_NE(reopened, nullptr);
  auto again = reopened->list_steps("t", "r", -1, 1000);
  ASSERT_TRUE(again.is_ok());
  ASSERT_EQ(again->size(), static_cast<size_t>(kSteps));
  for (const auto& step : *again) {
    ASSERT_EQ(step.payload_json.size(), static_cast<size_t>(kMiB));
    EXPECT_EQ(step.payload_json[0], static_cast<char>('a' + step.seq % 26));
  }
}

// kill -9 while the WAL is being checkpointed (80 MiB written: the first
// checkpoint runs from about 40 on): every acknowledged commit is there
// after the restart.
TEST_F(SqliteCheckpointTest, AKillWhileCheckpointingLosesNoAcknowledgedCommit) {
  int acks[2];
  ASSERT_EQ(::pipe(acks), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(acks[0]);
    auto store = SqliteStore::open(SqliteStoreOptions{path_}, clock_, nullptr);
    if (!store.is_ok()) ::_exit(2);
    for (int seq = 0;; ++seq) {
      WriteBatch batch;
      batch.steps.push_back(StepRecord{"t", "r", seq, "k", std::string(kMiB, static_cast<char>('a' + seq % 26)), 0});
      if (!(*store)->commit_and_wait(std::move(batch)).is_ok()) ::_exit(3);
      if (::write(acks[1], &seq, sizeof seq) != sizeof seq) ::_exit(4);  // acknowledged: durable
    }
  }
  ::close(acks[1]);
  int acknowledged = -1, seq = 0;
  while (acknowledged < 80 && ::read(acks[0], &seq, sizeof seq) == sizeof seq) acknowledged = seq;
  ::kill(child, SIGKILL);
  while (::read(acks[0], &seq, sizeof seq) == sizeof seq) acknowledged = seq;  // sent before it died
  ::close(acks[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << WEXITSTATUS(status);
  ASSERT_GE(acknowledged, 80);

  auto store = open();
  ASSERT_NE(store, nullptr);
  auto steps = store->list_steps("t", "r", -1, 1000);
  ASSERT_TRUE(steps.is_ok());
  ASSERT_GE(steps->size(), static_cast<size_t>(acknowledged + 1));
  for (const auto& step : *steps) {
    ASSERT_EQ(step.payload_json.size(), static_cast<size_t>(kMiB)) << step.seq;
    EXPECT_EQ(step.payload_json[kMiB - 1], static_cast<char>('a' + step.seq % 26)) << step.seq;
  }
}

}  // namespace
}  // namespace continuum
