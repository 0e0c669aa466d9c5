#include "engine_config.h"

namespace qm::tools {

namespace {

// Reads every section of `file` into *config; the experiment arms overlay `arm_base`'s [serving]
// and [policy] when given, else the file's.
Status ReadEngineConfig(ConfigFile& file, const EngineConfig* arm_base, EngineConfig* config) {
  ConfigTable root = file.Root();
  ReadDataConfig(root.Table("data"), &config->data);
  root.Table("artifacts").Read("root", &config->artifacts_root);
  training::ReadTrainConfig(root.Table("training"), &config->training);
  policy::ReadPolicyConfig(root.Table("policy"), &config->policy);
  policy::ReadStoreConfig(root.Table("store"), &config->store);
  serving::ReadServingConfig(root.Table("serving"), &config->serving);
  const EngineConfig& base = arm_base ? *arm_base : *config;
  serving::ReadExperiments(root.Table("experiments"), base.serving, base.policy, &config->experiments);
  server::ReadServerConfig(root.Table("server"), &config->server);
  config->json = file.ToJson();  // after the reads: with the environment's overrides, without secrets
  return file.Finish();
}

}  // namespace

Result<EngineConfig> LoadEngineConfig(const std::string& path) {
  EngineConfig config;
  ConfigFile file;
  if (!path.empty()) {
    QM_ASSIGN_OR_RETURN(file, ConfigFile::Load(path));
  }
  file.UseEnvironment();  // QIANMIAN_<SECTION>_<KEY> overrides the file
  QM_RETURN_IF_ERROR(ReadEngineConfig(file, nullptr, &config));
  return config;
}

Result<serving::Experiments> ReloadExperiments(const std::string& path, const EngineConfig& running) {
  QM_ASSIGN_OR_RETURN(ConfigFile file, ConfigFile::Load(path));
  file.UseEnvironment();
  EngineConfig fresh;
  QM_RETURN_IF_ERROR(ReadEngineConfig(file, &running, &fresh));
  return std::move(fresh.experiments);
}

void AddCommonOptions(CLI::App* app, CommonOptions* o) {
  app->add_option("--config", o->config, "configuration file (TOML)");
  app->add_option("--data", o->data, "data folder (overrides [data] dir)");
  app->add_option("--artifacts", o->artifacts, "artifact root (overrides [artifacts] root)");
}

void ApplyOverrides(const CommonOptions& o, EngineConfig* c) {
  if (!o.data.empty()) c->data.dir = o.data;
  // SPEC §6: the embedded store lives in <data>/store/ unless the file names another folder.
  if (c->store.path == policy::StoreConfig{}.path) c->store.path = c->data.dir + "/store";
  if (!o.artifacts.empty()) c->artifacts_root = o.artifacts;
  if (!o.bind.empty()) c->server.bind = o.bind;
  if (c->server.campaign_outbox.empty()) c->server.campaign_outbox = c->data.dir + "/campaign_runs";
  if (c->server.trigger_outbox.empty()) c->server.trigger_outbox = c->data.dir + "/trigger_outbox";
  c->server.trigger_redis = c->store;
}

serving::EngineOptions EngineOptionsFrom(const EngineConfig& c) {
  serving::EngineOptions eo;
  eo.data = c.data;
  eo.artifacts_root = c.artifacts_root;
  eo.policy = c.policy;
  eo.store = c.store;
  eo.serving = c.serving;
  eo.experiments = c.experiments;
  return eo;
}

}  // namespace qm::tools
