#include "net/headers.h"

#include <strings.h>

namespace continuum {

std::string find_header(const HeaderList& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && strncasecmp(key.data(), name.data(), name.size()) == 0) return value;
  }
  return {};
}

}  // namespace continuum
