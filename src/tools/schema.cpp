#include "tools/schema.h"

// valijson reports bad schemas by throwing only when asked to; otherwise it
// aborts the process. Schemas come from API callers, so they must not abort.
#define VALIJSON_USE_EXCEPTIONS 1

#include <valijson/adapters/boost_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

namespace continuum {

namespace {
// valijson reports bad schemas by throwing; this is an edge, so we catch here.
Status parse_schema(const json::object& schema_json, valijson::Schema* schema) {
  try {
    json::value schema_value = schema_json;
    valijson::SchemaParser parser;
    valijson::adapters::BoostJsonAdapter adapter(schema_value);
    parser.populateSchema(adapter, *schema);
    return Status::ok();
  } catch (const std::exception& error) {
    return invalid_argument(std::string("invalid JSON Schema: ") + error.what());
  }
}
}  // namespace

Status check_json_schema(const json::object& schema, const std::string& param) {
  valijson::Schema parsed;
  Status status = parse_schema(schema, &parsed);
  if (!status.is_ok()) return invalid_argument(status.message(), param);
  return Status::ok();
}

Status validate_json(const json::object& schema_json, const json::value& instance) {
  valijson::Schema schema;
  RETURN_IF_ERROR(parse_schema(schema_json, &schema));
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::BoostJsonAdapter adapter(instance);
  bool valid = false;
  try {
    valid = validator.validate(schema, adapter, &results);
  } catch (const std::exception& error) {
    return invalid_argument(std::string("arguments could not be validated: ") + error.what());
  }
  if (valid) return Status::ok();
  std::string message = "arguments do not match the tool's JSON Schema:";
  valijson::ValidationResults::Error error;
  int reported = 0;
  while (results.popError(error) && reported < 8) {
    std::string path;
    for (const auto& part : error.context) path += part;
    message += " [" + path + "] " + error.description + ";";
    ++reported;
  }
  return invalid_argument(message);
}

}  // namespace continuum
