#include "engine_config.h"

namespace qm::tools {

Result<EngineConfig> LoadEngineConfig(const std::string& path) {
  EngineConfig config;
  ConfigFile file;
  if (!path.empty()) {
    QM_ASSIGN_OR_RETURN(file, ConfigFile::Load(path));
  }
  ConfigTable root = file.Root();
  ReadDataConfig(root.Table("data"), &config.data);
  QM_RETURN_IF_ERROR(file.Finish());
  return config;
}

}  // namespace qm::tools
