// The authorizer (policy in force per tenant, the built-in default) and the
// policy gate over effects (identity chain, arguments, session history read
// from a real SQLite journal), plus the audit checkpointer's signatures.
#include <gtest/gtest.h>

#include <filesystem>

#include "audit/chain.h"
#include "audit/checkpointer.h"
#include "audit/verifier.h"
#include "auth/authorizer.h"
#include "auth/policy_gate.h"
#include "engine/snapshot.h"
#include "store/sqlite/sqlite_store.h"

namespace continuum {
namespace {

class AuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() / ("continuum-authorizer-test-" + std::to_string(::getpid()) + ".db");
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_.string() + suffix);
    auto store = SqliteStore::open(SqliteStoreOptions{path_.string()}, clock_, nullptr);
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(*store);
    authorizer_ = std::make_unique<Authorizer>(*store_, clock_, /*cache_ms=*/1000);
    gate_ = std::make_unique<PolicyEffectGate>(*store_, *authorizer_, clock_);
  }
  void TearDown() override {
    store_.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_.string() + suffix);
  }
  void write_policy(int64_t version, const std::string& yaml) {
    auto document = policy::PolicyDocument::parse(yaml);
    ASSERT_TRUE(document.is_ok()) << document.status().to_string();
    WriteBatch batch;
    batch.policy_inserts.push_back(PolicyRecord{"t1", version, to_json(document->to_json()), clock_.now_ms(), "admin"});
    ASSERT_TRUE(store_->commit_and_wait(std::move(batch)).is_ok());
  }
  policy::Effect api_decision(const Principal& who, const std::string& action, const std::string& resource,
                              json::object fields) {
    policy::Request request;
    request.identities = who.identities();
    request.action = action;
    request.resource = resource;
    request.context = api_request_context(who, std::move(fields));
    auto decision = authorizer_->decide(who.tenant, request);
    EXPECT_TRUE(decision.is_ok()) << decision.status().to_string();
    return decision.is_ok() ? decision->effect : policy::Effect::kDeny;
  }
  // A committed refund call of `amount` in a run of session s1, `age_ms` ago.
  void past_refund(const std::string& run_id, int64_t amount, int64_t age_ms) {
    WriteBatch batch;
    if (!store_->get_session("t1", "s1").is_ok()) {
      batch.session_inserts.push_back(SessionRecord{"t1", "s1", "support", "{}", 1, "alice"});
    }
    batch.run_inserts.push_back(RunRecord{"t1", run_id, "s1", "support", 1, kRunCompleted, "in", "{}", 1, 1, 1});
    json::object payload{{"name", "refund"}, {"arguments", to_json(json::object{{"amount", amount}})},
                         {"output", "ok"}, {"is_error", false}};
    batch.steps.push_back(StepRecord{"t1", run_id, 3, kStepToolCall, to_json(payload), clock_.now_ms() - age_ms});
    ASSERT_TRUE(store_->commit_and_wait(std::move(batch)).is_ok());
  }
  EffectVerdict refund(int64_t amount) {
    return gate_->check(EffectRequest{"t1", "s1", "alice", "support", "run_now", 3, "tool:invoke", "tool:refund",
                                      json::object{{"amount", amount}}});
  }

  std::filesystem::path path_;
  ManualClock clock_{1'000'000'000};
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<PolicyEffectGate> gate_;
};

TEST_F(AuthorizerTest, BuiltInDefaultIsInForceUntilATenantWritesItsOwn) {
  ASSERT_TRUE(policy::PolicyDocument::parse(Authorizer::default_policy_text()).is_ok());
  auto in_force = authorizer_->policy_in_force("t1");
  ASSERT_TRUE(in_force.is_ok());
  EXPECT_EQ(in_force->version, 0);
  Principal alice{"t1", "alice", {"member"}, "key_a"};
  EXPECT_EQ(api_decision(alice, "session:read", "session:s1", {{"owner", "alice"}}), policy::Effect::kAllow);
  EXPECT_EQ(api_decision(alice, "session:read", "session:s2", {{"owner", "bob"}}), policy::Effect::kDeny)
      << "members see their own sessions only";
  EXPECT_EQ(api_decision(alice, "agent:write", "agent:x", {}), policy::Effect::kDeny);
  EXPECT_EQ(api_decision(Principal{"t1", "root", {"admin"}, "key_r"}, "agent:write", "agent:x", {}),
            policy::Effect::kAllow);
}

TEST_F(AuthorizerTest, NewestStoredVersionIsCachedUntilForgottenOrStale) {
  Principal alice{"t1", "alice", {"member"}, "key_a"};
  EXPECT_EQ(api_decision(alice, "agent:read", "agent:x", {}), policy::Effect::kAllow);
  write_policy(1, "statements: [{effect: deny, principal: '*', action: '*'}]");
  EXPECT_EQ(api_decision(alice, "agent:read", "agent:x", {}), policy::Effect::kAllow) << "cached for a second";
  clock_.advance_ms(1001);
  EXPECT_EQ(api_decision(alice, "agent:read", "agent:x", {}), policy::Effect::kDeny) << "another node's write, seen";
  write_policy(2, "statements: [{effect: allow, principal: role:member, action: agent:read}]");
  authorizer_->forget("t1");
  EXPECT_EQ(api_decision(alice, "agent:read", "agent:x", {}), policy::Effect::kAllow) << "a local write, at once";
  EXPECT_EQ(authorizer_->policy_in_force("t1")->version, 2);
  EXPECT_EQ(authorizer_->policy_in_force("t2")->version, 0) << "per tenant";
}

TEST_F(AuthorizerTest, GateSeesTheChainTheArgumentsAndTheSessionHistory) {
  write_policy(1, R"yaml(
statements:
  - {id: tools, effect: allow, principal: "agent:support", action: tool:invoke, resource: "*"}
  - {id: big, effect: require_approval, principal: "agent:*", action: tool:invoke, resource: tool:refund,
     when: args.amount > 1000}
  - {id: three-a-day, effect: deny, principal: "user:alice", action: tool:invoke, resource: tool:refund,
     when: 'count("refund", "24h") >= 3'}
  - {id: budget, effect: deny, principal: "agent:*", action: tool:invoke, resource: tool:refund,
     when: 'sum("refund", "amount", "24h") + args.amount > 2000'}
)yaml");
  EXPECT_EQ(refund(500).kind, EffectVerdictKind::kAllow);
  EffectVerdict big = refund(1500);
  EXPECT_EQ(big.kind, EffectVerdictKind::kRequireApproval);
  EXPECT_EQ(big.statement, "big");
  past_refund("r1", 900, 1000);
  past_refund("r2", 900, 2000);
  EffectVerdict over_budget = refund(500);
  EXPECT_EQ(over_budget.kind, EffectVerdictKind::kDeny) << "900 + 900 + 500 > 2000";
  EXPECT_EQ(over_budget.statement, "budget");
  EXPECT_EQ(refund(100).kind, EffectVerdictKind::kAllow);
  past_refund("r3", 10, 25LL * 3600 * 1000);  // outside the window
  EXPECT_EQ(refund(100).kind, EffectVerdictKind::kAllow) << "calls older than 24 h do not count";
  past_refund("r4", 10, 10);
  EffectVerdict fourth = refund(1);
  EXPECT_EQ(fourth.kind, EffectVerdictKind::kDeny) << "a fourth call within 24 h";
  EXPECT_EQ(fourth.statement, "three-a-day");
  EXPECT_EQ(gate_->check(EffectRequest{"t1", "s1", "alice", "other-agent", "run_now", 3, "tool:invoke", "tool:lookup",
                                       json::object{}})
                .kind,
            EffectVerdictKind::kDeny)
      << "no statement allows another agent's tools";
}

TEST_F(AuthorizerTest, CheckpointsSignTheHeadsThatMovedAndVerify) {
  WriteBatch batch;
  for (const char* action : {"a", "b"}) {
    AuditEventRecord event;
    event.tenant_id = "t1";
    event.action = action;
    batch.audit_events.push_back(event);
  }
  ASSERT_TRUE(store_->commit_and_wait(std::move(batch)).is_ok());
  auto key = Ed25519Key::generate();
  ASSERT_TRUE(key.is_ok());
  AuditCheckpointer checkpointer(*store_, *key, clock_);
  ASSERT_TRUE(checkpointer.checkpoint(/*wait=*/true).is_ok());
  ASSERT_TRUE(checkpointer.checkpoint(/*wait=*/true).is_ok()) << "nothing new: nothing written";
  auto checkpoints = store_->list_audit_checkpoints("t1", 0, 10);
  ASSERT_EQ(checkpoints->size(), 1u);
  EXPECT_EQ((*checkpoints)[0].seq, 2);
  auto report = verify_audit_sqlite(path_.string(), {key->public_key()});
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->checkpoints_checked, 1);
}

}  // namespace
}  // namespace continuum
