// Thin RAII wrappers over libpq. Parameters and results travel in binary
// format (int8 as 8 bytes big-endian, text and bytea as raw bytes), so no
// value is ever escaped or parsed as text. Statements are prepared on first
// use, once per connection.
//
// Thread safety: a PgConnection is used by one thread at a time (the owner
// serializes). PgResult and PgParams are plain values.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"

namespace continuum {

// The database's clock in ms since the epoch, as SQL: lease times use it, so
// nodes need not agree on time.
#define CONTINUUM_PG_NOW_MS "(extract(epoch from clock_timestamp()) * 1000)::bigint"

class PgParams {
 public:
  PgParams& add(int64_t number);
  PgParams& add(std::string_view text);      // as text
  PgParams& add_bytes(std::string_view bytes);  // as bytea
  size_t size() const { return values_.size(); }
  const std::vector<Oid>& types() const { return types_; }
  // Pointer arrays for libpq; valid while this object is unchanged.
  void fill(std::vector<const char*>& values, std::vector<int>& lengths, std::vector<int>& formats) const;

 private:
  std::vector<Oid> types_;
  std::vector<std::string> values_;
};

// One statement and its parameters, for pipelines.
struct PgQuery {
  std::string sql;
  PgParams params;
};

class PgResult {
 public:
  explicit PgResult(PGresult* result) : result_(result, &PQclear) {}
  const PGresult* raw() const { return result_.get(); }
  ExecStatusType status() const { return PQresultStatus(result_.get()); }
  int rows() const { return PQntuples(result_.get()); }
  // Rows a write touched (INSERT/UPDATE/DELETE), 0 for other commands.
  int64_t affected_rows() const;
  std::string text(int row, int column) const;
  int64_t int64(int row, int column) const;

 private:
  std::unique_ptr<PGresult, decltype(&PQclear)> result_;
};

class PgConnection {
 public:
  // `url`: a libpq connection string or postgres:// URI. Unless it says
  // otherwise: connect_timeout 5 s, TCP keepalives after 10 s idle, and
  // tcp_user_timeout 30 s, so a vanished server is noticed.
  static Result<std::unique_ptr<PgConnection>> connect(const std::string& url);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // False once the server closed the connection or a network error happened.
  bool healthy() const { return PQstatus(conn_) == CONNECTION_OK; }
  // One new attempt to connect (statements are prepared again on use).
  Status reconnect();
  // For socket-level work (LISTEN/NOTIFY); the caller must not issue queries through it.
  PGconn* raw() { return conn_; }

  // Runs SQL text without parameters (may hold several statements).
  Status exec_script(const std::string& sql);
  Result<PgResult> exec(const std::string& sql, const PgParams& params);
  // Sends every query before reading any result (one round trip per
  // `queries_per_sync_max` queries). Returns one result per query, in order;
  // after the first failed query the rest are skipped (kAborted message).
  // A connection-level failure fails the whole call.
  Result<std::vector<Result<PgResult>>> pipeline(const std::vector<PgQuery>& queries);

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  Result<const std::string*> prepared_name(const std::string& sql, const PgParams& params);
  Status pipeline_chunk(const std::vector<PgQuery>& queries, size_t begin, size_t end,
                        std::vector<Result<PgResult>>& results);

  PGconn* conn_;
  std::unordered_map<std::string, std::string> prepared_;  // sql -> statement name
};

// The Status for a failed result: unique violations -> kConflict, lost
// connections and server shutdown -> kUnavailable, the rest -> kInternal.
Status pg_result_status(PGconn* conn, const PGresult* result, std::string_view what);

}  // namespace continuum
