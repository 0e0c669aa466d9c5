#include "rank_stage.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "qianmian/core/prefetch_range.h"

namespace qm::serving {

rank::ScoreWeights ServingScoreWeights(const ServingConfig& sc, const Model& md) {
  rank::ScoreWeights w;
  w.w_click = sc.w_click;
  w.w_convert = sc.w_convert;
  w.retrieval_weight = md.retrieval_weight;
  w.inv_temperature = md.inv_temperature;
  return w;
}

Status RankCandidates(const Model& md, const Dataset& ds, const ProfileBatch& profiles, TimeMs now,
                      const std::vector<rank::RankContext>& context, const rank::ScoreWeights& weights,
                      const std::vector<RankRow>& rows, int64_t* model_us) {
  const size_t n = rows.size();
  if (n == 0) return Status::Ok();
  const int d = md.dim;
  // u.v first, in a loop of its own: the candidates' embedding rows are scattered over the table
  // and cold, and a tight loop lets their cache misses overlap (measured: the rank inputs took
  // ~20 us less than with the product inside the loop below).
  // The Item fields read below are taken here too, for the same reason: read one at a time in the
  // loops below, each was a cache miss of its own (`perf annotate`: half of this function's samples).
  const std::vector<float> zero(d, 0.0f);
  struct ItemFields {
    const float* v;  // the item's embedding (zeros when the version has none)
    uint32_t category;
    float value, boost;
  };
  std::vector<ItemFields> fields(n);
  // The packed rows are fetched here, not with the rest after recall: the filter's work in between
  // evicted many (perf: most of this function's samples were on the first read of a packed row);
  // here they load while the loop below waits on the embedding rows.
  for (size_t k = 0; k < n; ++k) __builtin_prefetch(&md.packed[rows[k].candidate->item]);
  for (size_t k = 0; k < n; ++k) {
    const uint32_t it = rows[k].candidate->item;
    const bool embedded = md.item_row[it] >= 0;
    const float* v = embedded ? md.Embedding(it) : zero.data();
    rows[k].candidate->uv = embedded ? features::Dot(profiles.U(rows[k].profile), v, d) : 0.0f;
    const Item& item = ds.items[it];
    fields[k] = {v, item.category, item.value, item.boost};
  }
  std::vector<features::ContactSummary> summary;
  summary.reserve(profiles.profiles.size());
  for (size_t p = 0; p < profiles.profiles.size(); ++p) {
    summary.emplace_back(profiles.profiles[p].activity.contact, context[p].channel, now);
  }
  rank::RankInputs in;
  in.cat.reserve(n * md.builder->cat_width());
  in.dense.reserve(n * md.builder->dense_width());
  in.bag.reserve(n * rank::kBagWidth);
  float cf[features::kContactFeatures];
  for (size_t k = 0; k < n; ++k) {
    const Candidate& c = *rows[k].candidate;
    const uint32_t p = rows[k].profile;
    summary[p].Features(c.item, fields[k].category, cf);
    // The item's encoded row is read where it lies, packed in one line (md.packed), or from
    // md.enc when it does not fit there.
    const rank::PackedItemRow& row = md.packed[c.item];
    if (row.tag_count >= 0) {
      md.builder->Append(profiles.encoded, p, row, profiles.U(p), fields[k].v, static_cast<float>(c.uv), context[p], cf,
                         &in);
    } else {
      md.builder->Append(profiles.encoded, p, md.enc, md.item_enc[c.item], profiles.U(p), fields[k].v,
                         static_cast<float>(c.uv), context[p], cf, &in);
    }
  }
  std::vector<float> pc(n), pv(n);
  const auto t0 = std::chrono::steady_clock::now();
  QM_RETURN_IF_ERROR(md.ranker->Score(in, pc.data(), pv.data()));
  if (model_us) {
    *model_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  }
  for (size_t k = 0; k < n; ++k) {
    Candidate& c = *rows[k].candidate;
    c.pc = pc[k];
    c.pv = pv[k];
    rank::ScoreTerms t;
    t.p_click = pc[k];
    t.p_convert = pv[k];
    t.value = fields[k].value;
    t.boost = fields[k].boost;
    t.uv = c.uv;
    c.score = rank::TwoStageScore(weights, t);
  }
  return Status::Ok();
}

void PrefetchCandidates(const Model& md, const Dataset& ds, const CandidateSet& set) {
  const size_t n = set.size();
  for (size_t k = 0; k < n; ++k) {  // first what is read by item index
    const uint32_t it = set[k].item;
    __builtin_prefetch(&md.item_row[it]);
    __builtin_prefetch(&ds.items[it]);  // the Item's first line: what every candidate is read for
  }
  const size_t row_bytes = static_cast<size_t>(md.dim) * sizeof(float);
  for (size_t k = 0; k < n; ++k) {  // then the embedding rows, where item_row (now loaded) points
    const uint32_t it = set[k].item;
    if (md.item_row[it] >= 0) PrefetchRange(md.Embedding(it), row_bytes);
  }
}

void SortByScore(std::vector<Candidate>* candidates) {
  // Sorted by small keys, then moved once: cheaper than a stable sort of the 40-byte candidates
  // (its merge buffer and moves). Ties of (score, item) keep their order (the position is the
  // last key), so this is the stable sort's order; a NaN score (never expected) sorts last.
  struct Key {
    double score;
    uint32_t item, at;
  };
  const size_t n = candidates->size();
  std::vector<Key> keys(n);
  for (size_t k = 0; k < n; ++k) {
    const Candidate& c = (*candidates)[k];
    keys[k] = {std::isnan(c.score) ? -std::numeric_limits<double>::infinity() : c.score, c.item,
               static_cast<uint32_t>(k)};
  }
  std::sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
    if (rank::ScoresBefore(a.score, a.item, b.score, b.item)) return true;
    return !rank::ScoresBefore(b.score, b.item, a.score, a.item) && a.at < b.at;
  });
  std::vector<Candidate> sorted;
  sorted.reserve(n);
  for (const Key& k : keys) sorted.push_back((*candidates)[k.at]);
  candidates->swap(sorted);
}

}  // namespace qm::serving
