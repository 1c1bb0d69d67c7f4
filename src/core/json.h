// JSON helpers over Boost.JSON: parsing with limits (never throws) and typed
// field access that produces InvalidArgument with the offending param name.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace continuum {

namespace json = boost::json;

struct JsonLimits {
  int depth_max = 64;
};

// Parses untrusted text. Errors are InvalidArgument, never exceptions.
Result<json::value> parse_json(std::string_view text, JsonLimits limits = {});
// Parses and requires a JSON object at the top level.
Result<json::object> parse_json_object(std::string_view text, JsonLimits limits = {});

std::string to_json(const json::value& value);

// A copy of `value` with every object's keys in ascending byte order, so that
// equal documents serialize (to_json) to equal text, e.g. for hashing.
json::value sorted_keys(const json::value& value);
// to_json(sorted_keys(value)), written directly (no sorted copy is built).
std::string to_canonical_json(const json::value& value);
// Appends to_canonical_json(value) to `out`.
void append_canonical_json(std::string& out, const json::value& value);
// Appends `text` as a JSON string literal, escaped as to_json escapes it.
void append_json_string(std::string& out, std::string_view text);

// Typed access. `param` names the field in error messages ("model.name").
Result<std::string> get_string(const json::object& obj, std::string_view key, std::string_view param);
Result<std::optional<std::string>> get_optional_string(const json::object& obj, std::string_view key,
                                                       std::string_view param);
Result<std::optional<int64_t>> get_optional_int(const json::object& obj, std::string_view key,
                                                std::string_view param);
Result<std::optional<bool>> get_optional_bool(const json::object& obj, std::string_view key,
                                              std::string_view param);
Result<const json::object*> get_optional_object(const json::object& obj, std::string_view key,
                                                std::string_view param);
Result<const json::array*> get_optional_array(const json::object& obj, std::string_view key,
                                              std::string_view param);

// Returns the first key of `obj` not in `allowed`, if any (for rejecting typos).
std::optional<std::string> first_unknown_key(const json::object& obj,
                                             std::initializer_list<std::string_view> allowed);

}  // namespace continuum
