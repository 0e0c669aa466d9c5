#include "reserve.h"

namespace qm::serving {

Result<PageReservation> ReservePage(const policy::Policy& policy, policy::EventStore* store, const Dataset& ds,
                                    const Customer& customer, const std::vector<Candidate>& ranked, const Page& page,
                                    ChannelId channel, TimeMs now, const std::string& request_id, int count,
                                    std::map<std::string, int64_t>* dropped) {
  PageReservation out;
  std::vector<size_t> order = page.positions;
  for (size_t k = 0; k < ranked.size() && order.size() < page.positions.size() + static_cast<size_t>(count); ++k) {
    if (!page.used[k]) order.push_back(k);
  }
  std::vector<policy::Candidate> pc;
  pc.reserve(order.size());
  for (size_t k : order) pc.push_back(policy::MakeCandidate(ds, ranked[k].item));
  QM_ASSIGN_OR_RETURN(policy::Contacts contacts, policy.Reserve(store, customer, pc, channel, now, request_id, count));
  for (size_t j = 0; j < order.size(); ++j) {
    const policy::Decision& d = contacts.decisions[j];
    if (d.taken)
      out.served.push_back(order[j]);
    else if (!d.blocked_by.empty())
      ++(*dropped)["reserve." + d.blocked_by[0]];
  }
  out.replayed = contacts.replayed;
  return out;
}

Result<PushReservation> ReservePushes(const policy::Policy& policy, policy::EventStore* store, const Dataset& ds,
                                      const std::vector<const Customer*>& customers,
                                      const std::vector<std::vector<Candidate>>& ranked, ChannelId channel,
                                      const std::string& channel_name, TimeMs now, const std::string& run_id,
                                      int per_customer, bool dry_run, std::string_view campaign) {
  const size_t n = customers.size();
  PushReservation out;
  out.pushes_7d.assign(n, 0);
  out.pushes_30d.assign(n, 0);
  out.contacts.resize(n);
  std::vector<std::vector<policy::Candidate>> pcands(n);
  for (size_t r = 0; r < n; ++r) {
    QM_ASSIGN_OR_RETURN(policy::CustomerState state, store->State(customers[r]->id));
    policy::CountPushes(state, channel_name, run_id, now, &out.pushes_7d[r], &out.pushes_30d[r]);
    for (const Candidate& c : ranked[r]) {
      pcands[r].push_back(policy::MakeCandidate(ds, c.item));
      if (!campaign.empty()) pcands[r].back().campaign = campaign;
    }
    if (dry_run) {
      auto& decisions = out.contacts[r].decisions;
      decisions = policy.Evaluate(*customers[r], pcands[r], channel, now, state);
      int left = per_customer;
      for (auto& d : decisions) {
        d.taken = left > 0 && d.blocked_by.empty();
        left -= d.taken;
      }
    }
  }
  if (!dry_run) {
    QM_ASSIGN_OR_RETURN(out.contacts, policy.ReserveMany(store, customers, pcands, channel, now, run_id, per_customer));
  }
  return out;
}

Result<std::vector<policy::ContactRecord>> RecordedSends(policy::EventStore* store, const std::string& customer_id,
                                                         const std::string& run_id, const std::string& channel_name) {
  QM_ASSIGN_OR_RETURN(policy::CustomerState state, store->State(customer_id));
  std::vector<policy::ContactRecord> sends;
  for (policy::ContactRecord& rec : state.records) {
    if (rec.request_id != run_id || rec.channel != channel_name || rec.type != EventType::kPushSent) continue;
    sends.push_back(std::move(rec));
  }
  return sends;
}

}  // namespace qm::serving
