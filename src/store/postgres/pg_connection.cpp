#include "store/postgres/pg_connection.h"

#include <endian.h>

#include <cstring>

#include "core/log.h"

namespace continuum {

namespace {

constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kByteaOid = 17;
// Queries sent before a Sync: bounds what the server buffers for a client
// that is still writing (libpq's blocking mode can deadlock on huge pipelines).
constexpr size_t kQueriesPerSyncMax = 256;

bool is_connection_sqlstate(std::string_view state) {
  // Class 08: connection exception; 57P01-57P03: the server is shutting down or starting.
  return state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03";
}

Status skipped() { return Status(Code::kCancelled, "skipped: an earlier statement of the pipeline failed"); }

// libpq messages span lines ("...\n\tThis probably means..."): one line, single spaces.
std::string one_line(const char* text) {
  std::string message;
  for (const char* c = text ? text : ""; *c; ++c) {
    bool space = *c == '\n' || *c == '\t' || *c == ' ';
    if (!space) message.push_back(*c);
    else if (!message.empty() && message.back() != ' ') message.push_back(' ');
  }
  if (!message.empty() && message.back() == ' ') message.pop_back();
  return message;
}

}  // namespace

PgParams& PgParams::add(int64_t number) {
  uint64_t big_endian = htobe64(static_cast<uint64_t>(number));
  types_.push_back(kInt8Oid);
  values_.emplace_back(reinterpret_cast<const char*>(&big_endian), sizeof big_endian);
  return *this;
}

PgParams& PgParams::add(std::string_view text) {
  types_.push_back(kTextOid);
  values_.emplace_back(text);
  return *this;
}

PgParams& PgParams::add_bytes(std::string_view bytes) {
  types_.push_back(kByteaOid);
  values_.emplace_back(bytes);
  return *this;
}

void PgParams::fill(std::vector<const char*>& values, std::vector<int>& lengths, std::vector<int>& formats) const {
  values.clear();
  lengths.clear();
  formats.assign(values_.size(), 1);
  for (const auto& value : values_) {
    values.push_back(value.data());
    lengths.push_back(static_cast<int>(value.size()));
  }
}

int64_t PgResult::affected_rows() const {
  const char* tuples = PQcmdTuples(result_.get());
  return (tuples && *tuples) ? std::strtoll(tuples, nullptr, 10) : 0;
}

std::string PgResult::text(int row, int column) const {
  return std::string(PQgetvalue(result_.get(), row, column),
                     static_cast<size_t>(PQgetlength(result_.get(), row, column)));
}

int64_t PgResult::int64(int row, int column) const {
  CONTINUUM_CHECK(PQgetlength(result_.get(), row, column) == 8 && PQftype(result_.get(), column) == kInt8Oid,
                  "every integer the store selects is a bigint, read in binary format");
  uint64_t big_endian = 0;
  std::memcpy(&big_endian, PQgetvalue(result_.get(), row, column), sizeof big_endian);
  return static_cast<int64_t>(be64toh(big_endian));
}

Status pg_result_status(PGconn* conn, const PGresult* result, std::string_view what) {
  const char* state_text = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string_view state = state_text ? state_text : "";
  std::string message = std::string(what) + ": " + one_line(result ? PQresultErrorMessage(result) : PQerrorMessage(conn));
  if (PQstatus(conn) != CONNECTION_OK || is_connection_sqlstate(state)) return Status(Code::kUnavailable, message);
  if (state == "23505") return conflict(message);
  return internal_error(message);
}

// Server notices (e.g. "terminating connection due to ...") go to our JSON log, not raw stderr.
static void log_notice(void*, const char* message) { log::warn("postgresql notice", {{"message", one_line(message)}}); }

Result<std::unique_ptr<PgConnection>> PgConnection::connect(const std::string& url) {
  // Defaults that keep a vanished server from hanging the caller (libpq waits
  // forever by default); the URL's own settings override them (they come after).
  const char* keywords[] = {"connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count",
                            "tcp_user_timeout", "dbname", nullptr};
  const char* values[] = {"5", "10", "5", "3", "30000", url.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn != nullptr) PQsetNoticeProcessor(conn, log_notice, nullptr);
  std::unique_ptr<PgConnection> connection(new PgConnection(conn));
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
    return Status(Code::kUnavailable, "cannot connect to PostgreSQL: " + one_line(PQerrorMessage(conn)));
  }
  RETURN_IF_ERROR(connection->exec_script("SET client_min_messages = warning"));
  return connection;
}

PgConnection::~PgConnection() { PQfinish(conn_); }

Status PgConnection::reconnect() {
  prepared_.clear();
  PQreset(conn_);
  if (!healthy()) return Status(Code::kUnavailable, "cannot reconnect to PostgreSQL: " + one_line(PQerrorMessage(conn_)));
  return exec_script("SET client_min_messages = warning");
}

Status PgConnection::exec_script(const std::string& sql) {
  PgResult result(PQexec(conn_, sql.c_str()));
  ExecStatusType status = result.status();
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return Status::ok();
  return pg_result_status(conn_, result.raw(), "statement failed");
}

Result<const std::string*> PgConnection::prepared_name(const std::string& sql, const PgParams& params) {
  auto found = prepared_.find(sql);
  if (found != prepared_.end()) return &found->second;
  std::string name = "s" + std::to_string(prepared_.size());
  PgResult result(PQprepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(params.size()),
                            params.types().data()));
  if (result.status() != PGRES_COMMAND_OK) return pg_result_status(conn_, result.raw(), "prepare failed");
  return &prepared_.emplace(sql, std::move(name)).first->second;
}

Result<PgResult> PgConnection::exec(const std::string& sql, const PgParams& params) {
  ASSIGN_OR_RETURN(const std::string* name, prepared_name(sql, params));
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  params.fill(values, lengths, formats);
  PgResult result(PQexecPrepared(conn_, name->c_str(), static_cast<int>(params.size()), values.data(),
                                 lengths.data(), formats.data(), /*resultFormat=binary*/ 1));
  ExecStatusType status = result.status();
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
  return pg_result_status(conn_, result.raw(), "query failed");
}

Result<std::vector<Result<PgResult>>> PgConnection::pipeline(const std::vector<PgQuery>& queries) {
  // Prepared before entering pipeline mode: a failed prepare must not abort the pipeline.
  for (const auto& query : queries) RETURN_IF_ERROR(prepared_name(query.sql, query.params).status());
  std::vector<Result<PgResult>> results;
  results.reserve(queries.size());
  for (size_t begin = 0; begin < queries.size(); begin += kQueriesPerSyncMax) {
    size_t end = std::min(queries.size(), begin + kQueriesPerSyncMax);
    RETURN_IF_ERROR(pipeline_chunk(queries, begin, end, results));
    if (!results.back().is_ok()) break;  // the transaction is aborted; the caller rolls back
  }
  while (results.size() < queries.size()) {
    results.push_back(skipped());
  }
  return results;
}

Status PgConnection::pipeline_chunk(const std::vector<PgQuery>& queries, size_t begin, size_t end,
                                    std::vector<Result<PgResult>>& results) {
  if (PQenterPipelineMode(conn_) != 1) return pg_result_status(conn_, nullptr, "cannot enter pipeline mode");
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  for (size_t i = begin; i < end; ++i) {
    queries[i].params.fill(values, lengths, formats);
    if (PQsendQueryPrepared(conn_, prepared_[queries[i].sql].c_str(), static_cast<int>(queries[i].params.size()),
                            values.data(), lengths.data(), formats.data(), 1) != 1) {
      return pg_result_status(conn_, nullptr, "cannot send query");
    }
  }
  if (PQpipelineSync(conn_) != 1) return pg_result_status(conn_, nullptr, "cannot send pipeline sync");
  for (size_t i = begin; i < end; ++i) {
    PGresult* raw = PQgetResult(conn_);
    if (raw == nullptr) return pg_result_status(conn_, nullptr, "pipeline ended early");
    PgResult result(raw);
    while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);  // up to the query's terminating NULL
    ExecStatusType status = result.status();
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      results.push_back(std::move(result));
    } else if (status == PGRES_PIPELINE_ABORTED) {
      results.push_back(skipped());
    } else {
      results.push_back(pg_result_status(conn_, result.raw(), "query failed"));
    }
    if (!healthy()) return results.back().status();
  }
  PgResult sync(PQgetResult(conn_));
  if (sync.status() != PGRES_PIPELINE_SYNC) return pg_result_status(conn_, sync.raw(), "pipeline sync missing");
  if (PQexitPipelineMode(conn_) != 1) return pg_result_status(conn_, nullptr, "cannot leave pipeline mode");
  return Status::ok();
}

}  // namespace continuum
