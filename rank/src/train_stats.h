// Private to rank: the training statistics every built-in ranker reports.
#pragma once

#include <chrono>
#include <cstdint>

#include "qianmian/rank/ranker.h"

namespace qm::rank {

// Fills rows, seconds since `start` and rows per second (stats may be null).
inline void FillTrainStats(int64_t rows, std::chrono::steady_clock::time_point start, RankTrainStats* stats) {
  if (!stats) return;
  stats->rows = rows;
  stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stats->rows_per_second = stats->seconds > 0 ? rows / stats->seconds : 0;
}

}  // namespace qm::rank
