#include "qianmian/core/allocator.h"

#include <malloc.h>

namespace qm {

void ConfigureAllocatorForTensors() {
  constexpr int kThreshold = 256 << 20;
  mallopt(M_MMAP_THRESHOLD, kThreshold);
  mallopt(M_TRIM_THRESHOLD, kThreshold);
}

}  // namespace qm
