// The audit chain's verifier: every kind of tampering is named at the first
// bad record; checkpoints are checked for signature, trust and coverage.
#include <gtest/gtest.h>

#include "audit/audit_log.h"
#include "audit/chain.h"
#include "audit/verifier.h"
#include "crypto/signing.h"

namespace continuum {
namespace {

// Builds a tenant's chain of `count` events as a store would.
std::vector<AuditEventRecord> chain(int count) {
  std::vector<AuditEventRecord> events;
  std::string prev = audit_genesis_hash();
  for (int seq = 1; seq <= count; ++seq) {
    AuditEventRecord event;
    event.tenant_id = "t1";
    event.seq = seq;
    event.at_ms = 1000 + seq;
    event.principal = "user:alice";
    event.action = "tool:invoke";
    event.resource = "tool:refund";
    event.outcome = "allow";
    event.details_json = R"({"statement":"s1"})";
    event.canonical = canonical_event(event);
    event.prev_hash = prev;
    event.hash = audit_chain_hash(prev, seq, event.canonical);
    prev = event.hash;
    events.push_back(event);
  }
  return events;
}

AuditCheckpointRecord checkpoint_of(const Ed25519Key& key, const AuditEventRecord& head) {
  AuditCheckpointRecord checkpoint{"t1", head.seq, head.hash, 5000, key.key_id(), key.public_key(), ""};
  checkpoint.signature = *key.sign(audit_checkpoint_message("t1", head.seq, head.hash, 5000));
  return checkpoint;
}

class AuditVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto generated = Ed25519Key::generate();
    ASSERT_TRUE(generated.is_ok());
    key_ = std::make_unique<Ed25519Key>(std::move(*generated));
    events_ = chain(6);
    checkpoints_ = {checkpoint_of(*key_, events_[5])};
  }
  AuditVerifyReport verify() { return verify_audit_chain("t1", events_, checkpoints_, {key_->public_key()}); }

  std::unique_ptr<Ed25519Key> key_;
  std::vector<AuditEventRecord> events_;
  std::vector<AuditCheckpointRecord> checkpoints_;
};

TEST(AuditEventTest, EffectDecisionDetailsAreTheCanonicalObject) {
  std::string reason = "denied: \"quoted\" \u00e9\n";
  const std::string* reasons[] = {nullptr, &reason};
  for (const std::string* why : reasons) {
    json::object object{{"statement", "allow-\u00fc"}, {"seq", 42}, {"on_behalf_of", "user\t1"},
                        {"inputs_hash", "ab12"}};
    if (why != nullptr) object["reason"] = *why;
    EXPECT_EQ(effect_decision_details("allow-\u00fc", 42, "user\t1", "ab12", why), to_canonical_json(object));
  }
}

TEST(AuditEventTest, CanonicalDetailsHashAsTheObjectDoes) {
  json::object details{{"seq", 7}, {"statement", "s"}};
  AuditEventRecord built = audit_event("t1", 5, "agent:a", "tool:invoke", "tool:x", "allow", details, "run_1");
  AuditEventRecord given = audit_event_canonical("t1", 5, "agent:a", "tool:invoke", "tool:x", "allow",
                                                 to_canonical_json(details), "run_1");
  EXPECT_EQ(canonical_event(built), canonical_event(given));
}

TEST_F(AuditVerifierTest, IntactChainVerifies) {
  AuditVerifyReport report = verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.events_checked, 6);
  EXPECT_EQ(report.checkpoints_checked, 1);
}

TEST_F(AuditVerifierTest, EditedContentIsNamed) {
  events_[2].canonical.replace(events_[2].canonical.find("alice"), 5, "eve!!");
  AuditVerifyReport report = verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.broken_seq, 3);
}

TEST_F(AuditVerifierTest, EditedColumnIsNamed) {
  events_[3].action = "tool:read";
  AuditVerifyReport report = verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.broken_seq, 4);
  EXPECT_NE(report.problem.find("action"), std::string::npos) << report.problem;
}

TEST_F(AuditVerifierTest, RehashedEditBreaksTheNextLinkOrTheCheckpoint) {
  // An attacker recomputes the edited record's hash: the next record no longer links.
  events_[1].at_ms = 1;
  events_[1].canonical = canonical_event(events_[1]);
  events_[1].hash = audit_chain_hash(events_[1].prev_hash, 2, events_[1].canonical);
  AuditVerifyReport report = verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.broken_seq, 3);
}

TEST_F(AuditVerifierTest, DeletedRecordIsNamed) {
  events_.erase(events_.begin() + 2);
  AuditVerifyReport report = verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.broken_seq, 3);
  EXPECT_NE(report.problem.find("missing"), std::string::npos);
}

TEST_F(AuditVerifierTest, ReorderedRecordsAreNamed) {
  std::swap(events_[1], events_[2]);
  std::swap(events_[1].seq, events_[2].seq);  // as if their seq values were swapped in the table
  AuditVerifyReport report = verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.broken_seq, 2);
}

TEST_F(AuditVerifierTest, TruncationBelowACheckpointIsNamed) {
  events_.resize(4);
  AuditVerifyReport report = verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.broken_seq, 5);
  EXPECT_NE(report.problem.find("truncated"), std::string::npos) << report.problem;
}

TEST_F(AuditVerifierTest, ForgedOrUntrustedCheckpointsFail) {
  checkpoints_[0].signature[0] ^= 1;
  EXPECT_FALSE(verify().ok) << "bad signature";
  auto other = Ed25519Key::generate();
  checkpoints_ = {checkpoint_of(*other, events_[5])};
  AuditVerifyReport untrusted = verify();
  EXPECT_FALSE(untrusted.ok);
  EXPECT_NE(untrusted.problem.find("untrusted"), std::string::npos);
  EXPECT_TRUE(verify_audit_chain("t1", events_, checkpoints_, {}).ok) << "no trusted keys given: any valid signature";
}

TEST(AuditChainTest, CanonicalEncodingIsStableAndSortsDetails) {
  AuditEventRecord a;
  a.tenant_id = "t";
  a.details_json = R"({"z":1,"a":{"y":2,"b":3}})";
  AuditEventRecord b = a;
  b.details_json = R"({"a":{"b":3,"y":2},"z":1})";
  EXPECT_EQ(canonical_event(a), canonical_event(b));
  AuditEventRecord parsed;
  ASSERT_TRUE(parse_canonical_event(canonical_event(a), parsed).is_ok());
  EXPECT_EQ(parsed.details_json, R"({"a":{"b":3,"y":2},"z":1})");
}

// Chains written before canonical_event wrote its text directly keep
// verifying: the text is byte for byte what the DOM encoding gave.
TEST(AuditChainTest, CanonicalEncodingIsTheFieldsInOrderWithSortedDetails) {
  AuditEventRecord event;
  event.tenant_id = "t\u00e9";
  event.at_ms = 1700000000123;
  event.principal = "user:\"al\\ice\"";
  event.action = "tool:invoke";
  event.resource = "tool:noop";
  event.run_id = "run_1";
  event.outcome = "allow";
  for (std::string details : {R"({"z":[1,{"y":null,"b":"\n"}],"a":1.25})", "not json {"}) {
    event.details_json = details;
    auto parsed = parse_json(details);
    json::object expected{{"tenant", event.tenant_id},   {"at_ms", event.at_ms},   {"principal", event.principal},
                          {"action", event.action},      {"resource", event.resource}, {"run_id", event.run_id},
                          {"outcome", event.outcome},
                          {"details", parsed.is_ok() ? sorted_keys(*parsed) : json::value(details)}};
    EXPECT_EQ(canonical_event(event), to_json(expected));
  }
  // audit_event() writes the details canonically once; the chain splices them.
  json::object details{{"z", 1}, {"a", json::object{{"y", 2}, {"b", "x"}}}};
  AuditEventRecord made = audit_event("t", 5, "user:u", "run:create", "run:r", "allow", details, "r");
  EXPECT_TRUE(made.details_canonical);
  AuditEventRecord same = made;
  same.details_canonical = false;
  same.details_json = to_json(details);  // unsorted: parsed and sorted
  EXPECT_EQ(canonical_event(made), canonical_event(same));
}

TEST(SigningTest, Ed25519SignVerifyAndPersistedKey) {
  std::string path = ::testing::TempDir() + "/continuum-signing-test.key";
  std::remove(path.c_str());
  auto created = Ed25519Key::load_or_create(path);
  ASSERT_TRUE(created.is_ok()) << created.status().to_string();
  auto loaded = Ed25519Key::load_or_create(path);
  ASSERT_TRUE(loaded.is_ok());
  EXPECT_EQ(created->public_key(), loaded->public_key()) << "the same key after a restart";
  auto signature = loaded->sign("message");
  ASSERT_TRUE(signature.is_ok());
  EXPECT_TRUE(ed25519_verify(created->public_key(), "message", *signature));
  EXPECT_FALSE(ed25519_verify(created->public_key(), "massage", *signature));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace continuum
