#include "store/open_store.h"

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include "store/postgres/pg_store.h"
#include "store/sqlite/sqlite_store.h"

namespace continuum {

namespace {

bool is_postgres_url(const std::string& url) {
  return url.starts_with("postgres://") || url.starts_with("postgresql://");
}

Status validate_store_url(const std::string& url) {
  if (url.empty() || is_postgres_url(url)) return Status::ok();
  if (url.starts_with("sqlite:") && url.size() > 7) return Status::ok();
  return invalid_argument("store must be sqlite:PATH or postgres://..., got '" + redacted_store_url(url) + "'",
                          "store");
}

}  // namespace

std::string redacted_store_url(const std::string& url) {
  if (!is_postgres_url(url)) return url;
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return "postgres://(unparsable URL)";
  boost::urls::url copy(*parsed);
  if (copy.has_password()) copy.set_password("***");
  auto params = copy.params();
  for (auto it = params.begin(); it != params.end(); ++it) {
    if ((*it).key == "password") params.replace(it, std::next(it), {{"password", "***"}});
  }
  return std::string(copy.buffer());
}

Result<std::unique_ptr<Store>> open_store(const std::string& url, const std::string& data_dir, const Clock& clock,
                                          MetricsRegistry* metrics) {
  RETURN_IF_ERROR(validate_store_url(url));
  if (is_postgres_url(url)) {
    ASSIGN_OR_RETURN(auto store, PostgresStore::open(PostgresStoreOptions{url}, clock, metrics));
    return std::unique_ptr<Store>(std::move(store));
  }
  std::string path = url.empty() ? data_dir + "/continuum.db" : url.substr(7);
  ASSIGN_OR_RETURN(auto store, SqliteStore::open(SqliteStoreOptions{path}, clock, metrics));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace continuum
