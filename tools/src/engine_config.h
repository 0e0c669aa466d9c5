// The whole engine's configuration: one TOML file, one typed section per module, each read by
// the function next to its struct in <module>/<module>_config.h.
#pragma once

#include <string>

#include "commands.h"
#include "qianmian/core/core_config.h"
#include "qianmian/core/status.h"
#include "qianmian/policy/policy_config.h"
#include "qianmian/server/server_config.h"
#include "qianmian/serving/engine.h"
#include "qianmian/serving/experiments.h"
#include "qianmian/serving/serving_config.h"
#include "qianmian/training/training_config.h"

namespace qm::tools {

struct EngineConfig {
  DataConfig data;                           // [data]
  std::string artifacts_root = "artifacts";  // [artifacts] root
  training::TrainConfig training;            // [training]
  policy::PolicyConfig policy;               // [policy]
  policy::StoreConfig store;                 // [store]
  serving::ServingConfig serving;            // [serving]
  serving::Experiments experiments;          // [experiments], each arm resolved on [serving]/[policy]
  server::ServerConfig server;               // [server]
  std::string json;                          // the effective configuration, for manifests
};

// Reads `path` ("" = built-in defaults), each key overridden by QIANMIAN_<SECTION>_<KEY> (or its
// _FILE variant) when set (ConfigFile::UseEnvironment). InvalidArgument names every unknown key,
// unknown QIANMIAN_ variable of a section and bad value.
Result<EngineConfig> LoadEngineConfig(const std::string& path);
// [experiments] of `path` read again for a reload: the whole file is read and checked as by
// LoadEngineConfig, and the arms overlay `running`'s [serving] and [policy] (the settings the
// engine opened with: a reload changes only the experiment definition).
Result<serving::Experiments> ReloadExperiments(const std::string& path, const EngineConfig& running);
// Applies --data / --artifacts / --bind over the file (SPEC §3).
void ApplyOverrides(const CommonOptions& o, EngineConfig* c);
// What serving::Engine::Open needs of the configuration.
serving::EngineOptions EngineOptionsFrom(const EngineConfig& c);

}  // namespace qm::tools
