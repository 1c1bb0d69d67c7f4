#include "providers/script.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace continuum {
namespace {

ScriptBook parse_book(std::string_view text) {
  Result<ScriptBook> book = ScriptBook::parse(text);
  EXPECT_TRUE(book.is_ok()) << book.status().to_string();
  return std::move(book).value();
}

json::object message(std::string_view role, json::value content) {
  return {{"role", role}, {"content", std::move(content)}};
}

json::object request(std::string_view model, std::vector<json::object> messages) {
  json::array array;
  for (auto& m : messages) array.push_back(std::move(m));
  return {{"model", model}, {"messages", std::move(array)}};
}

std::string content_of(const ScriptReply& reply) {
  EXPECT_EQ(reply.http_status, 200) << reply.error_body;
  const json::value* content = reply.message.if_contains("content");
  if (content == nullptr || !content->is_string()) return "<null>";
  return std::string(content->as_string());
}

constexpr std::string_view kThreeSteps = R"({"scripts": {"m": {"steps": [
  {"content": "a"}, {"content": "b"}, {"content": "c"}]}}})";

TEST(ScriptBookTest, StepIsChosenByAssistantMessagesAfterLastUser) {
  ScriptBook book = parse_book(kThreeSteps);
  EXPECT_EQ(content_of(book.respond(request("m", {message("user", "hi")}))), "a");
  EXPECT_EQ(content_of(book.respond(request("m", {message("user", "hi"), message("assistant", "a")}))), "b");
  EXPECT_EQ(content_of(book.respond(request(
                "m", {message("system", "s"), message("user", "hi"), message("assistant", nullptr),
                      message("tool", "r"), message("assistant", "b")}))),
            "c");
  // Past the end: clamped to the last step.
  EXPECT_EQ(content_of(book.respond(request(
                "m", {message("user", "hi"), message("assistant", "a"), message("assistant", "b"),
                      message("assistant", "c"), message("assistant", "c")}))),
            "c");
  // A new user message starts the script again.
  EXPECT_EQ(content_of(book.respond(request(
                "m", {message("user", "hi"), message("assistant", "a"), message("user", "again")}))),
            "a");
}

TEST(ScriptBookTest, RepeatCountsAsConsecutiveSteps) {
  ScriptBook book = parse_book(R"({"scripts": {"m": {"steps": [
    {"content": "x", "repeat": 3}, {"content": "y"}]}}})");
  std::vector<json::object> messages{message("user", "go")};
  std::vector<std::string> seen;
  for (int k = 0; k < 6; ++k) {
    seen.push_back(content_of(book.respond(request("m", messages))));
    messages.push_back(message("assistant", "..."));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"x", "x", "x", "y", "y", "y"}));
}

TEST(ScriptBookTest, TemplatesExpandInContentAndNestedArguments) {
  ScriptBook book = parse_book(R"({"scripts": {"m": {"steps": [
    {"content": "got {{tool_results}} for {{input}} on turn {{turn}} {{unknown}}",
     "tool_calls": [{"name": "t", "arguments":
        {"id": "{{input}}", "list": ["{{turn}}", 5], "nested": {"r": "{{tool_results}}"}}}]}]}}})");
  json::array parts{json::object{{"type", "text"}, {"text", "claim-"}},
                    json::object{{"type", "text"}, {"text", "42"}}};
  ScriptReply reply = book.respond(request(
      "m", {message("user", "old"), message("assistant", "x"), message("tool", "stale"),
            message("user", std::move(parts)), message("tool", "r1"), message("tool", "r2")}));
  ASSERT_EQ(reply.http_status, 200) << reply.error_body;
  EXPECT_EQ(content_of(reply), "got r1; r2 for claim-42 on turn 2 {{unknown}}");
  std::string arguments_text(reply.message.at("tool_calls").at(0).at("function").at("arguments").as_string());
  json::value arguments = json::parse(arguments_text);
  EXPECT_EQ(arguments, json::parse(R"({"id":"claim-42","list":["2",5],"nested":{"r":"r1; r2"}})"));
}

TEST(ScriptBookTest, SubstitutedInputIsNotExpandedAgain) {
  ScriptBook book = parse_book(R"({"scripts": {"m": {"steps": [{"content": "[{{input}}]"}]}}})");
  EXPECT_EQ(content_of(book.respond(request("m", {message("user", "{{turn}}")}))), "[{{turn}}]");
}

TEST(ScriptBookTest, FailuresComeFirstThenSuccess) {
  ScriptBook book = parse_book(R"({"scripts": {"m": {"steps": [
    {"content": "ok", "fail": [429, 500], "retry_after_s": 3, "delay_ms": 7}]}}})");
  json::object req = request("m", {message("user", "hi")});

  ScriptReply first = book.respond(req);
  EXPECT_EQ(first.http_status, 429);
  EXPECT_EQ(first.retry_after_s, 3);
  EXPECT_EQ(first.delay_ms, 7);
  EXPECT_TRUE(first.failure_injected);
  json::value body = json::parse(first.error_body);
  EXPECT_EQ(body.at("error").at("type"), "rate_limit_error");
  EXPECT_EQ(body.at("error").at("code"), "rate_limit_exceeded");
  EXPECT_TRUE(body.at("error").at("message").is_string());

  ScriptReply second = book.respond(req);
  EXPECT_EQ(second.http_status, 500);
  EXPECT_EQ(second.retry_after_s, -1);  // Retry-After only for 429
  EXPECT_EQ(json::parse(second.error_body).at("error").at("type"), "server_error");

  ScriptReply third = book.respond(req);
  EXPECT_EQ(content_of(third), "ok");
  EXPECT_FALSE(third.failure_injected);
  EXPECT_EQ(third.delay_ms, 7);
  EXPECT_EQ(content_of(book.respond(req)), "ok");

  // A different conversation has its own attempt count.
  EXPECT_EQ(book.respond(request("m", {message("user", "other")})).http_status, 429);
}

TEST(ScriptBookTest, RetryAfterDefaultsToOneSecond) {
  ScriptBook book = parse_book(R"({"scripts": {"m": {"steps": [{"content": "ok", "fail": [429]}]}}})");
  EXPECT_EQ(book.respond(request("m", {message("user", "hi")})).retry_after_s, 1);
}

TEST(ScriptBookTest, ConcurrentAttemptsAreCountedExactly) {
  ScriptBook book = parse_book(R"({"scripts": {"m": {"steps": [{"content": "ok", "fail": [
    500,500,500,500,500,500,500,500,500,500,500,500,500,500,500,500,500,500,500,500]}]}}})");
  json::object req = request("m", {message("user", "hi")});
  std::atomic<int> failures{0};
  std::atomic<int> successes{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        (book.respond(req).http_status == 200 ? successes : failures) += 1;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 20);
  EXPECT_EQ(successes.load(), 20);
}

TEST(ScriptBookTest, ToolCallIdsAreDeterministic) {
  ScriptBook book = parse_book(R"({"scripts": {"m": {"steps": [
    {"tool_calls": [{"name": "a", "arguments": {"x": 1}}, {"name": "b"}]}]}}})");
  json::object req = request("m", {message("user", "hi")});
  ScriptReply first = book.respond(req);
  ScriptReply again = book.respond(req);
  ASSERT_EQ(first.http_status, 200);
  EXPECT_EQ(first.message, again.message);
  EXPECT_EQ(first.finish_reason, "tool_calls");
  EXPECT_TRUE(first.message.at("content").is_null());
  const json::array& calls = first.message.at("tool_calls").as_array();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].at("id"), "call_1_0_0");
  EXPECT_EQ(calls[1].at("id"), "call_1_0_1");
  EXPECT_EQ(calls[0].at("type"), "function");
  EXPECT_EQ(calls[0].at("function").at("name"), "a");
  EXPECT_EQ(calls[0].at("function").at("arguments"), R"({"x":1})");
  EXPECT_EQ(calls[1].at("function").at("arguments"), "{}");
  EXPECT_EQ(completion_meta(req, 5).id, completion_meta(req, 9).id);
}

TEST(ScriptBookTest, ContentOnlyReplyHasNoToolCallsAndStops) {
  ScriptBook book = parse_book(kThreeSteps);
  ScriptReply reply = book.respond(request("m", {message("user", "hi")}));
  EXPECT_EQ(reply.finish_reason, "stop");
  EXPECT_EQ(reply.message.if_contains("tool_calls"), nullptr);
  EXPECT_GE(reply.prompt_tokens, 1);
  EXPECT_GE(reply.completion_tokens, 1);
}

TEST(ScriptBookTest, UnknownModelUsesDefaultScript) {
  ScriptBook book = parse_book(R"({"scripts": {"m": {"steps": [{"content": "mine"}]},
                                               "default": {"steps": [{"content": "fallback"}]}}})");
  EXPECT_EQ(content_of(book.respond(request("m", {message("user", "hi")}))), "mine");
  EXPECT_EQ(content_of(book.respond(request("gpt-x", {message("user", "hi")}))), "fallback");
  EXPECT_TRUE(book.has_script("m"));
  EXPECT_FALSE(book.has_script("gpt-x"));
}

TEST(ScriptBookTest, UnknownModelWithoutDefaultIs404) {
  ScriptBook book = parse_book(kThreeSteps);
  ScriptReply reply = book.respond(request("gpt-x", {message("user", "hi")}));
  EXPECT_EQ(reply.http_status, 404);
  EXPECT_EQ(json::parse(reply.error_body).at("error").at("code"), "model_not_found");
}

TEST(ScriptBookTest, MalformedRequestsAre400) {
  ScriptBook book = parse_book(kThreeSteps);
  std::vector<json::object> bad{
      json::object{{"messages", json::array{message("user", "hi")}}},
      json::object{{"model", "m"}},
      json::object{{"model", "m"}, {"messages", "hi"}},
      json::object{{"model", "m"}, {"messages", json::array{}}},
      json::object{{"model", "m"}, {"messages", json::array{json::object{{"content", "no role"}}}}},
      json::object{{"model", 7}, {"messages", json::array{message("user", "hi")}}},
  };
  for (const json::object& req : bad) {
    ScriptReply reply = book.respond(req);
    EXPECT_EQ(reply.http_status, 400) << json::serialize(req);
    EXPECT_EQ(json::parse(reply.error_body).at("error").at("type"), "invalid_request_error");
  }
}

TEST(ScriptBookTest, ParseErrorsNameTheField) {
  struct Case {
    std::string text;
    std::string param;
  };
  std::vector<Case> cases{
      {R"({"scripts": )", ""},
      {R"([])", ""},
      {R"({})", "scripts"},
      {R"({"scripts": {}})", "scripts"},
      {R"({"scripts": {"m": {}}})", "scripts.m.steps"},
      {R"({"scripts": {"m": {"steps": []}}})", "scripts.m.steps"},
      {R"({"scripts": {"m": {"steps": [{}]}}})", "scripts.m.steps[0]"},
      {R"({"scripts": {"m": {"steps": [{"content": "a"}, {"contnet": "b"}]}}})", "scripts.m.steps[1].contnet"},
      {R"({"scripts": {"m": {"steps": [{"content": "a", "fail": [200]}]}}})", "scripts.m.steps[0].fail[0]"},
      {R"({"scripts": {"m": {"steps": [{"content": "a", "repeat": 0}]}}})", "scripts.m.steps[0].repeat"},
      {R"({"scripts": {"m": {"steps": [{"content": "a", "delay_ms": -1}]}}})", "scripts.m.steps[0].delay_ms"},
      {R"({"scripts": {"m": {"steps": [{"tool_calls": [{"arguments": {}}]}]}}})",
       "scripts.m.steps[0].tool_calls[0].name"},
      {R"({"scripts": {"m": {"steps": [{"tool_calls": [{"name": "t", "arguments": "{}"}]}]}}})",
       "scripts.m.steps[0].tool_calls[0].arguments"},
      {R"({"scripts": {"m": {"steps": [{"content": 5}]}}})", "scripts.m.steps[0].content"},
      {R"({"scripts": {"m": {"steps": [{"content": "a", "repeat": 60000000},
                                        {"content": "b", "repeat": 60000000}]}}})",
       "scripts.m.steps[1].repeat"},
  };
  for (const Case& c : cases) {
    Result<ScriptBook> book = ScriptBook::parse(c.text);
    ASSERT_FALSE(book.is_ok()) << c.text;
    EXPECT_EQ(book.status().code(), Code::kInvalidArgument) << c.text;
    EXPECT_EQ(book.status().param(), c.param) << c.text << " -> " << book.status().to_string();
    EXPECT_FALSE(book.status().message().empty());
  }
}

// Reassembles streamed chunks the way an OpenAI client does.
json::object reassemble(const std::vector<json::object>& chunks, std::string* finish_reason) {
  json::object message{{"role", nullptr}, {"content", nullptr}};
  json::array calls;
  for (const json::object& chunk : chunks) {
    EXPECT_EQ(chunk.at("object"), "chat.completion.chunk");
    const json::array& choices = chunk.at("choices").as_array();
    if (choices.empty()) continue;
    const json::object& delta = choices[0].at("delta").as_object();
    if (const json::value* role = delta.if_contains("role")) message["role"] = *role;
    const json::value* content = delta.if_contains("content");
    if (content != nullptr && content->is_string()) {
      std::string text = message["content"].is_string() ? std::string(message["content"].as_string()) : "";
      message["content"] = text + std::string(content->as_string());
    }
    if (const json::value* tool_calls = delta.if_contains("tool_calls")) {
      for (const json::value& call : tool_calls->as_array()) {
        EXPECT_EQ(call.at("index").as_int64(), static_cast<int64_t>(calls.size()));
        calls.push_back(json::object{{"id", call.at("id")}, {"type", call.at("type")}, {"function", call.at("function")}});
      }
    }
    if (!choices[0].at("finish_reason").is_null()) *finish_reason = choices[0].at("finish_reason").as_string();
  }
  if (!calls.empty()) message["tool_calls"] = std::move(calls);
  return message;
}

TEST(ScriptBookTest, StreamingChunksReassembleToTheSameMessage) {
  ScriptBook book = parse_book(R"({"scripts": {"m": {"steps": [
    {"content": "Triage for {{input}}: ünïcödé text spans several chunks ✓",
     "tool_calls": [{"name": "a", "arguments": {"q": "{{input}}"}}, {"name": "b"}]}]}}})");
  json::object req = request("m", {message("user", "claim-7")});
  req["stream"] = true;
  req["stream_options"] = json::object{{"include_usage", true}};
  ScriptReply reply = book.respond(req);
  ASSERT_EQ(reply.http_status, 200);
  CompletionMeta meta = completion_meta(req, 1700000000);
  EXPECT_TRUE(meta.include_usage);
  EXPECT_EQ(meta.model, "m");
  std::vector<json::object> chunks = render_chat_chunks(reply, meta);

  std::string finish_reason;
  EXPECT_EQ(reassemble(chunks, &finish_reason), reply.message);
  EXPECT_EQ(finish_reason, "tool_calls");
  for (const json::object& chunk : chunks) {
    EXPECT_EQ(chunk.at("id").as_string(), meta.id);
    EXPECT_EQ(chunk.at("created"), 1700000000);
    // Every chunk serializes as valid JSON (no UTF-8 sequence was cut).
    EXPECT_NO_THROW(json::parse(json::serialize(chunk)));
  }
  const json::object& last = chunks.back();
  EXPECT_TRUE(last.at("choices").as_array().empty());
  EXPECT_EQ(last.at("usage").at("total_tokens").as_int64(), reply.prompt_tokens + reply.completion_tokens);
  // Content arrives in several small pieces, not one.
  EXPECT_GT(chunks.size(), 8u);
}

TEST(ScriptBookTest, StreamingWithoutUsageAndWithoutContent) {
  ScriptBook book = parse_book(R"({"scripts": {"m": {"steps": [{"tool_calls": [{"name": "a"}]}]}}})");
  json::object req = request("m", {message("user", "hi")});
  ScriptReply reply = book.respond(req);
  std::vector<json::object> chunks = render_chat_chunks(reply, completion_meta(req, 1));
  ASSERT_EQ(chunks.size(), 3u);  // role, one tool call, finish
  for (const json::object& chunk : chunks) {
    EXPECT_EQ(chunk.if_contains("usage"), nullptr);
    EXPECT_EQ(chunk.at("choices").as_array().size(), 1u);
  }
  std::string finish_reason;
  EXPECT_EQ(reassemble(chunks, &finish_reason), reply.message);
}

TEST(ScriptBookTest, RendersNonStreamingCompletion) {
  ScriptBook book = parse_book(kThreeSteps);
  json::object req = request("m", {message("user", "hi")});
  ScriptReply reply = book.respond(req);
  json::object body = render_chat_completion(reply, completion_meta(req, 42));
  EXPECT_EQ(body.at("object"), "chat.completion");
  EXPECT_EQ(body.at("model"), "m");
  EXPECT_EQ(body.at("created"), 42);
  EXPECT_TRUE(body.at("id").as_string().starts_with("chatcmpl-"));
  const json::value& choice = body.at("choices").at(0);
  EXPECT_EQ(choice.at("index"), 0);
  EXPECT_EQ(choice.at("message"), reply.message);
  EXPECT_EQ(choice.at("finish_reason"), "stop");
  EXPECT_EQ(body.at("usage").at("prompt_tokens").as_int64(), reply.prompt_tokens);
  EXPECT_EQ(body.at("usage").at("completion_tokens").as_int64(), reply.completion_tokens);
}

// The offline demo's script (examples/mock-model/claims.json) drives the
// claims-triage flow: two parallel lookups, a ticket, then a summary.
TEST(ScriptBookTest, ClaimsExampleRunsTheTriageFlow) {
  std::filesystem::path path =
      std::filesystem::path(__FILE__).parent_path() / "../../../examples/mock-model/claims.json";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  std::stringstream text;
  text << in.rdbuf();
  ScriptBook book = parse_book(text.str());
  for (std::string_view model : {"claims-triage-mock", "some-other-model"}) {
    std::vector<json::object> messages{message("system", "triage"), message("user", "CLM-1042")};
    ScriptReply lookups = book.respond(request(model, messages));
    ASSERT_EQ(lookups.http_status, 200) << lookups.error_body;
    const json::array& calls = lookups.message.at("tool_calls").as_array();
    ASSERT_EQ(calls.size(), 2u);
    EXPECT_EQ(calls[0].at("function").at("name"), "lookup_policy");
    EXPECT_EQ(calls[1].at("function").at("name"), "check_fraud_signals");
    EXPECT_EQ(json::parse(calls[1].at("function").at("arguments").as_string()),
              json::parse(R"({"claim_id":"CLM-1042"})"));

    messages.push_back(lookups.message);
    messages.push_back(message("tool", "policy active"));
    messages.push_back(message("tool", "no fraud signals"));
    ScriptReply ticket = book.respond(request(model, messages));
    ASSERT_EQ(ticket.http_status, 200) << ticket.error_body;
    const json::value& ticket_call = ticket.message.at("tool_calls").at(0).at("function");
    EXPECT_EQ(ticket_call.at("name"), "create_triage_ticket");
    EXPECT_EQ(json::parse(ticket_call.at("arguments").as_string()),
              json::parse(R"({"claim_id":"CLM-1042","priority":"high"})"));

    messages.push_back(ticket.message);
    messages.push_back(message("tool", "ticket T-9"));
    ScriptReply summary = book.respond(request(model, messages));
    EXPECT_EQ(summary.finish_reason, "stop");
    std::string content = content_of(summary);
    EXPECT_NE(content.find("CLM-1042"), std::string::npos) << content;
    EXPECT_NE(content.find("policy active; no fraud signals; ticket T-9"), std::string::npos) << content;
  }
}

}  // namespace
}  // namespace continuum
