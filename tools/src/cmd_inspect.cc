// `qianmian inspect`: loads a data folder and prints what it holds and what was rejected.
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "commands.h"
#include "engine_config.h"
#include "json_output.h"
#include "qianmian/core/dataset.h"

namespace qm::tools {

Command AddInspectCommand(CLI::App& root) {
  auto opts = std::make_shared<CommonOptions>();
  Command cmd;
  cmd.app = root.add_subcommand("inspect", "Load a data folder (SPEC §2) and print a summary");
  cmd.app->add_option("--config", opts->config, "configuration file (TOML)");
  cmd.app->add_option("--data", opts->data, "data folder (overrides [data] dir)");
  auto json = std::make_shared<std::string>();
  cmd.app->add_option("--json", *json, kJsonHelp);
  cmd.run = [opts, json]() -> Status {
    QM_ASSIGN_OR_RETURN(EngineConfig config, LoadEngineConfig(opts->config));
    ApplyOverrides(*opts, &config);
    LoadReport report;
    auto ds = LoadDataset(config.data.dir, config.data, &report);
    std::fputs(report.Format().c_str(), stderr);
    if (!json->empty())
      QM_RETURN_IF_ERROR(WriteJson(*json, InspectJson(report, ds.ok() ? &*ds : nullptr, ds.status())));
    if (!ds.ok()) return ds.status();
    if (*json == "-") return Status::Ok();
    const Dataset& d = *ds;
    int tiers[kNumTiers] = {0};
    int risk[6] = {0};
    for (const auto& c : d.customers) {
      tiers[static_cast<int>(c.tier)]++;
      risk[c.risk]++;
    }
    size_t products = 0;
    for (const auto& it : d.items) products += it.kind == ItemKind::kProduct;
    uint64_t by_type[kNumEventTypes] = {0};
    for (auto t : d.events.type) by_type[static_cast<int>(t)]++;
    std::printf("customers  %zu (mass %d, affluent %d, private %d; risk unassessed %d, C1..C5 %d/%d/%d/%d/%d)\n",
                d.customers.size(), tiers[0], tiers[1], tiers[2], risk[0], risk[1], risk[2], risk[3], risk[4], risk[5]);
    std::printf("items      %zu (%zu products, %zu content; %u categories, %u campaigns)\n", d.items.size(), products,
                d.items.size() - products, d.categories.size() - 1, d.campaigns.size() - 1);
    std::printf("features   %zu extra customer columns:", d.features.size());
    for (const auto& f : d.features) {
      std::printf(" %s(%s)", f.name.c_str(), f.kind == FeatureColumn::Kind::kNumeric ? "num" : "cat");
    }
    std::printf("\nevents     %zu:", d.events.size());
    for (int t = 0; t < kNumEventTypes; ++t) {
      std::printf(" %s %llu", EventTypeName(static_cast<EventType>(t)), static_cast<unsigned long long>(by_type[t]));
    }
    std::printf("\n");
    return Status::Ok();
  };
  return cmd;
}

}  // namespace qm::tools
