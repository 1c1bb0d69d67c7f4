#include <gtest/gtest.h>

#include "engine/retry.h"

namespace continuum {
namespace {

TEST(RetryTest, ClassifiesHttpStatuses) {
  EXPECT_TRUE(is_retryable_http_status(429));
  EXPECT_TRUE(is_retryable_http_status(500));
  EXPECT_TRUE(is_retryable_http_status(503));
  EXPECT_FALSE(is_retryable_http_status(400));
  EXPECT_FALSE(is_retryable_http_status(404));
}

TEST(RetryTest, ExponentialBackoffWithBoundedJitter) {
  SeededRandom random(7);
  RetryPolicy policy;
  policy.attempts_max = 6;
  EffectError error{"http_500", "", true, -1};
  for (int attempt = 1; attempt < 6; ++attempt) {
    double base = std::min(200.0 * (1 << (attempt - 1)), 10000.0);
    auto delay = next_retry_delay_ms(policy, attempt, error, random);
    ASSERT_TRUE(delay.has_value());
    EXPECT_GE(*delay, static_cast<int64_t>(base * 0.8) - 1);
    EXPECT_LE(*delay, static_cast<int64_t>(base * 1.2) + 1);
  }
  EXPECT_FALSE(next_retry_delay_ms(policy, 6, error, random).has_value()) << "attempts exhausted";
}

TEST(RetryTest, NonRetryableNeverRetries) {
  SeededRandom random(7);
  EXPECT_FALSE(next_retry_delay_ms(RetryPolicy{}, 1, EffectError{"http_400", "", false, -1}, random));
}

TEST(RetryTest, RetryAfterIsHonouredUpToCap) {
  SeededRandom random(7);
  RetryPolicy policy;
  EXPECT_EQ(*next_retry_delay_ms(policy, 1, EffectError{"http_429", "", true, 5000}, random), 5000);
  EXPECT_EQ(*next_retry_delay_ms(policy, 1, EffectError{"http_429", "", true, 999'000}, random), 60'000);
  EXPECT_EQ(parse_retry_after_ms("3"), 3000);
  EXPECT_EQ(parse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), -1);
}

TEST(RetryTest, PolicyParsingValidates) {
  auto obj = parse_json_object(R"({"max_attempts": 0})");
  EXPECT_EQ(parse_retry_policy(&*obj, "retry", {}).status().param(), "retry.max_attempts");
  auto typo = parse_json_object(R"({"max_attempmts": 2})");
  EXPECT_FALSE(parse_retry_policy(&*typo, "retry", {}).is_ok());
}

}  // namespace
}  // namespace continuum
