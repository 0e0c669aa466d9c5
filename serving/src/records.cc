#include "records.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "qianmian/core/csv.h"

namespace qm::serving {

namespace {

std::string_view Get(const Record& r, const char* key) {
  auto it = r.find(key);
  return it == r.end() ? std::string_view() : std::string_view(it->second);
}

std::vector<uint32_t> InternList(std::string_view cell, Dictionary* dict) {
  std::vector<uint32_t> out;
  for (auto p : SplitList(cell)) out.push_back(dict->Intern(p));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Status Channels(std::string_view cell, const ChannelRegistry& reg, const char* field, ChannelMask* out) {
  *out = 0;
  for (auto p : SplitList(cell)) {
    auto id = reg.Find(p);
    if (!id) return Status::InvalidArgument(std::string(field) + ": unknown channel '" + std::string(p) + "'");
    *out |= ChannelMask{1} << *id;
  }
  return Status::Ok();
}

bool ParseFloat(std::string_view s, float* out) {
  std::string tmp(Trim(s));
  if (tmp.empty()) return false;
  char* end = nullptr;
  double v = std::strtod(tmp.c_str(), &end);
  if (end != tmp.c_str() + tmp.size() || !std::isfinite(v)) return false;
  *out = static_cast<float>(v);
  return true;
}

}  // namespace

Status ParseItemRecord(const Record& r, const TimeZone& tz, Dataset* ds, Item* out) {
  Item it;
  it.id = std::string(Trim(Get(r, "item_id")));
  if (it.id.empty()) return Status::InvalidArgument("item_id is required");
  const std::string where = "item " + it.id + ": ";
  auto kind = ParseItemKind(Get(r, "kind"));
  if (!kind) return Status::InvalidArgument(where + "kind must be product or content");
  it.kind = *kind;
  it.title = std::string(Get(r, "title"));
  it.category = ds->categories.Intern(Get(r, "category"));
  it.tags = InternList(Get(r, "tags"), &ds->item_tags);
  it.text = std::string(Get(r, "text"));
  auto risk = ParseRisk(Get(r, "risk_level"), 'R');
  if (!risk) return Status::InvalidArgument(where + "bad risk_level (R1..R5)");
  if (*risk != kNoRisk && it.kind == ItemKind::kContent)
    return Status::InvalidArgument(where + "risk_level on a content item");
  it.risk = *risk;
  for (auto t : SplitList(Get(r, "tiers"))) {
    auto tier = ParseTier(t);
    if (!tier) return Status::InvalidArgument(where + "bad tier '" + std::string(t) + "' in tiers");
    it.tiers |= static_cast<uint8_t>(1u << static_cast<int>(*tier));
  }
  it.regions = InternList(Get(r, "regions"), &ds->regions);
  QM_RETURN_IF_ERROR(Channels(Get(r, "channels"), ds->channels, "channels", &it.channels).Annotate("item " + it.id));
  for (auto [key, field] : {std::pair{"start", &it.start}, std::pair{"end", &it.end}}) {
    auto cell = Get(r, key);
    if (cell.empty()) continue;
    auto t = ParseTime(cell, tz);
    if (!t) return Status::InvalidArgument(where + "bad " + key + " time '" + std::string(cell) + "'");
    *field = *t;
  }
  if (it.start != kNoTime && it.end != kNoTime && it.end <= it.start)
    return Status::InvalidArgument(where + "end is not after start");
  auto camp = Trim(Get(r, "campaign_id"));
  it.campaign = camp.empty() ? 0 : ds->campaigns.Intern(camp);
  for (auto [key, field] : {std::pair{"value", &it.value}, std::pair{"boost", &it.boost}}) {
    auto cell = Get(r, key);
    if (cell.empty()) continue;
    if (!ParseFloat(cell, field) || *field < 0)
      return Status::InvalidArgument(where + "bad " + key + " (a number >= 0)");
  }
  auto svc = Trim(Get(r, "service"));
  if (svc == "1" || svc == "true")
    it.service = true;
  else if (!(svc.empty() || svc == "0" || svc == "false"))
    return Status::InvalidArgument(where + "bad service (0 or 1)");
  *out = std::move(it);
  return Status::Ok();
}

Status ParseCustomerRecord(const Record& r, const TimeZone& tz, Dataset* ds, Customer* out,
                           std::vector<std::pair<size_t, std::string>>* feature_values) {
  Customer cu;
  cu.id = std::string(Trim(Get(r, "customer_id")));
  if (cu.id.empty()) return Status::InvalidArgument("customer_id is required");
  const std::string where = "customer " + cu.id + ": ";
  auto tier = Trim(Get(r, "tier"));
  if (!tier.empty()) {
    auto t = ParseTier(tier);
    if (!t) return Status::InvalidArgument(where + "bad tier (mass, affluent or private)");
    cu.tier = *t;
  }
  auto risk = ParseRisk(Get(r, "risk_level"), 'C');
  if (!risk) return Status::InvalidArgument(where + "bad risk_level (C1..C5)");
  cu.risk = *risk;
  auto assessed = Get(r, "risk_assessed");
  if (!assessed.empty()) {
    auto t = ParseTime(assessed, tz);
    if (!t) return Status::InvalidArgument(where + "bad risk_assessed time");
    cu.risk_assessed = *t;
  }
  cu.region = ds->regions.Intern(Get(r, "region"));
  cu.tags = InternList(Get(r, "tags"), &ds->labels);
  QM_RETURN_IF_ERROR(Channels(Get(r, "opt_out"), ds->channels, "opt_out", &cu.opt_out).Annotate("customer " + cu.id));
  for (auto h : SplitList(Get(r, "holdings"))) {
    if (auto idx = ds->FindItem(h)) cu.holdings.push_back(*idx);
  }
  std::sort(cu.holdings.begin(), cu.holdings.end());
  cu.holdings.erase(std::unique(cu.holdings.begin(), cu.holdings.end()), cu.holdings.end());
  feature_values->clear();
  for (size_t f = 0; f < ds->features.size(); ++f) {
    auto it = r.find(ds->features[f].name);
    if (it == r.end()) continue;
    if (ds->features[f].kind == FeatureColumn::Kind::kNumeric && !Trim(it->second).empty()) {
      float v;
      if (!ParseFloat(it->second, &v))
        return Status::InvalidArgument(where + ds->features[f].name + " must be a number");
    }
    feature_values->emplace_back(f, it->second);
  }
  *out = std::move(cu);
  return Status::Ok();
}

void SetCustomerFeatures(Dataset* ds, uint32_t index, const std::vector<std::pair<size_t, std::string>>& values) {
  for (auto& fc : ds->features) {
    if (fc.kind == FeatureColumn::Kind::kNumeric) {
      if (fc.numeric.size() <= index) fc.numeric.resize(index + 1, std::nanf(""));
      fc.numeric[index] = std::nanf("");
    } else {
      if (fc.categories.size() == 0) fc.categories.Intern("");
      if (fc.codes.size() <= index) fc.codes.resize(index + 1, 0);
      fc.codes[index] = 0;
    }
  }
  for (const auto& [f, cell] : values) {
    FeatureColumn& fc = ds->features[f];
    if (fc.kind == FeatureColumn::Kind::kNumeric) {
      float v;
      if (ParseFloat(cell, &v)) fc.numeric[index] = v;
    } else {
      fc.codes[index] = fc.categories.Intern(Trim(cell));
    }
  }
}

}  // namespace qm::serving
