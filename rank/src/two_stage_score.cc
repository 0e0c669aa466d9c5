#include "qianmian/rank/two_stage_score.h"

#include <cmath>

namespace qm::rank {

double TwoStageScore(const ScoreWeights& w, const ScoreTerms& t) {
  const double objective = w.w_click * t.p_click + w.w_convert * t.p_convert * t.value * t.boost;
  double score = std::log(objective + 1e-9) + w.retrieval_weight * t.uv * w.inv_temperature;
  if (w.exposure_weight != 0) score += w.exposure_weight * (t.exposure_logit + t.log_valid_share);
  return score;
}

}  // namespace qm::rank
