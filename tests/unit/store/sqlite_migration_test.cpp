// A database written by an older binary opens with everything in it: the
// migration to schema 10 moves items to seqs from the writer's counter
// (going on from AUTOINCREMENT's, so no seq comes back) and finds runs'
// audit events through spans instead of an index.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "audit/chain.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/sqlite_store.h"

namespace continuum {
namespace {

constexpr size_t kSchemaBeforeSpans = 9;

class SqliteMigrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("continuum-migration-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "old.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The schema as of version 9, with rows as that version wrote them.
  void write_version_9_database() {
    SqliteDb db;
    ASSERT_TRUE(db.open(path_).is_ok());
    ASSERT_TRUE(db.exec("CREATE TABLE schema_version (version INTEGER NOT NULL)").is_ok());
    for (size_t i = 0; i < kSchemaBeforeSpans; ++i) {
      ASSERT_TRUE(db.exec(sqlite_migrations()[i]).is_ok()) << "migration " << i + 1;
      ASSERT_TRUE(db.exec("INSERT INTO schema_version (version) VALUES (" + std::to_string(i + 1) + ")").is_ok());
    }
    for (const char* session : {"s1", "s1", "s2", "s1"}) {  // AUTOINCREMENT gives seqs 1-4
      ASSERT_TRUE(db.exec(std::string("INSERT INTO items (tenant_id, session_id, run_id, message, created_at_ms, id) "
                                      "VALUES ('t', '") + session + "', 'r1', '{}', 1, '')")
                      .is_ok());
    }
    // The newest item deleted: AUTOINCREMENT would still never give out 4 again.
    ASSERT_TRUE(db.exec("DELETE FROM items WHERE seq = 4").is_ok());
    std::string prev = audit_genesis_hash();
    int64_t seq = 0;
    for (const char* run : {"r1", "r1", "r2", "", "r1"}) {
      AuditEventRecord event;
      event.tenant_id = "t";
      event.at_ms = 100 + seq;
      event.principal = "user:alice";
      event.action = "run:start";
      event.resource = std::string("run:") + run;
      event.run_id = run;
      event.outcome = "ok";
      event.details_json = "{}";
      std::string canonical = canonical_event(event);
      std::string hash = audit_chain_hash(prev, ++seq, canonical);
      auto insert = db.prepare("INSERT INTO audit_events (tenant_id, seq, at_ms, principal, action, resource, run_id, "
                               "outcome, event, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      ASSERT_TRUE(insert.is_ok());
      insert->bind(1, event.tenant_id).bind(2, seq).bind(3, event.at_ms).bind(4, event.principal)
          .bind(5, event.action).bind(6, event.resource).bind(7, event.run_id).bind(8, event.outcome)
          .bind(9, canonical).bind_blob(10, prev).bind_blob(11, hash);
      ASSERT_TRUE(insert->run().is_ok());
      prev = hash;
    }
  }

  std::unique_ptr<SqliteStore> open() {
    auto store = SqliteStore::open(SqliteStoreOptions{path_}, clock_, nullptr);
    EXPECT_TRUE(store.is_ok()) << store.status().to_string();
    return store.is_ok() ? std::move(*store) : nullptr;
  }

  static ItemRecord item(const std::string& session) { return ItemRecord{0, "t", session, "r3", "{}", 2, ""}; }

  static std::vector<int64_t> item_seqs(SqliteStore& store, const std::string& session) {
    auto items = store.list_items("t", session, 0, 100);
    EXPECT_TRUE(items.is_ok()) << items.status().to_string();
    std::vector<int64_t> seqs;
    if (items.is_ok()) {
      for (const auto& record : *items) seqs.push_back(record.seq);
    }
    return seqs;
  }

  static std::vector<int64_t> audit_seqs_of(SqliteStore& store, const std::string& run, int64_t after = 0) {
    AuditQuery query;
    query.run_id = run;
    query.after_seq = after;
    auto events = store.list_audit_events("t", query);
    EXPECT_TRUE(events.is_ok()) << events.status().to_string();
    std::vector<int64_t> seqs;
    if (events.is_ok()) {
      for (const auto& event : *events) seqs.push_back(event.seq);
    }
    return seqs;
  }

  SystemClock clock_;
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqliteMigrationTest, ItemsKeepTheirSeqsAndNewOnesFollowWithoutReuse) {
  write_version_9_database();
  auto store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(item_seqs(*store, "s1"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(item_seqs(*store, "s2"), (std::vector<int64_t>{3}));
  WriteBatch batch;
  batch.items = {item("s1"), item("s2")};
  ASSERT_TRUE(store->commit_and_wait(std::move(batch)).is_ok());
  EXPECT_EQ(item_seqs(*store, "s1"), (std::vector<int64_t>{1, 2, 5})) << "4 was given out before the migration";
  EXPECT_EQ(item_seqs(*store, "s2"), (std::vector<int64_t>{3, 6}));

  store.reset();  // the counter is durable: a reopened store goes on after it
  store = open();
  ASSERT_NE(store, nullptr);
  batch = WriteBatch{};
  batch.items = {item("s1")};
  ASSERT_TRUE(store->commit_and_wait(std::move(batch)).is_ok());
  EXPECT_EQ(item_seqs(*store, "s1"), (std::vector<int64_t>{1, 2, 5, 7}));
}

TEST_F(SqliteMigrationTest, RunsAuditEventsAreFoundThroughSpansOldAndNew) {
  write_version_9_database();
  auto store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(audit_seqs_of(*store, "r1"), (std::vector<int64_t>{1, 2, 5}));
  EXPECT_EQ(audit_seqs_of(*store, "r2"), (std::vector<int64_t>{3}));
  WriteBatch batch;  // r1, r1, r2, r1 after the old events: spans 6-7, 8, 9
  for (const char* run : {"r1", "r1", "r2", "r1"}) {
    AuditEventRecord event;
    event.tenant_id = "t";
    event.principal = "agent:a";
    event.action = "tool:invoke";
    event.resource = "tool:noop";
    event.run_id = run;
    event.outcome = "allow";
    event.details_json = "{}";
    batch.audit_events.push_back(event);
  }
  ASSERT_TRUE(store->commit_and_wait(std::move(batch)).is_ok());
  EXPECT_EQ(audit_seqs_of(*store, "r1"), (std::vector<int64_t>{1, 2, 5, 6, 7, 9}));
  EXPECT_EQ(audit_seqs_of(*store, "r1", 6), (std::vector<int64_t>{7, 9})) << "after a cursor inside a span";
  EXPECT_EQ(audit_seqs_of(*store, "r2"), (std::vector<int64_t>{3, 8}));
}

}  // namespace
}  // namespace continuum
