// Audience expressions for push runs. Scaffolding: filled in by issue 7.
#pragma once

#include "qianmian/core/status.h"

namespace qm::push {}  // namespace qm::push
