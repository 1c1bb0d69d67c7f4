// Tests of the pure OAuth helpers of HTTP MCP servers
// (src/tools/mcp/oauth_discovery.h): reading Bearer challenges, the metadata
// locations of RFC 9728 and RFC 8414 / OpenID discovery, origins and which
// resource a token may go to, the metadata documents, scope selection, PKCE
// and form bodies.
#include "tools/mcp/oauth_discovery.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace continuum {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;
using Strings = std::vector<std::string>;

BearerChallenge challenge_of(std::string_view header) {
  auto parsed = parse_bearer_challenge(header);
  EXPECT_TRUE(parsed.is_ok()) << header << ": " << parsed.status().to_string();
  return parsed.is_ok() ? *parsed : BearerChallenge{};
}

void expect_empty(const BearerChallenge& challenge) {
  EXPECT_EQ(challenge.error, "");
  EXPECT_EQ(challenge.error_description, "");
  EXPECT_EQ(challenge.scope, "");
  EXPECT_EQ(challenge.resource_metadata, "");
}

// --- parse_bearer_challenge -------------------------------------------------

TEST(BearerChallengeTest, ReadsAnInvalidTokenChallenge) {
  BearerChallenge challenge = challenge_of(
      R"(Bearer error="invalid_token", error_description="Missing Authorization header", )"
      R"(resource_metadata="http://localhost:1/.well-known/oauth-protected-resource/mcp")");
  EXPECT_EQ(challenge.error, "invalid_token");
  EXPECT_EQ(challenge.error_description, "Missing Authorization header");
  EXPECT_EQ(challenge.resource_metadata, "http://localhost:1/.well-known/oauth-protected-resource/mcp");
  EXPECT_EQ(challenge.scope, "");
}

TEST(BearerChallengeTest, ParametersInAnyOrderKeepTheSpacesInsideQuotes) {
  BearerChallenge challenge = challenge_of(
      R"(Bearer scope="mcp:basic mcp:write", )"
      R"(resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource", error="insufficient_scope")");
  EXPECT_EQ(challenge.scope, "mcp:basic mcp:write");
  EXPECT_EQ(challenge.resource_metadata, "https://mcp.example.com/.well-known/oauth-protected-resource");
  EXPECT_EQ(challenge.error, "insufficient_scope");
  EXPECT_EQ(challenge.error_description, "");
}

TEST(BearerChallengeTest, OnlyTheBearerChallengesParametersCount) {
  BearerChallenge after_basic = challenge_of(R"(Basic realm="x", Bearer scope="a")");
  EXPECT_EQ(after_basic.scope, "a");
  EXPECT_EQ(after_basic.error, "");

  BearerChallenge before_basic = challenge_of(R"(Bearer scope="a", Basic realm="x")");
  EXPECT_EQ(before_basic.scope, "a");

  // Parameters of the other challenges, even with Bearer's parameter names, are not Bearer's.
  BearerChallenge basic_error = challenge_of(R"(Basic realm="x", error="from_basic", Bearer scope="a")");
  EXPECT_EQ(basic_error.error, "");
  EXPECT_EQ(basic_error.scope, "a");
  BearerChallenge trailing_error = challenge_of(R"(Bearer scope="a", Basic realm="x", error="from_basic")");
  EXPECT_EQ(trailing_error.error, "");
  EXPECT_EQ(trailing_error.scope, "a");
}

TEST(BearerChallengeTest, ReadsUnquotedTokenValues) {
  BearerChallenge challenge = challenge_of("Bearer error=invalid_token, scope=read");
  EXPECT_EQ(challenge.error, "invalid_token");
  EXPECT_EQ(challenge.scope, "read");
}

TEST(BearerChallengeTest, UnescapesQuotedPairs) {
  BearerChallenge challenge =
      challenge_of(R"(Bearer error="invalid_token", error_description="the \"aud\" claim is wrong \\ sorry")");
  EXPECT_EQ(challenge.error_description, R"(the "aud" claim is wrong \ sorry)");
  EXPECT_EQ(challenge.error, "invalid_token");
}

TEST(BearerChallengeTest, SchemeAndParameterNamesAreCaseInsensitive) {
  BearerChallenge challenge =
      challenge_of(R"(bearer SCOPE="a", Error="invalid_token", Resource_Metadata="http://h/m")");
  EXPECT_EQ(challenge.scope, "a");
  EXPECT_EQ(challenge.error, "invalid_token");
  EXPECT_EQ(challenge.resource_metadata, "http://h/m");
  EXPECT_EQ(challenge_of(R"(BEARER scope="b")").scope, "b");
}

TEST(BearerChallengeTest, AHeaderWithoutABearerChallengeGivesAnEmptyOne) {
  expect_empty(challenge_of(""));
  expect_empty(challenge_of(R"(Basic realm="x")"));
  expect_empty(challenge_of("Bearer"));
  expect_empty(challenge_of(R"(Bearer realm="mcp")"));
}

TEST(BearerChallengeTest, AnUnterminatedQuoteIsAnError) {
  auto parsed = parse_bearer_challenge(R"(Bearer scope="a b)");
  ASSERT_FALSE(parsed.is_ok());
  EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(parse_bearer_challenge(R"(Bearer error="invalid_token", scope=")").is_ok());
  EXPECT_FALSE(parse_bearer_challenge(R"(Bearer scope="ends in a backslash\)").is_ok());
}

TEST(BearerChallengeTest, AnOverlongHeaderIsAnError) {
  std::string header = R"(Bearer scope=")" + std::string(8 * 1024, 'a') + "\"";
  EXPECT_FALSE(parse_bearer_challenge(header).is_ok());
}

TEST(BearerChallengeTest, SkipsToken68OfOtherSchemes) {
  EXPECT_EQ(challenge_of(R"(Negotiate abc==, Bearer scope="s")").scope, "s");
  EXPECT_EQ(challenge_of(R"(Negotiate abc=, Bearer scope="s")").scope, "s");
  EXPECT_EQ(challenge_of(R"(Negotiate abc, Bearer scope="s")").scope, "s");
}

// token68 (RFC 7235 §2.1) may contain '/' and '+', which base64 blobs do; a
// Negotiate blob with a '/' before the Bearer challenge makes the whole header
// "malformed" today. Enable once the reader accepts token68 characters.
TEST(BearerChallengeTest, SkipsToken68WithASlash) {
  EXPECT_EQ(challenge_of(R"(Negotiate YIIB/abc+d==, Bearer scope="s")").scope, "s");
}

// --- where metadata lives ---------------------------------------------------

TEST(MetadataUrlsTest, ProtectedResourcePathAwareLocationComesFirst) {
  EXPECT_EQ(protected_resource_metadata_urls("http://localhost:5/mcp"),
            (Strings{"http://localhost:5/.well-known/oauth-protected-resource/mcp",
                     "http://localhost:5/.well-known/oauth-protected-resource"}));
  EXPECT_EQ(protected_resource_metadata_urls("http://h/a/b/"),
            (Strings{"http://h/.well-known/oauth-protected-resource/a/b",
                     "http://h/.well-known/oauth-protected-resource"}));
}

TEST(MetadataUrlsTest, ProtectedResourceAtTheRootHasOnlyTheRootLocation) {
  Strings root_only{"http://h:5/.well-known/oauth-protected-resource"};
  EXPECT_EQ(protected_resource_metadata_urls("http://h:5"), root_only);
  EXPECT_EQ(protected_resource_metadata_urls("http://h:5/"), root_only);
}

TEST(MetadataUrlsTest, NoLocationsForANonHttpUrl) {
  EXPECT_TRUE(protected_resource_metadata_urls("not a url").empty());
  EXPECT_TRUE(protected_resource_metadata_urls("ftp://h/mcp").empty());
  EXPECT_TRUE(authorization_server_metadata_urls("not a url").empty());
  EXPECT_TRUE(authorization_server_metadata_urls("/tenant1").empty());
}

TEST(MetadataUrlsTest, AuthorizationServerWithAPathUsesPathInsertionThenOpenIdAppending) {
  Strings expected{"http://localhost:7/.well-known/oauth-authorization-server/tenant1",
                   "http://localhost:7/.well-known/openid-configuration/tenant1",
                   "http://localhost:7/tenant1/.well-known/openid-configuration"};
  EXPECT_EQ(authorization_server_metadata_urls("http://localhost:7/tenant1"), expected);
  EXPECT_EQ(authorization_server_metadata_urls("http://localhost:7/tenant1/"), expected);
  for (const std::string& url : authorization_server_metadata_urls("http://localhost:7/tenant1")) {
    EXPECT_NE(url, "http://localhost:7/.well-known/oauth-authorization-server")
        << "the root document describes another issuer";
    EXPECT_NE(url, "http://localhost:7/.well-known/openid-configuration");
  }
}

TEST(MetadataUrlsTest, AuthorizationServerAtTheRootHasTheTwoRootDocuments) {
  Strings expected{"http://localhost:7/.well-known/oauth-authorization-server",
                   "http://localhost:7/.well-known/openid-configuration"};
  EXPECT_EQ(authorization_server_metadata_urls("http://localhost:7"), expected);
  EXPECT_EQ(authorization_server_metadata_urls("http://localhost:7/"), expected);
}

// --- origins, resources, transport security ---------------------------------

TEST(UrlOriginTest, IsSchemeHostAndPortLowercased) {
  EXPECT_EQ(url_origin("http://Example.COM:8080/x?y=1#z"), "http://example.com:8080");
  EXPECT_EQ(url_origin("https://h/p"), "https://h");
  EXPECT_EQ(url_origin("http://localhost:5"), "http://localhost:5");
  EXPECT_EQ(url_origin("http://user:secret@h:1/p"), "http://h:1") << "no user info in an origin";
  EXPECT_EQ(url_origin("http://[::1]:3/mcp"), "http://[::1]:3");
}

TEST(UrlOriginTest, IsEmptyForAnythingButAbsoluteHttpUrls) {
  EXPECT_EQ(url_origin("ftp://x"), "");
  EXPECT_EQ(url_origin("not a url"), "");
  EXPECT_EQ(url_origin("/relative"), "");
  EXPECT_EQ(url_origin(""), "");
  EXPECT_EQ(url_origin("http:no-authority"), "");
}

// Schemes are case-insensitive (RFC 3986 §3.1), and the header promises a
// lowercased origin; today an upper-case scheme is not recognized as http.
TEST(UrlOriginTest, LowercasesTheScheme) {
  EXPECT_EQ(url_origin("HTTP://Example.COM:8080/x"), "http://example.com:8080");
}

TEST(ResourceCoversTest, SameUrlAndParentPathsCover) {
  EXPECT_TRUE(resource_covers("http://localhost:5/mcp", "http://localhost:5/mcp"));
  EXPECT_TRUE(resource_covers("http://localhost:5", "http://localhost:5/mcp"));
  EXPECT_TRUE(resource_covers("http://localhost:5/", "http://localhost:5/mcp"));
  EXPECT_TRUE(resource_covers("http://localhost:5/mcp", "http://localhost:5/mcp/v1"));
  EXPECT_TRUE(resource_covers("http://LOCALHOST:5/mcp", "http://localhost:5/mcp")) << "hosts are case-insensitive";
}

TEST(ResourceCoversTest, PathsCompareBySegment) {
  EXPECT_FALSE(resource_covers("http://localhost:5/mc", "http://localhost:5/mcp"));
  EXPECT_FALSE(resource_covers("http://localhost:5/mcp/v1", "http://localhost:5/mcp"))
      << "a child does not cover its parent";
  EXPECT_FALSE(resource_covers("http://localhost:5/other", "http://localhost:5/mcp"));
}

TEST(ResourceCoversTest, AnotherOriginNeverCovers) {
  EXPECT_FALSE(resource_covers("http://localhost:6/mcp", "http://localhost:5/mcp")) << "port";
  EXPECT_FALSE(resource_covers("http://127.0.0.1:5/mcp", "http://localhost:5/mcp")) << "host";
  EXPECT_FALSE(resource_covers("https://localhost:5/mcp", "http://localhost:5/mcp")) << "scheme";
  EXPECT_FALSE(resource_covers("https://evil.example.com/mcp", "http://localhost:5/mcp"));
  EXPECT_FALSE(resource_covers("", "http://localhost:5/mcp"));
  EXPECT_FALSE(resource_covers("not a url", "http://localhost:5/mcp"));
  EXPECT_FALSE(resource_covers("http://localhost:5/mcp", "not a url"));
}

TEST(ResourceCoversTest, AResourceWithAFragmentCoversNothing) {
  EXPECT_FALSE(resource_covers("http://localhost:5/mcp#frag", "http://localhost:5/mcp"));
}

TEST(ResourceCoversTest, TrailingSlashesDoNotMatter) {
  EXPECT_TRUE(resource_covers("http://localhost:5/mcp/", "http://localhost:5/mcp"));
  EXPECT_TRUE(resource_covers("http://localhost:5/mcp", "http://localhost:5/mcp/"));
}

TEST(SecureOauthUrlTest, HttpsOrLoopbackHttp) {
  EXPECT_TRUE(secure_oauth_url("https://auth.example.com/token"));
  EXPECT_TRUE(secure_oauth_url("https://10.0.0.1:8443/token"));
  EXPECT_TRUE(secure_oauth_url("http://localhost/callback"));
  EXPECT_TRUE(secure_oauth_url("http://localhost:8080/callback"));
  EXPECT_TRUE(secure_oauth_url("http://LocalHost/callback"));
  EXPECT_TRUE(secure_oauth_url("http://127.0.0.1:9"));
  EXPECT_TRUE(secure_oauth_url("http://[::1]:3/token"));
}

TEST(SecureOauthUrlTest, PlainHttpToTheNetworkAndGarbageAreNot) {
  EXPECT_FALSE(secure_oauth_url("http://example.com"));
  EXPECT_FALSE(secure_oauth_url("http://10.0.0.1/token"));
  EXPECT_FALSE(secure_oauth_url("http://localhost.example.com/token"));
  EXPECT_FALSE(secure_oauth_url("ftp://localhost/token"));
  EXPECT_FALSE(secure_oauth_url("garbage"));
  EXPECT_FALSE(secure_oauth_url(""));
  EXPECT_FALSE(secure_oauth_url("/token"));
}

// "127." is tested as a string prefix of the host, so a DNS name that merely
// starts with "127." is taken for loopback and gets credentials over plain
// http. Enable once only IPv4 127.0.0.0/8 (host_type ipv4) counts.
TEST(SecureOauthUrlTest, ANameStartingWith127IsNotLoopback) {
  EXPECT_FALSE(secure_oauth_url("http://127.evil.example/token"));
}

// --- metadata documents -----------------------------------------------------

TEST(ProtectedResourceMetadataTest, ReadsAGoodDocument) {
  auto metadata = parse_protected_resource_metadata(R"({
    "resource": "http://localhost:5/mcp",
    "authorization_servers": ["http://localhost:7/tenant1", "https://as.example.com"],
    "scopes_supported": ["mcp:basic", "mcp:write"],
    "bearer_methods_supported": ["header"]})");
  ASSERT_TRUE(metadata.is_ok()) << metadata.status().to_string();
  EXPECT_EQ(metadata->resource, "http://localhost:5/mcp");
  EXPECT_EQ(metadata->authorization_servers, (Strings{"http://localhost:7/tenant1", "https://as.example.com"}));
  EXPECT_EQ(metadata->scopes_supported, (Strings{"mcp:basic", "mcp:write"}));
}

TEST(ProtectedResourceMetadataTest, ScopesAreOptional) {
  auto metadata = parse_protected_resource_metadata(
      R"({"resource": "http://localhost:5/mcp", "authorization_servers": ["http://localhost:7"]})");
  ASSERT_TRUE(metadata.is_ok()) << metadata.status().to_string();
  EXPECT_TRUE(metadata->scopes_supported.empty());
}

TEST(ProtectedResourceMetadataTest, NeedsAnHttpResource) {
  EXPECT_FALSE(parse_protected_resource_metadata(R"({"authorization_servers": ["http://localhost:7"]})").is_ok());
  EXPECT_FALSE(
      parse_protected_resource_metadata(R"({"resource": "", "authorization_servers": ["http://localhost:7"]})").is_ok());
  EXPECT_FALSE(
      parse_protected_resource_metadata(R"({"resource": "urn:mcp", "authorization_servers": ["http://localhost:7"]})")
          .is_ok());
  EXPECT_FALSE(
      parse_protected_resource_metadata(R"({"resource": 5, "authorization_servers": ["http://localhost:7"]})").is_ok());
}

TEST(ProtectedResourceMetadataTest, NeedsAnAuthorizationServer) {
  auto missing = parse_protected_resource_metadata(R"({"resource": "http://localhost:5/mcp"})");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(
      parse_protected_resource_metadata(R"({"resource": "http://localhost:5/mcp", "authorization_servers": []})").is_ok());
  EXPECT_FALSE(parse_protected_resource_metadata(
                   R"({"resource": "http://localhost:5/mcp", "authorization_servers": "http://localhost:7"})")
                   .is_ok())
      << "a string, not a list";
  EXPECT_FALSE(parse_protected_resource_metadata(
                   R"({"resource": "http://localhost:5/mcp", "authorization_servers": ["ftp://as", "not a url", 7]})")
                   .is_ok())
      << "nothing usable is left";
}

TEST(ProtectedResourceMetadataTest, DropsNonHttpAuthorizationServers) {
  auto metadata = parse_protected_resource_metadata(R"({"resource": "http://localhost:5/mcp",
    "authorization_servers": ["ftp://as", "http://as1", 42, "mailto:as@example.com", "https://as2"]})");
  ASSERT_TRUE(metadata.is_ok()) << metadata.status().to_string();
  EXPECT_EQ(metadata->authorization_servers, (Strings{"http://as1", "https://as2"}));
}

TEST(ProtectedResourceMetadataTest, RefusesWhatIsNotAJsonObject) {
  EXPECT_FALSE(parse_protected_resource_metadata("").is_ok());
  EXPECT_FALSE(parse_protected_resource_metadata("<html>").is_ok());
  EXPECT_FALSE(parse_protected_resource_metadata(R"(["http://localhost:5/mcp"])").is_ok());
}

TEST(AuthorizationServerMetadataTest, ReadsAGoodDocument) {
  auto metadata = parse_authorization_server_metadata(R"({
    "issuer": "http://localhost:7/tenant1",
    "authorization_endpoint": "http://localhost:7/tenant1/authorize",
    "token_endpoint": "http://localhost:7/tenant1/token",
    "registration_endpoint": "http://localhost:7/tenant1/register",
    "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "private_key_jwt"],
    "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
    "code_challenge_methods_supported": ["S256"],
    "response_types_supported": ["code"],
    "client_id_metadata_document_supported": true})");
  ASSERT_TRUE(metadata.is_ok()) << metadata.status().to_string();
  EXPECT_EQ(metadata->issuer, "http://localhost:7/tenant1");
  EXPECT_EQ(metadata->authorization_endpoint, "http://localhost:7/tenant1/authorize");
  EXPECT_EQ(metadata->token_endpoint, "http://localhost:7/tenant1/token");
  EXPECT_EQ(metadata->registration_endpoint, "http://localhost:7/tenant1/register");
  EXPECT_EQ(metadata->token_endpoint_auth_methods_supported,
            (Strings{"none", "client_secret_basic", "private_key_jwt"}));
  EXPECT_EQ(metadata->grant_types_supported, (Strings{"authorization_code", "refresh_token", "client_credentials"}));
  EXPECT_EQ(metadata->code_challenge_methods_supported, (Strings{"S256"}));
  EXPECT_TRUE(metadata->client_id_metadata_document_supported);
}

TEST(AuthorizationServerMetadataTest, NeedsAnHttpTokenEndpoint) {
  auto missing = parse_authorization_server_metadata(
      R"({"issuer": "http://localhost:7", "authorization_endpoint": "http://localhost:7/authorize"})");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(parse_authorization_server_metadata(R"({"token_endpoint": "not a url"})").is_ok());
  EXPECT_FALSE(parse_authorization_server_metadata(R"({"token_endpoint": ["http://localhost:7/token"]})").is_ok());
  EXPECT_FALSE(parse_authorization_server_metadata("[]").is_ok());
}

TEST(AuthorizationServerMetadataTest, AMalformedAuthorizationEndpointIsAnError) {
  EXPECT_FALSE(parse_authorization_server_metadata(
                   R"({"token_endpoint": "http://localhost:7/token", "authorization_endpoint": "/authorize"})")
                   .is_ok());
  auto without = parse_authorization_server_metadata(R"({"token_endpoint": "http://localhost:7/token"})");
  ASSERT_TRUE(without.is_ok()) << "client_credentials needs no authorization endpoint";
  EXPECT_EQ(without->authorization_endpoint, "");
}

TEST(AuthorizationServerMetadataTest, OnlyJsonTrueSupportsClientIdMetadataDocuments) {
  for (const char* flag : {R"("true")", "1", "null", "{}"}) {
    auto metadata = parse_authorization_server_metadata(
        std::string(R"({"token_endpoint": "http://localhost:7/token", "client_id_metadata_document_supported": )") +
        flag + "}");
    ASSERT_TRUE(metadata.is_ok()) << flag << ": " << metadata.status().to_string();
    EXPECT_FALSE(metadata->client_id_metadata_document_supported) << flag;
  }
  auto absent = parse_authorization_server_metadata(R"({"token_endpoint": "http://localhost:7/token"})");
  ASSERT_TRUE(absent.is_ok());
  EXPECT_FALSE(absent->client_id_metadata_document_supported);
  auto no = parse_authorization_server_metadata(
      R"({"token_endpoint": "http://localhost:7/token", "client_id_metadata_document_supported": false})");
  ASSERT_TRUE(no.is_ok());
  EXPECT_FALSE(no->client_id_metadata_document_supported);
}

TEST(AuthorizationServerMetadataTest, AMalformedRegistrationEndpointIsDropped) {
  auto metadata = parse_authorization_server_metadata(
      R"({"token_endpoint": "http://localhost:7/token", "registration_endpoint": "not a url"})");
  ASSERT_TRUE(metadata.is_ok()) << metadata.status().to_string();
  EXPECT_EQ(metadata->registration_endpoint, "") << "no dynamic registration rather than a broken one";
  EXPECT_EQ(metadata->token_endpoint, "http://localhost:7/token");
}

TEST(AuthorizationServerMetadataTest, FallbackEndpointsAreAtTheServersOrigin) {
  AuthorizationServerMetadata metadata = fallback_authorization_server("http://localhost:9/mcp");
  EXPECT_EQ(metadata.issuer, "http://localhost:9");
  EXPECT_EQ(metadata.authorization_endpoint, "http://localhost:9/authorize");
  EXPECT_EQ(metadata.token_endpoint, "http://localhost:9/token");
  EXPECT_EQ(metadata.registration_endpoint, "http://localhost:9/register");
  EXPECT_FALSE(metadata.client_id_metadata_document_supported);
}

// --- scopes -----------------------------------------------------------------

TEST(ScopeTest, ChooseScopePrefersConfiguredThenChallengedThenAllSupported) {
  Strings supported{"mcp:read", "mcp:write"};
  EXPECT_EQ(choose_scope("admin", "mcp:read", supported), "admin");
  EXPECT_EQ(choose_scope("", "mcp:read", supported), "mcp:read");
  EXPECT_EQ(choose_scope("", "", supported), "mcp:read mcp:write");
  EXPECT_EQ(choose_scope("", "", {}), "");
}

TEST(ScopeTest, SplitScopeIgnoresRepeatedSpaces) {
  EXPECT_EQ(split_scope("a b c"), (Strings{"a", "b", "c"}));
  EXPECT_EQ(split_scope("  a  b "), (Strings{"a", "b"}));
  EXPECT_TRUE(split_scope("").empty());
  EXPECT_TRUE(split_scope("   ").empty());
}

TEST(ScopeTest, ScopeUnionKeepsOrderWithoutDuplicates) {
  EXPECT_EQ(scope_union("a b", "b c a d"), "a b c d");
  EXPECT_EQ(scope_union("", "x  y"), "x y");
  EXPECT_EQ(scope_union("x", ""), "x");
  EXPECT_EQ(scope_union("", ""), "");
}

TEST(ScopeTest, ScopeIncludesEveryRequiredScope) {
  EXPECT_TRUE(scope_includes("a b c", "c a"));
  EXPECT_FALSE(scope_includes("a b", "a d"));
  EXPECT_FALSE(scope_includes("", "a"));
  EXPECT_FALSE(scope_includes("ab", "a")) << "whole scopes, not substrings";
  EXPECT_TRUE(scope_includes("a", ""));
  EXPECT_TRUE(scope_includes("", ""));
}

// --- PKCE and form bodies ---------------------------------------------------

TEST(PkceTest, S256ChallengeOfTheRfc7636Example) {
  // RFC 7636 Appendix B.
  EXPECT_EQ(pkce_s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

TEST(FormTest, FormEncodeEscapesReservedCharactersAndSpacesAsPlus) {
  EXPECT_EQ(form_encode({{"a", "b c"}, {"x", "1&2=3"}, {"u", "http://h/p?q"}}),
            "a=b+c&x=1%262%3D3&u=http%3A%2F%2Fh%2Fp%3Fq");
  EXPECT_EQ(form_encode({{"k", "-._~AZaz09"}}), "k=-._~AZaz09") << "unreserved characters stay";
  EXPECT_EQ(form_encode({{"k", "a+b"}}), "k=a%2Bb") << "a literal plus is not a space";
  EXPECT_EQ(form_encode({{"a b", ""}}), "a+b=");
  EXPECT_EQ(form_encode({}), "");
}

TEST(FormTest, WithQueryAppendsToAnExistingQuery) {
  std::string url = with_query("http://h/a?x=1", {{"y", "2 3"}});
  EXPECT_EQ(url.rfind("http://h/a?", 0), 0u) << url;
  EXPECT_EQ(query_params(url), (Fields{{"x", "1"}, {"y", "2 3"}}));
}

TEST(FormTest, WithQueryRoundTripsReservedCharacters) {
  Fields fields{{"state", "a&b=c"}, {"redirect_uri", "http://localhost:8/cb?x=1"}, {"scope", "mcp:read mcp:write"}};
  std::string url = with_query("https://as.example.com/authorize", fields);
  EXPECT_EQ(url.rfind("https://as.example.com/authorize?", 0), 0u) << url;
  EXPECT_EQ(query_params(url), fields);
}

TEST(FormTest, WithQueryLeavesANonUrlAlone) {
  EXPECT_EQ(with_query("not a url", {{"a", "b"}}), "not a url");
}

// A '+' in a value must reach the server as '+', but Boost.URL (1.81) leaves
// it unescaped in a query it then reads back as a space. Enable once
// with_query escapes it (e.g. through form_encode).
TEST(FormTest, WithQueryKeepsAPlus) {
  EXPECT_EQ(query_params(with_query("http://h/a", {{"v", "a+b"}})), (Fields{{"v", "a+b"}}));
}

TEST(FormTest, QueryParamsDecodes) {
  EXPECT_EQ(query_params("http://h/cb?code=abc&state=s%20t"), (Fields{{"code", "abc"}, {"state", "s t"}}));
  EXPECT_EQ(query_params("http://h/cb?error=access_denied&error_description=User+denied"),
            (Fields{{"error", "access_denied"}, {"error_description", "User denied"}}));
  EXPECT_EQ(query_params("/cb?code=1"), (Fields{{"code", "1"}}));
  EXPECT_TRUE(query_params("http://h/cb").empty());
  EXPECT_TRUE(query_params("http://h/cb#code=1").empty()) << "a fragment is not the query";
  EXPECT_TRUE(query_params("http://h/cb?").empty()) << "an empty query has no fields";
  EXPECT_TRUE(query_params("?#" + std::string(40, 't') + ")").empty()) << "found by the fuzzer";
  EXPECT_TRUE(query_params("x?#frag").empty());
}

}  // namespace
}  // namespace continuum
