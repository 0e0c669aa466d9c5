// Module core: the foundation: Status, domain types, CSV, time, configuration, dataset loading. May
// depend on: the standard library; toml++ and date (private).
// Process-wide tuning of the C allocator for tensor-sized buffers.
#pragma once

namespace qm {

// Keeps glibc malloc from returning every freed tensor buffer of more than a few megabytes to
// the kernel: by default such buffers are mmap'd (or the heap top trimmed) and faulted in again,
// page by page, on the next batch, which made a 2,048-row ranker forward pass 6x slower and
// training about 2x slower (docs/BENCHMARKS.md). Raises the mmap and trim thresholds to
// 256 MB. Call once, at the start of main(), before any thread starts. Results do not change.
void ConfigureAllocatorForTensors();

}  // namespace qm
