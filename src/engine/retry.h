// Retry policy for effects (model and tool calls): exponential backoff with
// jitter, Retry-After honoured, only retryable failures retried. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/json.h"

namespace continuum {

struct RetryPolicy {
  int attempts_max = 4;             // total attempts including the first
  int64_t initial_backoff_ms = 200;
  int64_t backoff_max_ms = 10'000;
  double multiplier = 2.0;
  double jitter_ratio = 0.2;        // delay is scaled by a factor in [1 - j, 1 + j]
  int64_t retry_after_max_ms = 60'000;  // a server's Retry-After is honoured up to this
};

Result<RetryPolicy> parse_retry_policy(const json::object* obj, const std::string& param, RetryPolicy defaults);
json::object retry_policy_to_json(const RetryPolicy& policy);

// Why an effect attempt failed.
struct EffectError {
  std::string code;          // "http_429", "http_500", "timeout", "connection", "invalid_response", ...
  std::string message;
  bool retryable = false;
  int64_t retry_after_ms = -1;  // from a Retry-After header, -1 if none
};

// Classifies an HTTP status: 429, 5xx (and 408) retryable; other 4xx not.
bool is_retryable_http_status(int status);
// Parses a Retry-After header value (delta-seconds only). -1 if absent/invalid.
int64_t parse_retry_after_ms(const std::string& header_value);

// Delay before attempt number `attempt + 1`, given that attempt number
// `attempt` (1-based) failed with `error`; nullopt when the effect must not be
// retried (not retryable, or attempts exhausted).
std::optional<int64_t> next_retry_delay_ms(const RetryPolicy& policy, int attempt, const EffectError& error,
                                           Random& random);

}  // namespace continuum
