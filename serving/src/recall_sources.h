// Stage 2 of the request path, recall: the sources that propose candidates. Each adds to a
// CandidateSet (which keeps every item once, with every source that found it as a reason) and
// returns how many new candidates it added. Sources read the model and plain lists, so each is
// testable with a hand-built Model (random vectors in a VectorIndex) and no training.
// Private to serving.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "activity.h"
#include "candidates.h"
#include "model.h"
#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"
#include "qianmian/policy/policy.h"
#include "qianmian/serving/serving_config.h"

namespace qm::serving {

// The `k` nearest rows of the `kind` index (0 products, 1 content) to each of `nq` queries into
// labels[nq * k] (-1 where there are fewer); the search time is added to *ann_us.
Status SearchIndex(const Model& md, int kind, const float* queries, int64_t nq, int k, std::vector<int64_t>* labels,
                   int64_t* ann_us);

// Adds the items of index rows labels[0, k) (rows no longer live are skipped) for which
// keep(item) holds, as `source`.
template <class Keep>
int64_t AddRows(const Model& md, const int64_t* labels, int k, Source source, CandidateSet* set, Keep keep) {
  int64_t n = 0;
  for (int j = 0; j < k; ++j) {  // the rows' items looked up and their flags loaded together first
    const int32_t item = md.ItemOfRow(labels[j]);
    if (item >= 0) set->Prefetch(static_cast<uint32_t>(item));
  }
  for (int j = 0; j < k; ++j) {
    const int32_t item = md.ItemOfRow(labels[j]);
    if (item >= 0 && keep(static_cast<uint32_t>(item))) n += set->Add(static_cast<uint32_t>(item), source);
  }
  return n;
}

// ANN: the `quota` items of the `kind` index nearest to the customer embedding u.
Result<int64_t> RecallAnn(const Model& md, int kind, const float* u, int quota, CandidateSet* set, int64_t* ann_us);

// Item-to-item: neighbours of the newest `seeds` items of `history` (newest first) that the
// version knows, interleaved newest seed first, products and content alternating, up to `quota`.
// A trained seed's neighbours come from the version's table; others are searched once per
// version and catalogue state and cached in the model. -1 when the source does not run (no seed
// the version knows, or a quota of 0).
Result<int64_t> RecallSimilar(const Model& md, const std::vector<uint32_t>& history, int seeds, int quota,
                              CandidateSet* set, int64_t* ann_us);

// Adds items of `list` in order, as `source`, while the count of new candidates `n` is below
// `quota`; returns the new count.
int64_t AddWhileBelow(const std::vector<uint32_t>& list, int64_t quota, int64_t n, Source source, CandidateSet* set,
                      bool fallback = false);

// Popular: the channel's popular items within the customer's segment (known customers), then the
// channel's, `quota` new candidates in all.
int64_t RecallPopular(const PopularLists& popular, ChannelId channel, Tier tier, bool known, int quota,
                      CandidateSet* set);

// The campaigns pinned for segments ([[serving.campaigns]]) and the live items of each campaign.
struct CampaignPins {
  std::vector<std::string> campaign;                          // per pin: campaign id as in items.csv
  std::vector<ChannelMask> channels;                          // per pin; 0 = every channel
  std::vector<uint8_t> tiers;                                 // per pin: bit per tier; 0 = every tier
  std::unordered_map<uint32_t, std::vector<uint32_t>> items;  // campaign code -> live items

  // InvalidArgument naming the key for an unknown channel.
  Status Configure(const std::vector<CampaignPin>& pins, const ChannelRegistry& channels);
  // Indexes the live items of every campaign.
  void IndexItems(const Dataset& ds, const std::vector<uint8_t>& retired);
};

// Campaign: items of the campaigns pinned for (channel, tier), pin order, up to `quota`.
int64_t RecallCampaigns(const CampaignPins& pins, const Dataset& ds, ChannelId channel, Tier tier, int quota,
                        CandidateSet* set);

// Fresh: a sample (seeded by *rng) of the items with fewer than `max_positives` positives (the
// least-known end of popular.any_order, found by binary search), up to `quota`, trying at most
// 4 * quota draws; a drawn item that has gained positives since the order was built is skipped.
int64_t RecallFresh(const PopularLists& popular, int max_positives, int quota, std::mt19937_64* rng, CandidateSet* set);

// Fallback when the filtered list runs short: any item that passes the stateless rules, most
// positives first, scanning at most PopularLists::kAnyEligibleScan items (only the service items
// among them when the policy blocks all marketing for the customer), up to `quota` new candidates.
int64_t RecallAnyEligible(const PopularLists& popular, const Dataset& ds, const std::vector<uint8_t>& retired,
                          const policy::Policy& policy, const Customer& customer, ChannelId channel, TimeMs now,
                          int quota, CandidateSet* set);

// Push runs: the `k` best content rows for each of `n` customer embeddings into labels[n * k]:
// an exact scan of every live content item (one matrix product per batch, built on first use and
// cached in the model) when there are at most `exact_max_items`, else the content index.
Status SearchContentBatch(const Model& md, const Dataset& ds, const std::vector<uint8_t>& retired, const float* u,
                          int64_t n, int k, int64_t exact_max_items, std::vector<int64_t>* labels);

// Push runs' popular source: the first `quota` content items of the segment's popular list, then
// of the channel's, counted whether or not they are new candidates; keep(item) as in AddRows.
template <class Keep>
void RecallPushPopular(const PopularLists& popular, const Dataset& ds, ChannelId channel, Tier tier, int quota,
                       CandidateSet* set, Keep keep) {
  int taken = 0;
  for (const auto* list : {&popular.Segment(channel, tier), &popular.by_channel[channel]}) {
    for (size_t k = 0; k < list->size() && taken < quota; ++k) {
      const uint32_t item = (*list)[k];
      if (ds.items[item].kind != ItemKind::kContent) continue;
      ++taken;
      if (keep(item)) set->Add(item, Source::kPopular);
    }
  }
}

}  // namespace qm::serving
