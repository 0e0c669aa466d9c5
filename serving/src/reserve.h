// Stage 6 of the request path, reserve: the atomic check-and-count of the contacts chosen, through
// the policy and the event store, under the request id (a home page: confirmed later by the app's
// `impression`) or the push run id (the send counts; a re-run replays). Private to serving.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "candidates.h"
#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"
#include "qianmian/policy/event_store.h"
#include "qianmian/policy/policy.h"
#include "qianmian/serving/rerank.h"

namespace qm::serving {

struct PageReservation {
  std::vector<size_t> served;  // positions into the ranked list, page order
  bool replayed = false;       // the request id had reserved before: its earlier result
};

// Reserves a page: its positions in order, then up to `count` unused candidates standing in for
// items a cap turns away, taking at most `count`. The first rule that turns an item away is
// counted in (*dropped)["reserve.<rule>"].
Result<PageReservation> ReservePage(const policy::Policy& policy, policy::EventStore* store, const Dataset& ds,
                                    const Customer& customer, const std::vector<Candidate>& ranked, const Page& page,
                                    ChannelId channel, TimeMs now, const std::string& request_id, int count,
                                    std::map<std::string, int64_t>* dropped);

// A push batch's reservation: per customer the decisions over its ranked candidates, and the
// push contacts on the channel (other runs) in the 7 and 30 days before now.
struct PushReservation {
  std::vector<policy::Contacts> contacts;
  std::vector<int> pushes_7d, pushes_30d;
};

// Reserves up to `per_customer` contacts per customer (customers[k] with ranked[k], served order)
// under `run_id` in one store write (each customer's check and count atomic); with `dry_run` only
// evaluates the rules against each customer's state and marks the first allowed ones taken.
Result<PushReservation> ReservePushes(const policy::Policy& policy, policy::EventStore* store, const Dataset& ds,
                                      const std::vector<const Customer*>& customers,
                                      const std::vector<std::vector<Candidate>>& ranked, ChannelId channel,
                                      const std::string& channel_name, TimeMs now, const std::string& run_id,
                                      int per_customer, bool dry_run, std::string_view campaign = {});

// The sends a run already recorded for a customer (a replay): the store's push_sent records of
// `run_id` on the channel.
Result<std::vector<policy::ContactRecord>> RecordedSends(policy::EventStore* store, const std::string& customer_id,
                                                         const std::string& run_id, const std::string& channel_name);

}  // namespace qm::serving
