#include "qianmian/experiment/experiment_config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace qm::experiment {

namespace {

constexpr double kShareTolerance = 1e-9;

std::string Fmt(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.12g", v);
  return buf;
}

void ReadControl(ConfigTable t, ArmConfig* a) {
  switch (t.TypeOf("control")) {
    case ConfigType::kAbsent:
      return;
    case ConfigType::kBool:
      t.Read("control", &a->control_all);
      return;
    case ConfigType::kArray:
      t.Read("control", &a->control_channels);
      for (const std::string& ch : a->control_channels) {
        if (ch.empty()) t.Error("control", "a channel name cannot be empty");
      }
      return;
    default:
      t.Read("control", &a->control_channels);  // marks it read; the type error names it
      t.Error("control", "must be true/false or an array of channel names");
  }
}

void ReadArm(ConfigTable t, ArmConfig* a) {
  if (!t.Has("name")) t.Error("name", "required");
  t.Read("name", &a->name);
  if (t.Has("name") && a->name.empty()) t.Error("name", "cannot be empty");
  if (!t.Has("share")) t.Error("share", "required");
  t.Read("share", &a->share);
  if (!(a->share >= 0 && a->share <= 1)) t.Error("share", "must be in [0, 1]");
  ReadControl(t, a);
  t.Read("model_version", &a->model_version);
  if (t.Has("model_version") && a->model_version.empty()) t.Error("model_version", "cannot be empty");
  if (t.Has("serving")) a->serving = t.Table("serving");
  if (t.Has("policy")) a->policy = t.Table("policy");
}

void ReadLayer(ConfigTable t, LayerConfig* l) {
  if (!t.Has("name")) t.Error("name", "required");
  t.Read("name", &l->name);
  if (t.Has("name") && l->name.empty()) t.Error("name", "cannot be empty");
  if (!t.Has("salt")) t.Error("salt", "required");
  t.Read("salt", &l->salt);
  if (t.Has("salt") && l->salt.empty()) t.Error("salt", "cannot be empty");
  if (!t.Has("arms")) {
    t.Error("arms", "required: at least one [[experiments.layers.arms]]");
    return;
  }
  std::map<std::string, size_t> names;
  std::vector<ConfigTable> arms = t.TableArray("arms");
  double sum = 0;
  for (size_t i = 0; i < arms.size(); ++i) {
    ArmConfig a;
    a.key = t.PathOf("arms") + "[" + std::to_string(i) + "]";
    ReadArm(arms[i], &a);
    if (!a.name.empty()) {
      auto [it, fresh] = names.emplace(a.name, i);
      if (!fresh)
        arms[i].Error("name", "'" + a.name + "' is also the name of " + t.PathOf("arms") + "[" +
                                  std::to_string(it->second) + "]");
    }
    sum += a.share;
    l->arms.push_back(std::move(a));
  }
  if (arms.empty()) t.Error("arms", "at least one arm is required");
  if (!arms.empty() && std::fabs(sum - 1.0) > kShareTolerance) {
    t.Error("arms", "the arms' shares sum to " + Fmt(sum) + ", not 1");
  }
}

}  // namespace

bool ArmConfig::Controls(const std::string& channel) const {
  return control_all || std::find(control_channels.begin(), control_channels.end(), channel) != control_channels.end();
}

void ReadExperimentsConfig(ConfigTable t, ExperimentsConfig* c) {
  t.Read("holdout_share", &c->holdout_share);
  if (!(c->holdout_share >= 0 && c->holdout_share <= 1)) t.Error("holdout_share", "must be in [0, 1]");
  t.Read("holdout_salt", &c->holdout_salt);
  if (c->holdout_salt.empty()) t.Error("holdout_salt", "cannot be empty");
  std::vector<ConfigTable> layers = t.TableArray("layers");
  std::map<std::string, size_t> names, salts;
  for (size_t i = 0; i < layers.size(); ++i) {
    LayerConfig l;
    ReadLayer(layers[i], &l);
    const std::string at = t.PathOf("layers") + "[";
    if (!l.name.empty()) {
      auto [it, fresh] = names.emplace(l.name, i);
      if (!fresh)
        layers[i].Error("name", "'" + l.name + "' is also the name of " + at + std::to_string(it->second) + "]");
    }
    if (!l.salt.empty()) {
      auto [it, fresh] = salts.emplace(l.salt, i);
      if (!fresh)
        layers[i].Error("salt", "'" + l.salt + "' is also the salt of " + at + std::to_string(it->second) + "]");
      if (l.salt == c->holdout_salt) layers[i].Error("salt", "'" + l.salt + "' is also " + t.PathOf("holdout_salt"));
    }
    c->layers.push_back(std::move(l));
  }
}

}  // namespace qm::experiment
