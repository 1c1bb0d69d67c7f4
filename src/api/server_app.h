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

}  // namespace continuum
