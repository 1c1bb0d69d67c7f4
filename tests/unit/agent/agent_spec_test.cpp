#include <gtest/gtest.h>

#include "agent/agent_spec.h"

namespace continuum {
namespace {

Status parse(const std::string& text) {
  auto obj = parse_json_object(text);
  if (!obj.is_ok()) return obj.status();
  auto spec = parse_agent_spec(*obj);
  return spec.is_ok() ? Status::ok() : spec.status();
}

TEST(AgentSpecTest, AcceptsFullDefinitionAndRoundTrips) {
  const char* text = R"({"name": "a", "model": {"model": "gpt", "params": {"temperature": 0}},
    "tools": [{"name": "t", "url": "https://x.example/t", "parameters": {"type": "object"}}],
    "limits": {"max_steps": 3}})";
  auto spec = parse_agent_spec(*parse_json_object(text));
  ASSERT_TRUE(spec.is_ok()) << spec.status().to_string();
  auto again = parse_agent_spec(agent_spec_to_json(*spec));
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(to_json(agent_spec_to_json(*again)), to_json(agent_spec_to_json(*spec)));
}

TEST(AgentSpecTest, ErrorsNameTheParam) {
  EXPECT_EQ(parse(R"({"name": "a"})").param(), "model");
  EXPECT_EQ(parse(R"({"name": "a b", "model": {"model": "m"}})").param(), "name");
  EXPECT_EQ(parse(R"({"name": "a", "model": {"model": "m", "provider": "x"}})").param(), "model.provider");
  EXPECT_EQ(parse(R"({"name": "a", "model": {"model": "m"}, "tools": [{"name": "t"}]})").param(), "tools[0].url");
  EXPECT_EQ(parse(R"({"name": "a", "model": {"model": "m"}, "tools": [{"name": "t", "url": "http://x/",
               "parameters": {"type": 12}}]})").param(), "tools[0].parameters");
  EXPECT_EQ(parse(R"({"name": "a", "model": {"model": "m"}, "limits": {"max_steps": 0}})").param(),
            "limits.max_steps");
  EXPECT_EQ(parse(R"({"name": "a", "model": {"model": "m"}, "colour": 1})").param(), "colour");
}

}  // namespace
}  // namespace continuum
