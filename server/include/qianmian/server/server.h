// The ZeroMQ server (SPEC §5). Scaffolding: filled in by issue 6.
#pragma once

#include "qianmian/core/status.h"

namespace qm::server {}  // namespace qm::server
