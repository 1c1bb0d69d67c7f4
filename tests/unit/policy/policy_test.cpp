#include <gtest/gtest.h>

#include <map>

#include "policy/expression.h"
#include "policy/glob.h"
#include "policy/policy.h"

namespace continuum::policy {
namespace {

// Prior calls of each tool: how long ago each started and its arguments.
struct FakeCall {
  int64_t age_ms = 0;
  json::object args;
};

class FakeHistory : public History {
 public:
  void add(const std::string& tool, int64_t age_ms, json::object args = {}) {
    calls_[tool].push_back({age_ms, std::move(args)});
  }

  Result<int64_t> count_calls(const std::string& tool, int64_t window_ms) override {
    last_window_ms = window_ms;
    if (fail) return Status(Code::kUnavailable, "history store is down");
    int64_t count = 0;
    for (const FakeCall& call : calls_[tool]) count += call.age_ms < window_ms ? 1 : 0;
    return count;
  }

  Result<double> sum_argument(const std::string& tool, const std::string& arg_path, int64_t window_ms) override {
    last_window_ms = window_ms;
    last_arg_path = arg_path;
    if (fail) return Status(Code::kUnavailable, "history store is down");
    double total = 0;
    for (const FakeCall& call : calls_[tool]) {
      const json::value* value = call.args.if_contains(arg_path);
      if (call.age_ms < window_ms && value != nullptr && value->is_number()) total += value->to_number<double>();
    }
    return total;
  }

  int64_t last_window_ms = -1;
  std::string last_arg_path;
  bool fail = false;

 private:
  std::map<std::string, std::vector<FakeCall>> calls_;
};

json::object object_of(const std::string& text) {
  auto object = parse_json_object(text);
  EXPECT_TRUE(object.is_ok()) << object.status().to_string();
  return object.is_ok() ? *object : json::object();
}

const json::object& sample_context() {
  static const json::object context = object_of(R"({
    "principal": {"id": "alice", "roles": ["member", "support"]},
    "action": "tool:invoke",
    "resource": {"owner": "alice", "kind": "tool"},
    "args": {"amount": 250, "big": 18446744073709551615, "negative": -3, "currency": "EUR",
             "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
             "ints": [1, 2], "nested": {"a": [1, {"b": "c"}]}, "same": {"a": [1, {"b": "c"}]},
             "zero": 0, "flag": true, "name": "héllo", "keyed": {"0": "zero-key"}, "window": "1h"}
  })");
  return context;
}

Result<bool> eval(std::string_view text, History* history = nullptr,
                  const json::object& context = sample_context()) {
  auto expression = Expression::parse(text);
  if (!expression.is_ok()) return expression.status();
  return expression->evaluate(context, history);
}

// True/false of an expression that must evaluate cleanly.
bool holds(std::string_view text, History* history = nullptr) {
  auto result = eval(text, history);
  EXPECT_TRUE(result.is_ok()) << text << ": " << result.status().to_string();
  return result.is_ok() && *result;
}

// The error message of an expression that must fail to parse.
std::string parse_error(std::string_view text) {
  auto expression = Expression::parse(text);
  EXPECT_FALSE(expression.is_ok()) << text << " should not parse";
  if (expression.is_ok()) return "";
  EXPECT_EQ(expression.status().code(), Code::kInvalidArgument);
  return expression.status().message();
}

// The error message of an expression that parses but must fail to evaluate.
std::string eval_error(std::string_view text, History* history = nullptr) {
  auto expression = Expression::parse(text);
  EXPECT_TRUE(expression.is_ok()) << text << ": " << expression.status().to_string();
  if (!expression.is_ok()) return "";
  auto result = expression->evaluate(sample_context(), history);
  EXPECT_FALSE(result.is_ok()) << text << " should fail to evaluate";
  return result.is_ok() ? "" : result.status().message();
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ---- glob

TEST(GlobTest, StarAndQuestionMarkMatchTheWholeString) {
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_FALSE(glob_match("", "a"));
  EXPECT_TRUE(glob_match("agent:support-*", "agent:support-7"));
  EXPECT_TRUE(glob_match("agent:support-*", "agent:support-"));
  EXPECT_FALSE(glob_match("agent:support-*", "agent:billing"));
  EXPECT_FALSE(glob_match("agent:support", "agent:support-7")) << "whole string, not a prefix";
  EXPECT_TRUE(glob_match("a?c", "abc"));
  EXPECT_FALSE(glob_match("a?c", "ac"));
  EXPECT_TRUE(glob_match("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(glob_match("a*b*c", "aXXbYY"));
  EXPECT_TRUE(glob_match("**x**", "x"));
  EXPECT_FALSE(glob_match("User:*", "user:alice")) << "case-sensitive";
}

TEST(GlobTest, PathologicalPatternsFinishQuickly) {
  std::string text(4000, 'a');
  EXPECT_FALSE(glob_match("*a*a*a*a*a*a*a*a*a*a*b", text));
  EXPECT_TRUE(glob_match("*a*a*a*a*a*a*a*a*a*a*", text));
}

// ---- expressions: literals and paths

TEST(ExpressionTest, Literals) {
  EXPECT_TRUE(holds("true"));
  EXPECT_FALSE(holds("false"));
  EXPECT_TRUE(holds("null == null"));
  EXPECT_TRUE(holds("1 == 1.0"));
  EXPECT_TRUE(holds("0.5 + 0.25 == 0.75"));
  EXPECT_TRUE(holds(R"("abc" == 'abc')"));
  EXPECT_TRUE(holds(R"("a\"b" == 'a"b')"));
  EXPECT_TRUE(holds(R"('it\'s' == "it's")"));
  EXPECT_TRUE(holds(R"("back\\slash" == 'back\\slash')"));
  EXPECT_TRUE(holds(R"([1, "two", [true, null]] == [1, "two", [true, null]])"));
  EXPECT_TRUE(holds("[] == []"));
  EXPECT_TRUE(holds("[-1, 2] == [-1.0, 2]"));
  EXPECT_TRUE(holds("-1 in [-1]"));
}

TEST(ExpressionTest, PathsLookUpTheContextAndMissingPathsAreNull) {
  EXPECT_TRUE(holds("principal.id == \"alice\""));
  EXPECT_TRUE(holds("args.amount == 250"));
  EXPECT_TRUE(holds("args.items.0.sku == \"A-1\""));
  EXPECT_TRUE(holds("args.items.1.qty == 1"));
  EXPECT_TRUE(holds("args.nested.a.1.b == 'c'"));
  EXPECT_TRUE(holds("args.keyed.0 == 'zero-key'")) << "a digits segment is a key on an object";
  EXPECT_TRUE(holds("args.items.2.sku == null")) << "index out of range";
  EXPECT_TRUE(holds("args.items.x == null")) << "name segment on a list";
  EXPECT_TRUE(holds("args.amount.cents == null")) << "segment below a number";
  EXPECT_TRUE(holds("nothing.here.at.all == null"));
  EXPECT_TRUE(holds("args.items.99999999999999999999999 == null")) << "index overflow";
  EXPECT_TRUE(holds("resource.owner == principal.id"));
}

// ---- arithmetic

TEST(ExpressionTest, ArithmeticAndPrecedence) {
  EXPECT_TRUE(holds("1 + 2 * 3 == 7"));
  EXPECT_TRUE(holds("(1 + 2) * 3 == 9"));
  EXPECT_TRUE(holds("10 - 4 - 3 == 3")) << "left-associative";
  EXPECT_TRUE(holds("8 / 4 / 2 == 1")) << "left-associative";
  EXPECT_TRUE(holds("7 / 2 == 3.5"));
  EXPECT_TRUE(holds("-2 * 3 == -6"));
  EXPECT_TRUE(holds("- -2 == 2"));
  EXPECT_TRUE(holds("-args.amount == -250"));
  EXPECT_TRUE(holds("2 * -args.negative == 6"));
  EXPECT_TRUE(holds("args.amount * 2 > 499"));
  EXPECT_TRUE(holds("1 + 2 == 3 and 2 * 2 == 4"));
}

TEST(ExpressionTest, ArithmeticErrors) {
  EXPECT_TRUE(contains(eval_error("1 / 0 == 1"), "division by zero"));
  EXPECT_TRUE(contains(eval_error("args.amount / args.zero > 1"), "division by zero"));
  EXPECT_TRUE(contains(eval_error("\"a\" + 1 == 1"), "'+' needs numbers, got string"));
  EXPECT_TRUE(contains(eval_error("args.missing + 1 == 1"), "got null"));
  EXPECT_TRUE(contains(eval_error("-'x' == 1"), "needs numbers"));
  std::string big = "1" + std::string(300, '0');
  EXPECT_TRUE(contains(eval_error(big + " * " + big + " > 0"), "not a finite number"));
}

// ---- comparisons

TEST(ExpressionTest, EqualityComparesAnyValues) {
  EXPECT_FALSE(holds("1 == \"1\"")) << "different types are unequal";
  EXPECT_TRUE(holds("1 != \"1\""));
  EXPECT_FALSE(holds("null == false"));
  EXPECT_FALSE(holds("args.missing == 0"));
  EXPECT_TRUE(holds("args.ints == [1, 2]")) << "ints and doubles compare numerically, deeply";
  EXPECT_FALSE(holds("args.ints == [2, 1]"));
  EXPECT_TRUE(holds("args.nested == args.same"));
  EXPECT_FALSE(holds("args.nested == args.items"));
  EXPECT_TRUE(holds("args.big > 1"));
  EXPECT_TRUE(holds("args.negative < args.big")) << "int64 against uint64";
  EXPECT_TRUE(holds("args.flag == true"));
}

TEST(ExpressionTest, OrderingWorksOnNumbersOrStringsOtherwiseFalse) {
  EXPECT_TRUE(holds("2 < 3"));
  EXPECT_TRUE(holds("3 <= 3"));
  EXPECT_TRUE(holds("4 > 3"));
  EXPECT_TRUE(holds("3 >= 3"));
  EXPECT_FALSE(holds("3 > 3"));
  EXPECT_TRUE(holds("'a' < 'b'"));
  EXPECT_TRUE(holds("'10' < '9'")) << "strings compare bytewise";
  EXPECT_FALSE(holds("1 < '2'"));
  EXPECT_FALSE(holds("1 >= '2'"));
  EXPECT_FALSE(holds("args.missing < 1"));
  EXPECT_FALSE(holds("args.missing >= 1"));
  EXPECT_TRUE(holds("not (args.missing > 1000)"));
  EXPECT_FALSE(holds("[1] < [2]"));
}

TEST(ExpressionTest, ComparisonsDoNotChain) {
  EXPECT_TRUE(contains(parse_error("1 < 2 < 3"), "do not chain"));
  EXPECT_TRUE(contains(parse_error("1 == 1 == true"), "do not chain"));
}

TEST(ExpressionTest, MembershipSubstringPrefixAndGlob) {
  EXPECT_TRUE(holds("'b' in ['a', 'b']"));
  EXPECT_TRUE(holds("2 in [1, 2.0]"));
  EXPECT_TRUE(holds("args.ints in [[1, 2], [3]]"));
  EXPECT_TRUE(holds("'support' in principal.roles"));
  EXPECT_TRUE(holds("'admin' not in principal.roles"));
  EXPECT_FALSE(holds("'x' in []"));
  EXPECT_TRUE(holds("'ell' in 'hello'"));
  EXPECT_FALSE(holds("1 in '1'")) << "substring needs a string";
  EXPECT_TRUE(holds("'EU' in args.currency"));
  EXPECT_FALSE(holds("'x' in args.missing")) << "a missing collection is empty";
  EXPECT_TRUE(holds("'x' not in args.missing"));
  EXPECT_TRUE(contains(eval_error("'x' in 5"), "must be a list or a string, got number"));
  EXPECT_TRUE(contains(eval_error("'x' not in args.nested"), "got object"));

  EXPECT_TRUE(holds("'tool:refund' startswith 'tool:'"));
  EXPECT_FALSE(holds("'tool:refund' startswith 'session:'"));
  EXPECT_FALSE(holds("1 startswith '1'"));
  EXPECT_TRUE(holds("'agent:support-7' matches 'agent:support-*'"));
  EXPECT_TRUE(holds("args.currency matches 'E?R'"));
  EXPECT_FALSE(holds("args.currency matches 'E?'"));
  EXPECT_FALSE(holds("args.amount matches '*'"));
}

// ---- logic

TEST(ExpressionTest, LogicAndPrecedence) {
  EXPECT_FALSE(holds("true and false"));
  EXPECT_TRUE(holds("true or false"));
  EXPECT_TRUE(holds("not false"));
  EXPECT_TRUE(holds("not not true"));
  EXPECT_TRUE(holds("true or false and false")) << "and binds tighter than or";
  EXPECT_FALSE(holds("(true or false) and false"));
  EXPECT_TRUE(holds("false and true or true"));
  EXPECT_TRUE(holds("not true == false")) << "not binds looser than ==";
  EXPECT_TRUE(holds("not 1 == 2"));
  EXPECT_FALSE(holds("not true or false"));
  EXPECT_TRUE(holds("not false and true")) << "not binds tighter than and";
  EXPECT_TRUE(holds("1 + 1 == 2 and 'a' in ['a'] or false"));
  EXPECT_TRUE(holds("AND_not_a_keyword == null")) << "keywords are case-sensitive";
}

TEST(ExpressionTest, AndOrShortCircuit) {
  EXPECT_FALSE(holds("false and 1 / 0 == 1"));
  EXPECT_TRUE(holds("true or 1 / 0 == 1"));
  EXPECT_TRUE(holds("true or count('refund', '24h') > 0")) << "history is not consulted";
  EXPECT_TRUE(contains(eval_error("true and 1 / 0 == 1"), "division by zero"));
}

TEST(ExpressionTest, TypeErrorsAndNonBooleanResults) {
  EXPECT_TRUE(contains(eval_error("1 and true"), "'and' needs true or false, got number"));
  EXPECT_TRUE(contains(eval_error("false or 'yes'"), "'or' needs true or false, got string"));
  EXPECT_TRUE(contains(eval_error("not args.missing"), "'not' needs true or false, got null"));
  EXPECT_TRUE(contains(eval_error("1 + 1"), "must produce true or false, got number"));
  EXPECT_TRUE(contains(eval_error("args"), "got object"));
  EXPECT_TRUE(contains(eval_error("args.missing"), "got null"));
  EXPECT_TRUE(contains(eval_error("'x'"), "got string"));
  EXPECT_TRUE(contains(eval_error("[true]"), "got list"));
}

TEST(ExpressionTest, Len) {
  EXPECT_TRUE(holds("len('abc') == 3"));
  EXPECT_TRUE(holds("len(args.name) == 5")) << "characters, not bytes";
  EXPECT_TRUE(holds("len(args.items) == 2"));
  EXPECT_TRUE(holds("len([]) == 0"));
  EXPECT_TRUE(contains(eval_error("len(5) == 1"), "len() needs a string or a list, got number"));
  EXPECT_TRUE(contains(eval_error("len(args.missing) == 0"), "got null"));
}

// ---- parse errors and limits

TEST(ExpressionTest, ParseErrorsNamePositionAndProblem) {
  EXPECT_EQ(parse_error("1 == "),
            "expression error at position 6: expected a value but found the end of the expression");
  EXPECT_TRUE(contains(parse_error("foo(1) == 1"), "position 1: unknown function 'foo'"));
  EXPECT_TRUE(contains(parse_error("args.len(1)"), "unknown function 'args.len'"));
  EXPECT_TRUE(contains(parse_error("count('refund') < 3"), "count(tool, window) takes 2 argument(s), got 1"));
  EXPECT_TRUE(contains(parse_error("sum('refund', '24h') < 3"), "takes 3 argument(s), got 2"));
  EXPECT_TRUE(contains(parse_error("len() == 0"), "got 0"));
  EXPECT_TRUE(contains(parse_error("count('refund', '24hours') < 3"), "position 17: window \"24hours\""));
  EXPECT_TRUE(contains(parse_error("count(3, '24h') < 3"), "the tool must be a non-empty string"));
  EXPECT_TRUE(contains(parse_error("sum('refund', '', '1h') < 3"), "argument path must be a non-empty string"));
  EXPECT_TRUE(contains(parse_error("(1 == 1"), "expected ')' to close '(' at position 1"));
  EXPECT_TRUE(contains(parse_error("1 == 1)"), "position 7: unexpected ')'"));
  EXPECT_TRUE(contains(parse_error("a = 1"), "use '==' to compare"));
  EXPECT_TRUE(contains(parse_error("!a"), "use 'not'"));
  EXPECT_TRUE(contains(parse_error("a && b"), "use 'and'"));
  EXPECT_TRUE(contains(parse_error("a || b"), "use 'or'"));
  EXPECT_TRUE(contains(parse_error("'open == 1"), "unterminated string"));
  EXPECT_TRUE(contains(parse_error(R"("a\nb" == 1)"), "unknown escape '\\n'"));
  EXPECT_TRUE(contains(parse_error("true.x == 1"), "'true' is a keyword and cannot start a path"));
  EXPECT_TRUE(contains(parse_error("args. == 1"), "expected a path segment after '.'"));
  EXPECT_TRUE(contains(parse_error("3h == 1"), "unexpected 'h' after a number"));
  EXPECT_TRUE(contains(parse_error("1.2.3 == 1"), "after a number"));
  EXPECT_TRUE(contains(parse_error("args.x in [args.y]"), "list elements must be literals"));
  EXPECT_TRUE(contains(parse_error("and == 1"), "expected a value but found 'and'"));
  EXPECT_TRUE(contains(parse_error("1 + not true"), "expected a value but found 'not'"));
  EXPECT_TRUE(contains(parse_error("[1, 2"), "expected ',' or ']'"));
  EXPECT_TRUE(contains(parse_error("a # b"), "unexpected character '#'"));
  EXPECT_TRUE(contains(parse_error("a \x01 b"), "unexpected byte 0x01"));
  EXPECT_TRUE(contains(parse_error(""), "empty"));
  EXPECT_TRUE(contains(parse_error("   "), "empty"));
}

TEST(ExpressionTest, LimitsAreEnforcedAtParseTime) {
  EXPECT_TRUE(contains(parse_error(std::string(kExpressionBytesMax + 1, ' ') + "true"), "more than the limit of 4096"));
  EXPECT_TRUE(Expression::parse(std::string(kExpressionBytesMax - 4, ' ') + "true").is_ok());

  auto parenthesized = [](int depth) { return std::string(depth, '(') + "true" + std::string(depth, ')'); };
  EXPECT_TRUE(Expression::parse(parenthesized(kExpressionDepthMax)).is_ok());
  EXPECT_TRUE(contains(parse_error(parenthesized(kExpressionDepthMax + 1)), "nested deeper than 32 levels"));
  std::string nots;
  for (int i = 0; i <= kExpressionDepthMax; ++i) nots += "not ";
  EXPECT_TRUE(contains(parse_error(nots + "true"), "nested deeper"));
  EXPECT_TRUE(contains(parse_error(std::string(kExpressionDepthMax + 1, '-') + "1 == 1"), "nested deeper"));
  std::string brackets = std::string(kExpressionDepthMax + 1, '[') + std::string(kExpressionDepthMax + 1, ']');
  EXPECT_TRUE(contains(parse_error("1 in " + brackets), "nested deeper"));

  std::string sum = "1";
  for (int i = 0; i < 300; ++i) sum += "+1";
  EXPECT_TRUE(contains(parse_error(sum + " > 0"), "more than 512 nodes"));
  std::string tokens = "a";
  for (int i = 0; i < 600; ++i) tokens += "+a";
  EXPECT_TRUE(contains(parse_error(tokens), "too many tokens"));

  auto list = [](size_t elements) {
    std::string text = "1 in [";
    for (size_t i = 0; i < elements; ++i) text += (i ? ",1" : "1");
    return text + "]";
  };
  EXPECT_TRUE(Expression::parse(list(kListLiteralElementsMax)).is_ok());
  EXPECT_TRUE(contains(parse_error(list(kListLiteralElementsMax + 1)), "more than 256 elements"));

  EXPECT_TRUE(Expression::parse("'" + std::string(kStringLiteralBytesMax, 'x') + "' == 'x'").is_ok());
  EXPECT_TRUE(contains(parse_error("'" + std::string(kStringLiteralBytesMax + 1, 'x') + "' == 'x'"),
                       "string longer than 1024 bytes"));

  std::string path = "a";
  for (size_t i = 0; i < kPathSegmentsMax; ++i) path += ".b";
  EXPECT_TRUE(contains(parse_error(path + " == 1"), "more than 32 segments"));
  EXPECT_TRUE(contains(parse_error("1" + std::string(400, '0') + " > 0"), "number out of range"));
}

// Regression guard: values nested beyond kValueDepthMax are refused, not
// compared by unbounded recursion.
TEST(ExpressionTest, DeepContextValuesAreAnErrorNotACrash) {
  json::value deep = 1;
  for (int i = 0; i < kValueDepthMax + 5; ++i) deep = json::array{deep};
  json::object context;
  context["a"] = deep;
  context["b"] = deep;
  auto expression = Expression::parse("a == b");
  ASSERT_TRUE(expression.is_ok());
  auto result = expression->evaluate(context, nullptr);
  ASSERT_FALSE(result.is_ok());
  EXPECT_TRUE(contains(result.status().message(), "nested deeper than 64"));
}

TEST(ExpressionTest, CopiesShareTheTreeAndKeepTheText) {
  auto expression = Expression::parse("args.amount > 100");
  ASSERT_TRUE(expression.is_ok());
  Expression copy = *expression;
  EXPECT_EQ(copy.text(), "args.amount > 100");
  EXPECT_TRUE(*copy.evaluate(sample_context(), nullptr));
}

// ---- history functions

TEST(ExpressionHistoryTest, AtMostThreeRefundsIn24Hours) {
  FakeHistory history;
  history.add("refund", 60'000);
  history.add("refund", 3'600'000);
  history.add("refund", 2 * 86'400'000LL);  // outside the window
  history.add("lookup", 1'000);
  const char* rule = "count(\"refund\", \"24h\") < 3";
  EXPECT_TRUE(holds(rule, &history));
  EXPECT_EQ(history.last_window_ms, 86'400'000);
  history.add("refund", 5'000);
  EXPECT_FALSE(holds(rule, &history));
  EXPECT_TRUE(holds("count('lookup', '1s') == 0", &history));
  EXPECT_TRUE(holds("count('lookup', 1001) == 1", &history)) << "a number is milliseconds";
}

TEST(ExpressionHistoryTest, TotalRefundAmountOver24Hours) {
  FakeHistory history;
  history.add("refund", 60'000, object_of(R"({"amount": 3000})"));
  history.add("refund", 120'000, object_of(R"({"amount": "not a number"})"));
  history.add("refund", 3 * 86'400'000LL, object_of(R"({"amount": 100000})"));
  const char* rule = "sum(\"refund\", \"amount\", \"24h\") + args.amount <= 5000";
  EXPECT_TRUE(holds(rule, &history));  // 3000 + 250
  EXPECT_EQ(history.last_arg_path, "amount");
  history.add("refund", 1'000, object_of(R"({"amount": 1800})"));
  EXPECT_FALSE(holds(rule, &history));  // 4800 + 250
}

TEST(ExpressionHistoryTest, WindowParsing) {
  auto window = [](json::value value) { return parse_window_ms(value); };
  EXPECT_EQ(*window("30s"), 30'000);
  EXPECT_EQ(*window("15m"), 900'000);
  EXPECT_EQ(*window("24h"), 86'400'000);
  EXPECT_EQ(*window("7d"), 604'800'000);
  EXPECT_EQ(*window("250ms"), 250);
  EXPECT_EQ(*window("366d"), kWindowMsMax);
  EXPECT_EQ(*window(60000), 60'000);
  EXPECT_EQ(*window(1500.0), 1'500);
  for (const char* bad : {"24hours", "0h", "-1h", "h", "1.5h", "", " 1h", "1H", "367d", "9999999999999d"}) {
    EXPECT_FALSE(window(bad).is_ok()) << bad;
  }
  EXPECT_FALSE(window(0).is_ok());
  EXPECT_FALSE(window(-5).is_ok());
  EXPECT_FALSE(window(1.5).is_ok());
  EXPECT_FALSE(window(1e300).is_ok());
  EXPECT_FALSE(window(true).is_ok());
  EXPECT_FALSE(window(nullptr).is_ok());
}

TEST(ExpressionHistoryTest, WindowsAndToolsFromTheContextAreCheckedWhenEvaluated) {
  FakeHistory history;
  history.add("refund", 60'000);
  EXPECT_TRUE(holds("count('refund', args.window) == 1", &history));
  EXPECT_EQ(history.last_window_ms, 3'600'000);
  EXPECT_TRUE(contains(eval_error("count('refund', args.currency) == 1", &history), "window \"EUR\""));
  EXPECT_TRUE(contains(eval_error("count(args.amount, '1h') == 1", &history), "needs the tool as a non-empty string"));
}

TEST(ExpressionHistoryTest, WithoutHistoryCountAndSumAreErrors) {
  EXPECT_TRUE(contains(eval_error("count('refund', '24h') < 3"), "count() needs the session's call history"));
  EXPECT_TRUE(contains(eval_error("sum('refund', 'amount', '24h') < 3"), "sum() needs the session's call history"));
}

TEST(ExpressionHistoryTest, HistoryErrorsPassThrough) {
  FakeHistory history;
  history.fail = true;
  auto result = eval("count('refund', '24h') < 3", &history);
  ASSERT_FALSE(result.is_ok());
  EXPECT_EQ(result.status().code(), Code::kUnavailable);
}

// ---- documents

constexpr const char* kSupportPolicy = R"(
# Support agents may refund; large refunds need a human.
statements:
  - id: support-tools
    effect: allow
    principal: ["agent:support-*"]
    action: tool:invoke
    resource: [tool:refund, tool:lookup]
  - id: large-refunds
    effect: require_approval
    principal: "*"
    action: tool:invoke
    resource: tool:refund
    when: args.amount > 1000
  - effect: deny
    principal: role:suspended
    action: "*"
)";

TEST(PolicyDocumentTest, ParsesYaml) {
  auto policy = PolicyDocument::parse(kSupportPolicy);
  ASSERT_TRUE(policy.is_ok()) << policy.status().to_string();
  ASSERT_EQ(policy->statements.size(), 3u);
  const Statement& first = policy->statements[0];
  EXPECT_EQ(first.id, "support-tools");
  EXPECT_EQ(first.effect, Effect::kAllow);
  EXPECT_EQ(first.principals, std::vector<std::string>{"agent:support-*"});
  EXPECT_EQ(first.actions, std::vector<std::string>{"tool:invoke"});
  EXPECT_EQ(first.resources, (std::vector<std::string>{"tool:refund", "tool:lookup"}));
  EXPECT_FALSE(first.when.has_value());
  EXPECT_EQ(policy->statements[1].effect, Effect::kRequireApproval);
  ASSERT_TRUE(policy->statements[1].when.has_value());
  EXPECT_EQ(policy->statements[1].when->text(), "args.amount > 1000");
  EXPECT_EQ(policy->statements[2].id, "statement-3") << "default id";
  EXPECT_EQ(policy->statements[2].resources, std::vector<std::string>{"*"}) << "default resource";
}

TEST(PolicyDocumentTest, ParsesJson) {
  auto policy = PolicyDocument::parse(R"(  {"statements": [{"effect": "deny", "principal": "user:mallory",
      "action": ["session:*", "tool:invoke"], "when": "count(\"refund\", \"1h\") >= 1"}]})");
  ASSERT_TRUE(policy.is_ok()) << policy.status().to_string();
  ASSERT_EQ(policy->statements.size(), 1u);
  EXPECT_EQ(policy->statements[0].id, "statement-1");
  EXPECT_EQ(policy->statements[0].actions, (std::vector<std::string>{"session:*", "tool:invoke"}));
  EXPECT_TRUE(PolicyDocument::parse(R"({"statements": []})").is_ok()) << "an empty policy denies everything";
}

Status document_error(const std::string& text) {
  auto policy = PolicyDocument::parse(text);
  EXPECT_FALSE(policy.is_ok()) << text;
  if (policy.is_ok()) return Status::ok();
  EXPECT_EQ(policy.status().code(), Code::kInvalidArgument);
  return policy.status();
}

TEST(PolicyDocumentTest, UnknownKeysAreErrorsSoTyposCannotChangeAPolicy) {
  EXPECT_EQ(document_error("statements: []\nversion: 2\n").param(), "version");
  EXPECT_EQ(document_error("statements:\n  - effect: allow\n    principals: '*'\n    action: '*'\n").param(),
            "statements[0].principals");
  EXPECT_EQ(document_error(R"({"statements": [{"effect": "allow", "principal": "*", "action": "*",
                               "condition": "true"}]})").param(),
            "statements[0].condition");
}

TEST(PolicyDocumentTest, FieldErrorsNameTheParam) {
  auto statement = [](const std::string& fields) {
    return R"({"statements": [{"effect": "allow", "principal": "*", "action": "*"}, )" + fields + "]}";
  };
  EXPECT_EQ(document_error(statement(R"({"effect": "permit", "principal": "*", "action": "*"})")).param(),
            "statements[1].effect");
  EXPECT_EQ(document_error(statement(R"({"effect": 1, "principal": "*", "action": "*"})")).param(),
            "statements[1].effect");
  EXPECT_EQ(document_error(statement(R"({"principal": "*", "action": "*"})")).param(), "statements[1].effect");
  EXPECT_EQ(document_error(statement(R"({"effect": "deny", "action": "*"})")).param(), "statements[1].principal");
  EXPECT_EQ(document_error(statement(R"({"effect": "deny", "principal": "*"})")).param(), "statements[1].action");
  EXPECT_EQ(document_error(statement(R"({"effect": "deny", "principal": [], "action": "*"})")).param(),
            "statements[1].principal");
  EXPECT_EQ(document_error(statement(R"({"effect": "deny", "principal": ["a", 2], "action": "*"})")).param(),
            "statements[1].principal[1]");
  EXPECT_EQ(document_error(statement(R"({"effect": "deny", "principal": "*", "action": "*", "resource": ""})"))
                .param(),
            "statements[1].resource");
  EXPECT_EQ(document_error(statement(R"({"effect": "deny", "principal": "a\tb", "action": "*"})")).param(),
            "statements[1].principal");
  EXPECT_EQ(document_error(statement(R"({"effect": "deny", "principal": "*", "action": "*", "when": "1 +"})"))
                .param(),
            "statements[1].when");
  EXPECT_TRUE(contains(
      document_error(statement(R"j({"effect": "deny", "principal": "*", "action": "*", "when": "nope(1)"})j"))
          .message(),
      "statements[1].when: expression error at position 1: unknown function 'nope'"));
  EXPECT_EQ(document_error(statement(R"({"effect": "deny", "principal": "*", "action": "*", "when": true})"))
                .param(),
            "statements[1].when");
  EXPECT_EQ(document_error(statement(R"({"id": "has space", "effect": "deny", "principal": "*", "action": "*"})"))
                .param(),
            "statements[1].id");
  EXPECT_EQ(document_error(statement("\"just a string\"")).param(), "statements[1]");
}

TEST(PolicyDocumentTest, DuplicateIdsAreRefused) {
  Status status = document_error(R"({"statements": [
      {"id": "a", "effect": "allow", "principal": "*", "action": "*"},
      {"id": "a", "effect": "deny", "principal": "*", "action": "*"}]})");
  EXPECT_EQ(status.param(), "statements[1].id");
  EXPECT_TRUE(contains(status.message(), "duplicate statement id 'a' (also statements[0])"));
  // A default id counts too.
  EXPECT_EQ(document_error(R"({"statements": [
      {"effect": "allow", "principal": "*", "action": "*"},
      {"id": "statement-1", "effect": "deny", "principal": "*", "action": "*"}]})").param(),
            "statements[1].id");
}

TEST(PolicyDocumentTest, ShapeErrors) {
  EXPECT_EQ(document_error("").message(), "a policy must be a mapping with a 'statements' list");
  EXPECT_EQ(document_error("- a\n- b\n").message(), "a policy must be a mapping with a 'statements' list");
  EXPECT_EQ(document_error("other: 1\n").param(), "other");
  EXPECT_EQ(document_error("{}").param(), "statements");
  EXPECT_EQ(document_error("statements: allow-all\n").param(), "statements");
  EXPECT_TRUE(contains(document_error("statements: [\n").message(), "policy is not valid YAML"));
  EXPECT_TRUE(contains(document_error("{\"statements\": [").message(), "policy is not valid JSON"));
  EXPECT_TRUE(contains(document_error("statements: []\nstatements: []\n").message(), "duplicate key 'statements'"));
  EXPECT_TRUE(contains(document_error("? [a, b]\n: 1\n").message(), "keys must be plain strings"));
}

// Regression (fuzzer): invalid UTF-8 in a YAML pattern made to_json() emit
// JSON that did not parse again.
TEST(PolicyDocumentTest, TextMustBeValidUtf8SoToJsonRoundTrips) {
  EXPECT_TRUE(contains(document_error("statements:\n  - {effect: allow, principal: \"a\xdf\xec\", action: x}\n")
                           .message(),
                       "line 2, column 32: text is not valid UTF-8"));
  EXPECT_TRUE(contains(document_error("statements:\n  - {effect: allow, principal: \"\\uD800\", action: x}\n")
                           .message(),
                       "invalid unicode"))
      << "yaml-cpp refuses a lone surrogate escape itself";
  EXPECT_FALSE(PolicyDocument::parse("{\"statements\": [{\"effect\": \"allow\", \"principal\": \"\xdf\", "
                                     "\"action\": \"x\"}]}").is_ok());
  EXPECT_TRUE(PolicyDocument::parse("statements:\n  - {effect: allow, principal: \"user:j\xc3\xbcrgen\", action: x}\n")
                  .is_ok());
}

TEST(PolicyDocumentTest, Limits) {
  EXPECT_TRUE(contains(document_error(std::string(kPolicyBytesMax + 1, '\n')).message(), "at most 262144 bytes"));

  auto statements = [](size_t count) {
    std::string text = R"({"statements": [)";
    for (size_t i = 0; i < count; ++i) {
      text += std::string(i ? "," : "") + R"({"effect":"deny","principal":"*","action":"*"})";
    }
    return text + "]}";
  };
  EXPECT_TRUE(PolicyDocument::parse(statements(kStatementsMax)).is_ok());
  EXPECT_EQ(document_error(statements(kStatementsMax + 1)).param(), "statements");

  auto patterns = [](size_t count, size_t bytes) {
    std::string text = R"({"statements": [{"effect":"deny","action":"*","principal":[)";
    for (size_t i = 0; i < count; ++i) text += std::string(i ? "," : "") + "\"" + std::string(bytes, 'p') + "\"";
    return text + "]}]}";
  };
  EXPECT_TRUE(PolicyDocument::parse(patterns(kPatternsPerFieldMax, kPatternBytesMax)).is_ok());
  EXPECT_EQ(document_error(patterns(kPatternsPerFieldMax + 1, 1)).param(), "statements[0].principal");
  EXPECT_EQ(document_error(patterns(1, kPatternBytesMax + 1)).param(), "statements[0].principal[0]");

  std::string id(kStatementIdBytesMax, 'i');
  EXPECT_TRUE(PolicyDocument::parse(R"({"statements": [{"id": ")" + id + R"(", "effect": "deny", "principal": "*",
                                    "action": "*"}]})").is_ok());
  EXPECT_EQ(document_error(R"({"statements": [{"id": ")" + id + R"(x", "effect": "deny", "principal": "*",
                           "action": "*"}]})").param(),
            "statements[0].id");
}

// Regression guard: YAML aliases can describe a tree exponentially larger
// than the text ("billion laughs"), so a policy may not use them at all.
TEST(PolicyDocumentTest, YamlAliasesAreRefused) {
  std::string laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 8; ++i) {
    std::string previous = "*a" + std::to_string(i - 1);
    laughs += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + previous;
    for (int j = 1; j < 16; ++j) laughs += ", " + previous;
    laughs += "]\n";
  }
  EXPECT_TRUE(contains(document_error(laughs + "statements: *a7\n").message(), "aliases (*name) are not allowed"));
  Status status = document_error(R"(statements:
  - {effect: allow, principal: &everyone "*", action: "*"}
  - {effect: deny, principal: *everyone, action: "*"}
)");
  EXPECT_EQ(status.message(), "policy YAML line 3, column 31: YAML aliases (*name) are not allowed in a policy");
}

TEST(PolicyDocumentTest, OneYamlDocument) {
  EXPECT_TRUE(contains(document_error("statements: []\n---\nstatements: []\n").message(),
                       "a policy is a single YAML document"));
  EXPECT_TRUE(PolicyDocument::parse("---\nstatements: []\n...\n").is_ok());
}

TEST(PolicyDocumentTest, DeeplyNestedYamlIsAnErrorNotACrash) {
  EXPECT_FALSE(PolicyDocument::parse("statements: " + std::string(5000, '[') + std::string(5000, ']')).is_ok());
  std::string dashes = "statements:\n";
  for (int i = 0; i < 5000; ++i) dashes += "- ";
  EXPECT_FALSE(PolicyDocument::parse(dashes + "x\n").is_ok());
  EXPECT_FALSE(PolicyDocument::parse(R"({"statements": )" + std::string(5000, '[') + std::string(5000, ']') + "}")
                   .is_ok());
}

TEST(PolicyDocumentTest, ToJsonIsCanonicalAndRoundTrips) {
  auto policy = PolicyDocument::parse(kSupportPolicy);
  ASSERT_TRUE(policy.is_ok());
  json::value canonical = policy->to_json();
  const json::object& third = canonical.at("statements").at(2).as_object();
  EXPECT_EQ(third.at("id"), "statement-3");
  EXPECT_EQ(third.at("resource"), (json::array{"*"}));
  EXPECT_EQ(third.at("principal"), (json::array{"role:suspended"}));
  EXPECT_FALSE(third.contains("when"));
  EXPECT_EQ(canonical.at("statements").at(1).at("when"), "args.amount > 1000");

  auto again = PolicyDocument::parse(to_json(canonical));
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(to_json(again->to_json()), to_json(canonical));
}

// ---- evaluation

Request make_request(std::vector<std::string> identities, std::string action, std::string resource,
                     json::object context = {}) {
  Request request;
  request.identities = std::move(identities);
  request.action = std::move(action);
  request.resource = std::move(resource);
  request.context = std::move(context);
  return request;
}

PolicyDocument policy_of(const std::string& text) {
  auto policy = PolicyDocument::parse(text);
  EXPECT_TRUE(policy.is_ok()) << policy.status().to_string();
  return policy.is_ok() ? std::move(policy).value() : PolicyDocument{};
}

TEST(PolicyEvaluateTest, ConditionOnArgumentsRequiresApproval) {
  PolicyDocument policy = policy_of(kSupportPolicy);
  auto refund = [](int amount) {
    return make_request({"user:alice", "role:member", "agent:support-bot"}, "tool:invoke", "tool:refund",
                        object_of(R"({"args": {"amount": )" + std::to_string(amount) + "}}"));
  };
  Decision small = evaluate(policy, refund(500));
  EXPECT_EQ(small.effect, Effect::kAllow);
  EXPECT_EQ(small.statement_id, "support-tools");
  EXPECT_EQ(small.reason, "statement 'support-tools' allows tool:invoke on tool:refund");

  Decision large = evaluate(policy, refund(1500));
  EXPECT_EQ(large.effect, Effect::kRequireApproval) << "require_approval wins over allow";
  EXPECT_EQ(large.statement_id, "large-refunds");
  EXPECT_EQ(large.reason, "statement 'large-refunds' requires approval for tool:invoke on tool:refund");
}

TEST(PolicyEvaluateTest, ExplicitDenyWinsOverAllowAndApproval) {
  PolicyDocument policy = policy_of(kSupportPolicy);
  Decision decision = evaluate(policy, make_request({"user:bob", "role:suspended", "agent:support-bot"},
                                                    "tool:invoke", "tool:refund",
                                                    object_of(R"({"args": {"amount": 5000}})")));
  EXPECT_EQ(decision.effect, Effect::kDeny);
  EXPECT_EQ(decision.statement_id, "statement-3");
  EXPECT_EQ(decision.reason, "statement 'statement-3' denies tool:invoke on tool:refund");
}

TEST(PolicyEvaluateTest, FirstApplicableDenyIsNamed) {
  PolicyDocument policy = policy_of(R"(statements:
  - {id: allow-all, effect: allow, principal: "*", action: "*"}
  - {id: deny-one, effect: deny, principal: "user:*", action: "*"}
  - {id: deny-two, effect: deny, principal: "*", action: "*"}
)");
  Decision decision = evaluate(policy, make_request({"user:a"}, "session:read", "session:s1"));
  EXPECT_EQ(decision.effect, Effect::kDeny);
  EXPECT_EQ(decision.statement_id, "deny-one");
}

TEST(PolicyEvaluateTest, DefaultDeny) {
  PolicyDocument policy = policy_of(kSupportPolicy);
  Decision decision = evaluate(policy, make_request({"user:alice", "agent:billing"}, "tool:invoke", "tool:refund"));
  EXPECT_EQ(decision.effect, Effect::kDeny);
  EXPECT_EQ(decision.statement_id, "");
  EXPECT_EQ(decision.reason, "no statement allows tool:invoke on tool:refund");
  Decision empty = evaluate(PolicyDocument{}, make_request({"user:alice"}, "session:read", "session:x"));
  EXPECT_EQ(empty.effect, Effect::kDeny);
  EXPECT_TRUE(empty.trace.empty());
}

TEST(PolicyEvaluateTest, AnyIdentityInTheChainCanMatch) {
  PolicyDocument policy = policy_of(R"(statements:
  - {id: admins, effect: allow, principal: role:admin, action: "session:*", resource: "session:*"}
  - {id: support-agents, effect: allow, principal: "agent:support-*", action: tool:invoke, resource: tool:lookup}
)");
  EXPECT_EQ(evaluate(policy, make_request({"user:root", "role:admin"}, "session:delete", "session:s1")).statement_id,
            "admins");
  EXPECT_EQ(evaluate(policy, make_request({"user:root", "role:member"}, "session:delete", "session:s1")).effect,
            Effect::kDeny);
  Decision agent =
      evaluate(policy, make_request({"user:carol", "role:member", "agent:support-7"}, "tool:invoke", "tool:lookup"));
  EXPECT_EQ(agent.effect, Effect::kAllow);
  EXPECT_EQ(agent.statement_id, "support-agents");
  EXPECT_EQ(evaluate(policy, make_request({"user:carol", "agent:support-7"}, "tool:invoke", "tool:refund")).effect,
            Effect::kDeny)
      << "resource must match too";
  EXPECT_EQ(evaluate(policy, make_request({"Role:admin"}, "session:read", "session:s1")).effect, Effect::kDeny)
      << "patterns are case-sensitive";
  EXPECT_EQ(evaluate(policy, make_request({}, "session:read", "session:s1")).effect, Effect::kDeny)
      << "an empty chain matches no principal";
}

TEST(PolicyEvaluateTest, ConditionsSeeTheWholeContext) {
  PolicyDocument policy = policy_of(R"(statements:
  - effect: allow
    principal: "user:*"
    action: session:read
    resource: "session:*"
    when: resource.owner == principal.id or 'auditor' in principal.roles
)");
  auto read = [&](const std::string& context) {
    return evaluate(policy, make_request({"user:x"}, "session:read", "session:s1", object_of(context))).effect;
  };
  EXPECT_EQ(read(R"({"principal": {"id": "x", "roles": []}, "resource": {"owner": "x"}})"), Effect::kAllow);
  EXPECT_EQ(read(R"({"principal": {"id": "x", "roles": []}, "resource": {"owner": "y"}})"), Effect::kDeny);
  EXPECT_EQ(read(R"({"principal": {"id": "x", "roles": ["auditor"]}, "resource": {"owner": "y"}})"), Effect::kAllow);
}

TEST(PolicyEvaluateTest, ConditionErrorsFailClosed) {
  PolicyDocument policy = policy_of(R"(statements:
  - {id: allow-refunds, effect: allow, principal: "*", action: tool:invoke, resource: tool:refund}
  - id: rate-limit
    effect: deny
    principal: "*"
    action: tool:invoke
    resource: tool:refund
    when: count("refund", "24h") >= 3
)");
  // No history: the deny's condition cannot be evaluated, so the deny applies.
  Decision decision = evaluate(policy, make_request({"user:a"}, "tool:invoke", "tool:refund"));
  EXPECT_EQ(decision.effect, Effect::kDeny);
  EXPECT_EQ(decision.statement_id, "rate-limit");
  EXPECT_TRUE(contains(decision.reason, "denies tool:invoke on tool:refund because its condition could not be "
                                        "evaluated (fail closed): "))
      << decision.reason;
  ASSERT_EQ(decision.trace.size(), 2u);
  EXPECT_TRUE(contains(decision.trace[1], "rate-limit (deny): applies (fail closed)")) << decision.trace[1];

  // With history the same policy allows.
  FakeHistory history;
  Request request = make_request({"user:a"}, "tool:invoke", "tool:refund");
  request.history = &history;
  EXPECT_EQ(evaluate(policy, request).effect, Effect::kAllow);
}

TEST(PolicyEvaluateTest, AnAllowWhoseConditionFailsDoesNotApply) {
  PolicyDocument policy = policy_of(R"(statements:
  - {id: ratio, effect: allow, principal: "*", action: "*", when: "args.amount / args.count < 10"}
)");
  Decision decision = evaluate(policy, make_request({"user:a"}, "tool:invoke", "tool:refund",
                                                    object_of(R"({"args": {"amount": 5, "count": 0}})")));
  EXPECT_EQ(decision.effect, Effect::kDeny);
  EXPECT_EQ(decision.statement_id, "");
  ASSERT_EQ(decision.trace.size(), 1u);
  EXPECT_TRUE(contains(decision.trace[0], "ratio (allow): does not apply (fail closed)")) << decision.trace[0];
  EXPECT_TRUE(contains(decision.trace[0], "division by zero")) << decision.trace[0];
}

TEST(PolicyEvaluateTest, ARequireApprovalWhoseConditionFailsApplies) {
  PolicyDocument policy = policy_of(R"(statements:
  - {id: all, effect: allow, principal: "*", action: "*"}
  - {id: review, effect: require_approval, principal: "*", action: "*", when: "args.amount > 1000 and 1"}
)");
  Decision decision = evaluate(policy, make_request({"user:a"}, "tool:invoke", "tool:refund",
                                                    object_of(R"({"args": {"amount": 5000}})")));
  EXPECT_EQ(decision.effect, Effect::kRequireApproval);
  EXPECT_EQ(decision.statement_id, "review");
}

TEST(PolicyEvaluateTest, TraceExplainsEveryStatement) {
  PolicyDocument policy = policy_of(kSupportPolicy);
  Decision decision = evaluate(policy, make_request({"user:alice", "agent:support-bot"}, "tool:invoke", "tool:refund",
                                                    object_of(R"({"args": {"amount": 10}})")));
  ASSERT_EQ(decision.trace.size(), 3u);
  EXPECT_EQ(decision.trace[0],
            "support-tools (allow): applies: principal 'agent:support-*' matched 'agent:support-bot', action "
            "'tool:invoke', resource 'tool:refund'");
  EXPECT_EQ(decision.trace[1],
            "large-refunds (require_approval): does not apply: principal '*' matched 'user:alice', action "
            "'tool:invoke', resource 'tool:refund'; when is false");
  EXPECT_EQ(decision.trace[2],
            "statement-3 (deny): does not apply: no principal pattern matches the identities [user:alice, "
            "agent:support-bot]");

  Decision other = evaluate(policy, make_request({"agent:support-bot"}, "session:read", "session:s1"));
  EXPECT_EQ(other.trace[0], "support-tools (allow): does not apply: action 'session:read' matches no action pattern");
  Decision lookup = evaluate(policy, make_request({"agent:support-bot"}, "tool:invoke", "tool:delete"));
  EXPECT_EQ(lookup.trace[0], "support-tools (allow): does not apply: resource 'tool:delete' matches no resource "
                             "pattern");
}

TEST(PolicyEvaluateTest, EffectNames) {
  EXPECT_STREQ(effect_name(Effect::kAllow), "allow");
  EXPECT_STREQ(effect_name(Effect::kDeny), "deny");
  EXPECT_STREQ(effect_name(Effect::kRequireApproval), "require_approval");
}

TEST(CanonicalRequestTest, SortsKeysRecursivelyAndIgnoresInsertionOrder) {
  Request a = make_request({"user:a", "agent:x"}, "tool:invoke", "tool:refund",
                           object_of(R"({"z": 1, "args": {"b": [{"y": 1, "x": 2}], "a": null}})"));
  Request b = make_request({"user:a", "agent:x"}, "tool:invoke", "tool:refund",
                           object_of(R"({"args": {"a": null, "b": [{"x": 2, "y": 1}]}, "z": 1})"));
  EXPECT_EQ(canonical_request_json(a), canonical_request_json(b));
  EXPECT_EQ(canonical_request_json(a),
            R"({"action":"tool:invoke","context":{"args":{"a":null,"b":[{"x":2,"y":1}]},"z":1},)"
            R"("identities":["user:a","agent:x"],"resource":"tool:refund"})");
  Request reordered = a;
  reordered.identities = {"agent:x", "user:a"};
  EXPECT_NE(canonical_request_json(a), canonical_request_json(reordered)) << "the chain's order is meaningful";
}

}  // namespace
}  // namespace continuum::policy
