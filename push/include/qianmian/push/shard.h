// Sharded batch work (issue 21): `push --shard K/N` and `recommend --shard K/N` split an
// audience over N machines that share the event store. A customer's shard is a pure function of
// their id (a keyed hash, the experiments' assignment hash under its own salt), so every machine
// computes the same split without coordination; the run id stays the idempotency key across
// shards, so a customer reached by two shards by mistake is reserved once and replayed by the
// other.
#pragma once

#include <string>
#include <string_view>

#include "qianmian/core/status.h"

namespace qm::push {

struct Shard {
  int k = 1;  // 1..n
  int n = 1;
  bool all() const { return n == 1; }
  // True when the customer `id` belongs to this shard; exactly one of 1/N..N/N holds each id.
  bool Holds(std::string_view id) const;
  std::string ToString() const { return std::to_string(k) + "/" + std::to_string(n); }
};

// Parses "K/N" (1 <= K <= N <= 65536); InvalidArgument naming the text otherwise.
Result<Shard> ParseShard(const std::string& text);

}  // namespace qm::push
