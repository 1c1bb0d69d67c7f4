#include "auth/oidc.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

namespace continuum {

namespace {

Status unauthenticated(const std::string& why) { return Status(Code::kUnauthenticated, why); }

Result<OidcIssuer> parse_issuer(const YAML::Node& node, size_t index) {
  std::string where = "issuers[" + std::to_string(index) + "]";
  if (!node.IsMap()) return invalid_argument(where + " must be a map", "oidc_issuers_file");
  OidcIssuer issuer;
  for (const auto& entry : node) {
    std::string key = entry.first.as<std::string>("");
    const YAML::Node& value = entry.second;
    if (key == "issuer") issuer.issuer = value.as<std::string>("");
    else if (key == "jwks_file") issuer.jwks_file = value.as<std::string>("");
    else if (key == "jwks_url") issuer.jwks_url = value.as<std::string>("");
    else if (key == "tenant") issuer.tenant = value.as<std::string>("");
    else if (key == "tenant_claim") issuer.tenant_claim = value.as<std::string>("");
    else if (key == "user_claim") issuer.user_claim = value.as<std::string>("");
    else if (key == "roles_claim") issuer.roles_claim = value.as<std::string>("");
    else if (key == "leeway_s") issuer.leeway_s = value.as<int64_t>(-1);
    else if (key == "audience" && value.IsSequence()) {
      for (const auto& audience : value) issuer.audiences.push_back(audience.as<std::string>(""));
    } else if (key == "audience") {
      issuer.audiences.push_back(value.as<std::string>(""));
    } else {
      return invalid_argument(where + ": unknown key '" + key + "'", "oidc_issuers_file");
    }
  }
  if (issuer.issuer.empty()) return invalid_argument(where + ".issuer is required", "oidc_issuers_file");
  if (issuer.audiences.empty()) return invalid_argument(where + ".audience is required", "oidc_issuers_file");
  if (issuer.jwks_file.empty() == issuer.jwks_url.empty()) {
    return invalid_argument(where + ": give exactly one of jwks_file and jwks_url", "oidc_issuers_file");
  }
  if (issuer.leeway_s < 0 || issuer.leeway_s > 300) {
    return invalid_argument(where + ".leeway_s must be 0-300", "oidc_issuers_file");
  }
  if (issuer.tenant_claim.empty() && !is_valid_subject(issuer.tenant)) {
    return invalid_argument(where + ".tenant is not a valid tenant id", "oidc_issuers_file");
  }
  return issuer;
}

std::string claim_text(const json::object& claims, const std::string& name) {
  const json::value* value = claims.if_contains(name);
  return value && value->is_string() ? std::string(value->as_string()) : "";
}

}  // namespace

Result<std::vector<OidcIssuer>> parse_oidc_issuers(const std::string& text) {
  std::vector<OidcIssuer> issuers;
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap() || !root["issuers"] || !root["issuers"].IsSequence()) {
      return invalid_argument("the OIDC issuers file needs an 'issuers' list", "oidc_issuers_file");
    }
    size_t index = 0;
    for (const auto& node : root["issuers"]) {
      ASSIGN_OR_RETURN(auto issuer, parse_issuer(node, index++));
      issuers.push_back(std::move(issuer));
    }
  } catch (const std::exception& error) {
    return invalid_argument(std::string("the OIDC issuers file does not parse: ") + error.what(), "oidc_issuers_file");
  }
  return issuers;
}

OidcAuthenticator::OidcAuthenticator(std::vector<OidcIssuer> issuers, const Clock& clock)
    : issuers_(std::move(issuers)), clock_(clock) {}

Status OidcAuthenticator::load_key_files() {
  for (const auto& issuer : issuers_) {
    if (issuer.jwks_file.empty()) continue;
    std::ifstream file(issuer.jwks_file);
    if (!file) return invalid_argument("cannot read " + issuer.jwks_file, "oidc_issuers_file");
    std::stringstream text;
    text << file.rdbuf();
    Status loaded = set_keys_from_jwks(issuer.issuer, text.str());
    if (!loaded.is_ok()) return invalid_argument(issuer.jwks_file + ": " + loaded.message(), "oidc_issuers_file");
  }
  return Status::ok();
}

Status OidcAuthenticator::set_keys_from_jwks(const std::string& issuer, const std::string& jwks_text) {
  ASSIGN_OR_RETURN(auto keys, parse_jwks(jwks_text));
  std::lock_guard lock(mutex_);
  keys_[issuer] = std::move(keys);
  return Status::ok();
}

bool OidcAuthenticator::looks_like_jwt(std::string_view token) {
  return std::count(token.begin(), token.end(), '.') == 2;
}

Result<Principal> OidcAuthenticator::authenticate(std::string_view token) {
  // The issuer is read before verification only to choose whose keys verify.
  size_t first = token.find('.'), second = token.rfind('.');
  auto payload = base64url_decode(token.substr(first + 1, second - first - 1));
  auto unverified = payload.is_ok() ? parse_json_object(*payload) : Result<json::object>(payload.status());
  if (!unverified.is_ok()) return unauthenticated("invalid token: bad payload");
  std::string iss = claim_text(*unverified, "iss");
  const OidcIssuer* issuer = nullptr;
  for (const auto& candidate : issuers_) {
    if (candidate.issuer == iss) issuer = &candidate;
  }
  if (issuer == nullptr) return unauthenticated("invalid token: unknown issuer");
  std::vector<Jwk> keys;
  {
    std::lock_guard lock(mutex_);
    keys = keys_[iss];
  }
  if (keys.empty()) return Status(Code::kUnavailable, "the issuer's keys are not loaded yet");
  JwtExpectations expected{issuer->issuer, issuer->audiences, clock_.now_ms() / 1000, issuer->leeway_s};
  ASSIGN_OR_RETURN(auto claims, verify_jwt(token, keys, expected));
  Principal principal;
  principal.tenant = issuer->tenant_claim.empty() ? issuer->tenant : claim_text(claims, issuer->tenant_claim);
  principal.user_id = claim_text(claims, issuer->user_claim);
  principal.credential = "oidc:" + issuer->issuer;
  if (!is_valid_subject(principal.tenant) || !is_valid_subject(principal.user_id)) {
    return unauthenticated("invalid token: no usable tenant or user claim");
  }
  if (const json::value* roles = claims.if_contains(issuer->roles_claim); roles && roles->is_array()) {
    for (const auto& role : roles->as_array()) {
      if (role.is_string() && is_valid_subject(std::string(role.as_string()))) principal.roles.emplace_back(role.as_string());
    }
  }
  return principal;
}

}  // namespace continuum
