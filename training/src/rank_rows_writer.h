// Private: writes the ranker's training rows (`qianmian export rank-rows`) as .npy files in a
// folder or as one CSV file, streaming, batch by batch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "qianmian/core/status.h"
#include "qianmian/rank/ranker.h"

namespace qm::training {

class RankRowsWriter {
 public:
  // `out` ending in ".csv": one CSV (cat_0.., dense_0.., bag_0.., click, convert, weight,
  // held_out). Otherwise a folder (created) holding cat.npy (int64 n x C), dense.npy (float32
  // n x K), bag.npy (int64 n x B), labels.npy (float32 n x 2: click, convert), weight.npy
  // (float32 n) and held_out.npy (uint8 n). IoError when a file cannot be created.
  static Result<std::unique_ptr<RankRowsWriter>> Open(const std::string& out, int cat_width, int dense_width);
  virtual ~RankRowsWriter() = default;

  // Appends the rows of `batch`; `held_out` is 1 for every row of it from the held-out period.
  virtual Status Append(const rank::RankBatch& batch, uint8_t held_out) = 0;
  // Completes the files (the .npy headers get the row count) and writes `layout_json` to
  // LayoutPath(out).
  virtual Status Close(const std::string& layout_json) = 0;
  virtual int64_t rows() const = 0;
  bool csv() const { return csv_; }

  // Where the column layout goes: <folder>/layout.json, or <file>.layout.json for a CSV.
  static std::string LayoutPath(const std::string& out);

 protected:
  bool csv_ = false;
};

}  // namespace qm::training
