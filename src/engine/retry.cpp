#include "engine/retry.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace continuum {

Result<RetryPolicy> parse_retry_policy(const json::object* obj, const std::string& param, RetryPolicy policy) {
  if (obj == nullptr) return policy;
  if (auto unknown = first_unknown_key(*obj, {"max_attempts", "initial_backoff_ms", "max_backoff_ms"})) {
    return invalid_argument("unknown field '" + *unknown + "'", param + "." + *unknown);
  }
  ASSIGN_OR_RETURN(auto attempts, get_optional_int(*obj, "max_attempts", param + ".max_attempts"));
  ASSIGN_OR_RETURN(auto initial, get_optional_int(*obj, "initial_backoff_ms", param + ".initial_backoff_ms"));
  ASSIGN_OR_RETURN(auto maximum, get_optional_int(*obj, "max_backoff_ms", param + ".max_backoff_ms"));
  if (attempts) {
    if (*attempts < 1 || *attempts > 20) {
      return invalid_argument("max_attempts must be between 1 and 20", param + ".max_attempts");
    }
    policy.attempts_max = static_cast<int>(*attempts);
  }
  if (initial) {
    if (*initial < 0 || *initial > 600'000) {
      return invalid_argument("initial_backoff_ms must be between 0 and 600000", param + ".initial_backoff_ms");
    }
    policy.initial_backoff_ms = *initial;
  }
  if (maximum) {
    if (*maximum < 0 || *maximum > 3'600'000) {
      return invalid_argument("max_backoff_ms must be between 0 and 3600000", param + ".max_backoff_ms");
    }
    policy.backoff_max_ms = *maximum;
  }
  return policy;
}

json::object retry_policy_to_json(const RetryPolicy& policy) {
  return json::object{{"max_attempts", policy.attempts_max},
                      {"initial_backoff_ms", policy.initial_backoff_ms},
                      {"max_backoff_ms", policy.backoff_max_ms}};
}

bool is_retryable_http_status(int status) { return status == 429 || status == 408 || status >= 500; }

int64_t parse_retry_after_ms(const std::string& header_value) {
  if (header_value.empty() || header_value.size() > 12) return -1;
  for (char c : header_value) {
    if (c < '0' || c > '9') return -1;  // HTTP-dates are not honoured; backoff applies
  }
  return std::strtoll(header_value.c_str(), nullptr, 10) * 1000;
}

std::optional<int64_t> next_retry_delay_ms(const RetryPolicy& policy, int attempt, const EffectError& error,
                                           Random& random) {
  if (!error.retryable || attempt >= policy.attempts_max) return std::nullopt;
  double base = static_cast<double>(policy.initial_backoff_ms) * std::pow(policy.multiplier, attempt - 1);
  base = std::min(base, static_cast<double>(policy.backoff_max_ms));
  double factor = 1.0 + policy.jitter_ratio * (2.0 * random.uniform() - 1.0);
  auto delay = static_cast<int64_t>(base * factor);
  if (error.retry_after_ms >= 0) {
    delay = std::max(delay, std::min(error.retry_after_ms, policy.retry_after_max_ms));
  }
  return std::max<int64_t>(delay, 0);
}

}  // namespace continuum
