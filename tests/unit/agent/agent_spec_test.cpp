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

TEST(AgentSpecTest, ToolAuthNamesAVaultSecretAndAHeaderTheRuntimeDoesNotOwn) {
  auto tool = [](const std::string& auth) {
    return R"({"name": "a", "model": {"model": "m"}, "tools": [{"name": "t", "url": "https://x.example/",
               "auth": )" + auth + "}]}";
  };
  auto spec = parse_agent_spec(*parse_json_object(tool(R"({"secret": "crm-token", "prefix": "Bearer "})")));
  ASSERT_TRUE(spec.is_ok()) << spec.status().to_string();
  ASSERT_TRUE(spec->tools[0].auth.has_value());
  EXPECT_EQ(spec->tools[0].auth->header, "Authorization") << "the default header";
  EXPECT_EQ(spec->tools[0].auth->prefix, "Bearer ");
  auto again = parse_agent_spec(agent_spec_to_json(*spec));
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->tools[0].auth->secret, "crm-token") << "round trips";

  EXPECT_EQ(parse(tool(R"({})")).param(), "tools[0].auth.secret");
  EXPECT_EQ(parse(tool(R"({"secret": "no spaces"})")).param(), "tools[0].auth.secret");
  EXPECT_EQ(parse(tool(R"({"secret": "s", "header": "Idempotency-Key"})")).param(), "tools[0].auth.header");
  EXPECT_EQ(parse(tool(R"({"secret": "s", "header": "continuum-run-id"})")).param(), "tools[0].auth.header");
  EXPECT_EQ(parse(tool(R"({"secret": "s", "header": "X Bad"})")).param(), "tools[0].auth.header");
  EXPECT_EQ(parse(tool(R"({"secret": "s", "prefix": "a\r\nInjected: 1"})")).param(), "tools[0].auth.prefix");
  EXPECT_EQ(parse(tool(R"({"secret": "s", "value": "inline"})")).param(), "tools[0].auth.value")
      << "a credential's value never goes into an agent definition";
  EXPECT_EQ(parse(R"({"name": "a", "model": {"model": "m"}, "tools": [{"type": "builtin", "name": "noop",
               "auth": {"secret": "s"}}]})").param(), "tools[0].auth");
}

}  // namespace
}  // namespace continuum
