#include "profile.h"

#include <chrono>

namespace qm::serving {

void AddKnownProfile(const ProfileSources& src, const Model& md, uint32_t index, TimeMs now, ProfileBatch* out) {
  Profile& p = out->profiles.emplace_back();
  p.known = true;
  p.index = index;
  src.activity->Gather(*src.ds, index, now, src.contact_window, src.clicked_horizon, md.space->history_length(),
                       &p.activity);
}

void AddProfile(const ProfileSources& src, const Model& md, const std::string& customer_id, TimeMs now,
                ProfileBatch* out) {
  if (auto found = src.ds->FindCustomer(customer_id)) {
    AddKnownProfile(src, md, *found, now, out);
    return;
  }
  Profile& p = out->profiles.emplace_back();
  p.unknown.id = customer_id;
  p.unknown.risk = 1;  // SPEC §5: a customer never seen is treated as C1
  p.unknown.risk_assessed = now;
}

Status EmbedProfiles(const Dataset& ds, const Model& md, TimeMs now, ProfileBatch* batch, int64_t* tower_us) {
  batch->encoded.Clear();
  for (const Profile& p : batch->profiles) {
    if (p.known) {
      md.space->EncodeCustomer(ds, p.index, now, p.activity.history, &batch->encoded);
    } else {
      md.space->EncodeUnknownCustomer(&batch->encoded);
    }
  }
  batch->dim = md.dim;
  batch->u.assign(batch->profiles.size() * md.dim, 0.0f);
  const auto t0 = std::chrono::steady_clock::now();
  Status st = md.towers->EncodeCustomers(batch->encoded, batch->u.data());
  if (tower_us) {
    *tower_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  }
  return st;
}

}  // namespace qm::serving
