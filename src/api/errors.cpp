#include "api/errors.h"

namespace continuum {

int http_status_for(Code code) {
  switch (code) {
    case Code::kOk: return 200;
    case Code::kInvalidArgument: return 400;
    case Code::kUnauthenticated: return 401;
    case Code::kPermissionDenied: return 403;
    case Code::kNotFound: return 404;
    case Code::kConflict: return 409;
    case Code::kPayloadTooLarge: return 413;
    case Code::kResourceExhausted: return 429;
    case Code::kCancelled: return 409;
    case Code::kUnavailable: return 503;
    case Code::kDeadlineExceeded: return 504;
    case Code::kInternal: return 500;
    case Code::kDataLoss: return 500;
  }
  return 500;
}

namespace {
const char* error_type_for(Code code) {
  switch (code) {
    case Code::kUnauthenticated: return "authentication_error";
    case Code::kPermissionDenied: return "permission_error";
    case Code::kNotFound: return "not_found_error";
    case Code::kConflict:
    case Code::kCancelled: return "conflict_error";
    case Code::kResourceExhausted: return "rate_limit_error";
    case Code::kDataLoss: return "integrity_error";
    case Code::kInternal:
    case Code::kUnavailable:
    case Code::kDeadlineExceeded: return "server_error";
    default: return "invalid_request_error";
  }
}
}  // namespace

HttpResponse error_response(const Status& status) {
  json::object error{{"type", error_type_for(status.code())},
                     {"code", code_name(status.code())},
                     {"message", status.message()},
                     {"param", status.param().empty() ? json::value(nullptr) : json::value(status.param())}};
  return json_response(http_status_for(status.code()), json::object{{"error", std::move(error)}});
}

HttpResponse json_response(int http_status, const json::value& body) {
  return HttpResponse{http_status, "application/json", to_json(body), {}};
}

}  // namespace continuum
