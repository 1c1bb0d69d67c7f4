#include "tools/mcp/oauth_discovery.h"

#include <algorithm>
#include <cctype>

#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <boost/url/url.hpp>

#include "auth/jwt.h"
#include "crypto/hash.h"

namespace continuum {

namespace {

constexpr std::size_t kChallengeBytesMax = 8 * 1024;

// RFC 9110 token characters, plus '/' so that a token68 credential (base64)
// of another scheme reads as one word and is skipped.
bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~/").find(c) != std::string_view::npos;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Reads challenges "scheme param=value, param="quoted", scheme2 ..." one
// token at a time. Tolerates what servers send in practice (token68 blobs,
// stray commas), refuses unterminated quotes.
class ChallengeReader {
 public:
  explicit ChallengeReader(std::string_view text) : text_(text) {}

  void skip_space_and_commas() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == ',')) ++pos_;
  }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }
  bool done() const { return pos_ >= text_.size(); }
  std::string_view token() {
    std::size_t start = pos_;
    while (pos_ < text_.size() && is_token_char(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }
  bool at(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
  void advance() { ++pos_; }
  std::size_t position() const { return pos_; }
  void rewind(std::size_t pos) { pos_ = pos; }

  Result<std::string> value() {
    if (!at('"')) {
      std::string plain(token());
      while (at('=')) {  // token68 padding
        plain.push_back('=');
        advance();
      }
      return plain;
    }
    advance();
    std::string out;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
      out.push_back(text_[pos_++]);
    }
    if (pos_ >= text_.size()) return invalid_argument("unterminated quoted string in WWW-Authenticate");
    ++pos_;
    return out;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

std::vector<std::string> string_list(const json::object& obj, std::string_view key) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || !it->value().is_array()) return out;
  for (const auto& item : it->value().as_array()) {
    if (item.is_string()) out.emplace_back(item.as_string());
  }
  return out;
}

std::string string_field(const json::object& obj, std::string_view key) {
  auto it = obj.find(key);
  return it != obj.end() && it->value().is_string() ? std::string(it->value().as_string()) : std::string();
}

bool is_http_url(const std::string& url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return false;
  auto scheme = parsed->scheme_id();
  return (scheme == boost::urls::scheme::http || scheme == boost::urls::scheme::https) &&
         !parsed->encoded_host().empty();
}

// The path without a trailing slash ("" for the root).
std::string trimmed_path(std::string_view path) {
  std::string out(path);
  while (!out.empty() && out.back() == '/') out.pop_back();
  return out;
}

}  // namespace

Result<BearerChallenge> parse_bearer_challenge(std::string_view header) {
  if (header.size() > kChallengeBytesMax) return invalid_argument("WWW-Authenticate is too long");
  BearerChallenge challenge;
  ChallengeReader reader(header);
  bool in_bearer = false;
  while (true) {
    reader.skip_space_and_commas();
    if (reader.done()) break;
    std::size_t start = reader.position();
    std::string_view name = reader.token();
    if (name.empty()) return invalid_argument("malformed WWW-Authenticate");
    reader.skip_space();
    if (!reader.at('=')) {  // a new challenge's scheme
      if (in_bearer) break;
      in_bearer = iequals(name, "Bearer");
      continue;
    }
    reader.advance();
    reader.skip_space();
    if (reader.at('=') || reader.done()) {  // token68 ("abc==") rather than a parameter
      reader.rewind(start);
      reader.token();
      while (reader.at('=')) reader.advance();
      continue;
    }
    ASSIGN_OR_RETURN(std::string value, reader.value());
    if (!in_bearer) continue;
    if (iequals(name, "error")) challenge.error = value;
    else if (iequals(name, "error_description")) challenge.error_description = value;
    else if (iequals(name, "scope")) challenge.scope = value;
    else if (iequals(name, "resource_metadata")) challenge.resource_metadata = value;
  }
  return challenge;
}

std::string url_origin(const std::string& url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed || !is_http_url(url)) return "";
  std::string origin = std::string(parsed->scheme()) + "://" + std::string(parsed->encoded_host_and_port());
  std::transform(origin.begin(), origin.end(), origin.begin(), [](unsigned char c) { return std::tolower(c); });
  return origin;
}

std::vector<std::string> protected_resource_metadata_urls(const std::string& server_url) {
  auto parsed = boost::urls::parse_uri(server_url);
  std::string origin = url_origin(server_url);
  if (!parsed || origin.empty()) return {};
  std::string path = trimmed_path(parsed->encoded_path());
  std::vector<std::string> urls;
  if (!path.empty()) urls.push_back(origin + "/.well-known/oauth-protected-resource" + path);
  urls.push_back(origin + "/.well-known/oauth-protected-resource");
  return urls;
}

std::vector<std::string> authorization_server_metadata_urls(const std::string& issuer) {
  auto parsed = boost::urls::parse_uri(issuer);
  std::string origin = url_origin(issuer);
  if (!parsed || origin.empty()) return {};
  std::string path = trimmed_path(parsed->encoded_path());
  if (path.empty()) {
    return {origin + "/.well-known/oauth-authorization-server", origin + "/.well-known/openid-configuration"};
  }
  return {origin + "/.well-known/oauth-authorization-server" + path, origin + "/.well-known/openid-configuration" + path,
          origin + path + "/.well-known/openid-configuration"};
}

bool resource_covers(const std::string& resource, const std::string& server_url) {
  auto resource_url = boost::urls::parse_uri(resource);
  auto server = boost::urls::parse_uri(server_url);
  if (!resource_url || !server || url_origin(resource).empty() || url_origin(resource) != url_origin(server_url)) {
    return false;
  }
  if (!resource_url->encoded_fragment().empty()) return false;
  std::string prefix = trimmed_path(resource_url->encoded_path()) + "/";
  std::string path = trimmed_path(server->encoded_path()) + "/";
  return path.compare(0, prefix.size(), prefix) == 0;
}

bool secure_oauth_url(const std::string& url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed || !is_http_url(url)) return false;
  if (parsed->scheme_id() == boost::urls::scheme::https) return true;
  switch (parsed->host_type()) {
    case boost::urls::host_type::ipv4: return parsed->host_ipv4_address().to_bytes()[0] == 127;
    case boost::urls::host_type::ipv6: return parsed->host_ipv6_address().is_loopback();
    case boost::urls::host_type::name: {
      std::string host(parsed->encoded_host());
      std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
      return host == "localhost";
    }
    default: return false;
  }
}

Result<ProtectedResourceMetadata> parse_protected_resource_metadata(std::string_view body) {
  ASSIGN_OR_RETURN(json::object obj, parse_json_object(body));
  ProtectedResourceMetadata metadata;
  metadata.resource = string_field(obj, "resource");
  metadata.authorization_servers = string_list(obj, "authorization_servers");
  metadata.scopes_supported = string_list(obj, "scopes_supported");
  if (metadata.resource.empty() || !is_http_url(metadata.resource)) {
    return invalid_argument("the protected resource metadata has no resource URL");
  }
  std::erase_if(metadata.authorization_servers, [](const std::string& url) { return !is_http_url(url); });
  if (metadata.authorization_servers.empty()) {
    return invalid_argument("the protected resource metadata names no authorization server");
  }
  return metadata;
}

Result<AuthorizationServerMetadata> parse_authorization_server_metadata(std::string_view body) {
  ASSIGN_OR_RETURN(json::object obj, parse_json_object(body));
  AuthorizationServerMetadata metadata;
  metadata.issuer = string_field(obj, "issuer");
  metadata.authorization_endpoint = string_field(obj, "authorization_endpoint");
  metadata.token_endpoint = string_field(obj, "token_endpoint");
  metadata.registration_endpoint = string_field(obj, "registration_endpoint");
  metadata.token_endpoint_auth_methods_supported = string_list(obj, "token_endpoint_auth_methods_supported");
  metadata.grant_types_supported = string_list(obj, "grant_types_supported");
  metadata.code_challenge_methods_supported = string_list(obj, "code_challenge_methods_supported");
  auto cimd = obj.find("client_id_metadata_document_supported");
  metadata.client_id_metadata_document_supported = cimd != obj.end() && cimd->value().is_bool() && cimd->value().as_bool();
  if (!is_http_url(metadata.token_endpoint)) return invalid_argument("the authorization server metadata has no token_endpoint");
  if (!metadata.authorization_endpoint.empty() && !is_http_url(metadata.authorization_endpoint)) {
    return invalid_argument("the authorization server metadata has a malformed authorization_endpoint");
  }
  if (!metadata.registration_endpoint.empty() && !is_http_url(metadata.registration_endpoint)) {
    metadata.registration_endpoint.clear();
  }
  return metadata;
}

AuthorizationServerMetadata fallback_authorization_server(const std::string& server_url) {
  std::string origin = url_origin(server_url);
  AuthorizationServerMetadata metadata;
  if (origin.empty()) return metadata;  // no endpoints: nothing to talk to
  metadata.issuer = origin;
  metadata.authorization_endpoint = origin + "/authorize";
  metadata.token_endpoint = origin + "/token";
  metadata.registration_endpoint = origin + "/register";
  return metadata;
}

std::vector<std::string> split_scope(std::string_view scope) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < scope.size()) {
    std::size_t end = scope.find(' ', pos);
    if (end == std::string_view::npos) end = scope.size();
    if (end > pos) out.emplace_back(scope.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

std::string scope_union(const std::string& a, const std::string& b) {
  std::vector<std::string> out;
  for (const std::string& item : split_scope(a + " " + b)) {
    if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
  }
  std::string joined;
  for (const std::string& item : out) joined += (joined.empty() ? "" : " ") + item;
  return joined;
}

bool scope_includes(const std::string& granted, const std::string& required) {
  std::vector<std::string> have = split_scope(granted);
  for (const std::string& item : split_scope(required)) {
    if (std::find(have.begin(), have.end(), item) == have.end()) return false;
  }
  return true;
}

std::string choose_scope(const std::string& configured, const std::string& challenged,
                         const std::vector<std::string>& scopes_supported) {
  if (!configured.empty()) return configured;
  if (!challenged.empty()) return challenged;
  std::string joined;
  for (const std::string& scope : scopes_supported) joined += (joined.empty() ? "" : " ") + scope;
  return joined;
}

std::string pkce_s256_challenge(std::string_view verifier) { return base64url_encode(sha256(verifier)); }

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  boost::urls::encoding_opts options;
  options.space_as_plus = true;
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out.push_back('&');
    out += boost::urls::encode(name, boost::urls::unreserved_chars, options);
    out.push_back('=');
    out += boost::urls::encode(value, boost::urls::unreserved_chars, options);
  }
  return out;
}

std::string with_query(const std::string& url, const std::vector<std::pair<std::string, std::string>>& fields) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return url;
  boost::urls::url out(*parsed);
  // Form-encoded, so that a '+' in a value stays a '+' for the reader.
  std::string query(out.encoded_query());
  query += (query.empty() ? "" : "&") + form_encode(fields);
  out.set_encoded_query(query);
  return std::string(out.buffer());
}

std::vector<std::pair<std::string, std::string>> query_params(const std::string& url) {
  std::vector<std::pair<std::string, std::string>> out;
  auto parsed = boost::urls::parse_uri_reference(url);
  // An empty query has no fields (and Boost.URL 1.81 reads past "?#..." when
  // iterating its one empty field: found by the mcp_message fuzzer).
  if (!parsed || parsed->encoded_query().empty()) return out;
  for (auto param : parsed->params()) out.emplace_back(param.key, param.value);
  return out;
}

}  // namespace continuum
