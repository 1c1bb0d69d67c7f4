// UTF-8 hygiene for text that enters the journal from outside (tool
// responses, error bodies): JSON text must be valid UTF-8, so invalid bytes
// are replaced rather than stored.
#pragma once

#include <string>
#include <string_view>

namespace continuum {

// Returns `text` with every invalid or truncated UTF-8 sequence replaced by
// U+FFFD. Valid input is returned unchanged.
std::string sanitize_utf8(std::string_view text);

// Cuts `text` to at most `bytes_max` bytes without splitting a character.
std::string truncate_utf8(std::string_view text, size_t bytes_max);

}  // namespace continuum
