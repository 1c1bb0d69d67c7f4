// Choosing the store from its URL, and keeping database passwords out of logs.
#include <gtest/gtest.h>

#include "core/clock.h"
#include "store/open_store.h"

namespace continuum {
namespace {

TEST(OpenStoreTest, PasswordsNeverReachTheLoggedUrl) {
  EXPECT_EQ(redacted_store_url("postgresql://app:s3cret-pw@db.internal:5432/continuum?sslmode=require"),
            "postgresql://app:***@db.internal:5432/continuum?sslmode=require");
  std::string query = redacted_store_url("postgres://app@db/continuum?password=s3cret-pw&sslmode=verify-full");
  EXPECT_EQ(query.find("s3cret-pw"), std::string::npos) << query;
  EXPECT_NE(query.find("sslmode=verify-full"), std::string::npos) << query;
  EXPECT_EQ(redacted_store_url("postgres://app@db/continuum"), "postgres://app@db/continuum") << "nothing to hide";
  EXPECT_EQ(redacted_store_url("sqlite:/var/lib/continuum/continuum.db"), "sqlite:/var/lib/continuum/continuum.db");
  EXPECT_EQ(redacted_store_url("postgres://a:pw-XYZ@[broken").find("pw-XYZ"), std::string::npos)
      << "an unparsable URL is not echoed";
}

TEST(OpenStoreTest, UnknownSchemesAreRefusedNamingTheSetting) {
  MetricsRegistry metrics;
  for (const char* url : {"mysql://db/x", "sqlite:", "file:/tmp/x.db"}) {
    auto store = open_store(url, "/tmp", SystemClock::instance(), &metrics);
    ASSERT_FALSE(store.is_ok()) << url;
    EXPECT_EQ(store.status().code(), Code::kInvalidArgument) << url;
    EXPECT_EQ(store.status().param(), "store") << url;
  }
}

}  // namespace
}  // namespace continuum
