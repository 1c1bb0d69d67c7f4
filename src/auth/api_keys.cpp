#include "auth/api_keys.h"

#include "crypto/hash.h"

namespace continuum {

namespace {

constexpr std::string_view kTokenPrefix = "ck_";
constexpr int kIdBytes = 8;
constexpr int kSecretBytes = 24;

Status invalid_token() { return Status(Code::kUnauthenticated, "missing or invalid API key"); }

bool is_lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

IssuedApiKey issue_api_key(const std::string& tenant, const std::string& user_id,
                           const std::vector<std::string>& roles, const std::string& name,
                           const std::string& created_by, Random& random, const Clock& clock) {
  std::string id_hex = random.hex(kIdBytes);
  std::string secret = random.hex(kSecretBytes);
  json::array role_list;
  for (const auto& role : roles) role_list.push_back(json::value(role));
  ApiKeyRecord record{"key_" + id_hex, tenant, user_id, to_json(role_list), name, sha256_hex(secret),
                      clock.now_ms(), 0, created_by};
  return IssuedApiKey{std::move(record), std::string(kTokenPrefix) + id_hex + "_" + secret};
}

Result<Principal> authenticate_api_key(Store& store, std::string_view token) {
  if (!token.starts_with(kTokenPrefix)) return invalid_token();
  token.remove_prefix(kTokenPrefix.size());
  size_t separator = token.find('_');
  if (separator != 2 * kIdBytes || token.size() != separator + 1 + 2 * kSecretBytes) return invalid_token();
  std::string_view id_hex = token.substr(0, separator), secret = token.substr(separator + 1);
  if (!is_lower_hex(id_hex) || !is_lower_hex(secret)) return invalid_token();
  auto record = store.get_api_key("key_" + std::string(id_hex));
  if (!record.is_ok()) return record.status().code() == Code::kNotFound ? invalid_token() : record.status();
  if (record->revoked_at_ms != 0 || !constant_time_equal(sha256_hex(secret), record->secret_hash)) {
    return invalid_token();
  }
  return Principal{record->tenant_id, record->user_id, api_key_roles(*record), record->id};
}

std::vector<std::string> api_key_roles(const ApiKeyRecord& record) {
  std::vector<std::string> roles;
  auto parsed = parse_json(record.roles_json);
  if (!parsed.is_ok() || !parsed->is_array()) return roles;
  for (const auto& role : parsed->as_array()) {
    if (role.is_string()) roles.emplace_back(role.as_string());
  }
  return roles;
}

json::object api_key_view(const ApiKeyRecord& record) {
  json::array roles;
  for (const auto& role : api_key_roles(record)) roles.push_back(json::value(role));
  return json::object{{"object", "api_key"},
                      {"id", record.id},
                      {"tenant", record.tenant_id},
                      {"user", record.user_id},
                      {"roles", std::move(roles)},
                      {"name", record.name},
                      {"created_at_ms", record.created_at_ms},
                      {"created_by", record.created_by},
                      {"revoked_at_ms", record.revoked_at_ms == 0 ? json::value(nullptr)
                                                                  : json::value(record.revoked_at_ms)}};
}

}  // namespace continuum
