// Tests of the Chat Completions stream parser, the non-streaming parser and
// OpenAiChatProvider against a fake HttpClient.
#include "providers/chat_stream.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "providers/openai_chat.h"

namespace continuum {
namespace {

// A text answer the way OpenAI streams it: an empty first content, a
// keep-alive comment, fields we ignore, multi-byte UTF-8, a finish chunk in
// two data lines, a usage-only chunk and [DONE].
const std::string kTextStream =
    R"(data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null})"
    "\n\n"
    ": keep-alive\n\n"
    R"(data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Héllo, "},"finish_reason":null}]})"
    "\n\n"
    "event: message\nid: 7\nretry: 1000\n"
    R"(data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"世界 🌍"},"finish_reason":null}]})"
    "\n\n"
    R"(data: {"id":"c1","object":"chat.completion.chunk",)"
    "\n"  // one event in two data lines: a line break inside it must not end it
    R"(data: "choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"
    "\n\n"
    R"(data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":5,"total_tokens":16}})"
    "\n\n"
    "data: [DONE]\n\n";

// Two tool calls streamed in parallel, their argument deltas interleaved
// (one delta even carries pieces of both).
const std::string kToolStream =
    R"(data: {"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]}}]})"
    "\n\n"
    R"(data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":""}}]}}]})"
    "\n\n"
    R"(data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]})"
    "\n\n"
    R"(data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\":"}},{"index":0,"function":{"arguments":"\"Paris\"}"}}]}}]})"
    "\n\n"
    R"(data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\"UTC\"}"}}]}}]})"
    "\n\n"
    R"(data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})"
    "\n\n"
    "data: [DONE]\n\n";

struct StreamRun {
  Status feed_status;    // the first failed feed(), ok if none
  Status finish_status;  // finish()'s status
  std::optional<ModelResponse> response;
  std::vector<std::string> deltas;
};

StreamRun run_stream(const std::vector<std::string>& chunks, ChatStreamLimits limits = {}) {
  StreamRun run;
  ChatStreamParser parser([&](std::string_view delta) { run.deltas.emplace_back(delta); }, limits);
  for (const auto& chunk : chunks) {
    Status status = parser.feed(chunk);
    if (!status.is_ok() && run.feed_status.is_ok()) run.feed_status = status;
  }
  auto result = parser.finish();
  if (result.is_ok()) {
    run.response = std::move(result).value();
  } else {
    run.finish_status = result.status();
  }
  return run;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

// Feeding `stream` split in two at every byte, or one byte at a time, gives
// exactly the result (and the deltas) of feeding it whole.
void expect_split_invariant(const std::string& stream) {
  StreamRun whole = run_stream({stream});
  ASSERT_TRUE(whole.response.has_value()) << whole.finish_status.to_string();
  std::string expected = to_json(whole.response->message);
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    StreamRun run = run_stream({stream.substr(0, split), stream.substr(split)});
    ASSERT_TRUE(run.response.has_value()) << "split at " << split << ": " << run.finish_status.to_string();
    EXPECT_EQ(to_json(run.response->message), expected) << "split at " << split;
    EXPECT_EQ(run.deltas, whole.deltas) << "split at " << split;
    EXPECT_EQ(run.response->usage.total_tokens, whole.response->usage.total_tokens);
  }
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  StreamRun by_byte = run_stream(bytes);
  ASSERT_TRUE(by_byte.response.has_value());
  EXPECT_EQ(to_json(by_byte.response->message), expected);
  EXPECT_EQ(by_byte.deltas, whole.deltas);
}

TEST(ChatStreamParser, TextAnswerIsAccumulatedAndEachDeltaReported) {
  StreamRun run = run_stream({kTextStream});
  ASSERT_TRUE(run.response.has_value()) << run.finish_status.to_string();
  EXPECT_EQ(run.response->message.at("role").as_string(), "assistant");
  EXPECT_EQ(run.response->message.at("content").as_string(), "Héllo, 世界 🌍");
  EXPECT_FALSE(run.response->message.contains("tool_calls"));
  EXPECT_EQ(run.response->finish_reason, "stop");
  EXPECT_EQ(run.deltas, (std::vector<std::string>{"Héllo, ", "世界 🌍"}));  // the empty first delta is not reported
}

TEST(ChatStreamParser, SplitAnywhereGivesTheSameResult) { expect_split_invariant(kTextStream); }

TEST(ChatStreamParser, CrLfLineEndingsSplitAnywhere) {
  std::string crlf = replace_all(kTextStream, "\n", "\r\n");
  StreamRun run = run_stream({crlf});
  ASSERT_TRUE(run.response.has_value()) << run.finish_status.to_string();
  EXPECT_EQ(run.response->message.at("content").as_string(), "Héllo, 世界 🌍");
  expect_split_invariant(crlf);  // includes every split between '\r' and '\n'
}

TEST(ChatStreamParser, BareCrLineEndings) {
  StreamRun run = run_stream({replace_all(kTextStream, "\n", "\r")});
  ASSERT_TRUE(run.response.has_value()) << run.finish_status.to_string();
  EXPECT_EQ(run.response->message.at("content").as_string(), "Héllo, 世界 🌍");
}

TEST(ChatStreamParser, UsageChunkIsMapped) {
  StreamRun run = run_stream({kTextStream});
  ASSERT_TRUE(run.response.has_value());
  EXPECT_EQ(run.response->usage.input_tokens, 11);
  EXPECT_EQ(run.response->usage.output_tokens, 5);
  EXPECT_EQ(run.response->usage.total_tokens, 16);
}

TEST(ChatStreamParser, ParallelToolCallsWithInterleavedArguments) {
  StreamRun run = run_stream({kToolStream});
  ASSERT_TRUE(run.response.has_value()) << run.finish_status.to_string();
  const json::object& message = run.response->message;
  EXPECT_TRUE(message.at("content").is_null());
  EXPECT_TRUE(run.deltas.empty());
  EXPECT_EQ(run.response->finish_reason, "tool_calls");
  json::value expected = json::array{
      json::object{{"id", "call_a"},
                   {"type", "function"},
                   {"function", json::object{{"name", "get_weather"}, {"arguments", R"({"city":"Paris"})"}}}},
      json::object{{"id", "call_b"},
                   {"type", "function"},
                   {"function", json::object{{"name", "get_time"}, {"arguments", R"({"tz":"UTC"})"}}}}};
  EXPECT_EQ(message.at("tool_calls"), expected) << to_json(message);
  expect_split_invariant(kToolStream);
}

TEST(ChatStreamParser, ToolCallWithoutIdOrArgumentsIsNormalized) {
  StreamRun run = run_stream({
      R"(data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":2,"function":{"name":"now"}}]},"finish_reason":"tool_calls"}]})"
      "\n\ndata: [DONE]\n\n"});
  ASSERT_TRUE(run.response.has_value()) << run.finish_status.to_string();
  const json::object& call = run.response->message.at("tool_calls").as_array().at(0).as_object();
  EXPECT_EQ(call.at("id").as_string(), "call_2");
  EXPECT_EQ(call.at("function").at("name").as_string(), "now");
  EXPECT_EQ(call.at("function").at("arguments").as_string(), "{}");
}

TEST(ChatStreamParser, MultiLineDataIsJoined) {
  StreamRun run = run_stream({"data: {\"choices\":\ndata: [{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n"});
  ASSERT_TRUE(run.response.has_value()) << run.finish_status.to_string();
  EXPECT_EQ(run.response->message.at("content").as_string(), "hi");
}

TEST(ChatStreamParser, BytesAfterDoneAreIgnored) {
  ChatStreamParser parser;
  EXPECT_TRUE(parser.feed(kTextStream).is_ok());
  EXPECT_TRUE(parser.saw_done());
  EXPECT_TRUE(parser.feed("data: {not json\n\n").is_ok());
  auto result = parser.finish();
  ASSERT_TRUE(result.is_ok()) << result.status().to_string();
  EXPECT_EQ(result->message.at("content").as_string(), "Héllo, 世界 🌍");
}

TEST(ChatStreamParser, LastEventWithoutBlankLineIsStillRead) {
  StreamRun run = run_stream({R"(data: {"choices":[{"delta":{"content":"ok"},"finish_reason":"stop"}]})"});
  ASSERT_TRUE(run.response.has_value()) << run.finish_status.to_string();
  EXPECT_EQ(run.response->message.at("content").as_string(), "ok");
}

TEST(ChatStreamParser, StreamCutBeforeDoneIsAnError) {
  StreamRun run = run_stream({R"(data: {"choices":[{"delta":{"content":"par"}}]})"
                              "\n\n"});
  ASSERT_FALSE(run.response.has_value());
  EXPECT_EQ(run.finish_status.code(), Code::kInvalidArgument);
  EXPECT_NE(run.finish_status.message().find("[DONE]"), std::string::npos);
  EXPECT_EQ(run_stream({}).finish_status.code(), Code::kInvalidArgument);  // an empty body
}

TEST(ChatStreamParser, ErrorObjectInStreamIsAProviderError) {
  StreamRun run = run_stream({
      R"(data: {"choices":[{"delta":{"content":"Hi"}}]})"
      "\n\n"
      R"(data: {"error":{"message":"The server is overloaded","type":"server_error"}})"
      "\n\n"});
  EXPECT_EQ(run.feed_status.code(), Code::kUnavailable);
  EXPECT_NE(run.feed_status.message().find("The server is overloaded"), std::string::npos);
  EXPECT_EQ(run.finish_status.code(), Code::kUnavailable);
  EXPECT_FALSE(run.response.has_value());

  StreamRun named = run_stream({"event: error\ndata: {\"message\":\"boom\"}\n\n"});
  EXPECT_EQ(named.feed_status.code(), Code::kUnavailable);
}

TEST(ChatStreamParser, GarbageIsMalformedAndTheErrorSticks) {
  ChatStreamParser parser;
  Status status = parser.feed("data: {not json}\n\n");
  EXPECT_EQ(status.code(), Code::kInvalidArgument);
  EXPECT_EQ(parser.feed(kTextStream).code(), Code::kInvalidArgument);  // sticky
  EXPECT_EQ(parser.finish().status().code(), Code::kInvalidArgument);

  EXPECT_EQ(run_stream({"data: [1,2]\n\n"}).feed_status.code(), Code::kInvalidArgument);
  EXPECT_EQ(run_stream({"data: {\"choices\":[{\"delta\":{\"tool_calls\":7}}]}\n\n"}).feed_status.code(),
            Code::kInvalidArgument);
  EXPECT_EQ(run_stream({"data: \"\xff\xfe\"\n\n"}).feed_status.code(), Code::kInvalidArgument);  // bad UTF-8
}

TEST(ChatStreamParser, OverLongLineIsRefusedWithAClearError) {
  ChatStreamLimits limits;
  limits.line_bytes_max = 64;
  std::vector<std::string> chunks{"data: "};
  for (int i = 0; i < 10; ++i) chunks.emplace_back(10, 'a');  // never terminated
  StreamRun run = run_stream(chunks, limits);
  EXPECT_EQ(run.feed_status.code(), Code::kPayloadTooLarge);
  EXPECT_NE(run.feed_status.message().find("line exceeds the limit of 64"), std::string::npos);
  EXPECT_EQ(run.finish_status.code(), Code::kPayloadTooLarge);
}

TEST(ChatStreamParser, TotalSizeAndToolCallCountAreLimited) {
  ChatStreamLimits small_total;
  small_total.total_bytes_max = kTextStream.size() - 1;
  EXPECT_EQ(run_stream({kTextStream}, small_total).feed_status.code(), Code::kPayloadTooLarge);

  ChatStreamLimits one_call;
  one_call.tool_calls_max = 1;
  StreamRun run = run_stream({kToolStream}, one_call);
  EXPECT_EQ(run.feed_status.code(), Code::kPayloadTooLarge);
  EXPECT_NE(run.feed_status.message().find("tool call count"), std::string::npos);
}

TEST(ParseChatCompletion, TextAnswerWithUsage) {
  auto result = parse_chat_completion(
      R"({"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})");
  ASSERT_TRUE(result.is_ok()) << result.status().to_string();
  EXPECT_EQ(result->message.at("content").as_string(), "Hello");
  EXPECT_FALSE(result->message.contains("tool_calls"));
  EXPECT_EQ(result->finish_reason, "stop");
  EXPECT_EQ(result->usage.input_tokens, 3);
  EXPECT_EQ(result->usage.output_tokens, 2);
  EXPECT_EQ(result->usage.total_tokens, 5);
}

TEST(ParseChatCompletion, ToolCallsAreNormalized) {
  auto result = parse_chat_completion(
      R"({"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[)"
      R"({"id":"call_x","type":"function","function":{"name":"a","arguments":"{\"x\":1}"}},)"
      R"({"type":"function","function":{"name":"b"}}]},"finish_reason":"tool_calls"}]})");
  ASSERT_TRUE(result.is_ok()) << result.status().to_string();
  EXPECT_TRUE(result->message.at("content").is_null());
  const json::array& calls = result->message.at("tool_calls").as_array();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].at("id").as_string(), "call_x");
  EXPECT_EQ(calls[0].at("function").at("arguments").as_string(), R"({"x":1})");
  EXPECT_EQ(calls[1].at("id").as_string(), "call_1");  // deterministic id from its index
  EXPECT_EQ(calls[1].at("type").as_string(), "function");
  EXPECT_EQ(calls[1].at("function").at("arguments").as_string(), "{}");
  EXPECT_EQ(result->usage.total_tokens, 0);
}

TEST(ParseChatCompletion, ErrorsAndGarbage) {
  EXPECT_EQ(parse_chat_completion(R"({"error":{"message":"nope"}})").status().code(), Code::kUnavailable);
  EXPECT_EQ(parse_chat_completion("{oops").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(parse_chat_completion(R"({"choices":[]})").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(parse_chat_completion(R"({"choices":[{"message":{"tool_calls":{}}}]})").status().code(),
            Code::kInvalidArgument);
}

// --- OpenAiChatProvider against a fake HttpClient ---------------------------

// Records each request and replays a canned exchange when the test says so
// (as the real client would, later, on its loop thread).
class FakeHttpClient final : public HttpClient {
 public:
  void send(HttpClientRequest request, std::function<void(std::string_view)> on_body,
            std::function<void(Result<HttpClientResponse>)> done) override {
    requests.push_back(std::move(request));
    on_body_ = std::move(on_body);
    done_ = std::move(done);
  }

  void replay(const std::vector<std::string>& chunks, Result<HttpClientResponse> result) {
    ASSERT_TRUE(done_) << "no request was sent";
    for (const auto& chunk : chunks) {
      if (on_body_) on_body_(chunk);
    }
    auto done = std::move(done_);
    done_ = nullptr;
    done(std::move(result));
  }

  std::vector<HttpClientRequest> requests;

 private:
  std::function<void(std::string_view)> on_body_;
  std::function<void(Result<HttpClientResponse>)> done_;
};

HttpClientResponse http_response(int status, std::string content_type,
                                 std::vector<std::pair<std::string, std::string>> extra_headers = {}) {
  HttpClientResponse response;
  response.status = status;
  response.headers = std::move(extra_headers);
  response.headers.emplace_back("Content-Type", std::move(content_type));
  return response;
}

std::string header_of(const HttpClientRequest& request, const std::string& name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) return value;
  }
  return "<absent>";
}

struct Call {
  std::vector<std::string> deltas;
  std::vector<ModelOutcome> outcomes;
};

class OpenAiChatProviderTest : public ::testing::Test {
 protected:
  OpenAiChatProviderTest()
      : provider_(http_, "http://default.example/v1", "sk-default", [](const std::string& name) {
          return name == "MY_KEY" ? std::string("sk-env") : std::string();
        }) {}

  static ModelRequest request() {
    ModelRequest request;
    request.spec.model = "gpt-test";
    request.messages = {std::make_shared<const json::object>(json::object{{"role", "user"}, {"content", "hi"}})};
    return request;
  }

  void start(ModelRequest request) {
    provider_.complete(
        std::move(request), [this](std::string_view delta) { call_.deltas.emplace_back(delta); },
        [this](ModelOutcome outcome) { call_.outcomes.push_back(std::move(outcome)); });
  }

  // The one outcome of the call; fails the test unless done ran exactly once.
  const EffectError& error() {
    EXPECT_EQ(call_.outcomes.size(), 1u);
    EXPECT_FALSE(call_.outcomes.at(0).response.has_value());
    return call_.outcomes.at(0).error;
  }

  FakeHttpClient http_;
  OpenAiChatProvider provider_;
  Call call_;
};

TEST_F(OpenAiChatProviderTest, RequestShape) {
  ModelRequest req = request();
  req.spec.base_url = "http://127.0.0.1:8090/v1/";
  req.spec.api_key_env = "MY_KEY";
  req.spec.timeout_ms = 5000;
  req.spec.params = json::object{{"temperature", 0.25}, {"max_tokens", 100}, {"model", "other"},
                                 {"stream", false}, {"messages", json::array{}}};
  req.tools = json::array{json::object{
      {"type", "function"}, {"function", json::object{{"name", "lookup"}, {"parameters", json::object{}}}}}};
  start(req);
  ASSERT_EQ(http_.requests.size(), 1u);
  EXPECT_TRUE(call_.outcomes.empty());  // complete() returns before done
  const HttpClientRequest& sent = http_.requests[0];
  EXPECT_EQ(sent.method, "POST");
  EXPECT_EQ(sent.url, "http://127.0.0.1:8090/v1/chat/completions");
  EXPECT_EQ(sent.timeout_ms, 5000);
  EXPECT_EQ(header_of(sent, "Content-Type"), "application/json");
  EXPECT_EQ(header_of(sent, "Accept"), "text/event-stream");
  EXPECT_EQ(header_of(sent, "Authorization"), "Bearer sk-env");
  auto body = parse_json_object(sent.body);
  ASSERT_TRUE(body.is_ok());
  EXPECT_EQ(body->at("model").as_string(), "gpt-test");
  EXPECT_EQ(body->at("messages"), json::value(to_json_array(req.messages)));
  EXPECT_EQ(body->at("stream"), json::value(true));
  EXPECT_EQ(body->at("stream_options"), json::value(json::object{{"include_usage", true}}));
  EXPECT_EQ(body->at("temperature").as_double(), 0.25);
  EXPECT_EQ(body->at("max_tokens").as_int64(), 100);
  EXPECT_EQ(body->at("tools"), json::value(req.tools));
}

TEST_F(OpenAiChatProviderTest, DefaultsAndNoToolsKey) {
  start(request());
  ASSERT_EQ(http_.requests.size(), 1u);
  EXPECT_EQ(http_.requests[0].url, "http://default.example/v1/chat/completions");
  EXPECT_EQ(header_of(http_.requests[0], "Authorization"), "Bearer sk-default");
  EXPECT_FALSE(parse_json_object(http_.requests[0].body)->contains("tools"));

  FakeHttpClient keyless_http;
  OpenAiChatProvider keyless(keyless_http, "http://local/v1", "", nullptr);
  keyless.complete(request(), nullptr, [](ModelOutcome) {});
  EXPECT_EQ(header_of(keyless_http.requests.at(0), "Authorization"), "<absent>");
}

TEST_F(OpenAiChatProviderTest, StreamedAnswer) {
  start(request());
  http_.replay({kTextStream.substr(0, 100), kTextStream.substr(100, 7), kTextStream.substr(107)},
               http_response(200, "text/event-stream"));
  ASSERT_EQ(call_.outcomes.size(), 1u);
  ASSERT_TRUE(call_.outcomes[0].response.has_value()) << call_.outcomes[0].error.message;
  EXPECT_EQ(call_.outcomes[0].response->message.at("content").as_string(), "Héllo, 世界 🌍");
  EXPECT_EQ(call_.outcomes[0].response->usage.total_tokens, 16);
  EXPECT_EQ(call_.deltas, (std::vector<std::string>{"Héllo, ", "世界 🌍"}));
}

TEST_F(OpenAiChatProviderTest, JsonAnswerWhenServerIgnoresStream) {
  start(request());
  http_.replay({R"({"choices":[{"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],)",
                R"("usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})"},
               http_response(200, "application/json"));
  ASSERT_EQ(call_.outcomes.size(), 1u);
  ASSERT_TRUE(call_.outcomes[0].response.has_value()) << call_.outcomes[0].error.message;
  EXPECT_EQ(call_.outcomes[0].response->message.at("content").as_string(), "Hello");
  EXPECT_EQ(call_.outcomes[0].response->usage.input_tokens, 3);
  EXPECT_EQ(call_.deltas, (std::vector<std::string>{"Hello"}));
}

TEST_F(OpenAiChatProviderTest, RateLimitedIsRetryableAfterRetryAfter) {
  start(request());
  http_.replay({R"({"error":{"message":"Rate limit reached",)", R"("type":"requests"}})"},
               http_response(429, "application/json", {{"Retry-After", "2"}}));
  const EffectError& e = error();
  EXPECT_EQ(e.code, "http_429");
  EXPECT_TRUE(e.retryable);
  EXPECT_EQ(e.retry_after_ms, 2000);
  EXPECT_NE(e.message.find("Rate limit reached"), std::string::npos) << e.message;
}

TEST_F(OpenAiChatProviderTest, BadRequestIsNotRetryableAndMessageIsTruncated) {
  start(request());
  HttpClientResponse response = http_response(400, "text/plain");
  response.body = "bad request: " + std::string(2000, 'x');
  http_.replay({}, response);
  const EffectError& e = error();
  EXPECT_EQ(e.code, "http_400");
  EXPECT_FALSE(e.retryable);
  EXPECT_EQ(e.retry_after_ms, -1);
  EXPECT_NE(e.message.find("bad request"), std::string::npos);
  EXPECT_LE(e.message.size(), 503u);
}

TEST_F(OpenAiChatProviderTest, TransportErrors) {
  start(request());
  http_.replay({}, Status(Code::kDeadlineExceeded, "deadline of 120000 ms exceeded"));
  EXPECT_EQ(error().code, "timeout");
  EXPECT_TRUE(error().retryable);

  call_ = {};
  start(request());
  http_.replay({}, Status(Code::kUnavailable, "connection refused"));
  EXPECT_EQ(error().code, "connection");
  EXPECT_TRUE(error().retryable);

  call_ = {};
  start(request());
  http_.replay({}, Status(Code::kPermissionDenied, "private address refused"));
  EXPECT_EQ(error().code, "connection");
  EXPECT_FALSE(error().retryable);
}

TEST_F(OpenAiChatProviderTest, MalformedOrCutStreamIsRetryableInvalidResponse) {
  start(request());
  http_.replay({"data: {oops\n\n"}, http_response(200, "text/event-stream"));
  EXPECT_EQ(error().code, "invalid_response");
  EXPECT_TRUE(error().retryable);

  call_ = {};
  start(request());
  http_.replay({R"(data: {"choices":[{"delta":{"content":"par"}}]})"
                "\n\n"},
               http_response(200, "text/event-stream"));
  EXPECT_EQ(error().code, "invalid_response");

  call_ = {};
  start(request());
  http_.replay({R"(data: {"error":{"message":"overloaded"}})"
                "\n\n"},
               http_response(200, "text/event-stream"));
  EXPECT_EQ(error().code, "provider_error");
  EXPECT_TRUE(error().retryable);
}

}  // namespace
}  // namespace continuum
