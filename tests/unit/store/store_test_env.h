// Helpers for store tests that need PostgreSQL.
#pragma once

#include <string>

#include "core/config.h"
#include "store/postgres/pg_connection.h"

namespace continuum {

// The test database ("" when not configured).
inline std::string test_postgres_url() { return read_process_env("CONTINUUM_TEST_POSTGRES_URL"); }

// Empties the test database: every table of a previous test is dropped.
inline Status reset_postgres_schema(const std::string& url) {
  ASSIGN_OR_RETURN(auto connection, PgConnection::connect(url));
  return connection->exec_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
}

}  // namespace continuum
