// Engine::Recommend: a home-page (or any channel's) request through the stages profile -> recall
// -> filter -> rank -> re-rank -> reserve.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <unordered_set>

#include "engine_impl.h"
#include "filter.h"
#include "rank_stage.h"
#include "record.h"
#include "reserve.h"

namespace qm::serving {

namespace {

using Clock = std::chrono::steady_clock;

int64_t Us(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::microseconds>(b - a).count();
}

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t HashString(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return Mix(h);
}

// The reply's item: every recall reason, exploration, and the ranker's probabilities.
ResponseItem Served(const Dataset& ds, const CandidateSet& set, const Candidate& c, bool explored,
                    const std::vector<std::string>& arms) {
  const Item& it = ds.items[c.item];
  ResponseItem r;
  r.item_id = it.id;
  r.kind = ItemKindName(it.kind);
  r.score = c.score;
  set.AppendReasons(c, ds, &r.reasons);
  if (explored) r.reasons.push_back("explore");
  char buf[64];
  std::snprintf(buf, sizeof buf, "rank:p_click=%.4f", c.pc);
  r.reasons.push_back(buf);
  std::snprintf(buf, sizeof buf, "rank:p_convert=%.4f", c.pv);
  r.reasons.push_back(buf);
  for (const std::string& arm : arms) r.reasons.push_back("experiment:" + arm);
  return r;
}

// A holdout or control customer's request on a controlled channel: only service items stay.
void WithholdMarketing(const Dataset& ds, const char* withheld_by, std::vector<Candidate>* allowed,
                       std::map<std::string, int64_t>* dropped) {
  const size_t before = allowed->size();
  allowed->erase(
      std::remove_if(allowed->begin(), allowed->end(), [&](const Candidate& c) { return !ds.items[c.item].service; }),
      allowed->end());
  if (allowed->size() < before) (*dropped)[withheld_by] += static_cast<int64_t>(before - allowed->size());
}

}  // namespace

Status Engine::Recommend(const std::vector<Request>& requests, std::vector<Response>* responses) {
  responses->assign(requests.size(), Response());
  std::shared_lock<WriterFirstMutex> lock(impl_->mu);
  for (size_t i = 0; i < requests.size(); ++i) {
    QM_RETURN_IF_ERROR(impl_->One(requests[i], &(*responses)[i]));
  }
  return Status::Ok();
}

Status Engine::Impl::Recall(const Model& md, const ServingConfig& sc, const Profile& p, const float* u,
                            ChannelId channel, std::mt19937_64* rng, CandidateSet* set, Debug* dbg,
                            int64_t* ann_us) const {
  auto& counts = dbg->counts;
  const Tier tier = p.customer(ds).tier;
  if (p.known) {
    QM_ASSIGN_OR_RETURN(counts["recall.ann_products"], RecallAnn(md, 0, u, sc.ann_products, set, ann_us));
    QM_ASSIGN_OR_RETURN(counts["recall.ann_content"], RecallAnn(md, 1, u, sc.ann_content, set, ann_us));
    QM_ASSIGN_OR_RETURN(int64_t similar,
                        RecallSimilar(md, p.activity.history, sc.similar_seeds, sc.similar, set, ann_us));
    if (similar >= 0) counts["recall.similar"] = similar;
  }
  // Cold start: popular carries the page.
  const int popular_quota = p.known ? sc.popular : sc.popular + sc.ann_products;
  counts["recall.popular"] = RecallPopular(popular, channel, tier, p.known, popular_quota, set);
  if (p.known && sc.campaign > 0)
    counts["recall.campaign"] = RecallCampaigns(pins, ds, channel, tier, sc.campaign, set);
  if (p.known && sc.fresh > 0 && sc.explore_share > 0) {
    counts["recall.fresh"] = RecallFresh(popular, sc.explore_max_positives, sc.fresh, rng, set);
  }
  counts["recall.merged"] = static_cast<int64_t>(set->size());
  return Status::Ok();
}

Status Engine::Impl::Filter(const RequestSettings& rs, const Profile& p, ChannelId channel, TimeMs now, int count,
                            CandidateSet* set, std::vector<Candidate>* allowed, Debug* dbg) const {
  const policy::Policy& pol = *rs.policy;
  const Customer& cu = p.customer(ds);
  const auto& clicked = p.activity.clicked;
  QM_RETURN_IF_ERROR(FilterCandidates(pol, store.get(), ds, cu, clicked, channel, now, 0, set, allowed, &dbg->dropped));
  if (static_cast<int>(allowed->size()) < count) {
    dbg->fallbacks.push_back("popular");
    const size_t from = set->size();
    AddWhileBelow(popular.by_channel[channel], 3 * count, 0, Source::kFallbackPopular, set, /*fallback=*/true);
    QM_RETURN_IF_ERROR(
        FilterCandidates(pol, store.get(), ds, cu, clicked, channel, now, from, set, allowed, &dbg->dropped));
  }
  if (static_cast<int>(allowed->size()) < count) {
    dbg->fallbacks.push_back("any_eligible");
    const size_t from = set->size();
    RecallAnyEligible(popular, ds, retired, pol, cu, channel, now, 3 * count, set);
    QM_RETURN_IF_ERROR(
        FilterCandidates(pol, store.get(), ds, cu, clicked, channel, now, from, set, allowed, &dbg->dropped));
  }
  if (rs.withheld_by) WithholdMarketing(ds, rs.withheld_by, allowed, &dbg->dropped);
  dbg->counts["filter.passed"] = static_cast<int64_t>(allowed->size());
  return Status::Ok();
}

std::string Engine::Impl::NewRequestId() {
  char buf[48];
  std::snprintf(buf, sizeof buf, "r%016llx%06llx", static_cast<unsigned long long>(id_salt),
                static_cast<unsigned long long>(request_counter.fetch_add(1) & 0xffffff));
  return buf;
}

Status Engine::Impl::RecordPage(const Request& req, TimeMs now, const std::vector<std::string>& arms,
                                const std::vector<Candidate>& allowed, const std::vector<size_t>& served,
                                const Response* resp) {
  if (req.dry_run || resp->items.empty()) return Status::Ok();
  std::vector<const Candidate*> chosen;
  for (size_t k : served) chosen.push_back(&allowed[k]);
  DecisionContext ctx{
      policy::DecisionKind::kServed, &resp->request_id, &req.customer_id, &req.channel, &resp->model_version, &arms};
  std::vector<policy::DecisionRecord> log;
  log.reserve(chosen.size());
  AppendDecisions(ctx, resp->items, chosen, std::vector<TimeMs>(chosen.size(), now), &log);
  return store->AppendDecisions(log);
}

Status Engine::Impl::One(const Request& req, Response* resp) {
  const auto t0 = Clock::now();
  Debug& dbg = resp->debug;
  auto ch_opt = ds.channels.Find(req.channel);
  if (!ch_opt) {
    resp->status = Status::InvalidArgument("unknown channel '" + req.channel + "'");
    return Status::Ok();
  }
  if (req.count < 1 || req.count > 100) {
    resp->status = Status::InvalidArgument("count must be in 1..100");
    return Status::Ok();
  }
  const ChannelId channel = *ch_opt;
  RequestSettings rs = SettingsFor(req.customer_id, channel);
  const ServingConfig& sc = *rs.serving;
  const TimeMs now = req.now_ms == kNoTime ? Now() : req.now_ms;
  resp->request_id = req.request_id.empty() ? NewRequestId() : req.request_id;
  const std::shared_ptr<Model> m = rs.model;  // the customer's arm's version, or the current one
  resp->model_version = m->version;
  const Model& md = *m;

  // Profile.
  ProfileBatch pb;
  AddProfile(Sources(), md, req.customer_id, now, &pb);
  const Profile& p = pb.profiles[0];
  dbg.known_customer = p.known;
  const Customer& cu = p.customer(ds);
  int64_t tower_us = 0, ann_us = 0, model_us = 0;
  QM_RETURN_IF_ERROR(EmbedProfiles(ds, md, now, &pb, &tower_us));

  // Recall.
  std::unordered_set<uint32_t> excluded;
  for (const auto& id : req.exclude) {
    if (auto it = ds.FindItem(id)) excluded.insert(*it);
  }
  const size_t expected =
      static_cast<size_t>(sc.ann_products + sc.ann_content + sc.similar + sc.popular + sc.fresh) + 64;
  CandidateSet set(expected, &retired, std::move(excluded), &dbg.dropped);
  std::mt19937_64 rng(Mix(HashString(resp->request_id) ^ sc.seed));
  QM_RETURN_IF_ERROR(Recall(md, sc, p, pb.U(0), channel, &rng, &set, &dbg, &ann_us));
  const auto t_recall = Clock::now();

  // Filter.
  PrefetchCandidates(md, ds, set);
  std::vector<Candidate> allowed;
  QM_RETURN_IF_ERROR(Filter(rs, p, channel, now, req.count, &set, &allowed, &dbg));
  const auto t_filter = Clock::now();

  // Rank: every allowed candidate in one batched call.
  rank::RankContext ctx{channel, tz.LocalHour(now), tz.LocalWeekday(now)};
  if (auto h = req.context.find("hour"); h != req.context.end()) {
    const int hour = std::atoi(h->second.c_str());
    if (hour >= 0 && hour < 24) ctx.hour = hour;
  }
  std::vector<RankRow> rows;
  for (Candidate& c : allowed) rows.push_back({0, &c});
  QM_RETURN_IF_ERROR(RankCandidates(md, ds, pb, now, {ctx}, ServingScoreWeights(sc, md), rows, &model_us));
  dbg.counts["rank.scored"] = static_cast<int64_t>(allowed.size());
  const auto t_rank = Clock::now();

  // Re-rank: best first, then exploration, layout and diversity fill the page.
  SortByScore(&allowed);
  std::vector<PageCandidate> info(allowed.size());
  for (size_t k = 0; k < allowed.size(); ++k) {
    const Item& it = ds.items[allowed[k].item];
    info[k] = {static_cast<int>(it.kind), it.category, popular.IsNew(allowed[k].item, sc.explore_max_positives)};
  }
  const PageOptions& po = channel == kAppHome ? *rs.home_page : *rs.other_page;  // the slot layout is app_home's
  const Page page = LayOutPage(info, static_cast<size_t>(req.count), po, &rng);
  const auto t_rerank = Clock::now();

  // Reserve (app_home and other reserve channels) or only report (dry run, push-like channels).
  std::vector<size_t> served = page.positions;
  if (reserve_channel[channel] && !req.dry_run && !page.positions.empty()) {
    QM_ASSIGN_OR_RETURN(PageReservation r, ReservePage(*rs.policy, store.get(), ds, cu, allowed, page, channel, now,
                                                       resp->request_id, req.count, &dbg.dropped));
    served = std::move(r.served);
    if (r.replayed) dbg.counts["reserve.replayed"] = 1;
  }
  const auto t_reserve = Clock::now();

  for (size_t k : served) resp->items.push_back(Served(ds, set, allowed[k], page.explored[k], rs.arms));
  QM_RETURN_IF_ERROR(RecordPage(req, now, rs.arms, allowed, served, resp));
  const auto t_record = Clock::now();
  dbg.arms = std::move(rs.arms);
  dbg.counts["served"] = static_cast<int64_t>(resp->items.size());
  dbg.stage_us["tower"] = tower_us;
  dbg.stage_us["ann"] = ann_us;
  dbg.stage_us["model"] = model_us;
  dbg.stage_us["recall"] = Us(t0, t_recall);
  dbg.stage_us["filter"] = Us(t_recall, t_filter);
  dbg.stage_us["rank"] = Us(t_filter, t_rank);
  dbg.stage_us["rerank"] = Us(t_rank, t_rerank);
  dbg.stage_us["reserve"] = Us(t_rerank, t_reserve);
  if (!req.dry_run) dbg.stage_us["record"] = Us(t_reserve, t_record);
  if (!req.debug) dbg.counts.clear();  // `dropped` stays: the server counts blocks by rule (/metrics)
  resp->took_us = Us(t0, Clock::now());
  return Status::Ok();
}

}  // namespace qm::serving
