// Helpers for store tests that need PostgreSQL.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "core/config.h"
#include "store/postgres/pg_connection.h"

namespace continuum {

// In a fixture's SetUp: the test database's URL into `url`, emptied of the
// previous test's tables. Without CONTINUUM_TEST_POSTGRES_URL the test is
// skipped, or fails when CONTINUUM_REQUIRE_POSTGRES=1 (CI must run it).
#define CONTINUUM_USE_TEST_POSTGRES(url)                                                            \
  do {                                                                                            \
    (url) = ::continuum::test_postgres_url();                                                     \
    if ((url).empty()) {                                                                          \
      if (::continuum::read_process_env("CONTINUUM_REQUIRE_POSTGRES") == "1") {                   \
        FAIL() << "CONTINUUM_TEST_POSTGRES_URL is not set";                                       \
      }                                                                                           \
      GTEST_SKIP() << "set CONTINUUM_TEST_POSTGRES_URL to run the PostgreSQL cases";              \
    }                                                                                             \
    ASSERT_TRUE(::continuum::reset_postgres_schema(url).is_ok());                                 \
  } while (false)

// The test database ("" when not configured).
inline std::string test_postgres_url() { return read_process_env("CONTINUUM_TEST_POSTGRES_URL"); }

// Empties the test database: every table of a previous test is dropped.
inline Status reset_postgres_schema(const std::string& url) {
  ASSIGN_OR_RETURN(auto connection, PgConnection::connect(url));
  return connection->exec_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
}

}  // namespace continuum
