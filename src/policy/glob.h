// Glob matching shared by policy patterns and the `matches` operator.
#pragma once

#include <string_view>

namespace continuum::policy {

// True if `pattern` matches the whole of `text`: `*` matches any run of bytes
// (including none), `?` exactly one byte, every other byte itself
// (case-sensitive; there is no escape and no character class).
// Runs in O(|pattern| * |text|) time at worst and O(1) space, without
// recursion, so it is safe on untrusted patterns and text.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace continuum::policy
