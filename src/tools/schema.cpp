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

struct JsonSchemaValidator::Impl {
  valijson::Schema schema;
};

JsonSchemaValidator::JsonSchemaValidator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JsonSchemaValidator::~JsonSchemaValidator() = default;

Result<std::shared_ptr<const JsonSchemaValidator>> JsonSchemaValidator::compile(const json::object& schema_json,
                                                                                const std::string& param) {
  auto impl = std::make_unique<Impl>();
  try {
    json::value schema_value = schema_json;
    valijson::SchemaParser parser;
    valijson::adapters::BoostJsonAdapter adapter(schema_value);
    parser.populateSchema(adapter, impl->schema);
  } catch (const std::exception& error) {  // an edge: valijson throws on bad schemas
    return invalid_argument(std::string("invalid JSON Schema: ") + error.what(), param);
  }
  return std::shared_ptr<const JsonSchemaValidator>(new JsonSchemaValidator(std::move(impl)));
}

Status JsonSchemaValidator::validate(const json::value& instance) const {
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::BoostJsonAdapter adapter(instance);
  bool valid = false;
  try {
    valid = validator.validate(impl_->schema, adapter, &results);
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
