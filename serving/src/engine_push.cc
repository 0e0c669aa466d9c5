// Engine::Push: a push run's batch through the same stages as a home page, batched: profiles and
// one customer-tower call for the batch, recall (one batched content search, popular content)
// with the stateless rules, one ranker call for every candidate of the batch, and one store write
// reserving the batch under the run id.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "engine_impl.h"
#include "filter.h"
#include "qianmian/experiment/assignment.h"
#include "qianmian/recall/two_tower.h"
#include "rank_stage.h"
#include "record.h"
#include "reserve.h"

namespace qm::serving {

namespace {

// A push send's reasons: the source that found it, the ranker's p_click, a send scheduled after
// quiet hours, a service item's exemption.
ResponseItem PushItem(const Dataset& ds, const CandidateSet& set, const Candidate& c, bool scheduled) {
  ResponseItem ri;
  ri.item_id = ds.items[c.item].id;
  ri.kind = "content";
  ri.score = c.score;
  ri.reasons.push_back(set.reason(c.reasons).source == Source::kAnn ? "recall:ann" : "recall:popular");
  char buf[64];
  std::snprintf(buf, sizeof buf, "rank:p_click=%.4f", c.pc);
  ri.reasons.push_back(buf);
  if (scheduled) ri.reasons.push_back("scheduled:quiet_hours");
  if (ds.items[c.item].service) ri.reasons.push_back("exempt:service");
  return ri;
}

// The sends a run already made to the customer (a replay), with the reasons of the first run
// when the item is still a candidate.
Status Replay(policy::EventStore* store, const Dataset& ds, const PushRequest& req, const Customer& cu, TimeMs now,
              const CandidateSet& set, const std::vector<Candidate>& ranked, PushChoice* out) {
  QM_ASSIGN_OR_RETURN(auto sends, RecordedSends(store, cu.id, req.run_id, req.channel));
  for (const policy::ContactRecord& rec : sends) {
    ResponseItem ri;
    ri.item_id = rec.item;
    ri.kind = "content";
    for (const Candidate& c : ranked) {
      if (ds.items[c.item].id == rec.item) ri = PushItem(ds, set, c, rec.ts > now);
    }
    if (ri.reasons.empty()) ri.reasons.push_back("replayed:" + req.run_id);
    out->items.push_back(std::move(ri));
    out->send_at.push_back(rec.ts);
  }
  return Status::Ok();
}

// The candidate of `item_id` in `ranked`, or nullptr.
const Candidate* FindRanked(const Dataset& ds, const std::vector<Candidate>& ranked, const std::string& item_id) {
  for (const Candidate& c : ranked) {
    if (ds.items[c.item].id == item_id) return &c;
  }
  return nullptr;
}

// The chosen sends of one customer (decisions over `ranked`, served order), or why none.
// chosen[j]: the candidate of out->items[j].
void Choose(const Dataset& ds, const CandidateSet& set, const std::vector<Candidate>& ranked,
            const std::vector<policy::Decision>& decisions, TimeMs now, std::map<std::string, int64_t>* drops,
            PushChoice* out, std::vector<const Candidate*>* chosen) {
  for (size_t k = 0; k < ranked.size(); ++k) {
    const policy::Decision& dc = decisions[k];
    if (!dc.blocked_by.empty()) ++(*drops)[dc.blocked_by[0]];
    if (!dc.taken) continue;
    chosen->push_back(&ranked[k]);
    out->items.push_back(PushItem(ds, set, ranked[k], dc.send_at != kNoTime && dc.send_at > now));
    out->send_at.push_back(dc.send_at == kNoTime ? now : dc.send_at);
  }
  if (!out->items.empty()) return;
  out->skipped_by = "no_candidates";
  int64_t best = 0;
  for (const auto& [rule, count] : *drops) {
    if (count > best) {
      best = count;
      out->skipped_by = rule;
    }
  }
}

// ReservePushes for a batch whose customers may have different policies (experiment arms): one
// call per policy, the results back in the batch's order.
Result<PushReservation> ReserveByPolicy(const std::vector<const policy::Policy*>& policies, policy::EventStore* store,
                                        const Dataset& ds, const std::vector<const Customer*>& who,
                                        const std::vector<std::vector<Candidate>>& ranked, ChannelId channel,
                                        const PushRequest& req, TimeMs now) {
  const size_t n = who.size();
  auto reserve = [&](const policy::Policy& p, const std::vector<const Customer*>& w,
                     const std::vector<std::vector<Candidate>>& rk) {
    return ReservePushes(p, store, ds, w, rk, channel, req.channel, now, req.run_id, req.per_customer, req.dry_run,
                         req.campaign ? std::string_view(req.campaign->id) : std::string_view());
  };
  if (std::all_of(policies.begin(), policies.end(), [&](const policy::Policy* p) { return p == policies[0]; })) {
    return reserve(*policies[0], who, ranked);
  }
  PushReservation all;
  all.contacts.resize(n);
  all.pushes_7d.resize(n);
  all.pushes_30d.resize(n);
  std::vector<uint8_t> done(n, 0);
  for (size_t first = 0; first < n; ++first) {
    if (done[first]) continue;
    std::vector<size_t> rows;
    std::vector<const Customer*> w;
    std::vector<std::vector<Candidate>> rk;
    for (size_t r = first; r < n; ++r) {
      if (policies[r] != policies[first]) continue;
      done[r] = 1;
      rows.push_back(r);
      w.push_back(who[r]);
      rk.push_back(ranked[r]);
    }
    QM_ASSIGN_OR_RETURN(PushReservation part, reserve(*policies[first], w, rk));
    for (size_t k = 0; k < rows.size(); ++k) {
      all.contacts[rows[k]] = std::move(part.contacts[k]);
      all.pushes_7d[rows[k]] = part.pushes_7d[k];
      all.pushes_30d[rows[k]] = part.pushes_30d[k];
    }
  }
  return all;
}

// ReserveByPolicy for the sending rows and, for the ghost rows (ghost[r]: a control-arm
// customer's would-be send), the same rules evaluated as a dry run: nothing reserved or counted.
Result<PushReservation> ReserveWithGhosts(const std::vector<const policy::Policy*>& policies, policy::EventStore* store,
                                          const Dataset& ds, const std::vector<const Customer*>& who,
                                          const std::vector<std::vector<Candidate>>& ranked,
                                          const std::vector<uint8_t>& ghost, ChannelId channel, const PushRequest& req,
                                          TimeMs now) {
  if (std::find(ghost.begin(), ghost.end(), 1) == ghost.end()) {
    return ReserveByPolicy(policies, store, ds, who, ranked, channel, req, now);
  }
  const size_t n = who.size();
  PushReservation all;
  all.contacts.resize(n);
  all.pushes_7d.resize(n);
  all.pushes_30d.resize(n);
  for (uint8_t pass = 0; pass < 2; ++pass) {
    std::vector<size_t> rows;
    std::vector<const policy::Policy*> p;
    std::vector<const Customer*> w;
    std::vector<std::vector<Candidate>> rk;
    for (size_t r = 0; r < n; ++r) {
      if (ghost[r] != pass) continue;
      rows.push_back(r);
      p.push_back(policies[r]);
      w.push_back(who[r]);
      rk.push_back(ranked[r]);
    }
    if (rows.empty()) continue;
    PushRequest part_req = req;
    part_req.dry_run = req.dry_run || pass == 1;
    QM_ASSIGN_OR_RETURN(PushReservation part, ReserveByPolicy(p, store, ds, w, rk, channel, part_req, now));
    for (size_t k = 0; k < rows.size(); ++k) {
      all.contacts[rows[k]] = std::move(part.contacts[k]);
      all.pushes_7d[rows[k]] = part.pushes_7d[k];
      all.pushes_30d[rows[k]] = part.pushes_30d[k];
    }
  }
  return all;
}

}  // namespace

Status Engine::Push(const PushRequest& req, std::vector<PushChoice>* choices) {
  choices->assign(req.customer_ids.size(), PushChoice());
  if (req.per_customer < 1 || req.per_customer > 10) return Status::InvalidArgument("per_customer must be in 1..10");
  if (!req.dry_run && req.run_id.empty()) return Status::InvalidArgument("a push run needs a run id");
  if (req.campaign && req.campaign->cap_limit > 0 &&
      req.campaign->cap_window + kMsPerDay > policy().state_options().keep_contacts) {
    return Status::InvalidArgument("campaign '" + req.campaign->id + "': its cap's window of " +
                                   std::to_string(req.campaign->cap_window / kMsPerDay) +
                                   " days is longer than the store keeps contacts (the longest [policy] cap window)");
  }
  // Push runs parallelise across customers: libtorch, OpenMP (Faiss) and OpenBLAS, whose idle
  // workers spin in sched_yield, run one thread per caller.
  thread_local bool single_threaded = false;
  if (!single_threaded) {
    recall::OneThreadPerCaller();
    single_threaded = true;
  }
  std::shared_lock<WriterFirstMutex> lock(impl_->mu);
  return impl_->PushBatch(req, choices);
}

namespace {

// A campaign's own content (PushRequest::Campaign::allowed_list): the k items of it nearest the
// customer's embedding u (two-tower u.v) become candidates, so a campaign ranks no more
// candidates than a plain push however many items it allows, and a small campaign's items are
// candidates even when the ANN over all content finds none of them.
template <class Keep>
void AddCampaignContent(const Model& md, const PushRequest::Campaign& c, const float* u, int k, CandidateSet* set,
                        Keep keep) {
  std::vector<std::pair<float, uint32_t>> near;
  near.reserve(c.allowed_list.size());
  for (uint32_t it : c.allowed_list) {
    if (it >= md.item_row.size() || md.item_row[it] < 0) continue;
    const float* v = md.Embedding(it);
    float dot = 0;
    for (int j = 0; j < md.dim; ++j) dot += u[j] * v[j];
    near.emplace_back(-dot, it);
  }
  const size_t take = std::min(near.size(), static_cast<size_t>(std::max(k, 1)));
  std::partial_sort(near.begin(), near.begin() + static_cast<std::ptrdiff_t>(take), near.end());
  for (size_t j = 0; j < take; ++j) {
    const uint32_t it = near[j].second;
    if (!set->Contains(it) && keep(it)) set->Add(it, Source::kCampaign, 0);
  }
}

}  // namespace

Status Engine::Impl::PushRecall(const Model& md, const PushRequest& req, ChannelId channel, TimeMs now,
                                const ProfileBatch& pb, const std::vector<RequestSettings>& rs,
                                const std::vector<PushChoice*>& out, std::vector<CandidateSet>* sets,
                                std::vector<std::vector<Candidate>>* kept,
                                std::vector<std::map<std::string, int64_t>>* drops) const {
  const ServingConfig& sc = opt.serving;
  const size_t n = pb.profiles.size();
  const int k_ann = std::max(0, sc.push_ann);
  std::vector<int64_t> labels;
  QM_RETURN_IF_ERROR(SearchContentBatch(md, ds, retired, pb.u.data(), static_cast<int64_t>(n), k_ann,
                                        sc.push_exact_max_items, &labels));
  const std::vector<uint8_t>* allowed = req.campaign ? req.campaign->allowed.get() : nullptr;
  auto keep = [&](uint32_t it) {
    return ds.items[it].kind == ItemKind::kContent && (!ds.items[it].service || req.include_service) &&
           (allowed == nullptr || (it < allowed->size() && (*allowed)[it]));
  };
  std::vector<std::string> blocked;
  sets->reserve(n);
  kept->assign(n, {});
  drops->assign(n, {});
  for (size_t r = 0; r < n; ++r) {
    const Profile& p = pb.profiles[r];
    const Customer& cu = p.customer(ds);
    const size_t campaign_items = req.campaign ? static_cast<size_t>(std::max(k_ann, 1)) : 0;
    CandidateSet& set = sets->emplace_back(static_cast<size_t>(k_ann + sc.push_popular) + campaign_items, &retired);
    // A holdout / control customer: service items only, the marketing ones counted as withheld.
    const char* withheld = rs[r].withheld_by;
    auto keep_r = [&](uint32_t it) {
      if (!keep(it)) return false;
      if (withheld == nullptr || ds.items[it].service) return true;
      ++(*drops)[r][withheld];
      return false;
    };
    AddRows(md, labels.data() + r * k_ann, k_ann, Source::kAnn, &set, keep_r);
    RecallPushPopular(popular, ds, channel, cu.tier, sc.push_popular, &set, keep_r);
    if (req.campaign) AddCampaignContent(md, *req.campaign, pb.u.data() + r * md.dim, k_ann, &set, keep_r);
    out[r]->candidates = static_cast<int64_t>(set.size());
    for (const Candidate& c : set.candidates()) {
      StaticBlocked(*rs[r].policy, ds, cu, p.activity.clicked, c.item, channel, now, &blocked);
      if (blocked.empty())
        (*kept)[r].push_back(c);
      else
        ++(*drops)[r][blocked[0]];
    }
  }
  return Status::Ok();
}

Status Engine::Impl::AddPushRows(const PushRequest& req, ChannelId channel, TimeMs now, const Model& md,
                                 std::vector<PushChoice>* choices, std::vector<PushChoice>* ghosts, PushBatchRows* rows,
                                 ProfileBatch* pb) const {
  ghosts->reserve(req.customer_ids.size());  // rows point into it
  const uint64_t campaign_key = req.campaign ? experiment::SaltKey("campaign:" + req.campaign->id) : 0;
  for (size_t i = 0; i < req.customer_ids.size(); ++i) {
    auto f = ds.FindCustomer(req.customer_ids[i]);
    if (!f) {
      (*choices)[i].known = false;
      (*choices)[i].skipped_by = "unknown_customer";
      continue;
    }
    RequestSettings s = SettingsFor(req.customer_ids[i], channel);
    if (req.campaign) {  // the campaign's own control group (not within an experiment's holdout)
      const bool held = req.campaign->holdout > 0 && s.withheld_by == nullptr &&
                        experiment::UnitValue(req.customer_ids[i], campaign_key) < req.campaign->holdout;
      s.arms.push_back("campaign:" + req.campaign->id + (held ? "=holdout" : "=treatment"));
      if (held) s.withheld_by = "campaign.holdout";
    }
    // A control-arm customer of a real run: a ghost row, chosen as a send without the control.
    const bool control = s.withheld_by && (std::strcmp(s.withheld_by, "experiment.control") == 0 ||
                                           std::strcmp(s.withheld_by, "campaign.holdout") == 0);
    if (control && !req.dry_run) {
      RequestSettings g = s;
      g.withheld_by = nullptr;
      AddKnownProfile(Sources(), md, *f, now, pb);
      rows->out.push_back(&ghosts->emplace_back());
      rows->rs.push_back(std::move(g));
      rows->ghost.push_back(1);
    }
    if (s.withheld_by && !req.include_service) {
      (*choices)[i].skipped_by = s.withheld_by;
      (*choices)[i].arms = std::move(s.arms);
      continue;
    }
    AddKnownProfile(Sources(), md, *f, now, pb);
    rows->out.push_back(&(*choices)[i]);
    rows->rs.push_back(std::move(s));
    rows->ghost.push_back(0);
  }
  return Status::Ok();
}

Status Engine::Impl::PushBatch(const PushRequest& req, std::vector<PushChoice>* choices) {
  if (!ds.channels.Find(req.channel)) return Status::InvalidArgument("unknown channel '" + req.channel + "'");
  // Each customer's version (an arm's model_version, or the current one); one batch per version.
  std::vector<std::shared_ptr<Model>> models(req.customer_ids.size());
  for (size_t i = 0; i < models.size(); ++i) models[i] = ModelFor(req.customer_ids[i]);
  if (std::all_of(models.begin(), models.end(), [&](const auto& m) { return m == models[0]; })) {
    return PushVersion(req, models.empty() ? *model : *models[0], choices);
  }
  std::vector<uint8_t> done(models.size(), 0);
  for (size_t first = 0; first < models.size(); ++first) {
    if (done[first]) continue;
    PushRequest part = req;
    part.customer_ids.clear();
    std::vector<size_t> rows;
    for (size_t i = first; i < models.size(); ++i) {
      if (models[i] != models[first]) continue;
      done[i] = 1;
      rows.push_back(i);
      part.customer_ids.push_back(req.customer_ids[i]);
    }
    std::vector<PushChoice> part_choices(rows.size());
    QM_RETURN_IF_ERROR(PushVersion(part, *models[first], &part_choices));
    for (size_t k = 0; k < rows.size(); ++k) (*choices)[rows[k]] = std::move(part_choices[k]);
  }
  return Status::Ok();
}

Status Engine::Impl::PushVersion(const PushRequest& req, const Model& md, std::vector<PushChoice>* choices) {
  const ChannelId channel = *ds.channels.Find(req.channel);
  const TimeMs now = req.now_ms == kNoTime ? Now() : req.now_ms;

  // Profiles: known customers only, and without marketing for holdout / control customers (a
  // control customer's would-be send is a ghost row).
  ProfileBatch pb;
  std::vector<PushChoice> ghosts;
  PushBatchRows rows;
  QM_RETURN_IF_ERROR(AddPushRows(req, channel, now, md, choices, &ghosts, &rows, &pb));
  const std::vector<PushChoice*>& out = rows.out;
  const size_t n = out.size();
  if (n == 0) return Status::Ok();
  QM_RETURN_IF_ERROR(EmbedProfiles(ds, md, now, &pb));

  // Recall and the stateless rules.
  std::vector<CandidateSet> sets;
  std::vector<std::vector<Candidate>> ranked;
  std::vector<std::map<std::string, int64_t>> drops;  // per customer: first blocking rule -> candidates
  QM_RETURN_IF_ERROR(PushRecall(md, req, channel, now, pb, rows.rs, out, &sets, &ranked, &drops));

  // Rank: every candidate of every customer in one ranker call.
  std::vector<RankRow> rank_rows;
  for (size_t r = 0; r < n; ++r) {
    for (Candidate& c : ranked[r]) rank_rows.push_back({static_cast<uint32_t>(r), &c});
  }
  const std::vector<rank::RankContext> ctx(n, rank::RankContext{channel, tz.LocalHour(now), tz.LocalWeekday(now)});
  const rank::ScoreWeights bank = ServingScoreWeights(opt.serving, md);
  rank::ScoreWeights weights = bank;
  if (req.campaign && req.campaign->w_click >= 0) weights.w_click = req.campaign->w_click;
  if (req.campaign && req.campaign->w_convert >= 0) weights.w_convert = req.campaign->w_convert;
  QM_RETURN_IF_ERROR(RankCandidates(md, ds, pb, now, ctx, weights, rank_rows));
  for (auto& list : ranked) SortByScore(&list);

  // Reserve the batch (one store write; each customer's check and count atomic; ghost rows only
  // evaluated), then choose and record the decisions.
  std::vector<const Customer*> who(n);
  for (size_t r = 0; r < n; ++r) who[r] = &pb.profiles[r].customer(ds);
  std::vector<const policy::Policy*> policies(n);
  for (size_t r = 0; r < n; ++r) policies[r] = rows.rs[r].policy;
  std::map<const policy::Policy*, policy::Policy> with_cap;  // each policy with the campaign's own cap
  if (req.campaign && req.campaign->cap_limit > 0) {
    for (const policy::Policy*& p : policies) {
      auto it = with_cap.find(p);
      if (it == with_cap.end()) {
        it = with_cap.emplace(p, p->WithCampaignCap(req.campaign->cap_limit, req.campaign->cap_window)).first;
      }
      p = &it->second;
    }
  }
  QM_ASSIGN_OR_RETURN(PushReservation res,
                      ReserveWithGhosts(policies, store.get(), ds, who, ranked, rows.ghost, channel, req, now));
  std::vector<policy::DecisionRecord> log;
  for (size_t r = 0; r < n; ++r) {
    PushChoice& choice = *out[r];
    choice.pushes_7d = res.pushes_7d[r];
    choice.pushes_30d = res.pushes_30d[r];
    choice.replayed = res.contacts[r].replayed;
    std::vector<const Candidate*> chosen;
    if (choice.replayed) {
      QM_RETURN_IF_ERROR(Replay(store.get(), ds, req, *who[r], now, sets[r], ranked[r], &choice));
      for (const ResponseItem& it : choice.items) chosen.push_back(FindRanked(ds, ranked[r], it.item_id));
    } else {
      Choose(ds, sets[r], ranked[r], res.contacts[r].decisions, now, &drops[r], &choice, &chosen);
    }
    for (ResponseItem& item : choice.items) {
      for (const std::string& arm : rows.rs[r].arms) item.reasons.push_back("experiment:" + arm);
      if (req.campaign && !req.campaign->reason.empty()) item.reasons.push_back(req.campaign->reason);
    }
    for (const Candidate* c : chosen) {
      if (c == nullptr) continue;
      choice.expected_clicks += c->pc;
      choice.expected_conversions += c->pv;
      choice.expected_value += bank.w_click * c->pc + bank.w_convert * c->pv * ds.items[c->item].value;
    }
    choice.arms = std::move(rows.rs[r].arms);
    // A replay records its sends again (the same records: stored once), so a run killed between
    // its reservation and its decision log completes the log when it is resumed.
    if (!req.dry_run) {
      const auto kind = rows.ghost[r] ? policy::DecisionKind::kGhost : policy::DecisionKind::kPushSend;
      DecisionContext dc{kind, &req.run_id, &who[r]->id, &req.channel, &md.version, &choice.arms};
      AppendDecisions(dc, choice.items, chosen, choice.send_at, &log);
    }
  }
  if (log.empty()) return Status::Ok();
  return store->AppendDecisions(log);
}

}  // namespace qm::serving
