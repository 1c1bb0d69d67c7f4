// The `when` expression language of policy statements: a small, total,
// side-effect-free language over a JSON context, with two history functions.
//
// Grammar (lowest precedence first; binary operators are left-associative):
//
//   expr       := or
//   or         := and ("or" and)*
//   and        := not ("and" not)*
//   not        := "not" not | comparison
//   comparison := additive [compare_op additive]        (comparisons do not chain)
//   compare_op := "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in"
//               | "startswith" | "matches"
//   additive   := multiplicative (("+" | "-") multiplicative)*
//   multiplicative := unary (("*" | "/") unary)*
//   unary      := "-" unary | primary
//   primary    := NUMBER | STRING | "true" | "false" | "null"
//               | "[" [literal ("," literal)*] "]" | "(" expr ")"
//                 (list elements are literals: numbers, -numbers, strings,
//                 true, false, null, lists)
//               | FUNCTION "(" [expr ("," expr)*] ")" | PATH
//
//   NUMBER     := digits ["." digits]                 (always a double)
//   STRING     := "..." | '...'                       (escapes: \" \' \\)
//   PATH       := identifier ("." (identifier | digits))*
//                 identifier := [A-Za-z_][A-Za-z0-9_]*; a keyword cannot start a path
//   FUNCTION   := count(tool, window) | sum(tool, arg_path, window) | len(x)
//
// Semantics (see docs/policy.md for examples):
//   - A path looks up the context object; a digits segment indexes a list.
//     A missing path is null.
//   - `+ - * /` and unary minus need numbers (else an error); division by zero
//     and non-finite results are errors.
//   - `==` / `!=` compare any two values deeply; different types are unequal;
//     integers and doubles compare numerically.
//   - `< <= > >=` order two numbers or two strings (bytewise); any other pair
//     is simply false.
//   - `x in LIST` is membership (by `==`); `x in STRING` is substring (false if
//     x is not a string); `x in null` is false (a missing collection is
//     empty); any other right side is an error. `not in` is its negation.
//   - `startswith` and `matches` (glob: `*` any run, `?` one byte) are false
//     unless both sides are strings.
//   - `and` / `or` / `not` need booleans (else an error); `and` / `or`
//     short-circuit.
//   - count() / sum() ask History about prior calls of a tool within a window:
//     a string "<n>ms|s|m|h|d" such as "30s", "15m", "24h", "7d", or a number
//     of milliseconds. len() counts the characters (UTF-8 code points) of a
//     string or the elements of a list.
//   - The whole expression must produce a boolean; anything else is an error.
//
// Limits (kInvalidArgument when exceeded, at parse time): the constants below.
// Evaluation recursion is bounded by the node count, and no operation builds
// values larger than the context or the literals, so evaluation of any
// parsed expression terminates with bounded memory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/json.h"
#include "core/status.h"

namespace continuum::policy {

constexpr size_t kExpressionBytesMax = 4096;
constexpr int kExpressionDepthMax = 32;        // nested parentheses, lists, calls, not, unary minus
constexpr int kExpressionNodesMax = 512;       // syntax tree nodes
constexpr int kExpressionTokensMax = 1024;
constexpr size_t kListLiteralElementsMax = 256;
constexpr size_t kStringLiteralBytesMax = 1024;
constexpr size_t kPathSegmentsMax = 32;
constexpr int kValueDepthMax = 64;             // nesting compared by `==` / `in`
constexpr int64_t kWindowMsMax = 366LL * 24 * 3600 * 1000;

// Past tool calls of the session, for history-aware conditions.
// Implementations are owned by the caller and must outlive the evaluate()
// call they are passed to; they are only called from that thread.
class History {
 public:
  virtual ~History() = default;
  // Calls of `tool` that started within the last `window_ms` (before this one).
  virtual Result<int64_t> count_calls(const std::string& tool, int64_t window_ms) = 0;
  // Sum of the numeric argument at dotted `arg_path` over those calls (non-numbers count 0).
  virtual Result<double> sum_argument(const std::string& tool, const std::string& arg_path, int64_t window_ms) = 0;
};

// A window argument of count()/sum(): "<digits><unit>" with unit ms, s, m, h
// or d, or a number of milliseconds; 1 ms to kWindowMsMax.
Result<int64_t> parse_window_ms(const json::value& window);

namespace detail {
struct Ast;
}

// A parsed expression. Immutable, cheap to copy (the tree is shared), and
// safe to evaluate from several threads at once.
class Expression {
 public:
  // kInvalidArgument naming the position (1-based byte column) and the problem.
  static Result<Expression> parse(std::string_view text);

  // `context` is a JSON object, e.g. {"principal": {...}, "user": {...},
  // "agent": {...}, "resource": {...}, "action": "...", "args": {...}}.
  // `history` may be null: then count()/sum() evaluate to an error.
  // Errors: kInvalidArgument for type errors and a non-boolean result;
  // History's own errors are passed through.
  Result<bool> evaluate(const json::object& context, History* history) const;

  const std::string& text() const { return text_; }

 private:
  Expression(std::string text, std::shared_ptr<const detail::Ast> ast);

  std::string text_;
  std::shared_ptr<const detail::Ast> ast_;  // never null
};

}  // namespace continuum::policy
