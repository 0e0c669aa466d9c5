// `qianmian generate`: writes a synthetic bank with a planted, known truth (SPEC §3).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "qianmian/core/time.h"
#include "qianmian/synth/generate.h"

namespace qm::tools {

Command AddGenerateCommand(CLI::App& root) {
  auto opts = std::make_shared<synth::GenerateOptions>();
  auto end = std::make_shared<std::string>("2026-11-01T00:00:00+08:00");
  Command cmd;
  cmd.app = root.add_subcommand(
      "generate",
      "Write a synthetic bank (customers.csv, items.csv, events.csv) drawn from a hidden ground-truth "
      "model, with the truth and an oracle's held-out Recall@K in DIR/truth/");
  cmd.app->add_option("--out", opts->out_dir, "output folder (created if missing)")->required();
  cmd.app->add_option("--customers", opts->customers, "number of customers")->capture_default_str();
  cmd.app->add_option("--products", opts->products, "number of products")->capture_default_str();
  cmd.app->add_option("--contents", opts->contents, "number of content items (a few are service items)")
      ->capture_default_str();
  cmd.app->add_option("--days", opts->days, "length of the simulated period in days")->capture_default_str();
  cmd.app->add_option("--seed", opts->seed, "random seed; the output is a function of the options")
      ->capture_default_str();
  cmd.app
      ->add_option("--end", *end, "end of the simulated period (ISO-8601, or epoch ms; local times are Asia/Shanghai)")
      ->capture_default_str();
  cmd.app->add_option("--threads", opts->threads, "worker threads (0 = all cores); never changes the output")
      ->capture_default_str();
  cmd.app
      ->add_option("--oracle-sample", opts->oracle_sample,
                   "customers the oracle's Recall@K is computed on (a seeded sample)")
      ->capture_default_str();
  cmd.run = [opts, end]() -> Status {
    QM_ASSIGN_OR_RETURN(TimeZone tz, TimeZone::Load("Asia/Shanghai"));
    auto t = ParseTime(*end, tz);
    if (!t) return Status::InvalidArgument("--end: cannot parse time '" + *end + "'");
    opts->end = *t;
    QM_ASSIGN_OR_RETURN(synth::GenerateSummary summary, synth::GenerateBank(*opts));
    std::printf("wrote %s\n%s", opts->out_dir.c_str(), synth::FormatGenerateSummary(summary).c_str());
    return Status::Ok();
  };
  return cmd;
}

}  // namespace qm::tools
