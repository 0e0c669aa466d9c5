// Module serving: the online engine. May depend on: core, policy, experiment; artifacts, features,
// recall, rank, BLAS (private); never training or synth.
// The engine's experiments ([experiments], issue 17): the layers and arms of
// experiment/experiment_config.h with each arm's settings resolved once, when the file is read,
// by overlaying the arm's [serving] / [policy] table on the base settings with the same readers
// as [serving] and [policy] (ReadServingConfig, ReadPolicyConfig): every setting is overridable,
// a bad value or an unknown name is refused with its full key name.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "qianmian/core/config.h"
#include "qianmian/experiment/experiment_config.h"
#include "qianmian/policy/policy_config.h"
#include "qianmian/serving/serving_config.h"

namespace qm::serving {

// One arm's settings: the base settings with the arm's overrides; nullopt = the base's.
struct ArmSettings {
  std::optional<ServingConfig> serving;
  std::optional<policy::PolicyConfig> policy;
};

// [experiments] for the engine. Empty (the default): no assignment, nothing changes.
// A customer in arms of several layers that override the same section gets the last such
// layer's settings (in file order); layers meant to combine should override different sections.
struct Experiments {
  experiment::ExperimentsConfig config;
  std::vector<std::vector<ArmSettings>> arms;  // [layer][arm], as config.layers[l].arms[a]

  bool empty() const { return config.empty(); }
};

// Reads [experiments] (`t`) and resolves every arm's overrides on `base_serving` and
// `base_policy` (read from the same file first). Call before ConfigFile::Finish, which then
// reports every problem. Settings the engine fixes when it opens (serving.ranker,
// serving.seed_store, serving.campaigns, policy.reserve_channels) are refused in an arm.
void ReadExperiments(ConfigTable t, const ServingConfig& base_serving, const policy::PolicyConfig& base_policy,
                     Experiments* out);

}  // namespace qm::serving
