// `qianmian import movielens DIR --out DIR` and `qianmian import bank-marketing FILE --out DIR`:
// public benchmark data -> SPEC §2 data folders (see qianmian/tools/importers.h).
#include <cinttypes>
#include <cstdio>
#include <memory>

#include "commands.h"
#include "qianmian/tools/importers.h"

namespace qm::tools {

namespace {

struct ImportOptions {
  std::string movielens_dir;
  std::string bank_file;
  std::string out;
  MovieLensOptions movielens;
};

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

  cmd.run = [opts, ml, bank]() -> Status {
    ImportStats stats;
    if (ml->parsed()) {
      QM_RETURN_IF_ERROR(ImportMovieLens(opts->movielens_dir, opts->out, opts->movielens, &stats));
    } else if (bank->parsed()) {
      QM_RETURN_IF_ERROR(ImportBankMarketing(opts->bank_file, opts->out, &stats));
    } else {
      return Status::InvalidArgument("name a data set: movielens or bank-marketing");
    }
    PrintStats(opts->out, stats);
    return Status::Ok();
  };
  return cmd;
}

}  // namespace qm::tools
