// Module experiment: experiment layers, arms and the global holdout (issue 17), and the pure
// assignment of a customer to them, and effect reports. May depend on: core; Boost.Math,
// nlohmann_json (private).
// Assignment: a customer's arm in a layer is a pure function of (customer id, layer salt): a
// 64-bit keyed hash mapped to [0, 1) and then to the arm by cumulative shares. The same on
// every process, replica, restart and reload (no std::hash, no random seed).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qianmian/experiment/experiment_config.h"

namespace qm::experiment {

// The hash's key for a salt (computed once per layer).
uint64_t SaltKey(std::string_view salt);
// 64-bit hash of `id` under a salt's key: 8-byte blocks through a bijective 64-bit finalizer
// (murmur3's fmix64), the length folded in first. Never change it: assignments would move.
uint64_t KeyedHash(std::string_view id, uint64_t key);
// The id's uniform value in [0, 1) under `salt` (53 bits of KeyedHash).
double UnitValue(std::string_view id, uint64_t key);
inline double UnitValue(std::string_view id, std::string_view salt) { return UnitValue(id, SaltKey(salt)); }

// The arm of value u in [0, 1) for cumulative shares `cum` (cum[i] = share[0] + ... + share[i]):
// the first i with u < cum[i]; the last arm when rounding leaves u above the sum.
int ArmOfValue(const std::vector<double>& cum, double u);

inline constexpr int kNoArm = -1;

// One customer's assignment.
struct Assignment {
  bool holdout = false;   // in the global holdout: no arm in any layer, no marketing contact
  std::vector<int> arms;  // per layer, the arm's index; kNoArm for a holdout customer
};

// The assignment function for one ExperimentsConfig, with the salts' keys and cumulative shares
// precomputed. Immutable after construction: thread-safe.
class Assigner {
 public:
  Assigner() = default;
  explicit Assigner(const ExperimentsConfig& config);

  // Decides the holdout first (its own salt), then each layer's arm independently.
  Assignment Assign(std::string_view customer_id) const;
  // Into `out`, reusing its storage (the hot path allocates nothing after the first call).
  void Assign(std::string_view customer_id, Assignment* out) const;

  size_t num_layers() const { return layers_.size(); }

 private:
  struct Layer {
    uint64_t key = 0;
    std::vector<double> cum;
  };
  double holdout_share_ = 0;
  uint64_t holdout_key_ = 0;
  std::vector<Layer> layers_;
};

}  // namespace qm::experiment
