// Context assembly: which stored conversation items the model sees.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"

namespace continuum {

// A rough token estimate (bytes / 4, plus per-message overhead); providers
// differ, so the budget is kept with margin.
int64_t estimate_tokens(const std::string& message_json);

struct ContextItem {
  std::string run_id;
  std::string message_json;
  // message_json parsed, when the holder parsed it once for every model call
  // to come (the engine's in-memory context); null = parse when needed.
  std::shared_ptr<const json::object> message;
};

// A session's items, newest first.
using ContextItems = std::deque<ContextItem>;

// The messages of a model call, oldest first. Shared, not copied: a message
// the engine keeps parsed is the same object in every call of the run.
using ContextMessages = std::vector<std::shared_ptr<const json::object>>;

// The messages as a Chat Completions `messages` array (a copy).
json::array to_json_array(const ContextMessages& messages);

// An item's message as an object (from `message` if set); kInvalidArgument if
// message_json is not a JSON object.
Result<std::shared_ptr<const json::object>> item_message(const ContextItem& item);

// Builds the messages for the model, oldest first: the system instructions,
// then the current run's turn, preceded by as many whole earlier turns as
// fit `budget_tokens`. A turn is a run's items; a run whose items do not begin
// with a user message (a client's function call outputs, items added to a
// conversation outside a run) continues the turn before it. Turns are never cut in the middle,
// so the model never sees a tool result without its call or a call without
// its result. If the current turn alone is over budget, its user message is
// kept and followed by the newest of its items that fit, starting at an
// assistant message. Older items stay stored; they are only left out.
//
// `newest_first` holds the session's most recent items (at least until the
// budget is filled, or all of them); `current_user_message` is the current
// run's input as a user message.
ContextMessages assemble_context(const std::string& instructions, const std::string& current_run_id,
                                 const std::string& current_user_message, const ContextItems& newest_first,
                                 int64_t budget_tokens);

}  // namespace continuum
