// The client library (SPEC §5). Scaffolding: filled in by issue 6.
#pragma once

#include "qianmian/core/status.h"

namespace qm::client {}  // namespace qm::client
