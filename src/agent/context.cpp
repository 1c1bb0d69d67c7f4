#include "agent/context.h"

namespace continuum {

int64_t estimate_tokens(const std::string& message_json) {
  return static_cast<int64_t>(message_json.size() / 4) + 4;
}

namespace {

bool has_role(const json::object& message, std::string_view role) {
  const json::value* value = message.if_contains("role");
  return value && value->is_string() && value->as_string() == role;
}

// A turn's oldest item is its user message; if that item was not read, the
// turn is incomplete and must not be shown in part.
bool is_user_item(const ContextItem& item) {
  if (item.message) return has_role(*item.message, "user");
  auto parsed = parse_json_object(item.message_json);
  return parsed.is_ok() && has_role(*parsed, "user");
}

// Items [begin, end) of `newest_first`, parsed, appended oldest first.
void append_oldest_first(const ContextItems& newest_first, size_t begin, size_t end, ContextMessages& out) {
  for (size_t i = end; i-- > begin;) {
    auto parsed = item_message(newest_first[i]);
    if (parsed.is_ok()) out.push_back(std::move(*parsed));
  }
}

std::shared_ptr<const json::object> parsed_message(const std::string& message_json) {
  auto parsed = parse_json_object(message_json);
  return parsed.is_ok() ? std::make_shared<const json::object>(std::move(*parsed)) : nullptr;
}

// The current turn when it does not fit: the user message, then the newest
// items that fit, extended back (over budget if need be) so that the kept
// tail starts with an assistant message: a tool result is never shown
// without the call it answers.
ContextMessages truncated_turn(const std::string& user_message, const ContextItems& items, size_t turn_end,
                               int64_t budget) {
  int64_t used = estimate_tokens(user_message);
  size_t kept = 0;
  while (kept < turn_end && used + estimate_tokens(items[kept].message_json) <= budget) {
    used += estimate_tokens(items[kept].message_json);
    ++kept;
  }
  ContextMessages tail;
  append_oldest_first(items, 0, kept, tail);
  while (kept < turn_end && (tail.empty() || has_role(*tail.front(), "tool"))) {
    auto older = item_message(items[kept++]);
    if (older.is_ok()) tail.insert(tail.begin(), std::move(*older));
  }
  while (!tail.empty() && has_role(*tail.front(), "tool")) tail.erase(tail.begin());
  ContextMessages turn;
  if (auto user = parsed_message(user_message)) turn.push_back(std::move(user));
  for (auto& message : tail) {
    if (!has_role(*message, "user")) turn.push_back(std::move(message));
  }
  return turn;
}

// The end of the turn whose newest items start at `begin`, where `first_end`
// ends its first run's items: a run's items that do not begin with a user
// message (a client's function call outputs, items added to a conversation
// outside a run) continue the turn before them.
size_t turn_end_from(const ContextItems& newest_first, size_t first_end) {
  size_t end = first_end;
  while (end > 0 && end < newest_first.size() && !is_user_item(newest_first[end - 1])) {
    const std::string& run_id = newest_first[end].run_id;
    while (end < newest_first.size() && newest_first[end].run_id == run_id) ++end;
  }
  return end;
}

int64_t cost_of(const ContextItems& newest_first, size_t begin, size_t end) {
  int64_t cost = 0;
  for (size_t i = begin; i < end; ++i) cost += estimate_tokens(newest_first[i].message_json);
  return cost;
}

}  // namespace

json::array to_json_array(const ContextMessages& messages) {
  json::array array;
  array.reserve(messages.size());
  for (const auto& message : messages) array.push_back(*message);
  return array;
}

Result<std::shared_ptr<const json::object>> item_message(const ContextItem& item) {
  if (item.message) return item.message;
  ASSIGN_OR_RETURN(auto parsed, parse_json_object(item.message_json));
  return std::make_shared<const json::object>(std::move(parsed));
}

ContextMessages assemble_context(const std::string& instructions, const std::string& current_run_id,
                                 const std::string& current_user_message, const ContextItems& newest_first,
                                 int64_t budget_tokens) {
  int64_t budget = budget_tokens - (instructions.empty() ? 0 : estimate_tokens(instructions));
  size_t turn_end = 0;  // the current turn is newest_first[0, turn_end)
  while (turn_end < newest_first.size() && newest_first[turn_end].run_id == current_run_id) ++turn_end;
  turn_end = turn_end_from(newest_first, turn_end);
  int64_t turn_cost = cost_of(newest_first, 0, turn_end);
  bool turn_complete = turn_end > 0 && is_user_item(newest_first[turn_end - 1]);
  ContextMessages messages;
  if (turn_cost <= budget && turn_complete) {
    // Whole earlier turns, newest first, while they fit.
    size_t included_end = turn_end;
    int64_t used = turn_cost;
    while (included_end < newest_first.size()) {
      size_t end = included_end;
      const std::string& run_id = newest_first[included_end].run_id;
      while (end < newest_first.size() && newest_first[end].run_id == run_id) ++end;
      end = turn_end_from(newest_first, end);
      int64_t cost = cost_of(newest_first, included_end, end);
      if (used + cost > budget || !is_user_item(newest_first[end - 1])) break;
      used += cost;
      included_end = end;
    }
    append_oldest_first(newest_first, 0, included_end, messages);
  } else {
    messages = truncated_turn(current_user_message, newest_first, turn_end, budget);
  }
  if (instructions.empty()) return messages;
  ContextMessages context;
  context.reserve(messages.size() + 1);
  context.push_back(std::make_shared<const json::object>(json::object{{"role", "system"}, {"content", instructions}}));
  for (auto& message : messages) context.push_back(std::move(message));
  return context;
}

}  // namespace continuum
