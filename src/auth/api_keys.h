// API keys: issued once, stored as a SHA-256 of their secret, revocable.
//
// A token reads "ck_<16 hex id>_<48 hex secret>". The id locates the stored
// record (across tenants: the key decides the tenant); the secret is compared
// in constant time against the stored digest. The secret has 192 random bits,
// so a fast digest is enough: there is nothing to brute-force.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "auth/principal.h"
#include "core/clock.h"
#include "store/store.h"

namespace continuum {

struct IssuedApiKey {
  ApiKeyRecord record;
  std::string token;  // shown to the caller once, never stored
};

IssuedApiKey issue_api_key(const std::string& tenant, const std::string& user_id,
                           const std::vector<std::string>& roles, const std::string& name,
                           const std::string& created_by, Random& random, const Clock& clock);

// The principal a token stands for. Any failure (malformed, unknown,
// revoked, wrong secret) is kUnauthenticated with one message that does not
// say which.
Result<Principal> authenticate_api_key(Store& store, std::string_view token);

// Roles of a stored key (its roles_json).
std::vector<std::string> api_key_roles(const ApiKeyRecord& record);

// The public view: never the secret or its digest.
json::object api_key_view(const ApiKeyRecord& record);

}  // namespace continuum
