#include "auth/principal.h"

#include <algorithm>
#include <cctype>

namespace continuum {

bool Principal::has_role(const std::string& role) const {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

std::vector<std::string> Principal::identities() const {
  std::vector<std::string> chain{"user:" + user_id};
  for (const auto& role : roles) chain.push_back("role:" + role);
  return chain;
}

json::object Principal::to_context() const {
  json::array role_list;
  for (const auto& role : roles) role_list.push_back(json::value(role));
  return json::object{{"id", user_id}, {"tenant", tenant}, {"roles", std::move(role_list)},
                      {"credential", credential}};
}

bool is_valid_subject(const std::string& text) {
  if (text.empty() || text.size() > 128) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '@' || c == ':' || c == '-';
  });
}

}  // namespace continuum
