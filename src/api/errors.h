// The public error body {"error": {"type", "code", "message", "param"}} and
// the mapping from Status codes to HTTP statuses.
#pragma once

#include "core/json.h"
#include "net/http_server.h"

namespace continuum {

int http_status_for(Code code);
HttpResponse error_response(const Status& status);
HttpResponse json_response(int http_status, const json::value& body);

}  // namespace continuum
