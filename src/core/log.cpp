#include "core/log.h"

#include <boost/json/serialize.hpp>
#include <boost/json/object.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

namespace continuum::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
std::mutex g_mutex;

const char* level_name(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}
}  // namespace

void set_level(Level level) { g_level = level; }

bool parse_level(std::string_view text, Level* level) {
  if (text == "debug") *level = Level::kDebug;
  else if (text == "info") *level = Level::kInfo;
  else if (text == "warn") *level = Level::kWarn;
  else if (text == "error") *level = Level::kError;
  else return false;
  return true;
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (level < g_level.load()) return;
  boost::json::object line;
  // Logging is the one place besides core/clock that reads the wall clock: a
  // log timestamp is not engine state.
  line["ts_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
  line["level"] = level_name(level);
  line["msg"] = message;
  for (const auto& [key, value] : fields) line[key] = value;
  std::string text = boost::json::serialize(line);
  text.push_back('\n');
  std::lock_guard lock(g_mutex);
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

}  // namespace continuum::log
