// `qianmian generate`: the whole bank written to a folder, built on the module's pieces: the
// world (Bank), the days (Simulator), the oracle and the writers.
#include "qianmian/synth/generate.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "parallel.h"
#include "qianmian/core/progress.h"
#include "qianmian/synth/simulator.h"
#include "world.h"
#include "writers.h"

namespace qm::synth {

namespace fs = std::filesystem;

Status ValidateGenerateOptions(const GenerateOptions& o) {
  if (o.out_dir.empty()) return Status::InvalidArgument("--out DIR is required");
  QM_RETURN_IF_ERROR(ValidateBankOptions(o));
  return gen::CheckOptionRange("oracle-sample", o.oracle_sample, 1, 10'000'000);
}

namespace {

// Every day of every customer, in blocks of customers (one Simulator each, on up to `threads`
// threads): one sorted run of events per block.
Result<std::vector<std::vector<Event>>> SimulateAllDays(const Bank& bank, int threads) {
  const size_t n = bank.num_customers();
  constexpr size_t kBlock = 2048;
  std::vector<std::vector<Event>> runs((n + kBlock - 1) / kBlock);
  std::vector<Status> errors(runs.size());
  Progress progress("generate: events", n, " customers");
  gen::ParallelFor(n, threads, kBlock, [&](size_t b, size_t e) {
    SimulatorOptions o;
    o.first_customer = static_cast<uint32_t>(b);
    o.end_customer = static_cast<uint32_t>(e);
    o.threads = 1;
    auto sim = Simulator::Create(bank, o);
    std::vector<Event>& run = runs[b / kBlock];
    run.reserve((e - b) * 40);
    Status st = sim.ok() ? (*sim)->NextDays((*sim)->num_days(), &run) : sim.status();
    if (!st.ok()) errors[b / kBlock] = st;
    run.shrink_to_fit();
    progress.Add(e - b);
  });
  progress.Finish();
  for (const Status& st : errors) QM_RETURN_IF_ERROR(st);
  return runs;
}

}  // namespace

Result<GenerateSummary> GenerateBank(const GenerateOptions& options) {
  auto t0 = std::chrono::steady_clock::now();
  QM_RETURN_IF_ERROR(ValidateGenerateOptions(options));
  const fs::path dir(options.out_dir), truth = fs::path(options.out_dir) / "truth";
  {
    std::error_code ec;
    fs::create_directories(truth, ec);
    if (ec) return Status::IoError("cannot create output folder '" + options.out_dir + "': " + ec.message());
    // Fail before the long phases if the folder is not writable.
    QM_RETURN_IF_ERROR(gen::WriteText(dir / ".generate_probe", "")
                           .Annotate("output folder '" + options.out_dir + "' is not writable"));
    fs::remove(dir / ".generate_probe", ec);
  }
  // world -> days -> oracle -> writers.
  QM_ASSIGN_OR_RETURN(std::unique_ptr<Bank> bank, Bank::Create(options));
  const gen::World& w = bank->world();
  QM_RETURN_IF_ERROR(gen::WriteItems(w, dir));
  QM_RETURN_IF_ERROR(gen::WriteCustomers(w, dir));
  QM_ASSIGN_OR_RETURN(std::vector<std::vector<Event>> runs, SimulateAllDays(*bank, options.threads));

  GenerateSummary sum;
  sum.customers = w.customers.size();
  sum.products = static_cast<uint64_t>(options.products);
  sum.contents = static_cast<uint64_t>(options.contents);
  sum.service_items = static_cast<uint64_t>(w.num_services);
  for (const auto& run : runs)
    for (const Event& e : run) {
      sum.events_by_type[static_cast<int>(e.type)]++;
      if (e.type == EventType::kClick && w.items[e.item].product) ++sum.product_clicks;
    }
  for (auto c : sum.events_by_type) sum.events += c;
  auto count = [&](EventType t) { return static_cast<double>(sum.events_by_type[static_cast<int>(t)]); };
  sum.ctr = count(EventType::kImpression) > 0 ? count(EventType::kClick) / count(EventType::kImpression) : 0;
  sum.push_open_rate = count(EventType::kPushSent) > 0 ? count(EventType::kPushOpen) / count(EventType::kPushSent) : 0;
  sum.start = w.start;
  sum.end = w.end;
  sum.holdout_start = w.holdout_start;

  QM_RETURN_IF_ERROR(gen::WriteEvents(w, runs, sum.events, dir));
  QM_RETURN_IF_ERROR(gen::WriteTruth(w, truth));
  const gen::OracleResult oracle = gen::ComputeOracle(w, runs, options.threads, options.oracle_sample);
  QM_RETURN_IF_ERROR(gen::WriteOracle(w, oracle, options.oracle_sample, truth));
  sum.eligible_customers = oracle.eligible;
  sum.evaluated_customers = oracle.evaluated;
  sum.oracle = oracle.oracle;
  sum.popularity = oracle.popularity;
  sum.attribute_oracle = oracle.attribute_oracle;
  sum.history_oracle = oracle.history_oracle;
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

std::string FormatGenerateSummary(const GenerateSummary& s) {
  char buf[512];
  std::string out;
  std::snprintf(buf, sizeof buf, "customers  %llu\nitems      %llu (%llu products, %llu content incl. %llu service)\n",
                (unsigned long long)s.customers, (unsigned long long)(s.products + s.contents),
                (unsigned long long)s.products, (unsigned long long)s.contents, (unsigned long long)s.service_items);
  out += buf;
  std::snprintf(buf, sizeof buf, "events     %llu:", (unsigned long long)s.events);
  out += buf;
  for (int t = 0; t < kNumEventTypes; ++t) {
    std::snprintf(buf, sizeof buf, " %s %llu", EventTypeName(static_cast<EventType>(t)),
                  (unsigned long long)s.events_by_type[t]);
    out += buf;
  }
  const double clicks = static_cast<double>(s.product_clicks);
  const double conv = static_cast<double>(s.events_by_type[static_cast<int>(EventType::kConvert)]);
  const double imp = static_cast<double>(s.events_by_type[static_cast<int>(EventType::kImpression)]);
  const double dis = static_cast<double>(s.events_by_type[static_cast<int>(EventType::kDismiss)]);
  std::snprintf(
      buf, sizeof buf,
      "\nrates      CTR %.2f%%, push open %.2f%%, dismiss %.2f%% of impressions, convert %.2f%% of product clicks\n",
      100 * s.ctr, 100 * s.push_open_rate, imp > 0 ? 100 * dis / imp : 0.0, clicks > 0 ? 100 * conv / clicks : 0.0);
  out += buf;
  std::snprintf(buf, sizeof buf,
                "holdout    from %lld (%lld days), %llu customers with targets, %llu evaluated\n"
                "recall@20  oracle %.4f, popularity %.4f (x%.1f); @10 %.4f / %.4f; @50 %.4f / %.4f\n",
                (long long)s.holdout_start, (long long)((s.end - s.holdout_start) / kMsPerDay),
                (unsigned long long)s.eligible_customers, (unsigned long long)s.evaluated_customers, s.oracle.at20,
                s.popularity.at20, s.popularity.at20 > 0 ? s.oracle.at20 / s.popularity.at20 : 0.0, s.oracle.at10,
                s.popularity.at10, s.oracle.at50, s.popularity.at50);
  out += buf;
  std::snprintf(buf, sizeof buf,
                "           attribute oracle %.4f, history oracle %.4f (customers known by attributes, and by their "
                "history); @10 %.4f / %.4f; @50 %.4f / %.4f\n",
                s.attribute_oracle.at20, s.history_oracle.at20, s.attribute_oracle.at10, s.history_oracle.at10,
                s.attribute_oracle.at50, s.history_oracle.at50);
  out += buf;
  std::snprintf(buf, sizeof buf, "took       %.1f s\n", s.seconds);
  out += buf;
  return out;
}

}  // namespace qm::synth
