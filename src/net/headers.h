// Header lists shared by the HTTP server and client.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace continuum {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// The first value of header `name` (case-insensitive), or "" if absent.
std::string find_header(const HeaderList& headers, std::string_view name);

}  // namespace continuum
