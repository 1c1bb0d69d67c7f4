#include "core/json.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/serializer.hpp>
#include <algorithm>
#include <type_traits>
#include <vector>

namespace continuum {

Result<json::value> parse_json(std::string_view text, JsonLimits limits) {
  json::parse_options options;
  options.max_depth = static_cast<std::size_t>(limits.depth_max);
  boost::system::error_code error;
  json::value value = json::parse(text, error, {}, options);
  if (error) return invalid_argument("request body is not valid JSON: " + error.message());
  return value;
}

Result<json::object> parse_json_object(std::string_view text, JsonLimits limits) {
  ASSIGN_OR_RETURN(json::value value, parse_json(text, limits));
  if (!value.is_object()) return invalid_argument("request body must be a JSON object");
  return std::move(value.as_object());
}

std::string to_json(const json::value& value) { return json::serialize(value); }

Result<std::string> get_string(const json::object& obj, std::string_view key, std::string_view param) {
  const json::value* value = obj.if_contains(key);
  if (value == nullptr || value->is_null()) {
    return invalid_argument("missing required field '" + std::string(param) + "'", std::string(param));
  }
  if (!value->is_string()) {
    return invalid_argument("field '" + std::string(param) + "' must be a string", std::string(param));
  }
  return std::string(value->as_string());
}

Result<std::optional<std::string>> get_optional_string(const json::object& obj, std::string_view key,
                                                       std::string_view param) {
  const json::value* value = obj.if_contains(key);
  if (value == nullptr || value->is_null()) return std::optional<std::string>();
  if (!value->is_string()) {
    return invalid_argument("field '" + std::string(param) + "' must be a string", std::string(param));
  }
  return std::optional<std::string>(std::string(value->as_string()));
}

Result<std::optional<int64_t>> get_optional_int(const json::object& obj, std::string_view key,
                                                std::string_view param) {
  const json::value* value = obj.if_contains(key);
  if (value == nullptr || value->is_null()) return std::optional<int64_t>();
  if (value->is_int64()) return std::optional<int64_t>(value->as_int64());
  if (value->is_uint64() && value->as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return std::optional<int64_t>(static_cast<int64_t>(value->as_uint64()));
  }
  if (value->is_double()) {
    double number = value->as_double();
    if (number == static_cast<double>(static_cast<int64_t>(number)) && number < 9e18 && number > -9e18) {
      return std::optional<int64_t>(static_cast<int64_t>(number));
    }
  }
  return invalid_argument("field '" + std::string(param) + "' must be an integer", std::string(param));
}

Result<std::optional<bool>> get_optional_bool(const json::object& obj, std::string_view key,
                                              std::string_view param) {
  const json::value* value = obj.if_contains(key);
  if (value == nullptr || value->is_null()) return std::optional<bool>();
  if (!value->is_bool()) {
    return invalid_argument("field '" + std::string(param) + "' must be a boolean", std::string(param));
  }
  return std::optional<bool>(value->as_bool());
}

Result<const json::object*> get_optional_object(const json::object& obj, std::string_view key,
                                                std::string_view param) {
  const json::value* value = obj.if_contains(key);
  if (value == nullptr || value->is_null()) return static_cast<const json::object*>(nullptr);
  if (!value->is_object()) {
    return invalid_argument("field '" + std::string(param) + "' must be an object", std::string(param));
  }
  return &value->as_object();
}

Result<const json::array*> get_optional_array(const json::object& obj, std::string_view key,
                                              std::string_view param) {
  const json::value* value = obj.if_contains(key);
  if (value == nullptr || value->is_null()) return static_cast<const json::array*>(nullptr);
  if (!value->is_array()) {
    return invalid_argument("field '" + std::string(param) + "' must be an array", std::string(param));
  }
  return &value->as_array();
}

std::optional<std::string> first_unknown_key(const json::object& obj,
                                             std::initializer_list<std::string_view> allowed) {
  for (const auto& entry : obj) {
    if (std::find(allowed.begin(), allowed.end(), entry.key()) == allowed.end()) {
      return std::string(entry.key());
    }
  }
  return std::nullopt;
}

json::value sorted_keys(const json::value& value) {
  if (value.is_array()) {
    json::array list;
    for (const json::value& element : value.get_array()) list.push_back(sorted_keys(element));
    return list;
  }
  if (!value.is_object()) return value;
  std::vector<const json::key_value_pair*> entries;
  for (const auto& entry : value.get_object()) entries.push_back(&entry);
  std::sort(entries.begin(), entries.end(), [](const auto* a, const auto* b) { return a->key() < b->key(); });
  json::object object;
  for (const auto* entry : entries) object.emplace(entry->key(), sorted_keys(entry->value()));
  return object;
}

namespace {

// Serializes `what` into `out` through a buffer on the stack: no temporary
// string per value (these are written for every key and scalar).
template <typename T>
void append_serialized(std::string& out, const T& what) {
  thread_local json::serializer serializer;
  if constexpr (std::is_same_v<T, json::string_view>) {
    serializer.reset(what);
  } else {
    serializer.reset(&what);
  }
  char buffer[512];
  while (!serializer.done()) {
    json::string_view part = serializer.read(buffer, sizeof buffer);
    out.append(part.data(), part.size());
  }
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  json::string_view view(text.data(), text.size());
  append_serialized(out, view);
}

void append_canonical_json(std::string& out, const json::value& value) {
  if (value.is_object()) {
    std::vector<const json::key_value_pair*> entries;
    entries.reserve(value.get_object().size());
    for (const auto& entry : value.get_object()) entries.push_back(&entry);
    std::sort(entries.begin(), entries.end(), [](const auto* a, const auto* b) { return a->key() < b->key(); });
    out += '{';
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i > 0) out += ',';
      append_json_string(out, entries[i]->key());
      out += ':';
      append_canonical_json(out, entries[i]->value());
    }
    out += '}';
  } else if (value.is_array()) {
    out += '[';
    bool first = true;
    for (const json::value& element : value.get_array()) {
      if (!first) out += ',';
      first = false;
      append_canonical_json(out, element);
    }
    out += ']';
  } else {
    append_serialized(out, value);
  }
}

std::string to_canonical_json(const json::value& value) {
  std::string out;
  append_canonical_json(out, value);
  return out;
}

}  // namespace continuum
