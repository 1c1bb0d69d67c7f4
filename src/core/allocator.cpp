#include "core/allocator.h"

#include <malloc.h>

namespace continuum {

void tune_process_allocator() {
  mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
  mallopt(M_MMAP_THRESHOLD, 16 * 1024 * 1024);
}

}  // namespace continuum
