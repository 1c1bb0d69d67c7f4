// Status and Result<T>: expected failures as values.
//
// Contract: every fallible function in the engine returns Status or Result<T>;
// exceptions never cross module boundaries (they are caught at the edges:
// JSON/YAML parsing, the HTTP server). Each Code maps onto one HTTP status and
// one error "type" of the public JSON error body (see api/errors.h).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace continuum {

enum class Code {
  kOk,
  kInvalidArgument,    // 400: the caller sent something malformed
  kUnauthenticated,    // 401
  kPermissionDenied,   // 403
  kNotFound,           // 404
  kConflict,           // 409: already exists / wrong state
  kPayloadTooLarge,    // 413
  kResourceExhausted,  // 429: a limit was hit
  kUnavailable,        // 503: retryable outside failure
  kDeadlineExceeded,   // 504: a timeout
  kCancelled,          // the operation was cancelled
  kInternal,           // 500: a bug or an I/O failure
  kDataLoss,           // 500: stored data failed its integrity check (damaged, moved or shredded)
};

const char* code_name(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message, std::string param = {})
      : code_(code), message_(std::move(message)), param_(std::move(param)) {}

  static Status ok() { return Status(); }
  bool is_ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // The request field the error is about ("" when none); goes to error.param.
  const std::string& param() const { return param_; }
  std::string to_string() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
  std::string param_;
};

inline Status invalid_argument(std::string message, std::string param = {}) {
  return Status(Code::kInvalidArgument, std::move(message), std::move(param));
}
inline Status not_found(std::string message) { return Status(Code::kNotFound, std::move(message)); }
inline Status conflict(std::string message) { return Status(Code::kConflict, std::move(message)); }
inline Status internal_error(std::string message) { return Status(Code::kInternal, std::move(message)); }
inline Status unavailable(std::string message) { return Status(Code::kUnavailable, std::move(message)); }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT
  bool is_ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace continuum

#define CONTINUUM_CONCAT_INNER(a, b) a##b
#define CONTINUUM_CONCAT(a, b) CONTINUUM_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` is not ok.
#define RETURN_IF_ERROR(expr)                         \
  do {                                                \
    ::continuum::Status status_or_ = (expr);          \
    if (!status_or_.is_ok()) return status_or_;       \
  } while (0)

// ASSIGN_OR_RETURN(auto x, f()): binds x to f()'s value or returns its Status.
#define ASSIGN_OR_RETURN(lhs, expr)                                        \
  auto CONTINUUM_CONCAT(result_, __LINE__) = (expr);                        \
  if (!CONTINUUM_CONCAT(result_, __LINE__).is_ok())                         \
    return CONTINUUM_CONCAT(result_, __LINE__).status();                    \
  lhs = std::move(CONTINUUM_CONCAT(result_, __LINE__)).value()

// A broken invariant stops the process: recovery from the journal is safer
// than continuing with corrupt state. `reason` says why the invariant holds.
#define CONTINUUM_CHECK(cond, reason)                                        \
  do {                                                                       \
    if (!(cond)) ::continuum::check_failed(#cond, reason, __FILE__, __LINE__); \
  } while (0)

namespace continuum {
[[noreturn]] void check_failed(const char* cond, const char* reason, const char* file, int line);
}
