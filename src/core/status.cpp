#include "core/status.h"

#include <cstdio>
#include <cstdlib>

namespace continuum {

const char* code_name(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kUnauthenticated: return "unauthenticated";
    case Code::kPermissionDenied: return "permission_denied";
    case Code::kNotFound: return "not_found";
    case Code::kConflict: return "conflict";
    case Code::kPayloadTooLarge: return "payload_too_large";
    case Code::kResourceExhausted: return "resource_exhausted";
    case Code::kUnavailable: return "unavailable";
    case Code::kDeadlineExceeded: return "deadline_exceeded";
    case Code::kCancelled: return "cancelled";
    case Code::kInternal: return "internal";
    case Code::kDataLoss: return "integrity_error";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  std::string text = std::string(code_name(code_)) + ": " + message_;
  if (!param_.empty()) text += " (param " + param_ + ")";
  return text;
}

void check_failed(const char* cond, const char* reason, const char* file, int line) {
  std::fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"invariant broken\",\"cond\":\"%s\",\"reason\":\"%s\",\"at\":\"%s:%d\"}\n",
               cond, reason, file, line);
  std::fflush(stderr);
  std::abort();
}

}  // namespace continuum
