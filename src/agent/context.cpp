#include "agent/context.h"

namespace continuum {

int64_t estimate_tokens(const std::string& message_json) {
  return static_cast<int64_t>(message_json.size() / 4) + 4;
}

json::array assemble_context(const std::string& instructions, const std::vector<std::string>& newest_first,
                             int64_t budget_tokens) {
  int64_t used = instructions.empty() ? 0 : estimate_tokens(instructions);
  size_t kept = 0;
  for (const auto& item : newest_first) {
    int64_t cost = estimate_tokens(item);
    if (kept > 0 && used + cost > budget_tokens) break;
    used += cost;
    ++kept;
  }
  std::vector<json::object> messages;
  for (size_t i = kept; i-- > 0;) {
    auto parsed = parse_json_object(newest_first[i]);
    if (parsed.is_ok()) messages.push_back(std::move(*parsed));
  }
  size_t first = 0;
  while (first < messages.size() && messages.size() - first > 1) {
    const json::value* role = messages[first].if_contains("role");
    if (role && role->is_string() && role->as_string() == "tool") {
      ++first;
    } else {
      break;
    }
  }
  json::array context;
  if (!instructions.empty()) context.push_back(json::object{{"role", "system"}, {"content", instructions}});
  for (size_t i = first; i < messages.size(); ++i) context.push_back(std::move(messages[i]));
  return context;
}

}  // namespace continuum
