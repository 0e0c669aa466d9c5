// The engine's state and the request paths over it (Engine::Impl). Private to serving.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <string>
#include <vector>

#include "activity.h"
#include "candidates.h"
#include "model.h"
#include "profile.h"
#include "qianmian/core/time.h"
#include "qianmian/experiment/assignment.h"
#include "qianmian/serving/engine.h"
#include "qianmian/serving/rerank.h"
#include "recall_sources.h"
#include "rw_mutex.h"

namespace qm::serving {

// What a customer's experiment arms (issue 17) set for one request: the settings to use (the
// base ones without experiments) and whether marketing items are withheld on the channel.
struct RequestSettings {
  const ServingConfig* serving = nullptr;
  const policy::Policy* policy = nullptr;
  const PageOptions* home_page = nullptr;
  const PageOptions* other_page = nullptr;
  // "experiment.holdout" | "experiment.control" (the global holdout, or a control arm on this
  // channel): no marketing item; service items still go out. nullptr = nothing withheld.
  const char* withheld_by = nullptr;
  std::vector<std::string> arms;  // "holdout", or "<layer>=<arm>" for each layer
  std::shared_ptr<Model> model;   // the version serving the customer: an arm's model_version, or the current one
};

// An arm's settings compiled when the definition is opened or reloaded.
struct ArmRuntime {
  std::string label;                       // "<layer>=<arm>"
  std::unique_ptr<policy::Policy> policy;  // null = the base policy
  PageOptions home_page, other_page;       // from the arm's serving settings (when it has them)
  std::vector<uint8_t> controls;           // per channel id: marketing withheld
  // The arm's model_version, loaded and verified (one object per distinct version, shared by
  // every arm naming it and by the current version when it is the same one); null = the current.
  std::shared_ptr<Model> model;
};

// The experiment definition being served, compiled; replaced whole by a reload.
struct ExperimentRuntime {
  Experiments def;
  experiment::Assigner assigner;              // def's assignment
  std::vector<std::vector<ArmRuntime>> arms;  // [layer][arm]
};

// The re-rank options of a page on app_home (with the slot layout) and on other channels.
void PageOptionsFor(const ServingConfig& sc, PageOptions* home, PageOptions* other);

struct Engine::Impl {
  EngineOptions opt;
  TimeZone tz = TimeZone::Utc();
  std::unique_ptr<policy::Policy> policy;
  std::shared_ptr<policy::EventStore> store;
  uint64_t id_salt = 0;
  std::atomic<uint64_t> request_counter{0};
  PageOptions home_page, other_page;     // re-rank on app_home (with the slot layout) and elsewhere
  std::vector<uint8_t> reserve_channel;  // per channel id
  TimeMs data_end = kNoTime;             // [data] clock = "data_end": the time of requests without one
  TimeMs Now() const { return data_end != kNoTime ? data_end : NowMs(); }

  std::mutex writer_mu;         // serialises writers (upserts, retire, reload)
  mutable WriterFirstMutex mu;  // guards everything below: shared for requests
  Dataset ds;
  std::vector<uint8_t> retired;  // per dataset item
  std::shared_ptr<Model> model;
  ActivityLog activity;
  PopularLists popular;
  CampaignPins pins;
  ExperimentRuntime exps;  // opt.experiments (moved here at Open), or the last reloaded definition

  Status Init();
  // Compiles `ex` into *out: each arm's policy, page options, controlled channels and model
  // version. A pinned version is `current` when it is the same version, else the one the served
  // definition already holds, else loaded and verified here. Errors name the arm's key.
  // REQUIRES: writer_mu held (or the engine not yet shared).
  Status BuildExperiments(const Experiments& ex, const std::shared_ptr<Model>& current, ExperimentRuntime* out) const;
  // Swaps in `current` (null: keep the model) and *fresh (null: keep the definition; else *fresh
  // receives the old one, to be freed outside the lock). Without a fresh definition, arms pinned
  // to current's version move to it. REQUIRES: writer_mu held.
  void Swap(std::shared_ptr<Model> current, ExperimentRuntime* fresh);
  // Reload and ReloadExperiments: `version` ("" = CURRENT) when load_version, `ex` when not null.
  Result<std::string> ReloadVersionAndExperiments(bool load_version, const std::string& version, const Experiments* ex);
  // The current model and every arm's, each once (catalogue changes refresh them all).
  std::vector<Model*> DistinctModels() const;
  // The settings of `customer_id`'s request on `channel` (the base ones without experiments).
  RequestSettings SettingsFor(const std::string& customer_id, ChannelId channel) const;
  // The model serving `customer_id` (its arms' model_version, or the current one).
  std::shared_ptr<Model> ModelFor(const std::string& customer_id) const;
  Status SeedStore();
  // Customer c's recorded events that a new store is seeded with (those within their type's
  // horizon of `last`, the data's end), as the store records them, into *events (cleared first).
  void SeedEventsOf(uint32_t c, TimeMs last, std::vector<policy::StoredEvent>* events) const;
  ProfileSources Sources() const;
  // Feedback's effect in memory (popular counts, activity, holdings) for (customer index or -1,
  // event) pairs; takes the lock it needs.
  void Remember(const std::vector<std::pair<int64_t, Ev>>& mem);

  std::string NewRequestId();  // "r<salt><counter>", unique within the process
  // Recommend: one request, under the shared lock.
  Status One(const Request& req, Response* resp);
  // The record stage of a served page (nothing for a dry run or an empty page): one decision per
  // item of resp->items (allowed[served[j]] its candidate), durable in the store before the reply.
  Status RecordPage(const Request& req, TimeMs now, const std::vector<std::string>& arms,
                    const std::vector<Candidate>& allowed, const std::vector<size_t>& served, const Response* resp);
  // The recall stage of a home-page request: every source into *set.
  Status Recall(const Model& md, const ServingConfig& sc, const Profile& p, const float* u, ChannelId channel,
                std::mt19937_64* rng, CandidateSet* set, Debug* dbg, int64_t* ann_us) const;
  // The filter stage with its fallbacks (popular, then anything eligible) when fewer than `count` pass.
  // A withheld request (RequestSettings::withheld_by) keeps only service items.
  Status Filter(const RequestSettings& rs, const Profile& p, ChannelId channel, TimeMs now, int count,
                CandidateSet* set, std::vector<Candidate>* allowed, Debug* dbg) const;

  // A push batch's rows: per row its choice (a customer's, or a ghost's), its settings and
  // whether it is a ghost (a control-arm customer's would-be send: evaluated, never reserved).
  struct PushBatchRows {
    std::vector<PushChoice*> out;
    std::vector<RequestSettings> rs;
    std::vector<uint8_t> ghost;
  };
  // The rows of a push batch and their profiles (known customers; holdout / control customers
  // without service items are skipped in *choices; a control customer of a run that is not a dry
  // run also gets a ghost row whose choice goes to *ghosts).
  Status AddPushRows(const PushRequest& req, ChannelId channel, TimeMs now, const Model& md,
                     std::vector<PushChoice>* choices, std::vector<PushChoice>* ghosts, PushBatchRows* rows,
                     ProfileBatch* pb) const;
  // Push: one batch, under the shared lock; customers served by different versions (arms' model
  // versions) go through PushVersion one version at a time.
  Status PushBatch(const PushRequest& req, std::vector<PushChoice>* choices);
  // A push batch whose customers are all served by `md`.
  Status PushVersion(const PushRequest& req, const Model& md, std::vector<PushChoice>* choices);
  // The recall and static filter stages of a push batch: per profile its candidates (kept ones in
  // (*kept)[r]) and the first blocking rule of each dropped one.
  // rs[r]: the settings of profile r (its policy; a withheld customer keeps only service items).
  Status PushRecall(const Model& md, const PushRequest& req, ChannelId channel, TimeMs now, const ProfileBatch& pb,
                    const std::vector<RequestSettings>& rs, const std::vector<PushChoice*>& out,
                    std::vector<CandidateSet>* sets, std::vector<std::vector<Candidate>>* kept,
                    std::vector<std::map<std::string, int64_t>>* drops) const;
};

}  // namespace qm::serving
