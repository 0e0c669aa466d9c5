#include "qianmian/experiment/assignment.h"

#include <cstring>

namespace qm::experiment {

namespace {

// murmur3's 64-bit finalizer: a bijection with full avalanche.
inline uint64_t Fmix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

inline uint64_t LoadLe(const char* p, size_t n) {  // n <= 8 bytes, little-endian, zero-padded
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;

}  // namespace

uint64_t SaltKey(std::string_view salt) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, then the finalizer
  for (unsigned char ch : salt) h = (h ^ ch) * 0x100000001b3ull;
  return Fmix64(h ^ (salt.size() * kGolden));
}

uint64_t KeyedHash(std::string_view id, uint64_t key) {
  uint64_t h = Fmix64(key ^ (static_cast<uint64_t>(id.size()) * kGolden));
  const char* p = id.data();
  size_t n = id.size();
  for (; n >= 8; p += 8, n -= 8) h = Fmix64(h ^ LoadLe(p, 8)) + kGolden;
  if (n > 0) h = Fmix64(h ^ LoadLe(p, n)) + kGolden;
  return Fmix64(h ^ key);
}

double UnitValue(std::string_view id, uint64_t key) {
  return static_cast<double>(KeyedHash(id, key) >> 11) * 0x1.0p-53;
}

int ArmOfValue(const std::vector<double>& cum, double u) {
  for (size_t i = 0; i < cum.size(); ++i) {
    if (u < cum[i]) return static_cast<int>(i);
  }
  return cum.empty() ? kNoArm : static_cast<int>(cum.size()) - 1;
}

Assigner::Assigner(const ExperimentsConfig& config)
    : holdout_share_(config.holdout_share), holdout_key_(SaltKey(config.holdout_salt)) {
  for (const LayerConfig& l : config.layers) {
    Layer layer;
    layer.key = SaltKey(l.salt);
    double sum = 0;
    for (const ArmConfig& a : l.arms) layer.cum.push_back(sum += a.share);
    layers_.push_back(std::move(layer));
  }
}

Assignment Assigner::Assign(std::string_view customer_id) const {
  Assignment a;
  Assign(customer_id, &a);
  return a;
}

void Assigner::Assign(std::string_view customer_id, Assignment* out) const {
  out->holdout = holdout_share_ > 0 && UnitValue(customer_id, holdout_key_) < holdout_share_;
  out->arms.resize(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    out->arms[i] = out->holdout ? kNoArm : ArmOfValue(layers_[i].cum, UnitValue(customer_id, layers_[i].key));
  }
}

}  // namespace qm::experiment
