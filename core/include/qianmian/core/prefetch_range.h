// Module core: a cache hint for a row of a large table that a later loop will read.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qm {

// Starts loading every 64-byte cache line of [p, p + bytes) (a hint: no fault, no effect on
// results). Issued for many scattered rows before they are read, their misses overlap.
inline void PrefetchRange(const void* p, size_t bytes) {
  if (bytes == 0) return;
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63};
  const uintptr_t last = reinterpret_cast<uintptr_t>(p) + bytes - 1;
  for (uintptr_t a = first; a <= last; a += 64) __builtin_prefetch(reinterpret_cast<const void*>(a));
}

}  // namespace qm
