#include "qianmian/push/shard.h"

#include <cstdlib>

#include "qianmian/experiment/assignment.h"

namespace qm::push {

bool Shard::Holds(std::string_view id) const {
  if (n <= 1) return true;
  static const uint64_t key = experiment::SaltKey("qianmian.shard");
  return static_cast<int>(experiment::KeyedHash(id, key) % static_cast<uint64_t>(n)) == k - 1;
}

Result<Shard> ParseShard(const std::string& text) {
  const auto bad = [&] {
    return Status::InvalidArgument("--shard must be K/N with 1 <= K <= N <= 65536 (got '" + text + "')");
  };
  const size_t slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= text.size()) return bad();
  for (size_t i = 0; i < text.size(); ++i) {
    if (i != slash && (text[i] < '0' || text[i] > '9')) return bad();
  }
  if (slash > 5 || text.size() - slash - 1 > 5) return bad();
  Shard s;
  s.k = std::atoi(text.substr(0, slash).c_str());
  s.n = std::atoi(text.substr(slash + 1).c_str());
  if (s.k < 1 || s.n < 1 || s.k > s.n || s.n > 65536) return bad();
  return s;
}

}  // namespace qm::push
