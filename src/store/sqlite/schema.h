// Versioned schema migrations for the SQLite store. Migration i (1-based)
// brings the schema from version i-1 to i; applied in one transaction each.
#pragma once

#include <string>
#include <vector>

namespace continuum {
const std::vector<std::string>& sqlite_migrations();
}
