// Helpers of the synth tests: the small bank they generate and the truth files it writes.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "qianmian/synth/generate.h"

namespace qm::synth::test_util {

// 3000 customers, 60 products, 500 contents over 40 days (seed 7), written to `out`.
inline GenerateOptions SmallOptions(const std::string& out, int threads) {
  GenerateOptions o;
  o.out_dir = out;
  o.customers = 3000;
  o.products = 60;
  o.contents = 500;
  o.days = 40;
  o.seed = 7;
  o.threads = threads;
  return o;
}

// A truth/*.f32 file (little-endian float32) as a flat vector.
inline std::vector<float> ReadFloats(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<float> v;
  float x;
  while (in.read(reinterpret_cast<char*>(&x), sizeof x)) v.push_back(x);
  return v;
}

}  // namespace qm::synth::test_util
