// The engine's experiments (issue 17): each arm compiled once when the engine opens or the
// definition is reloaded (its policy, page options, controlled channels and model version), the
// atomic swap of a reload, and a request's settings from the customer's arms.
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

// The model of an arm's model_version: `current` when it is that version, else one `held` (the
// served definition's arms, or arms compiled before this one) already holds, else loaded and
// verified as the current version is.
Result<std::shared_ptr<Model>> PinnedModel(const EngineOptions& opt, const Dataset& ds,
                                           const std::vector<uint8_t>& retired, const experiment::ArmConfig& ac,
                                           const std::shared_ptr<Model>& current,
                                           const std::vector<const ExperimentRuntime*>& held) {
  if (current->version == ac.model_version) return current;
  for (const ExperimentRuntime* rt : held) {
    for (const auto& layer : rt->arms) {
      for (const ArmRuntime& arm : layer) {
        if (arm.model && arm.model->version == ac.model_version) return arm.model;
      }
    }
  }
  const std::string key = "'" + ac.key + ".model_version'";
  auto m = artifacts::ReadManifest(opt.artifacts_root, ac.model_version);
  if (!m.ok()) {
    return Status::InvalidArgument(key + ": no version '" + ac.model_version + "' in " + opt.artifacts_root + " (" +
                                   m.status().message() + ")");
  }
  auto loaded = LoadModel(opt.artifacts_root, ac.model_version, ds, retired, opt.serving);
  if (!loaded.ok()) {
    return Status::InvalidArgument(key + ": version '" + ac.model_version + "' refused: " + loaded.status().message());
  }
  return std::move(loaded).value();
}

}  // namespace

void PageOptionsFor(const ServingConfig& sc, PageOptions* home, PageOptions* other) {
  home->slot_kinds = SlotKinds(sc.slots);
  home->max_per_category = other->max_per_category = sc.max_per_category;
  home->explore_share = other->explore_share = sc.explore_share;
}

Status Engine::Impl::BuildExperiments(const Experiments& ex, const std::shared_ptr<Model>& current,
                                      ExperimentRuntime* out) const {
  out->def = ex;
  out->assigner = experiment::Assigner(ex.config);
  out->arms.clear();
  for (size_t l = 0; l < ex.config.layers.size(); ++l) {
    const experiment::LayerConfig& layer = ex.config.layers[l];
    std::vector<ArmRuntime>& arms = out->arms.emplace_back(layer.arms.size());
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
      if (!ac.model_version.empty()) {
        QM_ASSIGN_OR_RETURN(rt.model, PinnedModel(opt, ds, retired, ac, current, {&exps, out}));
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

void Engine::Impl::Swap(std::shared_ptr<Model> current, ExperimentRuntime* fresh) {
  std::unique_lock<WriterFirstMutex> lock(mu);
  if (fresh) std::swap(exps, *fresh);
  if (!current) return;
  if (!fresh) {
    for (auto& layer : exps.arms) {
      for (ArmRuntime& arm : layer) {
        if (arm.model && arm.model->version == current->version) arm.model = current;
      }
    }
  }
  ds.portraits = current->portraits;  // audiences read the served version's portraits
  std::swap(model, current);          // the old model is freed by the caller's `current`, outside the lock
}

Result<std::string> Engine::Impl::ReloadVersionAndExperiments(bool load_version, const std::string& version,
                                                              const Experiments* ex) {
  std::lock_guard<std::mutex> writer(writer_mu);
  // Writers are held off by writer_mu, so the catalogue, the model and the definition are stable
  // while versions load; requests keep running on the old ones until the swap.
  std::shared_ptr<Model> loaded;
  if (load_version) {
    std::string v = version;
    if (v.empty()) {
      QM_ASSIGN_OR_RETURN(v, artifacts::ReadCurrent(opt.artifacts_root));
    }
    auto m = LoadModel(opt.artifacts_root, v, ds, retired, opt.serving);
    if (!m.ok()) return m.status().Annotate("version " + v + " refused; still serving " + model->version);
    loaded = std::move(m).value();
  }
  ExperimentRuntime fresh;
  if (ex) {
    Status st = BuildExperiments(*ex, loaded ? loaded : model, &fresh);
    if (!st.ok()) {
      return st.Annotate("[experiments] refused; still serving the previous definition and version " + model->version);
    }
  }
  const std::string serving = loaded ? loaded->version : model->version;
  Swap(std::move(loaded), ex ? &fresh : nullptr);
  return serving;  // the old model and definition are freed here, after the swap, outside the lock
}

std::vector<Model*> Engine::Impl::DistinctModels() const {
  std::vector<Model*> out{model.get()};
  for (const auto& layer : exps.arms) {
    for (const ArmRuntime& arm : layer) {
      if (arm.model && std::find(out.begin(), out.end(), arm.model.get()) == out.end()) out.push_back(arm.model.get());
    }
  }
  return out;
}

RequestSettings Engine::Impl::SettingsFor(const std::string& customer_id, ChannelId channel) const {
  RequestSettings rs;
  rs.serving = &opt.serving;
  rs.policy = policy.get();
  rs.home_page = &home_page;
  rs.other_page = &other_page;
  rs.model = model;
  if (exps.def.empty()) return rs;
  thread_local experiment::Assignment a;
  exps.assigner.Assign(customer_id, &a);
  if (a.holdout) {
    rs.withheld_by = kWithheldHoldout;
    rs.arms.push_back("holdout");
    return rs;
  }
  for (size_t l = 0; l < a.arms.size(); ++l) {
    const size_t arm = static_cast<size_t>(a.arms[l]);
    const ArmRuntime& rt = exps.arms[l][arm];
    rs.arms.push_back(rt.label);
    if (const auto& sc = exps.def.arms[l][arm].serving) {
      rs.serving = &*sc;
      rs.home_page = &rt.home_page;
      rs.other_page = &rt.other_page;
    }
    if (rt.policy) rs.policy = rt.policy.get();
    if (rt.model) rs.model = rt.model;
    if (rt.controls[channel]) rs.withheld_by = kWithheldControl;
  }
  return rs;
}

std::shared_ptr<Model> Engine::Impl::ModelFor(const std::string& customer_id) const {
  std::shared_ptr<Model> m = model;
  if (exps.def.empty()) return m;
  thread_local experiment::Assignment a;
  exps.assigner.Assign(customer_id, &a);
  for (size_t l = 0; l < a.arms.size(); ++l) {
    if (a.arms[l] == experiment::kNoArm) continue;
    if (const auto& pinned = exps.arms[l][static_cast<size_t>(a.arms[l])].model) m = pinned;
  }
  return m;
}

}  // namespace qm::serving
