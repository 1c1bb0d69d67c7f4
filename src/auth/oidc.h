// Inbound OIDC: bearer JWTs from configured issuers become principals.
//
// The issuers file (config oidc_issuers_file, YAML or JSON):
//   issuers:
//     - issuer: https://idp.example.com    # must equal the token's iss
//       audience: continuum                # or a list; the token's aud must hold one
//       jwks_file: /etc/continuum/idp.json # or jwks_url: https://... (fetched, refreshed)
//       tenant: default                    # or tenant_claim: org
//       user_claim: sub                    # the principal's user id
//       roles_claim: roles                 # a list of role names (missing = none)
//       leeway_s: 60                       # clock skew allowed on exp and nbf (max 300)
// RS256, ES256 and EdDSA are accepted (auth/jwt.h); `alg: none`, HMAC and
// unknown kids are not. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "auth/jwt.h"
#include "auth/principal.h"
#include "core/clock.h"

namespace continuum {

struct OidcIssuer {
  std::string issuer;
  std::vector<std::string> audiences;
  std::string jwks_file;
  std::string jwks_url;
  std::string tenant = kSystemTenant;
  std::string tenant_claim;
  std::string user_claim = "sub";
  std::string roles_claim = "roles";
  int64_t leeway_s = 60;
};

Result<std::vector<OidcIssuer>> parse_oidc_issuers(const std::string& text);

class OidcAuthenticator {
 public:
  OidcAuthenticator(std::vector<OidcIssuer> issuers, const Clock& clock);

  // Reads the keys of issuers configured with jwks_file.
  Status load_key_files();
  // Replaces an issuer's keys (from its jwks_url).
  Status set_keys_from_jwks(const std::string& issuer, const std::string& jwks_text);
  const std::vector<OidcIssuer>& issuers() const { return issuers_; }

  // Whether `token` looks like a JWT (three dot-separated parts).
  static bool looks_like_jwt(std::string_view token);
  Result<Principal> authenticate(std::string_view token);

 private:
  std::vector<OidcIssuer> issuers_;
  const Clock& clock_;
  std::mutex mutex_;
  std::map<std::string, std::vector<Jwk>> keys_;  // GUARDED_BY(mutex_), by issuer
};

}  // namespace continuum
