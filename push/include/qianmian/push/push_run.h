// Push runs. Scaffolding: filled in by issue 7.
#pragma once

#include "qianmian/push/audience.h"

namespace qm::push {}  // namespace qm::push
