// The lexer and recursive-descent parser of the `when` language (grammar in
// expression.h). Recursion is bounded by kExpressionDepthMax: every construct
// that nests (parentheses, lists, calls, `not`, unary minus) passes enter().
#include <array>
#include <charconv>
#include <optional>
#include <utility>
#include <vector>

#include "policy/expression.h"
#include "policy/expression_ast.h"

namespace continuum::policy {

namespace {

using detail::Ast;
using detail::Node;
using detail::Op;

enum class Tok {
  kEnd, kNumber, kString, kName,
  kLeftParen, kRightParen, kLeftBracket, kRightBracket, kComma,
  kPlus, kMinus, kStar, kSlash,
  kEqual, kNotEqual, kLess, kLessEqual, kGreater, kGreaterEqual,
};

struct Token {
  Tok kind = Tok::kEnd;
  int32_t column = 0;                 // 1-based
  double number = 0;                  // kNumber
  std::string text;                   // kString: decoded; kName: the dotted path as written
  std::vector<std::string> segments;  // kName
};

constexpr std::array<std::string_view, 9> kKeywords = {"and",  "or",    "not",  "in",  "startswith",
                                                       "matches", "true", "false", "null"};

bool is_keyword(std::string_view word) {
  for (std::string_view keyword : kKeywords) {
    if (keyword == word) return true;
  }
  return false;
}

bool is_name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

Status syntax_error(int32_t column, const std::string& problem) {
  return invalid_argument("expression error at position " + std::to_string(column) + ": " + problem);
}

std::string describe(const Token& token) {
  switch (token.kind) {
    case Tok::kEnd: return "the end of the expression";
    case Tok::kNumber: return "a number";
    case Tok::kString: return "a string";
    default: return "'" + token.text + "'";  // names and operators as written
  }
}

// Splits the text into tokens. Owns nothing beyond the returned vector.
class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  Result<std::vector<Token>> run() {
    std::vector<Token> tokens;
    while (true) {
      while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' ||
                                    text_[at_] == '\r')) {
        ++at_;
      }
      if (tokens.size() >= static_cast<size_t>(kExpressionTokensMax)) {
        return syntax_error(column(), "too many tokens (max " + std::to_string(kExpressionTokensMax) + ")");
      }
      if (at_ == text_.size()) break;
      ASSIGN_OR_RETURN(Token token, next());
      tokens.push_back(std::move(token));
    }
    Token end;
    end.column = column();
    tokens.push_back(std::move(end));
    return tokens;
  }

 private:
  int32_t column() const { return static_cast<int32_t>(at_) + 1; }
  Token make_token(Tok kind) const {
    Token token;
    token.kind = kind;
    token.column = column();
    return token;
  }

  Result<Token> next() {
    char c = text_[at_];
    if (is_digit(c)) return lex_number();
    if (c == '"' || c == '\'') return lex_string();
    if (is_name_start(c)) return lex_name();
    return lex_operator();
  }

  Result<Token> lex_number() {
    Token token = make_token(Tok::kNumber);
    size_t start = at_;
    while (at_ < text_.size() && is_digit(text_[at_])) ++at_;
    if (at_ + 1 < text_.size() && text_[at_] == '.' && is_digit(text_[at_ + 1])) {
      ++at_;
      while (at_ < text_.size() && is_digit(text_[at_])) ++at_;
    }
    if (at_ < text_.size() && (is_name_char(text_[at_]) || text_[at_] == '.')) {
      return syntax_error(column(), "unexpected '" + std::string(1, text_[at_]) + "' after a number");
    }
    auto [end, error] = std::from_chars(text_.data() + start, text_.data() + at_, token.number);
    if (error != std::errc() || end != text_.data() + at_) {
      return syntax_error(token.column, "number out of range");
    }
    token.text = std::string(text_.substr(start, at_ - start));
    return token;
  }

  Result<Token> lex_string() {
    Token token = make_token(Tok::kString);
    char quote = text_[at_++];
    while (true) {
      if (at_ >= text_.size()) return syntax_error(token.column, "unterminated string");
      char c = text_[at_++];
      if (c == quote) break;
      if (c == '\\') {
        if (at_ >= text_.size()) return syntax_error(token.column, "unterminated string");
        char escaped = text_[at_++];
        if (escaped != '"' && escaped != '\'' && escaped != '\\') {
          return syntax_error(column() - 2, "unknown escape '\\" + std::string(1, escaped) +
                                                "' (only \\\" \\' \\\\ are allowed)");
        }
        c = escaped;
      }
      if (token.text.size() >= kStringLiteralBytesMax) {
        return syntax_error(token.column, "string longer than " + std::to_string(kStringLiteralBytesMax) + " bytes");
      }
      token.text.push_back(c);
    }
    return token;
  }

  Result<Token> lex_name() {
    Token token = make_token(Tok::kName);
    size_t start = at_;
    while (true) {
      size_t segment_start = at_;
      while (at_ < text_.size() && is_name_char(text_[at_])) ++at_;
      if (at_ == segment_start) return syntax_error(column(), "expected a path segment after '.'");
      if (token.segments.size() >= kPathSegmentsMax) {
        return syntax_error(token.column, "path has more than " + std::to_string(kPathSegmentsMax) + " segments");
      }
      token.segments.emplace_back(text_.substr(segment_start, at_ - segment_start));
      if (at_ >= text_.size() || text_[at_] != '.') break;
      ++at_;
    }
    token.text = std::string(text_.substr(start, at_ - start));
    if (token.segments.size() > 1 && is_keyword(token.segments[0])) {
      return syntax_error(token.column, "'" + token.segments[0] + "' is a keyword and cannot start a path");
    }
    return token;
  }

  Result<Token> lex_operator() {
    Token token = make_token(Tok::kEnd);
    char c = text_[at_];
    char following = at_ + 1 < text_.size() ? text_[at_ + 1] : '\0';
    auto take = [&](Tok kind, size_t length) {
      token.kind = kind;
      token.text = std::string(text_.substr(at_, length));
      at_ += length;
      return token;
    };
    switch (c) {
      case '(': return take(Tok::kLeftParen, 1);
      case ')': return take(Tok::kRightParen, 1);
      case '[': return take(Tok::kLeftBracket, 1);
      case ']': return take(Tok::kRightBracket, 1);
      case ',': return take(Tok::kComma, 1);
      case '+': return take(Tok::kPlus, 1);
      case '-': return take(Tok::kMinus, 1);
      case '*': return take(Tok::kStar, 1);
      case '/': return take(Tok::kSlash, 1);
      case '<': return following == '=' ? take(Tok::kLessEqual, 2) : take(Tok::kLess, 1);
      case '>': return following == '=' ? take(Tok::kGreaterEqual, 2) : take(Tok::kGreater, 1);
      case '=':
        if (following == '=') return take(Tok::kEqual, 2);
        return syntax_error(column(), "unexpected '=' (use '==' to compare)");
      case '!':
        if (following == '=') return take(Tok::kNotEqual, 2);
        return syntax_error(column(), "unexpected '!' (use 'not')");
      case '&': return syntax_error(column(), "unexpected '&' (use 'and')");
      case '|': return syntax_error(column(), "unexpected '|' (use 'or')");
      default: break;
    }
    auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x21 && byte < 0x7f) return syntax_error(column(), "unexpected character '" + std::string(1, c) + "'");
    return syntax_error(column(), "unexpected byte 0x" + std::string(1, "0123456789abcdef"[byte >> 4]) +
                                      std::string(1, "0123456789abcdef"[byte & 15]));
  }

  std::string_view text_;
  size_t at_ = 0;
};

// Builds the Ast from tokens, children before parents (see Ast's invariant).
class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Result<Ast> run() {
    ASSIGN_OR_RETURN(int32_t root, parse_or());
    if (peek().kind != Tok::kEnd) return syntax_error(peek().column, "unexpected " + describe(peek()));
    CONTINUUM_CHECK(root == ast_.root(), "the parser appends each parent after its children");
    return std::move(ast_);
  }

 private:
  const Token& peek(size_t ahead = 0) const {
    size_t index = next_ + ahead;
    return index < tokens_.size() ? tokens_[index] : tokens_.back();  // back() is always kEnd
  }
  const Token& take() {
    const Token& token = peek();
    if (next_ < tokens_.size() - 1) ++next_;
    return token;
  }
  static bool is_word(const Token& token, std::string_view word) {
    return token.kind == Tok::kName && token.segments.size() == 1 && token.segments[0] == word;
  }

  // Each nesting construct calls this before descending; the matching
  // leave() runs only on success, which is enough because any error
  // abandons the whole parse.
  Status enter(int32_t column) {
    if (++depth_ > kExpressionDepthMax) {
      return syntax_error(column, "nested deeper than " + std::to_string(kExpressionDepthMax) + " levels");
    }
    return Status::ok();
  }
  void leave() { --depth_; }

  Result<int32_t> add(Node node) {
    if (ast_.nodes.size() >= static_cast<size_t>(kExpressionNodesMax)) {
      return syntax_error(node.column, "expression too large (more than " + std::to_string(kExpressionNodesMax) +
                                           " nodes)");
    }
    ast_.nodes.push_back(std::move(node));
    return ast_.root();
  }

  Result<int32_t> add_operator(Op op, int32_t column, std::vector<int32_t> children) {
    Node node;
    node.op = op;
    node.column = column;
    node.children = std::move(children);
    return add(std::move(node));
  }

  // `and` and `or` chains become one n-ary node, which keeps the tree shallow.
  Result<int32_t> parse_logical(Op op, std::string_view word) {
    bool is_or = op == Op::kOr;
    ASSIGN_OR_RETURN(int32_t first, is_or ? parse_logical(Op::kAnd, "and") : parse_not());
    if (!is_word(peek(), word)) return first;
    int32_t column = peek().column;
    std::vector<int32_t> children{first};
    while (is_word(peek(), word)) {
      take();
      ASSIGN_OR_RETURN(int32_t operand, is_or ? parse_logical(Op::kAnd, "and") : parse_not());
      children.push_back(operand);
    }
    return add_operator(op, column, std::move(children));
  }
  Result<int32_t> parse_or() { return parse_logical(Op::kOr, "or"); }

  Result<int32_t> parse_not() {
    if (!is_word(peek(), "not")) return parse_comparison();
    int32_t column = take().column;
    RETURN_IF_ERROR(enter(column));
    ASSIGN_OR_RETURN(int32_t operand, parse_not());
    leave();
    return add_operator(Op::kNot, column, {operand});
  }

  // Consumes a comparison operator if one is next.
  std::optional<Op> take_comparison() {
    const Token& token = peek();
    std::optional<Op> op;
    switch (token.kind) {
      case Tok::kEqual: op = Op::kEqual; break;
      case Tok::kNotEqual: op = Op::kNotEqual; break;
      case Tok::kLess: op = Op::kLess; break;
      case Tok::kLessEqual: op = Op::kLessEqual; break;
      case Tok::kGreater: op = Op::kGreater; break;
      case Tok::kGreaterEqual: op = Op::kGreaterEqual; break;
      default: break;
    }
    if (is_word(token, "in")) op = Op::kIn;
    if (is_word(token, "startswith")) op = Op::kStartsWith;
    if (is_word(token, "matches")) op = Op::kMatches;
    if (is_word(token, "not") && is_word(peek(1), "in")) {
      take();
      op = Op::kNotIn;
    }
    if (op) take();
    return op;
  }

  Result<int32_t> parse_comparison() {
    ASSIGN_OR_RETURN(int32_t left, parse_additive());
    int32_t column = peek().column;
    std::optional<Op> op = take_comparison();
    if (!op) return left;
    ASSIGN_OR_RETURN(int32_t right, parse_additive());
    int32_t chained_column = peek().column;
    if (take_comparison()) {
      return syntax_error(chained_column, "comparisons do not chain; combine them with 'and'");
    }
    return add_operator(*op, column, {left, right});
  }

  Result<int32_t> parse_additive() {
    ASSIGN_OR_RETURN(int32_t left, parse_multiplicative());
    while (peek().kind == Tok::kPlus || peek().kind == Tok::kMinus) {
      const Token& token = take();
      Op op = token.kind == Tok::kPlus ? Op::kAdd : Op::kSubtract;
      ASSIGN_OR_RETURN(int32_t right, parse_multiplicative());
      ASSIGN_OR_RETURN(left, add_operator(op, token.column, {left, right}));
    }
    return left;
  }

  Result<int32_t> parse_multiplicative() {
    ASSIGN_OR_RETURN(int32_t left, parse_unary());
    while (peek().kind == Tok::kStar || peek().kind == Tok::kSlash) {
      const Token& token = take();
      Op op = token.kind == Tok::kStar ? Op::kMultiply : Op::kDivide;
      ASSIGN_OR_RETURN(int32_t right, parse_unary());
      ASSIGN_OR_RETURN(left, add_operator(op, token.column, {left, right}));
    }
    return left;
  }

  Result<int32_t> parse_unary() {
    if (peek().kind != Tok::kMinus) return parse_primary();
    int32_t column = take().column;
    RETURN_IF_ERROR(enter(column));
    ASSIGN_OR_RETURN(int32_t operand, parse_unary());
    leave();
    Node& node = ast_.nodes[operand];
    if (node.op == Op::kLiteral && node.literal.is_double()) {  // fold "-5" into one literal
      node.literal = -node.literal.get_double();
      node.column = column;
      return operand;
    }
    return add_operator(Op::kNegate, column, {operand});
  }

  Result<int32_t> add_literal(json::value value, int32_t column) {
    Node node;
    node.op = Op::kLiteral;
    node.column = column;
    node.literal = std::move(value);
    return add(std::move(node));
  }

  Result<int32_t> parse_primary() {
    const Token& token = peek();
    switch (token.kind) {
      case Tok::kNumber: take(); return add_literal(token.number, token.column);
      case Tok::kString: take(); return add_literal(json::string(token.text), token.column);
      case Tok::kLeftParen: return parse_group();
      case Tok::kLeftBracket: return parse_list();
      case Tok::kName: return parse_name();
      default: return syntax_error(token.column, "expected a value but found " + describe(token));
    }
  }

  Result<int32_t> parse_group() {
    int32_t column = take().column;
    RETURN_IF_ERROR(enter(column));
    ASSIGN_OR_RETURN(int32_t inner, parse_or());
    if (peek().kind != Tok::kRightParen) {
      return syntax_error(peek().column, "expected ')' to close '(' at position " + std::to_string(column) +
                                             " but found " + describe(peek()));
    }
    take();
    leave();
    return inner;
  }

  // Comma-separated expressions up to `close`, which is consumed.
  Result<std::vector<int32_t>> parse_items(Tok close, const char* close_text, size_t items_max) {
    std::vector<int32_t> items;
    if (peek().kind == close) {
      take();
      return items;
    }
    while (true) {
      if (items.size() >= items_max) {
        return syntax_error(peek().column, "more than " + std::to_string(items_max) + " elements");
      }
      ASSIGN_OR_RETURN(int32_t item, parse_or());
      items.push_back(item);
      if (peek().kind == close) break;
      if (peek().kind != Tok::kComma) {
        return syntax_error(peek().column, std::string("expected ',' or '") + close_text + "' but found " +
                                               describe(peek()));
      }
      take();
    }
    take();
    return items;
  }

  // A list is a literal: its elements must be literals too (after folding a
  // unary minus into a number). Evaluation therefore never copies context
  // values into new lists, which keeps its memory bounded by the context.
  Result<int32_t> parse_list() {
    int32_t column = take().column;
    RETURN_IF_ERROR(enter(column));
    ASSIGN_OR_RETURN(auto items, parse_items(Tok::kRightBracket, "]", kListLiteralElementsMax));
    leave();
    json::array elements;
    elements.reserve(items.size());
    for (int32_t item : items) {
      const Node& element = ast_.nodes[item];
      if (element.op != Op::kLiteral) {
        return syntax_error(element.column, "list elements must be literals (numbers, strings, true, false, "
                                            "null or lists)");
      }
      elements.push_back(element.literal);
    }
    CONTINUUM_CHECK(items.empty() || items.front() + static_cast<int32_t>(items.size()) == ast_.root() + 1,
                    "literal elements are the last nodes added, one node each");
    ast_.nodes.resize(ast_.nodes.size() - items.size());
    return add_literal(std::move(elements), column);
  }

  Result<int32_t> parse_name() {
    Token token = take();
    if (peek().kind == Tok::kLeftParen) return parse_call(token);
    if (is_word(token, "true")) return add_literal(true, token.column);
    if (is_word(token, "false")) return add_literal(false, token.column);
    if (is_word(token, "null")) return add_literal(nullptr, token.column);
    if (token.segments.size() == 1 && is_keyword(token.segments[0])) {
      return syntax_error(token.column, "expected a value but found " + describe(token));
    }
    Node node;
    node.op = Op::kPath;
    node.column = token.column;
    node.path = std::move(token.segments);
    return add(std::move(node));
  }

  Result<int32_t> parse_call(const Token& name) {
    Op op = Op::kLen;
    size_t arity = 1;
    if (is_word(name, "count")) {
      op = Op::kCount;
      arity = 2;
    } else if (is_word(name, "sum")) {
      op = Op::kSum;
      arity = 3;
    } else if (!is_word(name, "len")) {
      return syntax_error(name.column, "unknown function '" + name.text + "' (known: count, sum, len)");
    }
    take();  // '('
    RETURN_IF_ERROR(enter(name.column));
    ASSIGN_OR_RETURN(auto arguments, parse_items(Tok::kRightParen, ")", 8));
    leave();
    if (arguments.size() != arity) {
      static const char* const kSignatures[] = {"count(tool, window)", "sum(tool, arg_path, window)", "len(x)"};
      const char* signature = kSignatures[op == Op::kCount ? 0 : op == Op::kSum ? 1 : 2];
      return syntax_error(name.column, std::string(signature) + " takes " + std::to_string(arity) +
                                           " argument(s), got " + std::to_string(arguments.size()));
    }
    RETURN_IF_ERROR(check_literal_arguments(op, arguments));
    return add_operator(op, name.column, std::move(arguments));
  }

  // Literal arguments of count()/sum() are checked now, so that a typo such
  // as "24hours" fails when the policy is loaded, not when it is evaluated.
  Status check_literal_arguments(Op op, const std::vector<int32_t>& arguments) {
    if (op == Op::kLen) return Status::ok();
    for (size_t i = 0; i < arguments.size(); ++i) {
      const Node& argument = ast_.nodes[arguments[i]];
      if (argument.op != Op::kLiteral) continue;
      bool is_window = i + 1 == arguments.size();
      if (is_window) {
        auto window = parse_window_ms(argument.literal);
        if (!window.is_ok()) return syntax_error(argument.column, window.status().message());
      } else if (!argument.literal.is_string() || argument.literal.as_string().empty()) {
        return syntax_error(argument.column, std::string(i == 0 ? "the tool" : "the argument path") +
                                                 " must be a non-empty string");
      }
    }
    return Status::ok();
  }

  std::vector<Token> tokens_;  // never empty: ends with kEnd
  size_t next_ = 0;
  int depth_ = 0;
  Ast ast_;
};

}  // namespace

const char* detail::op_name(Op op) {
  switch (op) {
    case Op::kLiteral: return "literal";
    case Op::kPath: return "path";
    case Op::kNegate: return "unary -";
    case Op::kNot: return "not";
    case Op::kAnd: return "and";
    case Op::kOr: return "or";
    case Op::kAdd: return "+";
    case Op::kSubtract: return "-";
    case Op::kMultiply: return "*";
    case Op::kDivide: return "/";
    case Op::kEqual: return "==";
    case Op::kNotEqual: return "!=";
    case Op::kLess: return "<";
    case Op::kLessEqual: return "<=";
    case Op::kGreater: return ">";
    case Op::kGreaterEqual: return ">=";
    case Op::kIn: return "in";
    case Op::kNotIn: return "not in";
    case Op::kStartsWith: return "startswith";
    case Op::kMatches: return "matches";
    case Op::kCount: return "count()";
    case Op::kSum: return "sum()";
    case Op::kLen: return "len()";
  }
  return "?";
}

Expression::Expression(std::string text, std::shared_ptr<const detail::Ast> ast)
    : text_(std::move(text)), ast_(std::move(ast)) {}

Result<Expression> Expression::parse(std::string_view text) {
  if (text.size() > kExpressionBytesMax) {
    return invalid_argument("expression is " + std::to_string(text.size()) + " bytes, more than the limit of " +
                            std::to_string(kExpressionBytesMax));
  }
  ASSIGN_OR_RETURN(std::vector<Token> tokens, Lexer(text).run());
  if (tokens.size() == 1) return syntax_error(1, "the expression is empty");
  ASSIGN_OR_RETURN(Ast ast, Parser(std::move(tokens)).run());
  CONTINUUM_CHECK(!ast.nodes.empty() && ast.nodes.size() <= static_cast<size_t>(kExpressionNodesMax),
                  "a successful parse adds at least one node and add() enforces the limit");
  return Expression(std::string(text), std::make_shared<const Ast>(std::move(ast)));
}

}  // namespace continuum::policy
