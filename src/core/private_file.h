// Files readable by their owner only (mode 0600): key files, the bootstrap
// API key. Writes are fsynced before they return.
#pragma once

#include <string>

#include "core/status.h"

namespace continuum {

// Appends `text`, creating the file (0600) if missing.
Status append_private_file(const std::string& path, const std::string& text);
// Replaces the file with `text` (0600; an older file is removed first, so
// looser permissions it may have had do not survive).
Status write_private_file(const std::string& path, const std::string& text);

}  // namespace continuum
