// Module tools: the qianmian command line and the public-data importers. May depend on: every
// module.
// Importers of public benchmark data sets into SPEC §2 data folders (customers.csv, items.csv,
// events.csv and a schema.toml typing the extra customer columns), so public benchmarks run
// through the same loading, training and evaluation path as a bank's own data.
//
// Both importers read and validate the whole input before writing anything: bad input is an
// InvalidArgument naming the file and line, a missing file NotFound, and in either case `out`
// is left untouched. Files are written under temporary names and renamed into place at the end.
// The output loads with qm::LoadDataset with zero bad rows. Progress bars go to stderr.
#pragma once

#include <cstdint>
#include <string>

#include "qianmian/core/status.h"
#include "qianmian/core/types.h"

namespace qm::tools {

// What an import wrote.
struct ImportStats {
  uint64_t customers = 0;  // rows of customers.csv
  uint64_t items = 0;      // rows of items.csv
  uint64_t events = 0;     // rows of events.csv (the sum of the four below)
  uint64_t impressions = 0;
  uint64_t clicks = 0;
  uint64_t converts = 0;
  uint64_t skipped = 0;  // input records deliberately not written (ratings below min_rating)
};

struct MovieLensOptions {
  // Ratings >= min_rating become click events; lower ones are left out (counted in
  // ImportStats::skipped). 1..5. Default: 1, every rating is a click.
  int min_rating = 1;
};

// Imports MovieLens 100K from `dir` (u.user, u.item, u.data; u.genre when present, else the
// standard 19 genres) into the folder `out` (created if needed; its customers.csv, items.csv,
// events.csv and schema.toml are replaced).
//   users   -> customers `u<id>`, tier mass, no risk assessment; extra columns age (numeric),
//              gender, occupation, zip (categorical).
//   movies  -> content items `m<id>`: title converted from Latin-1 to UTF-8 (a u.item that is
//              already valid UTF-8 is kept as is), category = first genre flagged, tags = every
//              genre flagged, text = the release date as distributed ("01-Jan-1995").
//   ratings -> click events on app_home at the rating's time (seconds * 1000), sorted by time
//              (ties keep file order); events.csv has an extra `rating` column (1..5) that the
//              loader ignores but downstream tools may read (e.g. graded relevance).
// `stats` may be null.
Status ImportMovieLens(const std::string& dir, const std::string& out, const MovieLensOptions& options,
                       ImportStats* stats);

// The period the UCI Bank Marketing file covers (May 2008 - Nov 2010), in UTC epoch ms:
// [kBankMarketingStartMs, kBankMarketingEndMs) = [2008-05-01T00:00Z, 2010-12-01T00:00Z).
inline constexpr TimeMs kBankMarketingStartMs = 1209600000LL * 1000;
inline constexpr TimeMs kBankMarketingEndMs = 1291161600LL * 1000;

// Imports the UCI Bank Marketing file `file` (bank-additional-full.csv: ';'-separated, header
// row, values may be quoted) into the folder `out` (created if needed; files replaced).
//   Required columns: age, job, marital, education, default, housing, loan, campaign, pdays,
//   previous, emp.var.rate, cons.price.idx, cons.conf.idx, euribor3m, nr.employed, y.
//   Row i (1-based) -> customer `b<i>` (zero-padded to 6 digits), tier mass, no risk assessment,
//     with every column as an extra attribute except `duration` (known only after the call, so
//     a leak; dropped when present) and `y` (the label). Numeric columns must be numbers and
//     stay numeric; other columns (including ones not listed above) are copied as they are.
//   One item: `term_deposit`, kind product, category deposit, no risk level.
//   Events: one impression per row and a convert when y is 1 ("yes" is accepted too, as in
//     the original UCI file; anything else but 0/1/yes/no is an error), all on app_home (the
//     phone contact is mapped to the home-page channel). The file has no dates but is in
//     chronological order, so row i of n gets the time
//       kBankMarketingStartMs + (i - 1) * (kBankMarketingEndMs - kBankMarketingStartMs) / n
//     and its convert follows one minute later (half the row spacing when that is shorter).
// `stats` may be null.
Status ImportBankMarketing(const std::string& file, const std::string& out, ImportStats* stats);

}  // namespace qm::tools
