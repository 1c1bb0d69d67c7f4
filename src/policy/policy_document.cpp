// PolicyDocument::parse and to_json: YAML or JSON text to validated
// statements. YAML is first converted to a JSON value, so one strict
// validator serves both.
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <sstream>
#include <unordered_map>

#include "core/utf8.h"
#include "policy/policy.h"

namespace continuum::policy {

namespace {

std::string statement_param(size_t index) { return "statements[" + std::to_string(index) + "]"; }

// Builds a JSON value from yaml-cpp's parse events: every scalar becomes a
// string (all the format uses), a null a JSON null. Aliases are refused: the
// format has no use for them, and they can describe a tree exponentially
// larger than the text ("billion laughs"). The first problem is kept and
// later events are ignored, so no exception leaves the handler.
class JsonBuilder : public YAML::EventHandler {
 public:
  const Status& status() const { return status_; }
  json::value take_root() { return std::move(root_); }

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ > 1) fail(mark, "a policy is a single YAML document");
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { add(mark, nullptr); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    fail(mark, "YAML aliases (*name) are not allowed in a policy");
  }
  // Scalars must be valid UTF-8 (yaml-cpp passes raw bytes through and
  // decodes escapes such as "\uD800" into invalid sequences), so that
  // to_json() yields JSON that parses again.
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string& value) override {
    if (sanitize_utf8(value) != value) return fail(mark, "text is not valid UTF-8");
    add(mark, json::string(value));
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    open(mark, json::array());
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    open(mark, json::object());
  }
  void OnMapEnd() override { close(); }

 private:
  struct Frame {
    json::value container;    // an array or an object
    std::optional<std::string> key;  // objects: the key waiting for its value
  };

  void fail(const YAML::Mark& mark, const std::string& problem) {
    if (!status_.is_ok()) return;
    status_ = invalid_argument("policy YAML line " + std::to_string(mark.line + 1) + ", column " +
                               std::to_string(mark.column + 1) + ": " + problem);
  }

  bool expects_key() const {
    return !stack_.empty() && stack_.back().container.is_object() && !stack_.back().key.has_value();
  }

  void add(const YAML::Mark& mark, json::value value) {
    if (!status_.is_ok()) return;
    if (stack_.empty()) {
      root_ = std::move(value);
      return;
    }
    Frame& top = stack_.back();
    if (top.container.is_array()) {
      top.container.get_array().push_back(std::move(value));
    } else if (!top.key) {
      if (!value.is_string()) return fail(mark, "keys must be plain strings");
      std::string key(value.get_string());
      if (top.container.get_object().contains(key)) return fail(mark, "duplicate key '" + key.substr(0, 64) + "'");
      top.key = std::move(key);
    } else {
      top.container.get_object().emplace(*top.key, std::move(value));
      top.key.reset();
    }
  }

  void open(const YAML::Mark& mark, json::value container) {
    if (!status_.is_ok()) return;
    if (expects_key()) return fail(mark, "keys must be plain strings");
    if (stack_.size() >= static_cast<size_t>(kPolicyNestingMax)) return fail(mark, "nested too deeply");
    stack_.push_back({std::move(container), std::nullopt});
  }

  void close() {
    if (!status_.is_ok()) return;
    CONTINUUM_CHECK(!stack_.empty(), "yaml-cpp pairs every end event with a start event");
    Frame frame = std::move(stack_.back());
    stack_.pop_back();
    add(YAML::Mark(), std::move(frame.container));
  }

  Status status_;
  std::vector<Frame> stack_;  // open containers, innermost last; at most kPolicyNestingMax
  json::value root_;
  int documents_ = 0;
};

// yaml-cpp reports syntax errors, including its own recursion guard
// (DeepRecursion, a few hundred levels deep), by throwing; they stop here.
Result<json::value> parse_yaml(std::string_view text) {
  std::istringstream input{std::string(text)};
  JsonBuilder builder;
  try {
    YAML::Parser parser(input);
    while (builder.status().is_ok() && parser.HandleNextDocument(builder)) {
    }
  } catch (const std::exception& error) {
    return invalid_argument(std::string("policy is not valid YAML: ") + error.what());
  } catch (...) {
    return invalid_argument("policy is not valid YAML");
  }
  if (!builder.status().is_ok()) return builder.status();
  return builder.take_root();
}

bool is_valid_statement_id(const std::string& id) {
  if (id.empty() || id.size() > kStatementIdBytesMax) return false;
  for (char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

Status check_pattern(const std::string& pattern, const std::string& param) {
  if (pattern.empty() || pattern.size() > kPatternBytesMax) {
    return invalid_argument("a pattern must be 1-" + std::to_string(kPatternBytesMax) + " bytes", param);
  }
  for (char c : pattern) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return invalid_argument("a pattern must not contain control characters", param);
  }
  return Status::ok();
}

// A pattern field: one string or a non-empty list of strings.
Result<std::vector<std::string>> parse_patterns(const json::value& value, const std::string& param) {
  if (value.is_string()) {
    std::string pattern(value.get_string());
    RETURN_IF_ERROR(check_pattern(pattern, param));
    return std::vector<std::string>{std::move(pattern)};
  }
  if (!value.is_array()) return invalid_argument(param + " must be a string or a list of strings", param);
  const json::array& list = value.get_array();
  if (list.empty()) return invalid_argument(param + " must name at least one pattern", param);
  if (list.size() > kPatternsPerFieldMax) {
    return invalid_argument(param + " has more than " + std::to_string(kPatternsPerFieldMax) + " patterns", param);
  }
  std::vector<std::string> patterns;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string element_param = param + "[" + std::to_string(i) + "]";
    if (!list[i].is_string()) return invalid_argument(element_param + " must be a string", element_param);
    patterns.emplace_back(list[i].get_string());
    RETURN_IF_ERROR(check_pattern(patterns.back(), element_param));
  }
  return patterns;
}

Result<Effect> parse_effect(const json::object& object, const std::string& param) {
  ASSIGN_OR_RETURN(std::string name, get_string(object, "effect", param));
  if (name == "allow") return Effect::kAllow;
  if (name == "deny") return Effect::kDeny;
  if (name == "require_approval") return Effect::kRequireApproval;
  return invalid_argument(param + " must be allow, deny or require_approval, got '" + name.substr(0, 64) + "'", param);
}

Result<std::vector<std::string>> parse_required_patterns(const json::object& object, std::string_view key,
                                                         const std::string& param) {
  const json::value* value = object.if_contains(key);
  if (value == nullptr || value->is_null()) return invalid_argument("missing required field '" + param + "'", param);
  return parse_patterns(*value, param);
}

Result<Statement> parse_statement(const json::value& value, size_t index) {
  std::string param = statement_param(index);
  if (!value.is_object()) return invalid_argument(param + " must be a mapping", param);
  const json::object& object = value.get_object();
  if (auto unknown = first_unknown_key(object, {"id", "effect", "principal", "action", "resource", "when"})) {
    return invalid_argument("unknown field '" + *unknown + "'", param + "." + *unknown);
  }
  Statement statement;
  ASSIGN_OR_RETURN(auto id, get_optional_string(object, "id", param + ".id"));
  statement.id = id ? *id : "statement-" + std::to_string(index + 1);
  if (!is_valid_statement_id(statement.id)) {
    return invalid_argument("a statement id must be 1-64 characters of [A-Za-z0-9_.-]", param + ".id");
  }
  ASSIGN_OR_RETURN(statement.effect, parse_effect(object, param + ".effect"));
  ASSIGN_OR_RETURN(statement.principals, parse_required_patterns(object, "principal", param + ".principal"));
  ASSIGN_OR_RETURN(statement.actions, parse_required_patterns(object, "action", param + ".action"));
  const json::value* resource = object.if_contains("resource");
  if (resource == nullptr || resource->is_null()) {
    statement.resources = {"*"};
  } else {
    ASSIGN_OR_RETURN(statement.resources, parse_patterns(*resource, param + ".resource"));
  }
  ASSIGN_OR_RETURN(auto when, get_optional_string(object, "when", param + ".when"));
  if (when) {
    auto expression = Expression::parse(*when);
    if (!expression.is_ok()) {
      return invalid_argument(param + ".when: " + expression.status().message(), param + ".when");
    }
    statement.when = std::move(expression).value();
  }
  return statement;
}

Result<PolicyDocument> parse_document(const json::value& root) {
  if (!root.is_object()) return invalid_argument("a policy must be a mapping with a 'statements' list");
  const json::object& object = root.get_object();
  if (auto unknown = first_unknown_key(object, {"statements"})) {
    return invalid_argument("unknown field '" + *unknown + "'", *unknown);
  }
  ASSIGN_OR_RETURN(const json::array* statements, get_optional_array(object, "statements", "statements"));
  if (statements == nullptr) return invalid_argument("missing required field 'statements'", "statements");
  if (statements->size() > kStatementsMax) {
    return invalid_argument("a policy has at most " + std::to_string(kStatementsMax) + " statements", "statements");
  }
  PolicyDocument document;
  std::unordered_map<std::string, size_t> index_by_id;
  for (size_t i = 0; i < statements->size(); ++i) {
    ASSIGN_OR_RETURN(Statement statement, parse_statement((*statements)[i], i));
    auto [existing, inserted] = index_by_id.emplace(statement.id, i);
    if (!inserted) {
      return invalid_argument("duplicate statement id '" + statement.id + "' (also " +
                                  statement_param(existing->second) + ")",
                              statement_param(i) + ".id");
    }
    document.statements.push_back(std::move(statement));
  }
  return document;
}

json::array patterns_to_json(const std::vector<std::string>& patterns) {
  json::array list;
  for (const std::string& pattern : patterns) list.emplace_back(pattern);
  return list;
}

}  // namespace

Result<PolicyDocument> PolicyDocument::parse(std::string_view text) {
  if (text.size() > kPolicyBytesMax) {
    return invalid_argument("a policy is at most " + std::to_string(kPolicyBytesMax) + " bytes, got " +
                            std::to_string(text.size()));
  }
  size_t first = text.find_first_not_of(" \t\r\n");
  bool is_json = first != std::string_view::npos && text[first] == '{';
  Result<json::value> root = is_json ? parse_json(text) : parse_yaml(text);
  if (!root.is_ok() && is_json) {
    // parse_json speaks of a "request body"; keep only its detail.
    std::string detail = root.status().message();
    size_t colon = detail.find(": ");
    if (colon != std::string::npos) detail = detail.substr(colon + 2);
    return invalid_argument("policy is not valid JSON: " + detail);
  }
  if (!root.is_ok()) return root.status();
  return parse_document(*root);
}

json::value PolicyDocument::to_json() const {
  json::array list;
  for (const Statement& statement : statements) {
    json::object object;
    object["id"] = statement.id;
    object["effect"] = effect_name(statement.effect);
    object["principal"] = patterns_to_json(statement.principals);
    object["action"] = patterns_to_json(statement.actions);
    object["resource"] = patterns_to_json(statement.resources);
    if (statement.when) object["when"] = statement.when->text();
    list.emplace_back(std::move(object));
  }
  json::object root;
  root["statements"] = std::move(list);
  return root;
}

}  // namespace continuum::policy
