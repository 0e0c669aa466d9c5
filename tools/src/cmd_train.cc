// `qianmian train` and `qianmian eval` (SPEC §3-4).
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "engine_config.h"
#include "json_output.h"
#include "qianmian/artifacts/manifest.h"
#include "qianmian/training/pipeline.h"

namespace qm::tools {

Command AddTrainCommand(CLI::App& root) {
  auto opts = std::make_shared<CommonOptions>();
  Command cmd;
  cmd.app = root.add_subcommand("train",
                                "Train retrieval embeddings and the ranking model on a data folder; "
                                "write a new artifact version and point CURRENT at it");
  AddCommonOptions(cmd.app, opts.get());
  cmd.run = [opts]() -> Status {
    QM_ASSIGN_OR_RETURN(EngineConfig config, LoadEngineConfig(opts->config));
    ApplyOverrides(*opts, &config);
    const training::ServedSettings served{config.policy, config.serving, "app_home"};
    QM_ASSIGN_OR_RETURN(auto result, training::Train(config.data.dir, config.data, config.artifacts_root,
                                                     config.training, config.json, &config.store, &served));
    std::printf("%s", result.eval.Format().c_str());
    std::printf("two-tower: %.0f examples/s; ranker: %.0f rows/s; total %.1f s\n",
                result.stats["two_tower.examples_per_second"], result.stats["ranker.rows_per_second"],
                result.stats["train.seconds"]);
    std::printf("new version %s (CURRENT)\n", result.version.c_str());
    return Status::Ok();
  };
  return cmd;
}

Command AddEvalCommand(CLI::App& root) {
  auto opts = std::make_shared<CommonOptions>();
  auto eval = std::make_shared<training::EvalOptions>();
  auto no_baselines = std::make_shared<bool>(false);
  Command cmd;
  cmd.app = root.add_subcommand("eval",
                                "Offline metrics of an artifact version on held-out events, beside "
                                "popularity, item-kNN, EASE and (generated data) the oracle");
  AddCommonOptions(cmd.app, opts.get());
  cmd.app->add_option("--version", eval->version, "version to evaluate (default: CURRENT)");
  cmd.app->add_flag("--no-baselines", *no_baselines, "skip the baselines");
  cmd.app->add_option("--pages", eval->pages_csv,
                      "also write every served page as CSV (customer_id,now,k,rank,item_id)");
  auto json = std::make_shared<std::string>();
  cmd.app->add_option("--json", *json, kJsonHelp);
  cmd.run = [opts, eval, no_baselines, json]() -> Status {
    QM_ASSIGN_OR_RETURN(EngineConfig config, LoadEngineConfig(opts->config));
    ApplyOverrides(*opts, &config);
    eval->baselines = !*no_baselines;
    const training::ServedSettings served{config.policy, config.serving, "app_home"};
    QM_ASSIGN_OR_RETURN(auto report, training::Evaluate(config.data.dir, config.data, config.artifacts_root,
                                                        config.training, *eval, &config.store, &served));
    if (*json != "-") std::printf("%s", report.Format().c_str());
    if (!json->empty()) {
      std::string version = eval->version;
      if (version.empty()) {
        QM_ASSIGN_OR_RETURN(version, artifacts::ReadCurrent(config.artifacts_root));
      }
      QM_RETURN_IF_ERROR(WriteJson(*json, EvalJson(version, report)));
    }
    return Status::Ok();
  };
  return cmd;
}

}  // namespace qm::tools
