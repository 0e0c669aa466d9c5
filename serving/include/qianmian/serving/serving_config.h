// Module serving: the online engine. May depend on: core, policy; artifacts, features, recall,
// rank, BLAS (private); never training or synth.
// [serving]: how the online engine recalls, filters, ranks and lays out a page. Defaults are
// written once, next to the field; ReadServingConfig reports bad values with the key's name.
#pragma once

#include <string>
#include <vector>

#include "qianmian/core/config.h"
#include "qianmian/core/types.h"

namespace qm::serving {

// A campaign pinned for a segment: its items (items.csv campaign_id) join the candidates of
// the segment's customers on the listed channels, with the reason "campaign:<id>".
struct CampaignPin {
  std::string campaign;               // campaign id as in items.csv
  std::vector<std::string> tiers;     // segments (customer tiers); empty = every tier
  std::vector<std::string> channels;  // empty = every channel
};

struct ServingConfig {
  // Ranking model: "" = the version's ranker.pt; otherwise a TorchScript file (rank_inputs.json
  // contract) used with every version.
  std::string ranker;
  // Recall quotas per source (candidates each source may contribute before de-duplication).
  int ann_products = 100;  // customer embedding -> Faiss over products
  int ann_content = 200;   // customer embedding -> Faiss over content
  int similar = 40;        // item-to-item: nearest items of the customer's recent clicks
  int similar_seeds = 4;   // recent clicks used as item-to-item seeds
  int popular = 60;        // popular within the channel and the customer's segment (tier)
  int campaign = 20;       // items of campaigns pinned for the customer's segment
  int fresh = 10;          // new items (few positives) offered to exploration
  // Re-rank objective: w_click * p_click + w_convert * p_convert * value * boost, combined with
  // the retrieval logit by the two-stage score (rank/two_stage_score.h): log(objective) +
  // retrieval_weight * u.v / temperature. Serving applies no exposure term (it loads no exposure
  // model), so its order differs from the two-stage order `qianmian eval` measures, which adds
  // the exposure term and its own retrieval weight (0.3 by default with an exposure model); the
  // page then also applies diversity, the slot layout and exploration, which eval leaves out.
  double w_click = 1.0;
  double w_convert = 0.0;
  double retrieval_weight = -1;  // < 0 = the version's retrieval weight for a score without an
                                 // exposure term (its training.retrieval_weight, default 1)
  int max_per_category = 3;      // diversity: at most this many items of a category on a page; 0 = off
  // Page layout of app_home: the kind of each slot, in order; slots past the list take the best
  // remaining item of either kind. Empty = no layout.
  std::vector<std::string> slots = {"product", "content", "content", "product", "content",
                                    "content", "product", "content", "content", "content"};
  double explore_share = 0.05;         // share of page positions given to a new item (seeded per request id)
  int explore_max_positives = 3;       // an item with fewer positives than this counts as new
  uint64_t seed = 7;                   // exploration seed (mixed with the request id)
  std::vector<CampaignPin> campaigns;  // [[serving.campaigns]] campaign, tiers, channels
  bool seed_store = true;              // embedded store: seed it once from events.csv (recent events)
  int history_window_days = 30;        // contact features look this far back
  // Push runs (Engine::Push): content candidates per customer from the customer embedding (one
  // batched Faiss search) and from the popular content of the channel and segment. Smaller than
  // the home page's quotas: a push sends one or a few items.
  int push_ann = 24;
  int push_popular = 6;
  // Up to this many live content items, push runs score the customer embedding against every
  // content item exactly (one matrix product per batch); above it they search the content index
  // (IVF above [training] exact_index_max, 30,000 by default: the cells and lists the home page
  // searches, scored for a batch of customers in matrix products). At 100,000 contents the index
  // makes a 1M push run about twice as fast with sends worth as much (docs/BENCHMARKS.md, issue 21).
  int push_exact_max_items = 30000;
};

// Reads [serving] into `c`; errors name the key (e.g. "'serving.explore_share': must be in [0, 1]").
void ReadServingConfig(ConfigTable t, ServingConfig* c);

}  // namespace qm::serving
