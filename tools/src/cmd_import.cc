// `qianmian import movielens DIR --out DIR` and `qianmian import bank-marketing FILE --out DIR`:
// public benchmark data -> SPEC §2 data folders (see qianmian/tools/importers.h).
// `qianmian import ranker FILE.pt --artifacts ROOT [--version V]`: a TorchScript ranker -> a new
// artifact version (training::ImportRanker).
#include <cinttypes>
#include <cstdio>
#include <memory>

#include "commands.h"
#include "engine_config.h"
#include "qianmian/tools/importers.h"
#include "qianmian/training/import_ranker.h"

namespace qm::tools {

namespace {

struct ImportOptions {
  std::string movielens_dir;
  std::string bank_file;
  std::string out;
  MovieLensOptions movielens;
  std::string ranker_file, base_version;
  CommonOptions common;  // ranker: --artifacts, --config
};

Status RunImportRanker(const ImportOptions& o) {
  QM_ASSIGN_OR_RETURN(EngineConfig config, LoadEngineConfig(o.common.config));
  ApplyOverrides(o.common, &config);
  QM_ASSIGN_OR_RETURN(training::ImportRankerResult r,
                      training::ImportRanker(config.artifacts_root, o.base_version, o.ranker_file));
  std::printf("new version %s (CURRENT): version %s with the TorchScript ranker %s (sha256 %s)\n", r.version.c_str(),
              r.base_version.c_str(), o.ranker_file.c_str(), r.sha256.c_str());
  return Status::Ok();
}

void PrintStats(const std::string& out, const ImportStats& s) {
  std::printf("wrote %s: customers %" PRIu64 ", items %" PRIu64 ", events %" PRIu64 " (impression %" PRIu64
              ", click %" PRIu64 ", convert %" PRIu64 ")",
              out.c_str(), s.customers, s.items, s.events, s.impressions, s.clicks, s.converts);
  if (s.skipped > 0) std::printf("; %" PRIu64 " ratings below --min-rating left out", s.skipped);
  std::printf("\n");
}

}  // namespace

Command AddImportCommand(CLI::App& root) {
  auto opts = std::make_shared<ImportOptions>();
  Command cmd;
  cmd.app = root.add_subcommand("import", "Turn a public benchmark data set into a data folder (SPEC §2)");
  cmd.app->require_subcommand(1);

  CLI::App* ml = cmd.app->add_subcommand("movielens", "MovieLens 100K folder -> data folder");
  ml->footer(
      "users -> customers u<id> (tier mass; age, gender, occupation, zip);\n"
      "movies -> content items m<id> (Latin-1 titles converted to UTF-8, category = first genre,\n"
      "  tags = all genres, text = release date);\n"
      "ratings -> click events on app_home at the rating time; events.csv keeps a `rating` column.");
  ml->add_option("DIR", opts->movielens_dir, "the ml-100k folder")->required();
  ml->add_option("--out", opts->out, "output data folder (created; its files are replaced)")->required();
  ml->add_option("--min-rating", opts->movielens.min_rating,
                 "ratings >= N become clicks, lower ones are left out (default 1: every rating)")
      ->check(CLI::Range(1, 5));

  CLI::App* bank = cmd.app->add_subcommand("bank-marketing", "UCI Bank Marketing file -> data folder");
  bank->footer(
      "each row (a phone contact) -> customer b<row> (tier mass; every attribute except duration,\n"
      "  which is only known after the call), an impression of the product term_deposit and,\n"
      "  when y = 1, a convert a minute later; all on app_home (phone contacts are mapped to it).\n"
      "The file has no dates: row times are spread evenly over 2008-05-01 .. 2010-12-01 (UTC)\n"
      "in file order, which is chronological.");
  bank->add_option("FILE", opts->bank_file, "bank-additional-full.csv")->required();
  bank->add_option("--out", opts->out, "output data folder (created; its files are replaced)")->required();

  CLI::App* ranker = cmd.app->add_subcommand("ranker", "TorchScript ranker -> a new artifact version");
  ranker->footer(
      "The module must follow the version's rank_inputs.json contract, forward(cat: Long[n, C],\n"
      "  dense: Float[n, K], bag: Long[n, B]) -> Float[n, 2] in [0, 1], and accept each column's\n"
      "  largest id; it is checked before anything is written. The new version holds the base\n"
      "  version's other files and this module as ranker.pt, hashed in its manifest; CURRENT moves\n"
      "  to it. Rows to train on: `qianmian export rank-rows`; a template: python/examples/torch_ranker.py.");
  ranker->add_option("FILE", opts->ranker_file, "the TorchScript module (torch.jit.save)")->required();
  ranker->add_option("--version", opts->base_version, "the base version (default: CURRENT)");
  ranker->add_option("--artifacts", opts->common.artifacts, "artifact root (overrides [artifacts] root)");
  ranker->add_option("--config", opts->common.config, "TOML configuration file");

  cmd.run = [opts, ml, bank, ranker]() -> Status {
    if (ranker->parsed()) return RunImportRanker(*opts);
    ImportStats stats;
    if (ml->parsed()) {
      QM_RETURN_IF_ERROR(ImportMovieLens(opts->movielens_dir, opts->out, opts->movielens, &stats));
    } else if (bank->parsed()) {
      QM_RETURN_IF_ERROR(ImportBankMarketing(opts->bank_file, opts->out, &stats));
    } else {
      return Status::InvalidArgument("name a data set (movielens, bank-marketing) or ranker");
    }
    PrintStats(opts->out, stats);
    return Status::Ok();
  };
  return cmd;
}

}  // namespace qm::tools
