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
#include "qianmian/serving/engine.h"
#include "qianmian/serving/rerank.h"
#include "recall_sources.h"
#include "rw_mutex.h"

namespace qm::serving {

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

  Status Init();
  Status SeedStore();
  ProfileSources Sources() const;

  // Recommend: one request, under the shared lock.
  Status One(const Request& req, Response* resp);
  // The recall stage of a home-page request: every source into *set.
  Status Recall(const Model& md, const Profile& p, const float* u, ChannelId channel, std::mt19937_64* rng,
                CandidateSet* set, Debug* dbg, int64_t* ann_us) const;
  // The filter stage with its fallbacks (popular, then anything eligible) when fewer than `count` pass.
  Status Filter(const Profile& p, ChannelId channel, TimeMs now, int count, CandidateSet* set,
                std::vector<Candidate>* allowed, Debug* dbg) const;

  // Push: one batch, under the shared lock.
  Status PushBatch(const PushRequest& req, std::vector<PushChoice>* choices);
  // The recall and static filter stages of a push batch: per profile its candidates (kept ones in
  // (*kept)[r]) and the first blocking rule of each dropped one.
  Status PushRecall(const Model& md, const PushRequest& req, ChannelId channel, TimeMs now, const ProfileBatch& pb,
                    const std::vector<PushChoice*>& out, std::vector<CandidateSet>* sets,
                    std::vector<std::vector<Candidate>>* kept,
                    std::vector<std::map<std::string, int64_t>>* drops) const;
};

}  // namespace qm::serving
