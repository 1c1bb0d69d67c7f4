// Internal: the syntax tree shared by the expression parser and evaluator.
// Not part of the public interface (include policy/expression.h instead).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"

namespace continuum::policy::detail {

enum class Op : uint8_t {
  kLiteral, kPath,
  kNegate, kNot, kAnd, kOr,
  kAdd, kSubtract, kMultiply, kDivide,
  kEqual, kNotEqual, kLess, kLessEqual, kGreater, kGreaterEqual,
  kIn, kNotIn, kStartsWith, kMatches,
  kCount, kSum, kLen,
};

// The operator as written, for error messages ("+", "not in", "count()").
const char* op_name(Op op);

struct Node {
  Op op = Op::kLiteral;
  int32_t column = 0;              // 1-based byte column of the operator in the text
  json::value literal;             // kLiteral: null, bool, double, string or a list of literals
  std::vector<std::string> path;   // kPath: the segments
  std::vector<int32_t> children;   // operands in order; always indexes below this node's
};

// Nodes in post-order: every child precedes its parent, the root is last.
// Invariant (checked by the parser): 1 <= nodes.size() <= kExpressionNodesMax.
struct Ast {
  std::vector<Node> nodes;
  int32_t root() const { return static_cast<int32_t>(nodes.size()) - 1; }
};

}  // namespace continuum::policy::detail
