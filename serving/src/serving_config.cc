#include "qianmian/serving/serving_config.h"

#include <cstdint>

namespace qm::serving {

void ReadServingConfig(ConfigTable t, ServingConfig* c) {
  t.Read("ranker", &c->ranker);
  struct Quota {
    const char* key;
    int* v;
  };
  for (Quota q :
       {Quota{"ann_products", &c->ann_products}, Quota{"ann_content", &c->ann_content}, Quota{"similar", &c->similar},
        Quota{"similar_seeds", &c->similar_seeds}, Quota{"popular", &c->popular}, Quota{"campaign", &c->campaign},
        Quota{"fresh", &c->fresh}, Quota{"push_ann", &c->push_ann}, Quota{"push_popular", &c->push_popular}}) {
    t.Read(q.key, q.v);
    if (*q.v < 0 || *q.v > 5000) t.Error(q.key, "must be in [0, 5000]");
  }
  t.Read("push_exact_max_items", &c->push_exact_max_items);
  if (c->push_exact_max_items < 0) t.Error("push_exact_max_items", "must be >= 0 (0 = always the index)");
  t.Read("w_click", &c->w_click);
  if (c->w_click < 0) t.Error("w_click", "must be >= 0");
  t.Read("w_convert", &c->w_convert);
  if (c->w_convert < 0) t.Error("w_convert", "must be >= 0");
  if (c->w_click == 0 && c->w_convert == 0) t.Error("w_click", "w_click and w_convert cannot both be 0");
  t.Read("retrieval_weight", &c->retrieval_weight);
  t.Read("max_per_category", &c->max_per_category);
  if (c->max_per_category < 0) t.Error("max_per_category", "must be >= 0 (0 = no limit)");
  t.Read("slots", &c->slots);
  for (const auto& s : c->slots) {
    if (s != "product" && s != "content") {
      t.Error("slots", "each slot must be \"product\" or \"content\", not \"" + s + "\"");
      break;
    }
  }
  t.Read("explore_share", &c->explore_share);
  if (!(c->explore_share >= 0 && c->explore_share <= 1)) t.Error("explore_share", "must be in [0, 1]");
  t.Read("explore_max_positives", &c->explore_max_positives);
  if (c->explore_max_positives < 0) t.Error("explore_max_positives", "must be >= 0");
  int64_t seed = static_cast<int64_t>(c->seed);
  t.Read("seed", &seed);
  c->seed = static_cast<uint64_t>(seed);
  t.Read("seed_store", &c->seed_store);
  t.Read("history_window_days", &c->history_window_days);
  if (c->history_window_days < 1) t.Error("history_window_days", "must be >= 1");
  auto pins = t.TableArray("campaigns");
  if (!pins.empty()) c->campaigns.clear();
  for (auto& p : pins) {
    CampaignPin pin;
    p.Read("campaign", &pin.campaign);
    if (pin.campaign.empty()) p.Error("campaign", "a campaign id is required");
    p.Read("tiers", &pin.tiers);
    for (const auto& tier : pin.tiers) {
      if (!ParseTier(tier)) {
        p.Error("tiers", "unknown tier \"" + tier + "\" (mass, affluent or private)");
        break;
      }
    }
    p.Read("channels", &pin.channels);  // names checked against the channel registry at Open
    c->campaigns.push_back(std::move(pin));
  }
}

}  // namespace qm::serving
