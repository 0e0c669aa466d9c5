// Stage 4 of the request path, rank: every candidate of a batch scored in one ranker call
// (p_click, p_convert), then the two-stage score (rank/two_stage_score.h, the one definition
// evaluation uses too). A home page is one profile's candidates; a push run batches the
// candidates of a few hundred customers. Private to serving.
#pragma once

#include <cstdint>
#include <vector>

#include "candidates.h"
#include "model.h"
#include "profile.h"
#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"
#include "qianmian/rank/rank_features.h"
#include "qianmian/rank/two_stage_score.h"
#include "qianmian/serving/serving_config.h"

namespace qm::serving {

// A candidate to rank: the profile it is for (a row of the ProfileBatch) and the candidate,
// whose pc, pv, uv and score the stage fills. Not owned.
struct RankRow {
  uint32_t profile;
  Candidate* candidate;
};

// The served score's weights: the [serving] objective and the version's retrieval term.
rank::ScoreWeights ServingScoreWeights(const ServingConfig& sc, const Model& md);

// Scores `rows` at `now` in one ranker call, with context[profile] for each profile's rows; the ranker's
// time goes to *model_us when given.
Status RankCandidates(const Model& md, const Dataset& ds, const ProfileBatch& profiles, TimeMs now,
                      const std::vector<rank::RankContext>& context, const rank::ScoreWeights& weights,
                      const std::vector<RankRow>& rows, int64_t* model_us = nullptr);

// Starts loading, for every candidate of `set`, what the filter and the rank stage read of it: its
// Item and its embedding row (the packed rows the rank stage fetches itself), scattered over tables
// of tens of megabytes. Issued
// together once recall is done, their cache misses overlap instead of each stalling a later loop.
void PrefetchCandidates(const Model& md, const Dataset& ds, const CandidateSet& set);

// Sorts candidates in the served order (two-stage score, ties by item).
void SortByScore(std::vector<Candidate>* candidates);

}  // namespace qm::serving
