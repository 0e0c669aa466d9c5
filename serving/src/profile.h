// Stage 1 of the request path, profile: who the customer is (a known customer of the data, or an
// unknown one treated as C1), what they did recently (tower history, contact events, content
// already clicked) and their customer-tower embedding. Batch-first: a home-page request is a
// batch of one, a push run a batch of a few hundred. Private to serving.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "activity.h"
#include "model.h"
#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"

namespace qm::serving {

struct Profile {
  bool known = false;
  uint32_t index = 0;  // dataset customer index when known
  Customer unknown;    // the customer when not known: risk C1, assessed now (SPEC §5)
  Activity activity;   // empty when not known
  const Customer& customer(const Dataset& ds) const { return known ? ds.customers[index] : unknown; }
};

// Profiles and their customer-tower embeddings, row r for profile r.
struct ProfileBatch {
  std::vector<Profile> profiles;
  features::CustomerBatch encoded;
  std::vector<float> u;  // profiles x dim
  int dim = 0;
  const float* U(size_t r) const { return u.data() + r * dim; }
};

// What the profile stage reads. Not owned.
struct ProfileSources {
  const Dataset* ds;
  const ActivityLog* activity;
  TimeMs contact_window;   // contact events look this far back
  TimeMs clicked_horizon;  // the policy's clicked horizon
};

// Appends the profile of `customer_id` at `now` to *out->profiles (not yet embedded).
void AddProfile(const ProfileSources& src, const Model& md, const std::string& customer_id, TimeMs now,
                ProfileBatch* out);
// The profile of dataset customer `index`.
void AddKnownProfile(const ProfileSources& src, const Model& md, uint32_t index, TimeMs now, ProfileBatch* out);

// Encodes every profile of *batch at `now` and runs the customer tower once for all of them;
// the tower call's time goes to *tower_us when given.
Status EmbedProfiles(const Dataset& ds, const Model& md, TimeMs now, ProfileBatch* batch, int64_t* tower_us = nullptr);

}  // namespace qm::serving
