// Tests of ResponseEventStream (api/responses_stream.h): the Responses
// events of a run's journal, numbered so that a replayed or resumed stream
// matches the live one.
#include "api/responses_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/snapshot.h"

namespace continuum {
namespace {

constexpr int64_t kB = ResponseEventStream::kBlock;

// Records what is written; the stream only ever calls write().
class RecordingWriter : public ResponseWriter {
 public:
  void send(HttpResponse) override { ADD_FAILURE() << "send() on a stream"; }
  void start_stream(int, std::string, HeaderList) override { ADD_FAILURE() << "start_stream() by the event stream"; }
  void write(std::string chunk) override { chunks.push_back(std::move(chunk)); }
  void end() override { ended = true; }
  bool closed() const override { return false; }
  void on_close(std::function<void()>) override {}
  size_t queued_bytes() const override { return 0; }

  std::vector<std::string> chunks;
  bool ended = false;
};

struct Event {
  std::string type;
  int64_t number = 0;
  json::object data;
};

// Each chunk is one frame: "event: X\ndata: JSON\n\n", X equal to data.type.
std::vector<Event> events_of(const RecordingWriter& out) {
  std::vector<Event> events;
  for (const auto& chunk : out.chunks) {
    const std::string event_prefix = "event: ", data_prefix = "\ndata: ";
    EXPECT_EQ(chunk.rfind(event_prefix, 0), 0u) << chunk;
    size_t data_at = chunk.find(data_prefix);
    EXPECT_NE(data_at, std::string::npos) << chunk;
    EXPECT_GE(chunk.size(), 2u);
    EXPECT_EQ(chunk.substr(chunk.size() - 2), "\n\n") << chunk;
    if (data_at == std::string::npos || chunk.size() < data_at + data_prefix.size() + 2) continue;
    std::string type = chunk.substr(event_prefix.size(), data_at - event_prefix.size());
    std::string data = chunk.substr(data_at + data_prefix.size(), chunk.size() - 2 - data_at - data_prefix.size());
    EXPECT_EQ(data.find('\n'), std::string::npos) << "one data line";
    auto parsed = parse_json_object(data);
    EXPECT_TRUE(parsed.is_ok()) << data;
    if (!parsed.is_ok()) continue;
    EXPECT_EQ(parsed->at("type").as_string(), type);
    events.push_back(Event{type, parsed->at("sequence_number").as_int64(), *parsed});
  }
  return events;
}

std::vector<std::string> types_of(const std::vector<Event>& events) {
  std::vector<std::string> types;
  for (const auto& event : events) types.push_back(event.type);
  return types;
}

std::vector<int64_t> numbers_of(const std::vector<Event>& events) {
  std::vector<int64_t> numbers;
  for (const auto& event : events) numbers.push_back(event.number);
  return numbers;
}

std::string deltas_of(const std::vector<Event>& events) {
  std::string text;
  for (const auto& event : events) {
    if (event.type == "response.output_text.delta") text += event.data.at("delta").as_string();
  }
  return text;
}

void expect_increasing(const std::vector<Event>& events) {
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_LT(events[i - 1].number, events[i].number) << events[i - 1].type << " then " << events[i].type;
  }
}

StepRecord step(int64_t seq, const char* kind, const std::string& payload) {
  return StepRecord{"t", "run_1", seq, kind, payload, 1'700'000'000'000};
}

RunRecord run_with(const std::string& status, const RunSnapshot& snapshot = RunSnapshot{}) {
  RunRecord run;
  run.tenant_id = "t";
  run.id = "run_1";
  run.session_id = "conv_1";
  run.agent_name = "helper";
  run.agent_version = 1;
  run.status = status;
  run.snapshot_json = snapshot_to_json_text(snapshot);
  run.created_at_ms = 1'700'000'000'000;
  return run;
}

// A journal and the run as stored at its end.
struct Journal {
  std::vector<StepRecord> steps;
  RunRecord final_run;
};

// "Hello world", streamed live as "Hello" and " world".
Journal text_reply() {
  RunSnapshot done;
  done.status = kRunCompleted;
  done.usage = Usage{3, 2, 5};
  return Journal{{step(0, kStepRunCreated, R"({"input": "hi", "agent": "helper", "agent_version": 1})"),
                  step(1, kStepRunStarted, "{}"),
                  step(2, kStepModelCall, R"({"message": {"role": "assistant", "content": "Hello world"},
                       "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
                       "finish_reason": "stop", "attempts": 1, "stream_ends": [5, 11]})"),
                  step(3, kStepRunCompleted, R"({"output": "Hello world"})")},
                 run_with(kRunCompleted, done)};
}

// Replays `journal` from the store (no live deltas) to a client that has
// seen the events up to `starting_after`.
std::vector<Event> replay(const Journal& journal, int64_t starting_after = -1) {
  RecordingWriter out;
  ResponseEventStream stream(run_with(kRunQueued), journal.steps.front(), starting_after);
  bool ended = false;
  for (const auto& s : journal.steps) {
    EXPECT_FALSE(ended) << "a step after the terminal event";
    ended = stream.on_step(s, [&] { return journal.final_run; }, out);
  }
  EXPECT_TRUE(ended) << "the terminal step ends the stream";
  return events_of(out);
}

// The text reply as a live client sees it: steps as they commit, and the
// model's text deltas before its step.
std::vector<Event> live_text_reply(int64_t starting_after = -1) {
  Journal journal = text_reply();
  auto latest = [&] { return journal.final_run; };
  RecordingWriter out;
  ResponseEventStream stream(run_with(kRunQueued), journal.steps[0], starting_after);
  EXPECT_FALSE(stream.on_step(journal.steps[0], latest, out));
  EXPECT_FALSE(stream.on_step(journal.steps[1], latest, out));
  stream.on_text_delta(2, 0, "Hello", out);
  stream.on_text_delta(2, 5, " world", out);
  EXPECT_FALSE(stream.on_step(journal.steps[2], latest, out));
  EXPECT_TRUE(stream.on_step(journal.steps[3], latest, out));
  EXPECT_EQ(stream.last_step_seq(), 3);
  return events_of(out);
}

TEST(ResponseStreamTest, LiveTextReplyEventOrder) {
  std::vector<Event> events = live_text_reply();
  EXPECT_EQ(types_of(events),
            (std::vector<std::string>{"response.created", "response.in_progress", "response.output_item.added",
                                      "response.content_part.added", "response.output_text.delta",
                                      "response.output_text.delta", "response.output_text.done",
                                      "response.content_part.done", "response.output_item.done",
                                      "response.completed"}));
  EXPECT_EQ(numbers_of(events), (std::vector<int64_t>{0, kB, 2 * kB, 2 * kB + 1, 2 * kB + 2 + 5, 2 * kB + 2 + 11,
                                                      2 * kB + 14, 2 * kB + 15, 2 * kB + 16, 3 * kB}));
  expect_increasing(events);
  ASSERT_EQ(events.size(), 10u);
  EXPECT_EQ(events[0].data.at("response").as_object().at("status").as_string(), "queued");
  EXPECT_EQ(events[1].data.at("response").as_object().at("status").as_string(), "in_progress");
  EXPECT_EQ(events[4].data.at("delta").as_string(), "Hello");
  EXPECT_EQ(events[5].data.at("delta").as_string(), " world");
  EXPECT_EQ(events[4].data.at("item_id").as_string(), "msg_run_1_2");
  EXPECT_EQ(events[6].data.at("text").as_string(), "Hello world");
  const json::object& item = events[8].data.at("item").as_object();
  EXPECT_EQ(item.at("status").as_string(), "completed");
  EXPECT_EQ(item.at("id").as_string(), "msg_run_1_2");
  const json::object& response = events[9].data.at("response").as_object();
  EXPECT_EQ(response.at("status").as_string(), "completed");
  EXPECT_EQ(response.at("output_text").as_string(), "Hello world");
  EXPECT_EQ(response.at("usage").as_object().at("total_tokens").as_int64(), 5);
}

TEST(ResponseStreamTest, ReplayMatchesTheLiveStream) {
  std::vector<Event> live = live_text_reply();
  std::vector<Event> replayed = replay(text_reply());
  EXPECT_EQ(types_of(replayed), types_of(live));
  EXPECT_EQ(numbers_of(replayed), numbers_of(live)) << "deltas split where the live ones ended";
  ASSERT_EQ(replayed.size(), live.size());
  for (size_t i = 0; i < live.size(); ++i) {
    if (live[i].type == "response.output_text.delta") {
      EXPECT_EQ(replayed[i].data.at("delta"), live[i].data.at("delta"));
    }
  }
}

TEST(ResponseStreamTest, ReplayWithoutStreamEndsSendsTheTextAsOneDelta) {
  Journal journal = text_reply();
  journal.steps[2].payload_json = R"({"message": {"role": "assistant", "content": "Hello world"}})";
  std::vector<Event> events = replay(journal);
  std::vector<Event> live = live_text_reply();
  ASSERT_EQ(events.size(), live.size() - 1);
  EXPECT_EQ(events[4].type, "response.output_text.delta");
  EXPECT_EQ(events[4].number, 2 * kB + 13);
  EXPECT_EQ(events[4].data.at("delta").as_string(), "Hello world");
  // Every event but the deltas keeps its number.
  for (size_t i = 5; i < events.size(); ++i) EXPECT_EQ(events[i].number, live[i + 1].number) << events[i].type;
}

TEST(ResponseStreamTest, ResumingInsideADeltaSendsExactlyTheUnseenSuffix) {
  // The client holds "He" (number 2B+4): the rest of the first delta, then the second.
  for (bool is_live : {true, false}) {
    SCOPED_TRACE(is_live ? "live" : "replayed");
    std::vector<Event> events = is_live ? live_text_reply(2 * kB + 4) : replay(text_reply(), 2 * kB + 4);
    EXPECT_EQ(types_of(events),
              (std::vector<std::string>{"response.output_text.delta", "response.output_text.delta",
                                        "response.output_text.done", "response.content_part.done",
                                        "response.output_item.done", "response.completed"}));
    EXPECT_EQ(deltas_of(events), "llo world");
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events[0].data.at("delta").as_string(), "llo");
    EXPECT_EQ(events[0].number, 2 * kB + 7);
  }
}

TEST(ResponseStreamTest, NothingAtOrBelowStartingAfterIsWritten) {
  std::vector<Event> all = replay(text_reply());
  std::vector<int64_t> cuts = {-1, 0, 1, kB - 1, kB, 2 * kB, 2 * kB + 1, 2 * kB + 3, 2 * kB + 7, 2 * kB + 9,
                               2 * kB + 13, 2 * kB + 14, 2 * kB + 16, 3 * kB - 1, 3 * kB, 4 * kB};
  for (int64_t cut : cuts) {
    SCOPED_TRACE("starting_after " + std::to_string(cut));
    for (bool is_live : {true, false}) {
      std::vector<Event> events = is_live ? live_text_reply(cut) : replay(text_reply(), cut);
      for (const auto& event : events) EXPECT_GT(event.number, cut) << event.type;
      expect_increasing(events);
      // The same events as the full stream from the cut on (a delta maybe shortened).
      std::vector<Event> rest;
      for (const auto& event : all) {
        if (event.number > cut) rest.push_back(event);
      }
      EXPECT_EQ(numbers_of(events), numbers_of(rest));
      std::string seen_text = "Hello world";
      int64_t seen_bytes = std::clamp<int64_t>(cut - (2 * kB + 2), 0, 11);
      EXPECT_EQ(deltas_of(events), seen_text.substr(static_cast<size_t>(seen_bytes)));
    }
  }
}

// A reply that calls a function the client offered: the response ends with it.
Journal client_call() {
  return Journal{{step(0, kStepRunCreated, R"({"input": "weather?", "agent": "helper", "agent_version": 1,
                       "client_tools": [{"type": "function", "function": {"name": "get_weather",
                         "description": "", "parameters": {"type": "object", "properties": {}}}}]})"),
                  step(1, kStepRunStarted, "{}"),
                  step(2, kStepModelCall, R"({"message": {"role": "assistant", "content": null, "tool_calls": [
                       {"id": "call_w", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}})"),
                  // seq 3 is the call's reserved result seq: the client's, never journaled here.
                  step(4, kStepRunCompleted, R"({"output": ""})")},
                 run_with(kRunCompleted)};
}

TEST(ResponseStreamTest, ClientFunctionCallEvents) {
  std::vector<Event> events = replay(client_call());
  EXPECT_EQ(types_of(events),
            (std::vector<std::string>{"response.created", "response.in_progress", "response.output_item.added",
                                      "response.function_call_arguments.delta",
                                      "response.function_call_arguments.done", "response.output_item.done",
                                      "response.completed"}));
  EXPECT_EQ(numbers_of(events), (std::vector<int64_t>{0, kB, 2 * kB + 2, 2 * kB + 3, 2 * kB + 4, 2 * kB + 5, 4 * kB}));
  ASSERT_EQ(events.size(), 7u);
  const json::object& added = events[2].data.at("item").as_object();
  EXPECT_EQ(added.at("type").as_string(), "function_call");
  EXPECT_EQ(added.at("status").as_string(), "in_progress");
  EXPECT_EQ(added.at("arguments").as_string(), "");
  EXPECT_EQ(added.at("call_id").as_string(), "call_w");
  EXPECT_EQ(events[2].data.at("output_index").as_int64(), 0);
  std::string item_id(added.at("id").as_string());
  EXPECT_EQ(events[3].data.at("item_id").as_string(), item_id);
  EXPECT_EQ(events[3].data.at("delta").as_string(), "{\"city\":\"Paris\"}");
  EXPECT_EQ(events[4].data.at("name").as_string(), "get_weather");
  EXPECT_EQ(events[4].data.at("arguments").as_string(), "{\"city\":\"Paris\"}");
  const json::object& done = events[5].data.at("item").as_object();
  EXPECT_EQ(done.at("status").as_string(), "completed");
  EXPECT_EQ(done.at("arguments").as_string(), "{\"city\":\"Paris\"}");
  EXPECT_EQ(done.at("id").as_string(), item_id);
  const json::object& response = events[6].data.at("response").as_object();
  ASSERT_EQ(response.at("output").as_array().size(), 1u);
  EXPECT_EQ(response.at("output").as_array()[0].as_object().at("type").as_string(), "function_call");
}

// Text, then a server tool and an MCP tool (which fails), then the answer.
Journal server_calls() {
  return Journal{{step(0, kStepRunCreated, R"({"input": "find it", "agent": "helper", "agent_version": 1})"),
                  step(1, kStepRunStarted, "{}"),
                  step(2, kStepModelCall, R"({"message": {"role": "assistant", "content": "Let me look.",
                       "tool_calls": [
                         {"id": "call_s", "type": "function", "function": {"name": "search", "arguments": "{}"}},
                         {"id": "call_m", "type": "function", "function": {"name": "files__read", "arguments": "{}"}}
                       ]}})"),
                  step(3, kStepToolCall, R"({"call_id": "call_s", "name": "search", "arguments": "{}",
                       "output": "found", "is_error": false})"),
                  step(4, kStepToolCall, R"({"call_id": "call_m", "name": "files__read", "arguments": "{}",
                       "output": "denied", "is_error": true})"),
                  step(5, kStepModelCall, R"({"message": {"role": "assistant", "content": "Here."}})"),
                  step(6, kStepRunCompleted, R"({"output": "Here."})")},
                 run_with(kRunCompleted)};
}

TEST(ResponseStreamTest, ServerToolCallIsDoneAtItsToolCallStep) {
  std::vector<Event> events = replay(server_calls());
  expect_increasing(events);
  std::vector<std::string> types = types_of(events);
  ASSERT_EQ(events.size(), 19u) << ::testing::PrintToString(types);
  // Model call 2: the message ("Let me look." is 12 bytes), then the two calls.
  EXPECT_EQ(types[7], "response.output_item.done");
  EXPECT_EQ(events[7].number, 2 * kB + 17);
  EXPECT_EQ(types[8], "response.output_item.added");
  EXPECT_EQ(events[8].number, 2 * kB + 18);
  EXPECT_EQ(events[8].data.at("output_index").as_int64(), 1);
  const json::object& search_added = events[8].data.at("item").as_object();
  EXPECT_EQ(search_added.at("type").as_string(), "tool_call");
  EXPECT_EQ(search_added.at("status").as_string(), "in_progress");
  EXPECT_EQ(types[9], "response.output_item.added");
  EXPECT_EQ(events[9].number, 2 * kB + 22);
  EXPECT_EQ(events[9].data.at("item").as_object().at("type").as_string(), "mcp_call");
  // Its tool_call steps complete them.
  EXPECT_EQ(types[10], "response.output_item.done");
  EXPECT_GE(events[10].number, 3 * kB) << "numbered in the block of its tool_call step";
  EXPECT_LT(events[10].number, 4 * kB);
  EXPECT_EQ(events[10].data.at("output_index").as_int64(), 1);
  const json::object& search_done = events[10].data.at("item").as_object();
  EXPECT_EQ(search_done.at("status").as_string(), "completed");
  EXPECT_EQ(search_done.at("output").as_string(), "found");
  EXPECT_EQ(types[11], "response.output_item.done");
  EXPECT_GE(events[11].number, 4 * kB);
  EXPECT_LT(events[11].number, 5 * kB);
  const json::object& mcp_done = events[11].data.at("item").as_object();
  EXPECT_EQ(mcp_done.at("status").as_string(), "failed");
  EXPECT_EQ(mcp_done.at("server_label").as_string(), "files");
  EXPECT_EQ(mcp_done.at("error").as_string(), "denied");
  // Model call 5: its message is output 3.
  EXPECT_EQ(types[12], "response.output_item.added");
  EXPECT_EQ(events[12].number, 5 * kB);
  EXPECT_EQ(events[12].data.at("output_index").as_int64(), 3);
  EXPECT_EQ(types.back(), "response.completed");
  EXPECT_EQ(events.back().data.at("response").as_object().at("output_text").as_string(), "Let me look.Here.");
}

TEST(ResponseStreamTest, LiveDeltasOfTheNextModelCallAfterToolSteps) {
  Journal journal = server_calls();
  auto latest = [&] { return journal.final_run; };
  RecordingWriter out;
  ResponseEventStream stream(run_with(kRunQueued), journal.steps[0], -1);
  for (size_t i = 0; i < 5; ++i) stream.on_step(journal.steps[i], latest, out);
  stream.on_text_delta(7, 0, "not the next step", out);  // ignored: an earlier step is not read yet
  stream.on_text_delta(5, 0, "Here.", out);
  for (size_t i = 5; i < journal.steps.size(); ++i) stream.on_step(journal.steps[i], latest, out);
  std::vector<Event> live = events_of(out);
  std::vector<Event> replayed = replay(journal);
  EXPECT_EQ(numbers_of(live), numbers_of(replayed));
  EXPECT_EQ(types_of(live), types_of(replayed));
  EXPECT_EQ(deltas_of(live), "Let me look.Here.");
}

TEST(ResponseStreamTest, TerminalKinds) {
  RunSnapshot failed;
  failed.status = kRunFailed;
  failed.error_code = "model_error";
  failed.error_message = "model call failed after 3 attempts";
  Journal journal{{step(0, kStepRunCreated, R"({"input": "hi", "agent": "helper", "agent_version": 1})"),
                   step(1, kStepRunStarted, "{}"),
                   step(2, kStepRunFailed, R"({"code": "model_error", "message": "model call failed after 3 attempts"})")},
                  run_with(kRunFailed, failed)};
  std::vector<Event> events = replay(journal);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, "response.failed");
  EXPECT_EQ(events.back().number, 2 * kB);
  const json::object& failed_response = events.back().data.at("response").as_object();
  EXPECT_EQ(failed_response.at("status").as_string(), "failed");
  EXPECT_EQ(failed_response.at("error").as_object().at("code").as_string(), "model_error");

  RunSnapshot cancelled;
  cancelled.status = kRunCancelled;
  journal.steps[2] = step(2, kStepRunCancelled, R"({"code": "cancelled", "message": "cancelled by the client"})");
  journal.final_run = run_with(kRunCancelled, cancelled);
  events = replay(journal);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, "response.incomplete");
  const json::object& cancelled_response = events.back().data.at("response").as_object();
  EXPECT_EQ(cancelled_response.at("status").as_string(), "cancelled");
  EXPECT_EQ(cancelled_response.at("incomplete_details"), json::value(json::object{{"reason", "cancelled"}}));

  events = replay(text_reply());
  EXPECT_EQ(events.back().type, "response.completed");
  EXPECT_TRUE(events.back().data.at("response").as_object().at("incomplete_details").is_null());
}

// Regression candidate: a model call that streamed part of its text, failed
// and was retried streams its text again from byte 0 (effects.cpp clears
// streaming_text). The event stream counted bytes from the first attempt on:
// the live client saw the first attempt's text twice and, the retried deltas
// numbered past the done events, never got output_text.done,
// content_part.done or output_item.done.
TEST(ResponseStreamTest, LiveDeltasOfARetriedModelCallStillEndTheMessage) {
  Journal journal = text_reply();
  auto latest = [&] { return journal.final_run; };
  RecordingWriter out;
  ResponseEventStream stream(run_with(kRunQueued), journal.steps[0], -1);
  stream.on_step(journal.steps[0], latest, out);
  stream.on_step(journal.steps[1], latest, out);
  stream.on_text_delta(2, 0, "Hel", out);  // attempt 1, then the connection drops
  stream.on_text_delta(2, 0, "Hello", out);  // attempt 2 starts over
  stream.on_text_delta(2, 5, " world", out);
  stream.on_step(journal.steps[2], latest, out);
  stream.on_step(journal.steps[3], latest, out);
  std::vector<std::string> types = types_of(events_of(out));
  auto count = [&](const char* type) { return std::count(types.begin(), types.end(), type); };
  EXPECT_EQ(count("response.output_text.done"), 1) << ::testing::PrintToString(types);
  EXPECT_EQ(count("response.content_part.done"), 1);
  EXPECT_EQ(count("response.output_item.done"), 1);
  std::string text;
  for (const auto& event : events_of(out)) {
    if (event.type == "response.output_text.delta") text += event.data.at("delta").as_string();
  }
  EXPECT_EQ(text, "Hello world") << "the retry's text goes on from what the client has";
}

}  // namespace
}  // namespace continuum
