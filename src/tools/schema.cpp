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

namespace {

constexpr int kRefChainMax = 32;
constexpr int kSchemaDepthMax = 128;

// The node a local reference ("#" or "#/json/pointer") names, or null.
const json::value* resolve_local(const json::value& root, const json::string& ref) {
  if (ref.empty() || ref[0] != '#') return nullptr;
  if (ref.size() == 1) return &root;
  boost::system::error_code error;
  const json::value* target = root.find_pointer(std::string_view(ref).substr(1), error);
  return error ? nullptr : target;
}

// valijson follows "$ref" without bounds: a reference to the document itself
// (a relative URI such as "x" or "#"), or any chain of references that comes
// back, recurses until the stack overflows. Schemas come from API callers, so
// only references within the document are taken, and every chain of
// references must end at a schema that is not itself a reference.
Status check_references(const json::value& root, const json::value& node, int depth, const std::string& param) {
  if (depth > kSchemaDepthMax) return invalid_argument("JSON Schema nested too deeply", param);
  if (const json::array* items = node.if_array()) {
    for (const auto& item : *items) RETURN_IF_ERROR(check_references(root, item, depth + 1, param));
    return Status::ok();
  }
  const json::object* obj = node.if_object();
  if (!obj) return Status::ok();
  if (const json::value* ref = obj->if_contains("$ref")) {
    const json::value* target = &node;
    for (int hops = 0; target->is_object() && target->as_object().contains("$ref"); ++hops) {
      const json::value& next = target->as_object().at("$ref");
      if (!next.is_string() || hops >= kRefChainMax) {
        return invalid_argument("JSON Schema $ref must be a local reference (\"#/...\") that does not loop", param);
      }
      target = resolve_local(root, next.as_string());
      if (target == nullptr) {
        return invalid_argument("JSON Schema $ref " + json::serialize(*ref) + " names nothing in the schema", param);
      }
    }
  }
  for (const auto& entry : *obj) RETURN_IF_ERROR(check_references(root, entry.value(), depth + 1, param));
  return Status::ok();
}

}  // namespace

Result<std::shared_ptr<const JsonSchemaValidator>> JsonSchemaValidator::compile(const json::object& schema_json,
                                                                                const std::string& param) {
  auto impl = std::make_unique<Impl>();
  json::value root = schema_json;
  RETURN_IF_ERROR(check_references(root, root, 0, param));
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
