#include "recall_sources.h"

#include <algorithm>
#include <chrono>
#include <mutex>

namespace qm::serving {

namespace {
int64_t MicrosSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
}
bool Any(uint32_t) { return true; }
}  // namespace

Status SearchIndex(const Model& md, int kind, const float* queries, int64_t nq, int k, std::vector<int64_t>* labels,
                   int64_t* ann_us) {
  labels->assign(static_cast<size_t>(nq) * std::max(k, 0), -1);
  if (k <= 0 || md.index[kind]->size() == 0) return Status::Ok();
  std::vector<float> scores(labels->size());
  const auto t0 = std::chrono::steady_clock::now();
  Status st = md.index[kind]->Search(queries, nq, k, labels->data(), scores.data());
  *ann_us += MicrosSince(t0);
  return st;
}

Result<int64_t> RecallAnn(const Model& md, int kind, const float* u, int quota, CandidateSet* set, int64_t* ann_us) {
  std::vector<int64_t> labels;
  QM_RETURN_IF_ERROR(SearchIndex(md, kind, u, 1, quota, &labels, ann_us));
  return AddRows(md, labels.data(), static_cast<int>(labels.size()), Source::kAnn, set, Any);
}

namespace {

// The neighbour lists (index rows, best first, `per` each) of `seeds` into nn[s * 2 + kind].
Status NeighbourLists(const Model& md, const std::vector<uint32_t>& seeds, int per,
                      std::vector<std::vector<int64_t>>* nn, int64_t* ann_us) {
  const int d = md.dim;
  nn->assign(seeds.size() * 2, {});
  std::vector<size_t> uncovered, missing;  // seeds the table does not cover; of those, not cached
  for (size_t s = 0; s < seeds.size(); ++s) {
    const int64_t row = md.item_row[seeds[s]];
    if (row >= md.neighbours.rows || per > md.neighbours.k) {
      uncovered.push_back(s);
      continue;
    }
    for (int kind = 0; kind < 2; ++kind) {  // a trained row: the version's table (immutable)
      const int32_t* list = md.neighbours.List(row, kind);
      (*nn)[s * 2 + kind].assign(list, list + per);
    }
  }
  if (!uncovered.empty()) {
    std::lock_guard<std::mutex> nn_lock(md.nn_mu);
    for (size_t s : uncovered) {
      for (int kind = 0; kind < 2; ++kind) {
        auto f = md.nn.find(static_cast<int64_t>(md.item_row[seeds[s]]) * 2 + kind);
        if (f != md.nn.end())
          (*nn)[s * 2 + kind] = f->second;
        else if (kind == 0)
          missing.push_back(s);
      }
    }
  }
  if (missing.empty()) return Status::Ok();
  std::vector<float> q(missing.size() * d);
  for (size_t k = 0; k < missing.size(); ++k) std::copy_n(md.Embedding(seeds[missing[k]]), d, q.data() + k * d);
  std::vector<int64_t> labels;
  for (int kind = 0; kind < 2; ++kind) {
    QM_RETURN_IF_ERROR(SearchIndex(md, kind, q.data(), static_cast<int64_t>(missing.size()), per, &labels, ann_us));
    for (size_t k = 0; k < missing.size(); ++k) {
      (*nn)[missing[k] * 2 + kind].assign(labels.begin() + k * per, labels.begin() + (k + 1) * per);
    }
  }
  std::lock_guard<std::mutex> nn_lock(md.nn_mu);
  for (size_t s : missing) {
    for (int kind = 0; kind < 2; ++kind)
      md.nn[static_cast<int64_t>(md.item_row[seeds[s]]) * 2 + kind] = (*nn)[s * 2 + kind];
  }
  return Status::Ok();
}

}  // namespace

Result<int64_t> RecallSimilar(const Model& md, const std::vector<uint32_t>& history, int max_seeds, int quota,
                              CandidateSet* set, int64_t* ann_us) {
  std::vector<uint32_t> seeds;
  for (uint32_t it : history) {
    if (static_cast<int>(seeds.size()) >= max_seeds) break;
    if (it < md.item_row.size() && md.item_row[it] >= 0) seeds.push_back(it);
  }
  if (seeds.empty() || quota <= 0) return int64_t{-1};
  const int per = std::max(2, quota / std::max(1, max_seeds) + 1);
  std::vector<std::vector<int64_t>> nn;
  QM_RETURN_IF_ERROR(NeighbourLists(md, seeds, per, &nn, ann_us));
  int64_t n = 0;
  for (int j = 0; j < per && n < quota; ++j) {
    for (size_t s = 0; s < seeds.size() && n < quota; ++s) {
      for (int kind = 0; kind < 2 && n < quota; ++kind) {  // interleaved: the newest seed first
        const auto& list = nn[s * 2 + kind];
        if (j >= static_cast<int>(list.size())) continue;
        const int32_t it = md.ItemOfRow(list[j]);
        if (it < 0 || static_cast<uint32_t>(it) == seeds[s]) continue;
        n += set->Add(static_cast<uint32_t>(it), Source::kSimilarTo, seeds[s]);
      }
    }
  }
  return n;
}

int64_t AddWhileBelow(const std::vector<uint32_t>& list, int64_t quota, int64_t n, Source source, CandidateSet* set,
                      bool fallback) {
  for (size_t k = 0; k < list.size() && n < quota; ++k) n += set->Add(list[k], source, 0, fallback);
  return n;
}

int64_t RecallPopular(const PopularLists& popular, ChannelId channel, Tier tier, bool known, int quota,
                      CandidateSet* set) {
  int64_t n = 0;
  if (known) n = AddWhileBelow(popular.Segment(channel, tier), quota, n, Source::kPopular, set);
  return AddWhileBelow(popular.by_channel[channel], quota, n, Source::kPopular, set);
}

Status CampaignPins::Configure(const std::vector<CampaignPin>& pins, const ChannelRegistry& registry) {
  campaign.clear();
  channels.clear();
  tiers.clear();
  for (size_t k = 0; k < pins.size(); ++k) {
    const CampaignPin& pin = pins[k];
    ChannelMask m = 0;
    for (const auto& c : pin.channels) {
      auto id = registry.Find(c);
      if (!id) {
        return Status::InvalidArgument("'serving.campaigns[" + std::to_string(k) + "].channels': unknown channel '" +
                                       c + "'");
      }
      m |= ChannelMask{1} << *id;
    }
    uint8_t t = 0;
    for (const auto& name : pin.tiers) t |= static_cast<uint8_t>(1u << static_cast<int>(*ParseTier(name)));
    campaign.push_back(pin.campaign);
    channels.push_back(m);
    tiers.push_back(t);
  }
  return Status::Ok();
}

void CampaignPins::IndexItems(const Dataset& ds, const std::vector<uint8_t>& retired) {
  items.clear();
  for (uint32_t i = 0; i < ds.items.size(); ++i) {
    if (ds.items[i].campaign != 0 && !retired[i]) items[ds.items[i].campaign].push_back(i);
  }
}

int64_t RecallCampaigns(const CampaignPins& pins, const Dataset& ds, ChannelId channel, Tier tier, int quota,
                        CandidateSet* set) {
  int64_t n = 0;
  const int t = static_cast<int>(tier);
  for (size_t k = 0; k < pins.campaign.size() && n < quota; ++k) {
    if (pins.channels[k] && !(pins.channels[k] >> channel & 1u)) continue;
    if (pins.tiers[k] && !(pins.tiers[k] >> t & 1u)) continue;
    auto code = ds.campaigns.Find(pins.campaign[k]);
    if (!code) continue;
    auto it = pins.items.find(*code);
    if (it == pins.items.end()) continue;
    for (uint32_t item : it->second) {
      if (n >= quota) break;
      n += set->Add(item, Source::kCampaign, *code);
    }
  }
  return n;
}

int64_t RecallFresh(const PopularLists& popular, int max_positives, int quota, std::mt19937_64* rng,
                    CandidateSet* set) {
  int64_t n = 0;
  const auto& order = popular.any_order;
  const size_t lo = popular.NewFrom(max_positives);
  const size_t span = order.size() - lo;
  for (int tries = 0; span > 0 && tries < 4 * quota && n < quota; ++tries) {
    const uint32_t item = order[lo + (*rng)() % span];
    if (popular.IsNew(item, max_positives)) n += set->Add(item, Source::kFresh);  // not if it has gained positives
  }
  return n;
}

int64_t RecallAnyEligible(const PopularLists& popular, const Dataset& ds, const std::vector<uint8_t>& retired,
                          const policy::Policy& policy, const Customer& customer, ChannelId channel, TimeMs now,
                          int quota, CandidateSet* set) {
  // The catalogue, most positives first; a bounded scan so a customer nothing suits stays cheap.
  // When no marketing item can pass (consent withdrawn, quiet hours that drop), only the service
  // items among the same positions are tried: the same items found, without checking thousands.
  std::vector<std::string> blocked;
  int64_t n = 0;
  auto consider = [&](uint32_t it) {
    if (set->Contains(it) || retired[it]) return;
    blocked.clear();
    policy.StaticCheck(customer, policy::MakeCandidate(ds, it), channel, now, &blocked);
    if (blocked.empty()) n += set->Add(it, Source::kFallbackAnyEligible, 0, true);
  };
  if (policy.BlocksAllMarketing(customer, channel, now)) {
    for (size_t j = 0; j < popular.service_at.size() && n < quota; ++j)
      consider(popular.any_order[popular.service_at[j]]);
    return n;
  }
  for (size_t k = 0; k < popular.any_order.size() && k < PopularLists::kAnyEligibleScan && n < quota; ++k) {
    consider(popular.any_order[k]);
  }
  return n;
}

Status SearchContentBatch(const Model& md, const Dataset& ds, const std::vector<uint8_t>& retired, const float* u,
                          int64_t n, int k, int64_t exact_max_items, std::vector<int64_t>* labels) {
  labels->assign(static_cast<size_t>(n) * std::max(k, 0), -1);
  if (k <= 0 || md.index[1]->size() == 0) return Status::Ok();
  std::shared_ptr<const ExactTopK> exact;
  if (md.index[1]->size() <= exact_max_items) {
    const int d = md.dim;
    std::lock_guard<std::mutex> push_lock(md.push_mu);
    if (!md.push_content) {
      std::vector<float> rows;
      std::vector<int64_t> row_ids;
      for (size_t r = 0; r < md.row_item.size(); ++r) {
        const int32_t it = md.row_item[r];
        if (it < 0 || retired[it] || ds.items[it].kind != ItemKind::kContent) continue;
        rows.insert(rows.end(), md.emb.begin() + r * d, md.emb.begin() + (r + 1) * d);
        row_ids.push_back(static_cast<int64_t>(r));
      }
      md.push_content = std::make_shared<const ExactTopK>(std::move(rows), std::move(row_ids), d);
    }
    exact = md.push_content;
  }
  if (exact) {
    exact->Search(u, n, k, labels->data());
    return Status::Ok();
  }
  std::vector<float> scores(labels->size());
  return md.index[1]->Search(u, n, k, labels->data(), scores.data());
}

}  // namespace qm::serving
