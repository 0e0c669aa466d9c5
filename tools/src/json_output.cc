#include "json_output.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

namespace qm::tools {

using nlohmann::json;

Status WriteJson(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::fputs((text + "\n").c_str(), stdout);
    std::fflush(stdout);
    return std::ferror(stdout) ? Status::IoError("--json: cannot write to stdout") : Status::Ok();
  }
  std::ofstream out(path, std::ios::trunc);
  out << text << "\n";
  out.close();
  if (!out) return Status::IoError("--json: cannot write '" + path + "'");
  return Status::Ok();
}

namespace {

json FileJson(const FileReport& f) {
  json errors = json::array();
  for (const auto& e : f.errors) errors.push_back({{"line", e.line}, {"reason", e.reason}});
  return {{"path", f.path}, {"rows", f.rows}, {"bad_rows", f.bad_rows}, {"errors", errors}, {"notes", f.notes}};
}

json DatasetJson(const Dataset& d) {
  json tiers = json::object();
  for (int t = 0; t < kNumTiers; ++t) tiers[TierName(static_cast<Tier>(t))] = 0;
  json risk = {{"unassessed", 0}, {"C1", 0}, {"C2", 0}, {"C3", 0}, {"C4", 0}, {"C5", 0}};
  for (const auto& c : d.customers) {
    tiers[TierName(c.tier)] = tiers[TierName(c.tier)].get<int64_t>() + 1;
    const std::string r = c.risk == 0 ? "unassessed" : "C" + std::to_string(c.risk);
    risk[r] = risk[r].get<int64_t>() + 1;
  }
  size_t products = 0;
  for (const auto& it : d.items) products += it.kind == ItemKind::kProduct;
  json by_type = json::object();
  for (int t = 0; t < kNumEventTypes; ++t) by_type[EventTypeName(static_cast<EventType>(t))] = 0;
  for (auto t : d.events.type) {
    auto& n = by_type[EventTypeName(t)];
    n = n.get<int64_t>() + 1;
  }
  json features = json::array();
  for (const auto& f : d.features) {
    features.push_back(
        {{"name", f.name}, {"kind", f.kind == FeatureColumn::Kind::kNumeric ? "numeric" : "categorical"}});
  }
  return {{"customers", {{"count", d.customers.size()}, {"tiers", tiers}, {"risk", risk}}},
          {"items",
           {{"count", d.items.size()},
            {"products", products},
            {"content", d.items.size() - products},
            {"categories", d.categories.size() - 1},
            {"campaigns", d.campaigns.size() - 1}}},
          {"features", features},
          {"events", {{"count", d.events.size()}, {"by_type", by_type}}}};
}

}  // namespace

std::string InspectJson(const LoadReport& report, const Dataset* dataset, const Status& error) {
  json j = dataset ? DatasetJson(*dataset) : json::object();
  j["ok"] = error.ok();
  if (!error.ok()) j["error"] = error.message();
  j["files"] = {{"customers", FileJson(report.customers)},
                {"items", FileJson(report.items)},
                {"events", FileJson(report.events)}};
  return j.dump(2);
}

std::string EvalJson(const std::string& version, const training::EvalReport& report) {
  json metrics = json::object();
  for (const auto& [k, v] : report.metrics) metrics[k] = v;
  return json{{"version", version}, {"note", report.note}, {"customers", report.customers}, {"metrics", metrics}}.dump(
      2);
}

std::string PushSummaryJson(const push::PushSummary& s) { return s.Json(); }

}  // namespace qm::tools
