// Module core: the foundation: Status, domain types, CSV, time, configuration, dataset loading. May
// depend on: the standard library; toml++ and date (private).
// An index from string ids to positions in a vector of records that carry their `id`.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace qm {

// Open addressing over one flat array of slots, each (the id's hash's high 32 bits, position + 1):
// a lookup reads a slot (its neighbours share the cache line) and the record's id. A node-based
// std::unordered_map<std::string, uint32_t> reads a bucket, the node before and the node, three
// dependent reads of random places in the heap: loading a 5M-customer bank spent 61% of its
// time in them (docs/BENCHMARKS.md, "Opening at 5M customers, traced"). The ids are not copied.
class IdIndex {
 public:
  // The position of `id` in `records` (the vector the positions were indexed for), or nullopt.
  template <class Record>
  std::optional<uint32_t> Find(std::string_view id, const std::vector<Record>& records) const {
    if (size_ == 0) return std::nullopt;
    const uint64_t h = Hash(id);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const uint64_t s = slots_[i];
      if (s == 0) return std::nullopt;
      if ((s >> 32) == (h >> 32)) {
        const uint32_t pos = static_cast<uint32_t>(s) - 1;
        if (pos < records.size() && records[pos].id == id) return pos;
      }
    }
  }

  // Indexes `id` at `pos`, the position `records` will hold it at (`records` holds every
  // position indexed so far). False, and nothing changes, when `id` is indexed already.
  template <class Record>
  bool Insert(std::string_view id, uint32_t pos, const std::vector<Record>& records) {
    if (Find(id, records)) return false;
    if ((size_ + 1) * 10 > slots_.size() * 7) Grow(records);  // load factor <= 0.7
    Place(Hash(id), pos);
    ++size_;
    return true;
  }

  size_t size() const { return size_; }

 private:
  static uint64_t Hash(std::string_view id) { return std::hash<std::string_view>{}(id); }

  void Place(uint64_t h, uint32_t pos) {
    size_t i = h & mask_;
    while (slots_[i] != 0) i = (i + 1) & mask_;
    slots_[i] = (h >> 32 << 32) | (uint64_t{pos} + 1);
  }

  template <class Record>
  void Grow(const std::vector<Record>& records) {
    std::vector<uint64_t> old = std::move(slots_);
    slots_.assign(std::max<size_t>(16, old.size() * 2), 0);
    mask_ = slots_.size() - 1;
    for (uint64_t s : old) {
      if (s == 0) continue;
      const uint32_t pos = static_cast<uint32_t>(s) - 1;
      Place(Hash(records[pos].id), pos);
    }
  }

  std::vector<uint64_t> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace qm
