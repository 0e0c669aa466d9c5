// qianmian::synth: the synthetic bank (see bank.h; depends on core and metrics only).
//
// generate.h: `qianmian generate`, a synthetic bank (SPEC §2 files) drawn from a hidden
// ground-truth model, with the truth and an oracle written next to it so later stages can be
// scored against it. Built on bank.h and simulator.h: world -> days -> oracle -> writers.
//
// Output folder:
//   customers.csv, items.csv, events.csv   SPEC §2; events sorted by ts (epoch ms).
//                                          holdings in customers.csv are those at the start of
//                                          the simulated period (conversions are in events.csv).
//   truth/truth.json                       every parameter of the true model and of the logging
//                                          policy, and how to read the binary files below
//   truth/customer_latent.f32              customers x dim float32, row-major, little endian
//   truth/item_latent.f32                  items x dim float32 (items in items.csv order)
//   truth/item_bias.f32                    items float32
//   truth/item_popularity.f32              items float32 (the logging policy's popularity)
//   truth/customer_activity.f32            customers x 2 float32 (app sessions/day, pushes/day)
//   truth/oracle.json                      the held-out metric, oracle and popularity Recall@K
//
// The held-out metric (the `eval` command computes exactly this; its one definition is
// qianmian/metrics/held_out.h: HoldoutStart, BuildEvalTargets, RecallAtK):
//   holdout_start = end - max(1, days / 5) days; the held-out period is [holdout_start, end).
//   A positive is a click, convert or push_open event. For each customer with at least one
//   positive in the held-out period on an item they had no positive on before holdout_start,
//   targets = the distinct such items. The ranking covers all items except those the customer
//   had a positive on before holdout_start. Recall@K = |top-K ∩ targets| / |targets|, averaged
//   (unweighted) over those customers. K = 10, 20, 50.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qianmian/core/status.h"
#include "qianmian/core/types.h"
#include "qianmian/synth/bank.h"

namespace qm::synth {

// The bank's options (customers, products, contents, days, seed, end, threads), plus where and
// how it is written. The whole output is a function of the options but threads.
struct GenerateOptions : BankOptions {
  std::string out_dir;            // created if missing; existing files are overwritten
  int64_t oracle_sample = 20000;  // customers the oracle is computed on (seeded sample), >= 1
};

// Recall@10/20/50 of one ranking method on the held-out metric.
struct RecallAtKs {
  double at10 = 0, at20 = 0, at50 = 0;
};

struct GenerateSummary {
  uint64_t customers = 0, products = 0, contents = 0, service_items = 0;
  uint64_t events = 0;
  uint64_t events_by_type[kNumEventTypes] = {0};  // indexed by EventType
  uint64_t product_clicks = 0;                    // clicks on products (conversions follow only these)
  double ctr = 0;                                 // app_home clicks / impressions
  double push_open_rate = 0;                      // push_open / push_sent
  TimeMs start = 0, holdout_start = 0, end = 0;
  uint64_t eligible_customers = 0;   // customers with at least one held-out target
  uint64_t evaluated_customers = 0;  // the oracle's sample of them
  RecallAtKs oracle, popularity;
  RecallAtKs attribute_oracle;  // the oracle knowing customers only by their attributes
  RecallAtKs history_oracle;    // ... by their attributes and their own responses (MAP)
  double seconds = 0;           // wall time
};

// InvalidArgument with a one-line reason when an option is out of range or out_dir is empty.
[[nodiscard]] Status ValidateGenerateOptions(const GenerateOptions& options);

// Writes the synthetic bank into options.out_dir (see the file comment). Shows progress bars
// on stderr (QM_PROGRESS=0 silences them). IoError when the folder cannot be written.
[[nodiscard]] Result<GenerateSummary> GenerateBank(const GenerateOptions& options);

// Human-readable multi-line summary (customers, items, events by type, CTR, Recall@K).
std::string FormatGenerateSummary(const GenerateSummary& summary);

}  // namespace qm::synth
