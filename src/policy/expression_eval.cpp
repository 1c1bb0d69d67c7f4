// The evaluator of the `when` language. Recursion follows the tree, whose
// size the parser bounds (kExpressionNodesMax); values are borrowed from the
// context or the tree wherever possible, so memory stays bounded too.
#include <charconv>
#include <cmath>

#include "policy/expression.h"
#include "policy/expression_ast.h"
#include "policy/glob.h"

namespace continuum::policy {

namespace {

using detail::Ast;
using detail::Node;
using detail::Op;

// A value produced during evaluation: borrowed from the context or the tree
// (both outlive the evaluation) or owned (small: numbers and booleans).
class Value {
 public:
  static Value borrow(const json::value& value) {
    Value result;
    result.borrowed_ = &value;
    return result;
  }
  static Value own(json::value value) {
    Value result;
    result.owned_ = std::move(value);
    return result;
  }
  const json::value& get() const { return borrowed_ != nullptr ? *borrowed_ : owned_; }

 private:
  const json::value* borrowed_ = nullptr;
  json::value owned_;
};

const char* type_name(const json::value& value) {
  switch (value.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return "number";
    case json::kind::string: return "string";
    case json::kind::array: return "list";
    case json::kind::object: return "object";
  }
  return "?";
}

bool is_number(const json::value& value) { return value.is_int64() || value.is_uint64() || value.is_double(); }

double to_double(const json::value& value) {
  if (value.is_int64()) return static_cast<double>(value.get_int64());
  if (value.is_uint64()) return static_cast<double>(value.get_uint64());
  return value.get_double();
}

template <typename T>
int three_way(T a, T b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// Integers compare exactly; anything involving a double compares as doubles.
// nullopt when unordered (NaN, which only a caller-built context can hold).
std::optional<int> compare_numbers(const json::value& a, const json::value& b) {
  if (a.is_int64() && b.is_int64()) return three_way(a.get_int64(), b.get_int64());
  if (a.is_uint64() && b.is_uint64()) return three_way(a.get_uint64(), b.get_uint64());
  if (a.is_int64() && b.is_uint64()) {
    return a.get_int64() < 0 ? -1 : three_way(static_cast<uint64_t>(a.get_int64()), b.get_uint64());
  }
  if (a.is_uint64() && b.is_int64()) {
    return b.get_int64() < 0 ? 1 : three_way(a.get_uint64(), static_cast<uint64_t>(b.get_int64()));
  }
  double x = to_double(a);
  double y = to_double(b);
  if (x < y) return -1;
  if (x > y) return 1;
  if (x == y) return 0;
  return std::nullopt;
}

Status value_error(int32_t column, const std::string& problem) {
  return invalid_argument("expression error at position " + std::to_string(column) + ": " + problem);
}

// Deep equality: different types are unequal, numbers compare numerically.
Result<bool> values_equal(const json::value& a, const json::value& b, int depth) {
  if (depth > kValueDepthMax) {
    return invalid_argument("values nested deeper than " + std::to_string(kValueDepthMax) + " levels");
  }
  if (is_number(a) && is_number(b)) return compare_numbers(a, b) == 0;
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const json::array& x = a.get_array();
    const json::array& y = b.get_array();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      ASSIGN_OR_RETURN(bool equal, values_equal(x[i], y[i], depth + 1));
      if (!equal) return false;
    }
    return true;
  }
  if (a.is_object()) {
    const json::object& x = a.get_object();
    const json::object& y = b.get_object();
    if (x.size() != y.size()) return false;
    for (const auto& entry : x) {
      const json::value* other = y.if_contains(entry.key());
      if (other == nullptr) return false;
      ASSIGN_OR_RETURN(bool equal, values_equal(entry.value(), *other, depth + 1));
      if (!equal) return false;
    }
    return true;
  }
  return a == b;  // null, bool, string
}

// A digits-only segment indexes a list; anything else is absent.
const json::value* list_element(const json::array& list, const std::string& segment) {
  size_t index = 0;
  auto [end, error] = std::from_chars(segment.data(), segment.data() + segment.size(), index);
  if (error != std::errc() || end != segment.data() + segment.size()) return nullptr;
  return index < list.size() ? &list[index] : nullptr;
}

size_t utf8_length(std::string_view text) {
  size_t characters = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++characters;
  }
  return characters;
}

// One evaluation. Borrows the tree, the context and the history for its
// lifetime; not shared between threads.
class Evaluator {
 public:
  Evaluator(const Ast& ast, const json::object& context, History* history)
      : ast_(ast), context_(context), history_(history) {}

  Result<Value> eval(int32_t index) {
    CONTINUUM_CHECK(index >= 0 && static_cast<size_t>(index) < ast_.nodes.size(),
                    "the parser only links children that it added before their parent");
    const Node& node = ast_.nodes[index];
    switch (node.op) {
      case Op::kLiteral: return Value::borrow(node.literal);
      case Op::kPath: return Value::borrow(lookup(node.path));
      case Op::kNot:
      case Op::kAnd:
      case Op::kOr: return eval_logical(node);
      case Op::kNegate:
      case Op::kAdd:
      case Op::kSubtract:
      case Op::kMultiply:
      case Op::kDivide: return eval_arithmetic(node);
      case Op::kCount:
      case Op::kSum: return eval_history(node);
      case Op::kLen: return eval_len(node);
      default: return eval_comparison(node);
    }
  }

 private:
  const json::value& lookup(const std::vector<std::string>& path) const {
    static const json::value kNull;
    const json::value* current = context_.if_contains(path[0]);
    for (size_t i = 1; i < path.size() && current != nullptr; ++i) {
      if (current->is_object()) {
        current = current->get_object().if_contains(path[i]);
      } else if (current->is_array()) {
        current = list_element(current->get_array(), path[i]);
      } else {
        current = nullptr;
      }
    }
    return current != nullptr ? *current : kNull;
  }

  Result<bool> eval_bool(int32_t index, const Node& parent) {
    ASSIGN_OR_RETURN(Value value, eval(index));
    if (!value.get().is_bool()) {
      return value_error(parent.column, std::string("'") + detail::op_name(parent.op) + "' needs true or false, got " +
                                            type_name(value.get()));
    }
    return value.get().get_bool();
  }

  Result<Value> eval_logical(const Node& node) {
    if (node.op == Op::kNot) {
      ASSIGN_OR_RETURN(bool operand, eval_bool(node.children[0], node));
      return Value::own(!operand);
    }
    bool is_and = node.op == Op::kAnd;
    for (int32_t child : node.children) {
      ASSIGN_OR_RETURN(bool operand, eval_bool(child, node));
      if (operand != is_and) return Value::own(operand);  // short-circuit
    }
    return Value::own(is_and);
  }

  Result<double> eval_number(int32_t index, const Node& parent) {
    ASSIGN_OR_RETURN(Value value, eval(index));
    if (!is_number(value.get())) {
      return value_error(parent.column, std::string("'") + detail::op_name(parent.op) + "' needs numbers, got " +
                                            type_name(value.get()));
    }
    return to_double(value.get());
  }

  Result<Value> eval_arithmetic(const Node& node) {
    ASSIGN_OR_RETURN(double left, eval_number(node.children[0], node));
    if (node.op == Op::kNegate) return Value::own(-left);
    ASSIGN_OR_RETURN(double right, eval_number(node.children[1], node));
    double result = 0;
    switch (node.op) {
      case Op::kAdd: result = left + right; break;
      case Op::kSubtract: result = left - right; break;
      case Op::kMultiply: result = left * right; break;
      default:
        if (right == 0) return value_error(node.column, "division by zero");
        result = left / right;
        break;
    }
    if (!std::isfinite(result)) return value_error(node.column, "the result is not a finite number");
    return Value::own(result);
  }

  Result<Value> eval_comparison(const Node& node) {
    ASSIGN_OR_RETURN(Value left_value, eval(node.children[0]));
    ASSIGN_OR_RETURN(Value right_value, eval(node.children[1]));
    const json::value& left = left_value.get();
    const json::value& right = right_value.get();
    bool result = false;
    switch (node.op) {
      case Op::kEqual:
      case Op::kNotEqual: {
        ASSIGN_OR_RETURN(bool equal, values_equal(left, right, 0));
        result = equal == (node.op == Op::kEqual);
        break;
      }
      case Op::kIn:
      case Op::kNotIn: {
        ASSIGN_OR_RETURN(bool contained, contains(node, left, right));
        result = contained == (node.op == Op::kIn);
        break;
      }
      case Op::kStartsWith:
        result = left.is_string() && right.is_string() && left.get_string().starts_with(right.get_string());
        break;
      case Op::kMatches:
        result = left.is_string() && right.is_string() && glob_match(right.get_string(), left.get_string());
        break;
      default: result = ordered(node.op, left, right); break;
    }
    return Value::own(result);
  }

  static bool ordered(Op op, const json::value& left, const json::value& right) {
    std::optional<int> order;
    if (is_number(left) && is_number(right)) order = compare_numbers(left, right);
    if (left.is_string() && right.is_string()) order = three_way(left.get_string(), right.get_string());
    if (!order) return false;  // unordered types compare false
    switch (op) {
      case Op::kLess: return *order < 0;
      case Op::kLessEqual: return *order <= 0;
      case Op::kGreater: return *order > 0;
      default: return *order >= 0;
    }
  }

  static Result<bool> contains(const Node& node, const json::value& item, const json::value& collection) {
    if (collection.is_array()) {
      for (const json::value& element : collection.get_array()) {
        ASSIGN_OR_RETURN(bool equal, values_equal(item, element, 0));
        if (equal) return true;
      }
      return false;
    }
    if (collection.is_string()) {
      return item.is_string() && std::string_view(collection.get_string()).find(item.get_string()) !=
                                     std::string_view::npos;
    }
    if (collection.is_null()) return false;  // a missing collection is empty
    return value_error(node.column, std::string("the right side of '") + detail::op_name(node.op) +
                                        "' must be a list or a string, got " + type_name(collection));
  }

  Result<std::string> eval_name(int32_t index, const Node& parent, const char* what) {
    ASSIGN_OR_RETURN(Value value, eval(index));
    if (!value.get().is_string() || value.get().get_string().empty()) {
      return value_error(parent.column, std::string(detail::op_name(parent.op)) + " needs " + what +
                                            " as a non-empty string, got " + type_name(value.get()));
    }
    return std::string(value.get().get_string());
  }

  Result<Value> eval_history(const Node& node) {
    if (history_ == nullptr) {
      return value_error(node.column, std::string(detail::op_name(node.op)) +
                                          " needs the session's call history, which is not available here");
    }
    ASSIGN_OR_RETURN(std::string tool, eval_name(node.children[0], node, "the tool"));
    ASSIGN_OR_RETURN(Value window_value, eval(node.children.back()));
    auto window_ms = parse_window_ms(window_value.get());
    if (!window_ms.is_ok()) return value_error(node.column, window_ms.status().message());
    if (node.op == Op::kCount) {
      ASSIGN_OR_RETURN(int64_t calls, history_->count_calls(tool, *window_ms));
      return Value::own(calls);
    }
    ASSIGN_OR_RETURN(std::string arg_path, eval_name(node.children[1], node, "the argument path"));
    ASSIGN_OR_RETURN(double total, history_->sum_argument(tool, arg_path, *window_ms));
    if (!std::isfinite(total)) return value_error(node.column, "the sum is not a finite number");
    return Value::own(total);
  }

  Result<Value> eval_len(const Node& node) {
    ASSIGN_OR_RETURN(Value value, eval(node.children[0]));
    const json::value& operand = value.get();
    if (operand.is_string()) return Value::own(static_cast<int64_t>(utf8_length(operand.get_string())));
    if (operand.is_array()) return Value::own(static_cast<int64_t>(operand.get_array().size()));
    return value_error(node.column, std::string("len() needs a string or a list, got ") + type_name(operand));
  }

  const Ast& ast_;
  const json::object& context_;
  History* history_;
};

Status window_error(const std::string& shown) {
  return invalid_argument("window " + shown +
                          " must be a number of milliseconds or a string such as \"30s\", \"15m\", \"24h\", \"7d\" "
                          "(units ms, s, m, h, d), between 1 ms and 366 days");
}

Result<int64_t> parse_window_text(std::string_view text) {
  std::string shown = "\"" + std::string(text.substr(0, 32)) + "\"";
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) return window_error(shown);
  int64_t count = 0;
  std::from_chars(text.data(), text.data() + digits, count);  // <= 12 digits cannot overflow
  std::string_view unit = text.substr(digits);
  int64_t unit_ms = 0;
  if (unit == "ms") unit_ms = 1;
  else if (unit == "s") unit_ms = 1000;
  else if (unit == "m") unit_ms = 60'000;
  else if (unit == "h") unit_ms = 3'600'000;
  else if (unit == "d") unit_ms = 86'400'000;
  else return window_error(shown);
  if (count < 1 || count > kWindowMsMax / unit_ms) return window_error(shown);
  return count * unit_ms;
}

}  // namespace

Result<int64_t> parse_window_ms(const json::value& window) {
  if (window.is_string()) return parse_window_text(window.get_string());
  if (!is_number(window)) return window_error(std::string("of type ") + type_name(window));
  double ms = to_double(window);
  if (!(ms >= 1 && ms <= static_cast<double>(kWindowMsMax)) || ms != std::floor(ms)) {
    return window_error(to_json(window));
  }
  return static_cast<int64_t>(ms);
}

Result<bool> Expression::evaluate(const json::object& context, History* history) const {
  Evaluator evaluator(*ast_, context, history);
  ASSIGN_OR_RETURN(Value result, evaluator.eval(ast_->root()));
  if (!result.get().is_bool()) {
    return invalid_argument("expression error: the expression must produce true or false, got " +
                            std::string(type_name(result.get())));
  }
  return result.get().get_bool();
}

}  // namespace continuum::policy
