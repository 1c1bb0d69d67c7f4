// Thin RAII wrappers over the SQLite C API. A SqliteDb is used by one thread
// at a time (the caller serializes); statements must not outlive their db.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/status.h"

namespace continuum {

class SqliteStatement {
 public:
  // `owned`: finalize on destruction; otherwise (a cached statement) reset it.
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt, bool owned = true) : db_(db), stmt_(stmt), owned_(owned) {}
  SqliteStatement(SqliteStatement&& other) noexcept
      : db_(other.db_), stmt_(other.stmt_), owned_(other.owned_), status_(other.status_) {
    other.stmt_ = nullptr;
  }
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  ~SqliteStatement();

  // A string lvalue is bound in place (SQLITE_STATIC), not copied: it must
  // stay alive and unchanged while the statement runs (callers bind fields
  // of records and locals that outlive the statement's use). Temporaries and
  // views are copied.
  SqliteStatement& bind(int index, const std::string& text);
  SqliteStatement& bind(int index, std::string&& text) { return bind(index, std::string_view(text)); }
  SqliteStatement& bind(int index, std::string_view text);
  SqliteStatement& bind(int index, int64_t number);
  SqliteStatement& bind_blob(int index, std::string_view bytes);  // stored as a BLOB (raw hashes, keys)
  // Advances; true while a row is available. Errors become a Status via step_status().
  bool step();
  // Runs to completion (for writes).
  Status run();
  Status step_status() const { return status_; }
  std::string column_text(int index) const;
  int64_t column_int(int index) const { return sqlite3_column_int64(stmt_, index); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  bool owned_;
  Status status_;
};

class SqliteDb {
 public:
  SqliteDb() = default;
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;
  ~SqliteDb();

  // `vfs`: a registered VFS name; null for the default.
  Status open(const std::string& path, const char* vfs = nullptr);
  // For offline tools (audit verify): fails if the file does not exist.
  Status open_read_only(const std::string& path);
  Status exec(const std::string& sql);
  Result<SqliteStatement> prepare(std::string_view sql);
  // Prepared once per db and reused; the returned statement resets on destruction.
  // At most one live handle per SQL text at a time.
  Result<SqliteStatement> prepare_cached(const std::string& sql);
  int64_t changes() const { return sqlite3_changes64(db_); }
  sqlite3* handle() { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// Maps a SQLite result code to a Status; constraint violations become kConflict.
Status sqlite_status(sqlite3* db, int rc, std::string_view what);

// Process-wide SQLite settings, applied once before SQLite initializes (the
// first open or VFS lookup calls this): memory statistics off, as nothing
// reads them, so an allocation takes no global mutex.
void configure_sqlite_once();

}  // namespace continuum
