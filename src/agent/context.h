// Context assembly: which stored conversation items the model sees.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"

namespace continuum {

// A rough token estimate (bytes / 4, plus per-message overhead); providers
// differ, so the budget is kept with margin.
int64_t estimate_tokens(const std::string& message_json);

// Given the session's items newest first (serialized messages), returns the
// messages for the model, oldest first: the system instructions, then the most
// recent items whose estimated tokens fit `budget_tokens`. At least the newest
// item is kept. A leading tool result whose assistant call was cut off is
// dropped, so the model never sees an orphaned tool message.
json::array assemble_context(const std::string& instructions, const std::vector<std::string>& newest_first,
                             int64_t budget_tokens);

}  // namespace continuum
