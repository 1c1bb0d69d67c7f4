// The `continuum serve` process: wires config, store, engine, providers,
// tools and the HTTP API together and runs until SIGTERM/SIGINT.
//
// Shutdown: stop accepting connections, mark not ready, stop launching
// effects, wait (up to shutdown_grace_ms) for commits in flight, then exit.
// Unfinished runs stay in the store and resume at the next start.
#pragma once

#include "core/config.h"

namespace continuum {

// Returns the process exit code.
int run_server(const ServerConfig& config);

// Reads <data_dir>/api-key, creating it (random, mode 0600) if missing.
Result<std::string> load_or_create_api_key(const std::string& data_dir);

}  // namespace continuum
