#include "core/process.h"

#include <malloc.h>
#include <sys/resource.h>

namespace continuum {

void tune_process_resources() {
  // For glibc's malloc (the sanitizer builds and tools); the server links jemalloc.
  mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
  mallopt(M_MMAP_THRESHOLD, 16 * 1024 * 1024);
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &files);
  }
}

}  // namespace continuum
