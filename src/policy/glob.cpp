#include "policy/glob.h"

#include <cstddef>

namespace continuum::policy {

// The classic greedy matcher: on a mismatch, go back to the last `*` and let
// it swallow one more byte. Only the most recent `*` needs remembering,
// because a later `*` can absorb anything an earlier one could.
bool glob_match(std::string_view pattern, std::string_view text) {
  constexpr size_t kNone = static_cast<size_t>(-1);
  size_t p = 0;
  size_t t = 0;
  size_t star_p = kNone;  // position of the last `*` seen in pattern
  size_t star_t = 0;      // where in text that `*` currently stops
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star_p = p++;
      star_t = t;
    } else if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (star_p != kNone) {
      p = star_p + 1;
      t = ++star_t;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace continuum::policy
