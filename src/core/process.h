// Process-wide resource settings, applied once at the start of main().
#pragma once

namespace continuum {

// 1. Allocator: glibc returns freed heap memory to the kernel eagerly
//    (madvise) and adapts its thresholds at run time. Continuum allocates on
//    the event loop and frees on the store writer thread (and back) at a high
//    rate, so eager trimming turns into a stream of madvise calls, page faults
//    and arena lock contention (measured: half of W2's CPU time in the
//    kernel). Fixed thresholds of 64 MiB (trim) and 16 MiB (mmap) keep that
//    memory in the process.
// 2. Open files: every waiting model or tool call holds a socket, so the soft
//    RLIMIT_NOFILE (often 1024) is raised to the hard limit.
void tune_process_resources();

}  // namespace continuum
