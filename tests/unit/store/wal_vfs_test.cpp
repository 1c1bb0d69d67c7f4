// The WAL VFS writes what SQLite writes, only in fewer calls and into blocks
// written ahead: another connection (on the default VFS), a process that died
// without closing, a rollback and a WAL restart must all see exactly the
// committed rows.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/wal_vfs.h"

namespace continuum {
namespace {

class WalVfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("continuum-wal-vfs-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "test.db").string();
    ASSERT_NE(sqlite_wal_vfs_name(), nullptr);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A writer as the store opens it: this VFS, WAL, synchronous=FULL.
  void open_writer(SqliteDb& db, int cache_pages = 2000) {
    ASSERT_TRUE(db.open(path_, sqlite_wal_vfs_name()).is_ok());
    ASSERT_TRUE(db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0; "
                        "PRAGMA cache_size=" + std::to_string(cache_pages))
                    .is_ok());
    ASSERT_TRUE(db.exec("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)").is_ok());
  }

  static Status insert(SqliteDb& db, int64_t id, int64_t size) {
    auto statement = db.prepare("INSERT INTO t (id, body) VALUES (?, zeroblob(?))");
    if (!statement.is_ok()) return statement.status();
    statement->bind(1, id).bind(2, size);
    return statement->run();
  }

  // Rows and total body bytes, read on the default VFS.
  std::pair<int64_t, int64_t> count_from_outside() {
    SqliteDb reader;
    EXPECT_TRUE(reader.open(path_).is_ok());
    auto statement = reader.prepare("SELECT count(*), coalesce(sum(length(body)), 0) FROM t");
    EXPECT_TRUE(statement.is_ok());
    EXPECT_TRUE(statement->step());
    return {statement->column_int(0), statement->column_int(1)};
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(WalVfsTest, CommitsOfEverySizeAreWhatAnotherConnectionReads) {
  SqliteDb writer;
  open_writer(writer);
  // One page, several pages, past the default VFS's 128 KiB write limit, and
  // past the 8 MiB the VFS gathers before it writes.
  const int64_t sizes[] = {10, 5000, 200'000, 9'000'000, 100};
  int64_t total = 0;
  for (int64_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(insert(writer, i, sizes[i]).is_ok());
    total += sizes[i];
    EXPECT_EQ(count_from_outside(), std::make_pair(i + 1, total)) << "after commit " << i;
  }
}

TEST_F(WalVfsTest, AProcessThatDiesWithoutClosingLeavesEveryCommitReadable) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    SqliteDb writer;
    if (!writer.open(path_, sqlite_wal_vfs_name()).is_ok()) ::_exit(2);
    if (!writer.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                     "CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
             .is_ok()) {
      ::_exit(3);
    }
    for (int64_t i = 0; i < 300; ++i) {
      if (!insert(writer, i, 1000 + i).is_ok()) ::_exit(4);
    }
    // An open transaction's frames reach the file too: they must not count.
    if (!writer.exec("BEGIN").is_ok() || !insert(writer, 1000, 5'000'000).is_ok()) ::_exit(5);
    ::_exit(0);  // no close, no checkpoint: the rows live in the WAL only
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  ASSERT_GT(std::filesystem::file_size(path_ + "-wal"), 0u);
  EXPECT_EQ(count_from_outside(), std::make_pair(int64_t{300}, int64_t{300 * 1000 + 299 * 300 / 2}));
}

TEST_F(WalVfsTest, ARolledBackTransactionThatSpilledLeavesNothing) {
  SqliteDb writer;
  open_writer(writer, 10);  // a tiny cache: the transaction spills pages into the WAL
  ASSERT_TRUE(insert(writer, 1, 100).is_ok());
  ASSERT_TRUE(writer.exec("BEGIN").is_ok());
  for (int64_t i = 100; i < 400; ++i) ASSERT_TRUE(insert(writer, i, 3000).is_ok());
  {
    auto inside = writer.prepare("SELECT count(*) FROM t");  // reads back spilled pages
    ASSERT_TRUE(inside.is_ok());
    ASSERT_TRUE(inside->step());
    EXPECT_EQ(inside->column_int(0), 301);
  }
  ASSERT_TRUE(writer.exec("ROLLBACK").is_ok());
  ASSERT_TRUE(insert(writer, 2, 200).is_ok());
  EXPECT_EQ(count_from_outside(), std::make_pair(int64_t{2}, int64_t{300}));
}

// In a child whose files may not grow past `limit_bytes` (a full disk, as
// the kernel sees it), commits rows of `row_bytes` until they fail; returns
// how many commits succeeded. `vfs` null: SQLite's own.
int commits_until_full(const std::string& path, const char* vfs, rlim_t limit_bytes, int64_t row_bytes) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return -1;
  pid_t child = ::fork();
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails (EFBIG) instead of killing
    rlimit limit{limit_bytes, limit_bytes};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    SqliteDb db;
    int committed = 0;
    if (db.open(path, vfs).is_ok() &&
        db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0; "
                "CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            .is_ok()) {
      for (int failures = 0; failures < 3 && committed < 1000;) {
        auto insert = db.prepare("INSERT INTO t (body) VALUES (randomblob(?))");
        if (insert.is_ok() && insert->bind(1, row_bytes).run().is_ok()) {
          ++committed;
        } else {
          ++failures;
        }
      }
    }
    if (::write(pipe_fds[1], &committed, sizeof committed) != sizeof committed) ::_exit(2);
    ::_exit(0);  // no close: what is committed lives in the WAL
  }
  int committed = -1;
  if (::read(pipe_fds[0], &committed, sizeof committed) != sizeof committed) committed = -1;
  ::waitpid(child, nullptr, 0);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  return committed;
}

// The zeros written ahead never cost a commit: near a full disk the VFS
// commits as much as SQLite alone, and every commit it reported is there.
TEST_F(WalVfsTest, ANearlyFullDiskCommitsWhatSqliteAloneWouldAndLosesNoneOfIt) {
  constexpr rlim_t kLimit = 3 << 20;  // less than the 4 MiB written ahead
  for (int64_t row_bytes : {3000, 50'000, 300'000}) {
    std::string plain_path = (dir_ / ("plain-" + std::to_string(row_bytes) + ".db")).string();
    int plain = commits_until_full(plain_path, nullptr, kLimit, row_bytes);
    int ours = commits_until_full(path_, sqlite_wal_vfs_name(), kLimit, row_bytes);
    ASSERT_GT(plain, 0);
    EXPECT_EQ(ours, plain) << "rows of " << row_bytes << " bytes";
    {
      SqliteDb reader;
      ASSERT_TRUE(reader.open(path_).is_ok());
      auto check = reader.prepare("SELECT (SELECT count(*) FROM t), (SELECT integrity_check FROM pragma_integrity_check)");
      ASSERT_TRUE(check.is_ok());
      ASSERT_TRUE(check->step());
      EXPECT_EQ(check->column_int(0), ours) << "every reported commit is in the database";
      EXPECT_EQ(check->column_text(1), "ok");
    }
    std::filesystem::remove(path_);
    std::filesystem::remove(path_ + "-wal");
    std::filesystem::remove(path_ + "-shm");
  }
}

// After a restart the WAL is written from its start again, over older frames
// and the zeros written ahead; after TRUNCATE it grows from nothing.
TEST_F(WalVfsTest, EveryCommitIsReadAcrossWalRestartsAndTruncation) {
  SqliteDb writer;
  open_writer(writer);
  for (int64_t i = 0; i < 50; ++i) ASSERT_TRUE(insert(writer, i, 4000).is_ok());
  ASSERT_TRUE(writer.exec("PRAGMA wal_checkpoint(RESTART)").is_ok());
  for (int64_t i = 50; i < 60; ++i) ASSERT_TRUE(insert(writer, i, 4000).is_ok());
  EXPECT_EQ(count_from_outside(), std::make_pair(int64_t{60}, int64_t{60 * 4000}));
  ASSERT_TRUE(writer.exec("PRAGMA wal_checkpoint(TRUNCATE)").is_ok());
  ASSERT_TRUE(insert(writer, 60, 4000).is_ok());
  EXPECT_EQ(count_from_outside(), std::make_pair(int64_t{61}, int64_t{61 * 4000}));
}

}  // namespace
}  // namespace continuum
