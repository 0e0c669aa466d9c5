// Module experiment: experiment layers, arms and the global holdout (issue 17), and the pure
// assignment of a customer to them, and effect reports. May depend on: core; Boost.Math,
// nlohmann_json (private).
// [experiments]: the layers and their arms, read and validated by one function. An arm's
// [serving] and [policy] overrides are kept as the arm's TOML tables: the caller overlays each
// on its base settings with that module's own reader (serving::ResolveExperiments), so every
// existing setting is overridable and an unknown name is refused by the same code.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "qianmian/core/config.h"

namespace qm::experiment {

// [[experiments.layers.arms]]
struct ArmConfig {
  std::string key;   // the arm's full TOML name, "experiments.layers[1].arms[0]" (for errors)
  std::string name;  // required; unique within its layer
  double share = 0;  // required; in [0, 1]; a layer's shares sum to 1 (within 1e-9)
  // `control = true`: no marketing contact on any channel; `control = ["wechat_push", ...]`:
  // none on those channels (names checked against the channel registry by the engine).
  bool control_all = false;
  std::vector<std::string> control_channels;
  // "" = the current version. Else the artifact version that serves the arm's customers: the
  // engine loads and verifies it beside the current one (refusing the definition when it fails).
  std::string model_version;
  // The arm's [experiments.layers.arms.serving] / [...policy] tables, overlaid on the base
  // settings by their modules' readers; nullopt when absent.
  std::optional<ConfigTable> serving;
  std::optional<ConfigTable> policy;

  // True when the arm withholds marketing contact on `channel`.
  bool Controls(const std::string& channel) const;
};

// [[experiments.layers]]
struct LayerConfig {
  std::string name;  // required; unique
  std::string salt;  // required; unique among layers and different from the holdout's salt
  std::vector<ArmConfig> arms;
};

// [experiments]. Absent: no layers, no holdout, nothing changes.
struct ExperimentsConfig {
  double holdout_share = 0;  // global holdout: no marketing contact at all (service still goes)
  std::string holdout_salt = "holdout";
  std::vector<LayerConfig> layers;

  bool empty() const { return holdout_share == 0 && layers.empty(); }
};

// Reads [experiments] into `c`. Every problem is reported through `t` with the key's full name,
// e.g. "'experiments.layers[1].arms[0].share': must be in [0, 1]",
// "'experiments.layers[1].salt': the salt of experiments.layers[0]".
void ReadExperimentsConfig(ConfigTable t, ExperimentsConfig* c);

}  // namespace qm::experiment
