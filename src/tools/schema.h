// JSON Schema validation of tool arguments (valijson, draft 7 keywords).
#pragma once

#include <string>

#include "core/json.h"

namespace continuum {

// Checks that `schema` is a usable JSON Schema; InvalidArgument naming `param` if not.
Status check_json_schema(const json::object& schema, const std::string& param);

// Validates `instance` against `schema`. On failure the message lists the
// violations (path and reason), meant to be shown to the model.
Status validate_json(const json::object& schema, const json::value& instance);

}  // namespace continuum
