// Module rank: the ranking model, its input contract and the two-stage score. May depend on: core,
// features; torchutil, libtorch (private).
// The two-stage score: how a ranked candidate's model outputs become the number the page, a push
// run and `qianmian eval` order by. One definition, used by serving (recommend, push, score) and
// by evaluation; part of the rank module (core only, no libtorch).
//
//   score = log(w_click * p_click + w_convert * p_convert * value * boost + 1e-9)
//         + retrieval_weight * u.v / temperature
//         + exposure_weight * (exposure_logit + log_valid_share)
//
// p_click / p_convert are the ranker's outputs (P(click | shown), P(convert | shown)); u.v / τ is
// the two-tower retrieval logit (with the log-popularity correction it estimates log P(item |
// customer)); the exposure logit estimates where the bank's past (logging) policy showed items,
// and log_valid_share counts the share of the scored period the item is valid.
#pragma once

#include <cstdint>

namespace qm::rank {

// Weights of the terms. Defaults: the click objective alone, no retrieval or exposure term.
struct ScoreWeights {
  double w_click = 1.0;
  double w_convert = 0.0;
  double retrieval_weight = 0.0;
  double inv_temperature = 1.0;  // 1 / two-tower temperature
  double exposure_weight = 0.0;  // 0 = no exposure term
};

// One candidate's terms.
struct ScoreTerms {
  float p_click = 0;
  float p_convert = 0;
  double value = 1.0;  // the item's value and boost (they weigh p_convert)
  double boost = 1.0;
  double uv = 0;               // two-tower u.v
  double exposure_logit = 0;   // u_e.v_e / exposure temperature; read only with exposure_weight
  double log_valid_share = 0;  // log(share of the period the item is valid); likewise
};

double TwoStageScore(const ScoreWeights& w, const ScoreTerms& t);

// The served order: higher score first, ties by the lower item index (deterministic).
inline bool ScoresBefore(double score_a, uint32_t item_a, double score_b, uint32_t item_b) {
  return score_a > score_b || (score_a == score_b && item_a < item_b);
}

}  // namespace qm::rank
