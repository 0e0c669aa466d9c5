#include "qianmian/serving/experiments.h"

namespace qm::serving {

namespace {

// Settings read once when the engine opens: an arm cannot change them per request.
void RefuseOpenTimeSettings(ConfigTable t, const std::vector<const char*>& keys) {
  for (const char* key : keys) {
    if (t.Has(key)) t.Error(key, "fixed when the engine opens: not overridable in an experiment arm");
  }
}

}  // namespace

void ReadExperiments(ConfigTable t, const ServingConfig& base_serving, const policy::PolicyConfig& base_policy,
                     Experiments* out) {
  experiment::ReadExperimentsConfig(t, &out->config);
  out->arms.clear();
  for (experiment::LayerConfig& layer : out->config.layers) {
    std::vector<ArmSettings>& arms = out->arms.emplace_back(layer.arms.size());
    for (size_t a = 0; a < layer.arms.size(); ++a) {
      experiment::ArmConfig& arm = layer.arms[a];
      if (arm.serving) {
        RefuseOpenTimeSettings(*arm.serving, {"ranker", "seed_store", "campaigns"});
        arms[a].serving = base_serving;
        ReadServingConfig(*arm.serving, &*arms[a].serving);
      }
      if (arm.policy) {
        RefuseOpenTimeSettings(*arm.policy, {"reserve_channels"});
        arms[a].policy = base_policy;
        ReadPolicyConfig(*arm.policy, &*arms[a].policy);
      }
    }
  }
}

}  // namespace qm::serving
