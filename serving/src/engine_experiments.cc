// The engine's experiments (issue 17): each arm compiled once when the engine opens (its policy,
// page options and controlled channels), and a request's settings from the customer's arms.
#include <algorithm>

#include "engine_impl.h"
#include "qianmian/artifacts/manifest.h"

namespace qm::serving {

namespace {

constexpr const char* kWithheldHoldout = "experiment.holdout";
constexpr const char* kWithheldControl = "experiment.control";

// An arm's policy may not need contact state the base policy lets the store compact away: the
// store keeps one state per customer, with the base policy's horizons.
Status CheckStateHorizons(const policy::StateOptions& base, const policy::StateOptions& arm, const std::string& key) {
  if (arm.keep_contacts > base.keep_contacts || arm.keep_clicks > base.keep_clicks ||
      arm.keep_dismissals > base.keep_dismissals) {
    return Status::InvalidArgument("'" + key +
                                   "': a window longer than every window of [policy] (the event store keeps "
                                   "contacts only as long as [policy] needs them)");
  }
  if (arm.count_service != base.count_service) {
    return Status::InvalidArgument("'" + key + ".count_service_contacts': must equal [policy]'s");
  }
  return Status::Ok();
}

}  // namespace

void PageOptionsFor(const ServingConfig& sc, PageOptions* home, PageOptions* other) {
  home->slot_kinds = SlotKinds(sc.slots);
  home->max_per_category = other->max_per_category = sc.max_per_category;
  home->explore_share = other->explore_share = sc.explore_share;
}

Status Engine::Impl::InitExperiments() {
  const Experiments& ex = opt.experiments;
  assigner = experiment::Assigner(ex.config);
  arm_runtime.clear();
  for (size_t l = 0; l < ex.config.layers.size(); ++l) {
    const experiment::LayerConfig& layer = ex.config.layers[l];
    std::vector<ArmRuntime>& arms = arm_runtime.emplace_back(layer.arms.size());
    for (size_t a = 0; a < layer.arms.size(); ++a) {
      const experiment::ArmConfig& ac = layer.arms[a];
      ArmRuntime& rt = arms[a];
      rt.label = layer.name + "=" + ac.name;
      rt.controls.assign(ds.channels.size(), ac.control_all ? 1 : 0);
      for (const std::string& ch : ac.control_channels) {
        auto id = ds.channels.Find(ch);
        if (!id) return Status::InvalidArgument("'" + ac.key + ".control': unknown channel '" + ch + "'");
        rt.controls[*id] = 1;
      }
      if (!ac.model_version.empty()) {  // validated only: every arm is served the current version
        auto m = artifacts::ReadManifest(opt.artifacts_root, ac.model_version);
        if (!m.ok()) {
          return Status::InvalidArgument("'" + ac.key + ".model_version': no version '" + ac.model_version + "' in " +
                                         opt.artifacts_root + " (" + m.status().message() + ")");
        }
      }
      const ArmSettings& as = ex.arms[l][a];
      if (as.serving) PageOptionsFor(*as.serving, &rt.home_page, &rt.other_page);
      if (as.policy) {
        auto p = policy::Policy::Create(*as.policy, ds.channels, tz);
        if (!p.ok()) return p.status().Annotate("'" + ac.key + ".policy'");
        rt.policy = std::make_unique<policy::Policy>(std::move(p).value());
        QM_RETURN_IF_ERROR(CheckStateHorizons(policy->state_options(), rt.policy->state_options(), ac.key + ".policy"));
      }
    }
  }
  return Status::Ok();
}

RequestSettings Engine::Impl::SettingsFor(const std::string& customer_id, ChannelId channel) const {
  RequestSettings rs;
  rs.serving = &opt.serving;
  rs.policy = policy.get();
  rs.home_page = &home_page;
  rs.other_page = &other_page;
  if (opt.experiments.empty()) return rs;
  thread_local experiment::Assignment a;
  assigner.Assign(customer_id, &a);
  if (a.holdout) {
    rs.withheld_by = kWithheldHoldout;
    rs.arms.push_back("holdout");
    return rs;
  }
  for (size_t l = 0; l < a.arms.size(); ++l) {
    const size_t arm = static_cast<size_t>(a.arms[l]);
    const ArmRuntime& rt = arm_runtime[l][arm];
    rs.arms.push_back(rt.label);
    if (const auto& sc = opt.experiments.arms[l][arm].serving) {
      rs.serving = &*sc;
      rs.home_page = &rt.home_page;
      rs.other_page = &rt.other_page;
    }
    if (rt.policy) rs.policy = rt.policy.get();
    if (rt.controls[channel]) rs.withheld_by = kWithheldControl;
  }
  return rs;
}

}  // namespace qm::serving
