// Structured JSON logs on stderr, one object per line. Thread-safe.
// Secrets must never be passed as fields: callers log ids and sizes, not content.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace continuum::log {

enum class Level { kDebug, kInfo, kWarn, kError };

void set_level(Level level);
bool parse_level(std::string_view text, Level* level);

using Field = std::pair<std::string_view, std::string>;
void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

inline void info(std::string_view message, std::initializer_list<Field> fields = {}) {
  write(Level::kInfo, message, fields);
}
inline void warn(std::string_view message, std::initializer_list<Field> fields = {}) {
  write(Level::kWarn, message, fields);
}
inline void error(std::string_view message, std::initializer_list<Field> fields = {}) {
  write(Level::kError, message, fields);
}
inline void debug(std::string_view message, std::initializer_list<Field> fields = {}) {
  write(Level::kDebug, message, fields);
}

}  // namespace continuum::log
