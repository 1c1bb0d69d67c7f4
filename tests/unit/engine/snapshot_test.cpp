#include <gtest/gtest.h>

#include "engine/snapshot.h"

namespace continuum {
namespace {

StepRecord step(int64_t seq, const char* kind, const std::string& payload) {
  return StepRecord{"t", "r", seq, kind, payload, 0};
}

TEST(SnapshotTest, FoldReservesToolSeqsAndTracksUsage) {
  RunSnapshot s;
  ASSERT_TRUE(fold_step(s, step(0, kStepRunCreated, R"({"input":"x"})")).is_ok());
  ASSERT_TRUE(fold_step(s, step(1, kStepRunStarted, R"({"started_at_ms":5,"deadline_at_ms":0})")).is_ok());
  ASSERT_TRUE(fold_step(s, step(2, kStepModelCall, R"({"message":{"role":"assistant","content":null,
      "tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}},
                    {"id":"b","type":"function","function":{"name":"g","arguments":"{}"}}]},
      "usage":{"input_tokens":10,"output_tokens":2,"total_tokens":12}})")).is_ok());
  EXPECT_EQ(s.status, kRunRunning);
  ASSERT_EQ(s.pending_tools.size(), 2u);
  EXPECT_EQ(s.pending_tools[0].seq, 3);
  EXPECT_EQ(s.pending_tools[1].seq, 4);
  EXPECT_EQ(s.next_seq, 5);
  EXPECT_EQ(s.usage.total_tokens, 12);
  // Parallel results may commit out of order.
  ASSERT_TRUE(fold_step(s, step(4, kStepToolCall, "{}")).is_ok());
  ASSERT_TRUE(fold_step(s, step(3, kStepToolCall, "{}")).is_ok());
  EXPECT_TRUE(s.pending_tools.empty());
  EXPECT_FALSE(fold_step(s, step(3, kStepToolCall, "{}")).is_ok()) << "a step is applied once";
  auto round_trip = snapshot_from_json(snapshot_to_json_text(s));
  ASSERT_TRUE(round_trip.is_ok());
  EXPECT_EQ(snapshot_to_json_text(*round_trip), snapshot_to_json_text(s));
}

TEST(SnapshotTest, RejectsOutOfOrderSteps) {
  RunSnapshot s;
  ASSERT_TRUE(fold_step(s, step(0, kStepRunCreated, "{}")).is_ok());
  EXPECT_FALSE(fold_step(s, step(5, kStepRunStarted, "{}")).is_ok());
  EXPECT_FALSE(fold_step(s, step(1, "mystery", "{}")).is_ok());
}

TEST(SnapshotTest, AParsedPayloadFoldsAsTheTextDoes) {
  StepRecord call = step(2, kStepModelCall, to_json(json::object{
      {"message", json::object{{"role", "assistant"}, {"content", "done"}}},
      {"usage", json::object{{"input_tokens", 3}, {"output_tokens", 1}, {"total_tokens", 4}}}}));
  RunSnapshot from_text;
  RunSnapshot from_parsed;
  for (RunSnapshot* s : {&from_text, &from_parsed}) {
    ASSERT_TRUE(fold_step(*s, step(0, kStepRunCreated, "{}")).is_ok());
    ASSERT_TRUE(fold_step(*s, step(1, kStepRunStarted, R"({"started_at_ms":5})")).is_ok());
  }
  auto payload = payload_for_fold(call);
  ASSERT_TRUE(payload.is_ok());
  ASSERT_NE(payload->get(), nullptr);
  ASSERT_TRUE(fold_step(from_text, call).is_ok());
  ASSERT_TRUE(fold_step(from_parsed, call, payload->get()).is_ok());
  EXPECT_EQ(snapshot_to_json_text(from_parsed), snapshot_to_json_text(from_text));
  EXPECT_EQ(from_parsed.final_text.value_or(""), "done");
  auto tool_payload = payload_for_fold(step(3, kStepToolCall, "not even JSON: never read"));
  ASSERT_TRUE(tool_payload.is_ok());
  EXPECT_EQ(tool_payload->get(), nullptr);
  EXPECT_FALSE(payload_for_fold(step(3, kStepRunCompleted, "[1]")).is_ok());
}

TEST(SnapshotTest, OwnStepTextIsThePublicViewWithoutAParse) {
  StepRecord call = step(7, kStepModelCall, to_json(json::object{
      {"message", json::object{{"role", "assistant"}, {"content", "caf\u00e9 \"quoted\"\n"}}},
      {"ratio", 0.25}, {"n", -3}, {"list", json::array{nullptr, true, "x"}}}));
  call.created_at_ms = 1700000000123;
  EXPECT_EQ(own_step_to_json_text(call), step_to_json_text(call));
  auto parsed = parse_json_object(own_step_to_json_text(call));
  ASSERT_TRUE(parsed.is_ok());
  EXPECT_EQ(parsed->at("seq").as_int64(), 7);
}

TEST(SnapshotTest, TextRoundTripsEveryField) {
  RunSnapshot s;
  auto empty = snapshot_from_json(snapshot_to_json_text(s));
  ASSERT_TRUE(empty.is_ok());
  EXPECT_EQ(snapshot_to_json_text(*empty), snapshot_to_json_text(s));
  s.status = kRunRunning;
  s.next_seq = 9;
  s.model_calls = 2;
  s.tool_calls = 3;
  s.usage = Usage{10, 2, 12};
  s.pending_tools.push_back(PendingTool{7, "call \"a\"", "lookup", R"({"q":"caf\u00e9\n"})"});
  s.pending_tools.push_back(PendingTool{8, "b", "noop", "{}"});
  s.started_at_ms = 1700000000000;
  s.deadline_at_ms = -1;
  s.output = "line\tone";
  s.error_code = "x";
  s.error_message = "\x01 control";
  s.final_text = "done";
  s.instructions = "be brief";
  s.client_tools = json::array{json::object{{"type", "function"}, {"function", json::object{{"name", "f"}}}}};
  s.has_input_messages = true;
  s.approvals[7] = ApprovalState{"appr_1", "h", "approved"};
  s.approvals[8] = ApprovalState{"appr_2", "h2", ""};
  std::string text = snapshot_to_json_text(s);
  auto parsed = parse_json_object(text);
  ASSERT_TRUE(parsed.is_ok()) << text;
  EXPECT_EQ(parsed->at("pending_tools").as_array()[0].as_object().at("call_id").as_string(), "call \"a\"");
  EXPECT_EQ(parsed->at("usage").as_object().at("total_tokens").as_int64(), 12);
  EXPECT_EQ(parsed->at("error_message").as_string(), "\x01 control");
  EXPECT_EQ(parsed->at("approvals").as_array().size(), 2u);
  auto back = snapshot_from_json(text);
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(snapshot_to_json_text(*back), text);
  EXPECT_EQ(back->pending_tools[0].arguments, s.pending_tools[0].arguments);
  EXPECT_EQ(back->final_text.value_or(""), "done");
  EXPECT_EQ(back->approvals.at(7).decision, "approved");
  EXPECT_EQ(back->deadline_at_ms, -1);
}

}  // namespace
}  // namespace continuum
