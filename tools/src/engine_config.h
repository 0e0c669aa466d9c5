// The whole engine's configuration: one TOML file, one typed section per module.
#pragma once

#include <string>

#include "qianmian/core/config.h"
#include "qianmian/core/status.h"

namespace qm::tools {

struct EngineConfig {
  DataConfig data;  // [data]
};

// Reads `path` ("" = built-in defaults). InvalidArgument names every unknown key and bad value.
Result<EngineConfig> LoadEngineConfig(const std::string& path);

}  // namespace qm::tools
