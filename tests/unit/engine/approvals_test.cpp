// Human approvals in the engine: a held tool call parks the run durably,
// runs once with the approved arguments, is denied or expires into a denial
// the model sees, and survives a crash while waiting.
#include "tests/unit/engine/test_env.h"

namespace continuum::testing {
namespace {

constexpr const char* kAgent = R"({
  "name": "support", "model": {"provider": "scripted", "model": "m"},
  "tools": [{"type": "http", "name": "refund", "url": "http://tools.invalid/refund"},
            {"type": "http", "name": "lookup", "url": "http://tools.invalid/lookup"}]
})";

constexpr const char* kScript = R"({"scripts": {"m": {"steps": [
  {"tool_calls": [{"name": "lookup", "arguments": {"id": "{{input}}"}},
                  {"name": "refund", "arguments": {"amount": 2500}}]},
  {"content": "done: {{tool_results}}"}]}}})";

// Holds refund calls for approval, denies "forbidden", allows the rest.
class ScriptedGate final : public EffectGate {
 public:
  EffectVerdict check(const EffectRequest& request) override {
    checked.push_back(request.resource);
    if (request.resource == "tool:refund") return {EffectVerdictKind::kRequireApproval, "big-refunds", "over 1000"};
    if (request.resource == "tool:lookup" && deny_lookup) return {EffectVerdictKind::kDeny, "no-lookups", "not today"};
    return {};
  }
  std::vector<std::string> checked;
  bool deny_lookup = false;
};

class ApprovalsTest : public EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    gate_ = &gate;
    set_script(kScript);
    start_engine();
    agent = put_agent(kAgent);
  }
  std::string start_waiting_run() {
    std::string run_id = submit(new_session("support"), agent, "C-7");
    EXPECT_TRUE(pump([&] { return run(run_id).status == kRunWaiting; }));
    return run_id;
  }
  ApprovalRecord pending_approval() {
    auto pending = store_->list_approvals("t1", kApprovalPending, clock_.now_ms(), "", 10);
    EXPECT_EQ(pending->size(), 1u);
    return pending->empty() ? ApprovalRecord{} : pending->front();
  }
  void decide(const ApprovalRecord& approval, const char* status, const std::string& comment = "") {
    ApprovalRecord decision = approval;
    decision.status = status;
    decision.decided_at_ms = clock_.now_ms();
    decision.decided_by = "bob";
    decision.comment = comment;
    WriteBatch batch;
    batch.approval_decisions.push_back(decision);
    ASSERT_TRUE(store_->commit_and_wait(std::move(batch)).is_ok());
    engine_->approval_decided("t1", approval.run_id);
  }
  int refund_calls() const {
    return static_cast<int>(std::count_if(tools_.keys.begin(), tools_.keys.end(), [&](const std::string& key) {
      return key.ends_with(":" + std::to_string(refund_seq));
    }));
  }
  std::string tool_output(const std::string& run_id, const std::string& name) {
    for (const auto& step : steps(run_id)) {
      auto payload = parse_json_object(step.payload_json);
      if (step.kind == kStepToolCall && payload->at("name").as_string() == name) {
        return std::string(payload->at("output").as_string());
      }
    }
    return "";
  }

  ScriptedGate gate;
  AgentRecord agent;
  int64_t refund_seq = 4;  // model step at 2, lookup at 3, refund at 4
};

TEST_F(ApprovalsTest, HeldCallWaitsThenRunsOnceWithTheApprovedArguments) {
  std::string run_id = start_waiting_run();
  EXPECT_EQ(refund_calls(), 0) << "nothing runs before the decision";
  ApprovalRecord approval = pending_approval();
  EXPECT_EQ(approval.tool, "refund");
  EXPECT_EQ(approval.arguments_json, R"({"amount":2500})");
  EXPECT_EQ(approval.statement, "big-refunds");
  EXPECT_EQ(approval.seq, refund_seq);
  decide(approval, kApprovalApproved);
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  EXPECT_EQ(refund_calls(), 1);
  std::vector<std::string> kinds;
  for (const auto& step : steps(run_id)) kinds.push_back(step.kind);
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), kStepApprovalRequested), kinds.end());
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), kStepApprovalDecided), kinds.end());
  RunSnapshot folded;
  for (const auto& step : steps(run_id)) ASSERT_TRUE(fold_step(folded, step).is_ok()) << step.kind;
  EXPECT_EQ(snapshot_to_json_text(folded), run(run_id).snapshot_json) << "approval steps fold like the rest";
  EXPECT_EQ(std::count(gate.checked.begin(), gate.checked.end(), "tool:refund"), 1)
      << "an approved call is not asked about again";
}

TEST_F(ApprovalsTest, DenialReachesTheModelAndTheToolIsNeverCalled) {
  std::string run_id = start_waiting_run();
  decide(pending_approval(), kApprovalDenied, "too large");
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(run(run_id).status, kRunCompleted);
  EXPECT_EQ(refund_calls(), 0);
  EXPECT_EQ(tool_output(run_id, "refund"), "error: the call was not approved (denied by bob: too large)");
}

TEST_F(ApprovalsTest, ExpiryBecomesADenialAndIsRecordedOnce) {
  std::string run_id = start_waiting_run();
  ApprovalRecord approval = pending_approval();
  clock_.advance_ms(approval_ttl_ms_ + 1);
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(refund_calls(), 0);
  EXPECT_NE(tool_output(run_id, "refund").find("expired"), std::string::npos);
  EXPECT_EQ(store_->get_approval("t1", approval.id)->status, kApprovalExpired);
  EXPECT_EQ(store_->get_approval("t1", approval.id)->decided_by, "system");
}

TEST_F(ApprovalsTest, WaitingRunSurvivesACrashAndTheDecisionAppliesOnce) {
  std::string run_id = start_waiting_run();
  ApprovalRecord approval = pending_approval();
  crash_and_restart();
  EXPECT_EQ(run(run_id).status, kRunWaiting) << "still waiting after the restart";
  EXPECT_EQ(pending_approval().id, approval.id) << "the same approval, not a second one";
  decide(approval, kApprovalApproved);
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(refund_calls(), 1);
  EXPECT_EQ(run(run_id).status, kRunCompleted);
}

TEST_F(ApprovalsTest, CancellingAWaitingRunWithdrawsItsApproval) {
  std::string run_id = start_waiting_run();
  ApprovalRecord approval = pending_approval();
  Status cancelled = conflict("not called");
  engine_->cancel_run("t1", run_id, [&](Status status) { cancelled = status; });
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_TRUE(cancelled.is_ok()) << cancelled.to_string();
  EXPECT_EQ(run(run_id).status, kRunCancelled);
  EXPECT_EQ(store_->get_approval("t1", approval.id)->status, kApprovalWithdrawn) << "not pending forever";
  EXPECT_EQ(refund_calls(), 0);
}

TEST_F(ApprovalsTest, DecisionMadeElsewhereIsFoundByPolling) {
  std::string run_id = start_waiting_run();
  ApprovalRecord decision = pending_approval();
  decision.status = kApprovalApproved;
  decision.decided_at_ms = clock_.now_ms();
  decision.decided_by = "bob";
  WriteBatch batch;  // written by "another node": this engine is not told
  batch.approval_decisions.push_back(decision);
  ASSERT_TRUE(store_->commit_and_wait(std::move(batch)).is_ok());
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(refund_calls(), 1);
}

TEST_F(ApprovalsTest, DeniedCallIsNotMadeAndTheModelSeesWhy) {
  gate.deny_lookup = true;
  std::string run_id = start_waiting_run();
  decide(pending_approval(), kApprovalApproved);
  ASSERT_TRUE(pump([&] { return finished(run_id); }));
  EXPECT_EQ(tool_output(run_id, "lookup"), "error: the call was denied by policy: not today");
  EXPECT_EQ(std::count_if(tools_.keys.begin(), tools_.keys.end(),
                          [](const std::string& key) { return key.ends_with(":3"); }),
            0);
}

}  // namespace
}  // namespace continuum::testing
