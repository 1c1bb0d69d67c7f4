#include <gtest/gtest.h>

#include "agent/context.h"

namespace continuum {
namespace {

std::string msg(const std::string& role, const std::string& content) {
  return to_json(json::object{{"role", role}, {"content", content}});
}

TEST(ContextTest, KeepsNewestItemsThatFitAndInstructionsFirst) {
  std::vector<std::string> newest_first;
  for (int i = 9; i >= 0; --i) newest_first.push_back(msg("user", std::string(400, 'a' + i)));
  json::array context = assemble_context("sys", newest_first, 350);
  ASSERT_GE(context.size(), 2u);
  EXPECT_EQ(context[0].as_object().at("role").as_string(), "system");
  EXPECT_LT(context.size(), 11u) << "older items are cut";
  // The last message is the newest.
  EXPECT_EQ(context.back().as_object().at("content").as_string(), std::string(400, 'j'));
}

TEST(ContextTest, AlwaysKeepsNewestEvenIfOverBudget) {
  json::array context = assemble_context("", {msg("user", std::string(10000, 'x'))}, 256);
  EXPECT_EQ(context.size(), 1u);
}

TEST(ContextTest, DropsOrphanedLeadingToolResults) {
  std::vector<std::string> newest_first = {msg("assistant", "final"), msg("tool", std::string(40, 't')),
                                           msg("assistant", std::string(4000, 'c'))};
  json::array context = assemble_context("", newest_first, 40);
  for (const auto& message : context) EXPECT_NE(message.as_object().at("role").as_string(), "tool");
}

}  // namespace
}  // namespace continuum
