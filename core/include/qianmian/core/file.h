// Module core: writing a whole file so that readers see the old one or the new one, never half.
#pragma once

#include <string>
#include <vector>

#include "qianmian/core/status.h"

namespace qm {

// Writes the concatenation of `parts` to `path` atomically: a temporary file beside it
// (path + ".tmp-<pid>"), fsync, rename over `path`. IoError naming the path when any step fails
// (the temporary file is removed).
[[nodiscard]] Status WriteFileAtomically(const std::string& path, const std::vector<std::string>& parts);

}  // namespace qm
