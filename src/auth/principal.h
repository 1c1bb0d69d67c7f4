// Who is calling: the authenticated identity a request or an effect runs as.
#pragma once

#include <string>
#include <vector>

#include "core/json.h"

namespace continuum {

// The tenant every deployment has; its admins may provision other tenants.
inline constexpr const char* kSystemTenant = "default";

struct Principal {
  std::string tenant;
  std::string user_id;             // the subject: an end user or a service account
  std::vector<std::string> roles;  // e.g. "admin", "member", "auditor"
  std::string credential;          // what authenticated it, for audit: "key_…", "config", "oidc:<issuer>"

  bool has_role(const std::string& role) const;
  // The identity chain policy statements match against: "user:<id>", "role:<r>"...
  std::vector<std::string> identities() const;
  // "user:<id>": how audit events name it.
  std::string label() const { return "user:" + user_id; }
  // What `when` expressions see as `principal`.
  json::object to_context() const;
};

// Valid user ids and role names: 1-128 characters of letters, digits and . _ @ : -
// (they appear in policies, logs and key scopes).
bool is_valid_subject(const std::string& text);

}  // namespace continuum
