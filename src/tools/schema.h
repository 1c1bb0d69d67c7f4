// JSON Schema validation of tool arguments (valijson, draft 7 keywords).
#pragma once

#include <memory>
#include <string>

#include "core/json.h"

namespace continuum {

// A schema compiled once, used for many validations. Immutable and
// thread-safe after construction.
class JsonSchemaValidator {
 public:
  // InvalidArgument naming `param` if `schema` is not a usable JSON Schema.
  static Result<std::shared_ptr<const JsonSchemaValidator>> compile(const json::object& schema,
                                                                    const std::string& param);
  ~JsonSchemaValidator();
  // On failure the message lists the violations (path and reason), meant to be shown to the model.
  Status validate(const json::value& instance) const;

 private:
  struct Impl;
  explicit JsonSchemaValidator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace continuum
