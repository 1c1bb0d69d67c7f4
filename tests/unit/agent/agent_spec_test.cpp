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

// An agent with one MCP server `crm` whose remaining fields are `server_fields`.
std::string mcp_agent(const std::string& server_fields) {
  return R"({"name": "a", "model": {"model": "m"}, "tools": [{"type": "mcp", "name": "crm", )" + server_fields +
         "}]}";
}

// An http MCP server authorized by OAuth with the given `oauth` object.
std::string oauth_agent(const std::string& oauth) {
  return mcp_agent(R"("transport": "http", "url": "https://mcp.example.com/mcp", "oauth": )" + oauth);
}

TEST(AgentSpecTest, McpOAuthRoundTripsThroughTheAgentsJson) {
  auto spec = parse_agent_spec(*parse_json_object(oauth_agent(R"({"grant": "client_credentials",
      "client_id": "continuum-prod", "private_key": "crm-oauth-key", "signing_algorithm": "RS256",
      "client_metadata_url": "https://continuum.example.com/client.json", "scope": "crm:read crm:write"})")));
  ASSERT_TRUE(spec.is_ok()) << spec.status().to_string();
  ASSERT_TRUE(spec->tools[0].mcp.has_value());
  ASSERT_TRUE(spec->tools[0].mcp->oauth.has_value());
  const McpOAuthSpec& oauth = *spec->tools[0].mcp->oauth;
  EXPECT_EQ(oauth.grant, "client_credentials");
  EXPECT_EQ(oauth.client_id, "continuum-prod");
  EXPECT_EQ(oauth.client_secret, "");
  EXPECT_EQ(oauth.private_key, "crm-oauth-key");
  EXPECT_EQ(oauth.signing_algorithm, "RS256");
  EXPECT_EQ(oauth.client_metadata_url, "https://continuum.example.com/client.json");
  EXPECT_EQ(oauth.scope, "crm:read crm:write");

  json::object rendered = agent_spec_to_json(*spec);
  const json::value& tool = rendered.at("tools").as_array().at(0);
  json::object expected{{"grant", "client_credentials"},
                        {"client_id", "continuum-prod"},
                        {"private_key", "crm-oauth-key"},
                        {"signing_algorithm", "RS256"},
                        {"client_metadata_url", "https://continuum.example.com/client.json"},
                        {"scope", "crm:read crm:write"}};
  EXPECT_EQ(tool.at("oauth"), json::value(expected)) << "vault secret names only, no unset fields";
  auto again = parse_agent_spec(rendered);
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  ASSERT_TRUE(again->tools[0].mcp && again->tools[0].mcp->oauth);
  EXPECT_EQ(again->tools[0].mcp->oauth->private_key, "crm-oauth-key");
  EXPECT_EQ(again->tools[0].mcp->oauth->signing_algorithm, "RS256");
  EXPECT_EQ(to_json(agent_spec_to_json(*again)), to_json(rendered));
}

TEST(AgentSpecTest, AnEmptyMcpOAuthObjectMeansDiscoveryWithTheDefaults) {
  auto spec = parse_agent_spec(*parse_json_object(oauth_agent("{}")));
  ASSERT_TRUE(spec.is_ok()) << spec.status().to_string();
  ASSERT_TRUE(spec->tools[0].mcp && spec->tools[0].mcp->oauth);
  EXPECT_EQ(spec->tools[0].mcp->oauth->grant, "authorization_code");
  EXPECT_EQ(spec->tools[0].mcp->oauth->signing_algorithm, "ES256");
  EXPECT_EQ(spec->tools[0].mcp->oauth->client_id, "");
  auto again = parse_agent_spec(agent_spec_to_json(*spec));
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_TRUE(again->tools[0].mcp->oauth.has_value()) << "an empty oauth object is not lost on the way";

  auto plain = parse_agent_spec(
      *parse_json_object(mcp_agent(R"("transport": "http", "url": "https://mcp.example.com/mcp")")));
  ASSERT_TRUE(plain.is_ok()) << plain.status().to_string();
  EXPECT_FALSE(plain->tools[0].mcp->oauth.has_value());
  json::object plain_json = agent_spec_to_json(*plain);
  EXPECT_FALSE(plain_json.at("tools").as_array().at(0).as_object().contains("oauth"));
}

TEST(AgentSpecTest, McpOAuthErrorsNameTheParam) {
  EXPECT_EQ(parse(oauth_agent(R"({"client_id": "c", "colour": "blue"})")).param(), "tools[0].oauth.colour");
  EXPECT_EQ(parse(oauth_agent(R"({"grant": "password"})")).param(), "tools[0].oauth.grant");
  EXPECT_EQ(parse(oauth_agent(R"({"grant": "implicit"})")).param(), "tools[0].oauth.grant");
  EXPECT_EQ(parse(oauth_agent(R"({"client_secret": "crm-secret"})")).param(), "tools[0].oauth.client_id")
      << "a secret belongs to a pre-registered client";
  EXPECT_EQ(parse(oauth_agent(R"({"private_key": "crm-key"})")).param(), "tools[0].oauth.client_id");
  EXPECT_EQ(parse(oauth_agent(R"({"client_id": "c", "client_secret": "s", "private_key": "k"})")).param(),
            "tools[0].oauth")
      << "one way to authenticate the client";
  EXPECT_EQ(parse(oauth_agent(R"({"grant": "client_credentials"})")).param(), "tools[0].oauth.client_id");
  EXPECT_EQ(parse(oauth_agent(R"({"client_metadata_url": "http://continuum.example.com/client.json"})")).param(),
            "tools[0].oauth.client_metadata_url");
  EXPECT_EQ(parse(oauth_agent(R"({"client_id": "c", "private_key": "k", "signing_algorithm": "HS256"})")).param(),
            "tools[0].oauth.signing_algorithm");
  EXPECT_EQ(parse(oauth_agent(R"({"scope": ""})")).param(), "tools[0].oauth.scope");
  EXPECT_EQ(parse(oauth_agent(R"({"client_id": 7})")).param(), "tools[0].oauth.client_id");
  EXPECT_EQ(parse(oauth_agent(R"("bearer")")).param(), "tools[0].oauth");
  EXPECT_FALSE(parse(oauth_agent(R"({"client_id": "c", "client_secret": "not a secret name"})")).is_ok())
      << "client_secret names a vault secret; its value never enters the definition";
}

TEST(AgentSpecTest, McpOAuthBelongsToHttpServersWithoutAStaticCredential) {
  EXPECT_EQ(parse(mcp_agent(R"("transport": "stdio", "command": "crm-server", "oauth": {})")).param(),
            "tools[0].transport");
  EXPECT_EQ(parse(mcp_agent(R"("transport": "http", "url": "https://mcp.example.com/mcp", "oauth": {},
               "auth": {"secret": "crm-token", "prefix": "Bearer "})")).param(),
            "tools[0].auth");
  EXPECT_EQ(parse(R"({"name": "a", "model": {"model": "m"}, "tools": [{"name": "t", "url": "https://x.example/",
               "oauth": {}}]})").param(),
            "tools[0].oauth")
      << "not on http tools";
  EXPECT_TRUE(parse(mcp_agent(R"("transport": "http", "url": "https://mcp.example.com/mcp",
               "auth": {"secret": "crm-token", "prefix": "Bearer "})")).is_ok())
      << "a static credential alone is fine";
}

}  // namespace
}  // namespace continuum
