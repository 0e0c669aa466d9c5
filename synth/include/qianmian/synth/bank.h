// qianmian::synth: the synthetic bank. A world of customers and items with hidden tastes (the
// true model), the bank's old logging policy that decided what each customer was shown, the true
// response to any shown item, an oracle on the held-out metric, and the writers of a SPEC §2
// folder with its truth. It is what the offline stages are scored against today and what a
// closed-loop simulator drives tomorrow. Depends on core and metrics only (Eigen and threads
// stay inside); nothing else of qianmian.
//
// bank.h: the world, built from options. simulator.h: the logging policy and the true response,
// day by day. generate.h: the whole bank written to a folder (`qianmian generate`).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "qianmian/core/config.h"
#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"
#include "qianmian/core/types.h"

namespace qm::synth {

namespace gen {
struct World;  // src/world.h
}  // namespace gen

// 2026-11-01T00:00:00+08:00, the default last instant of the simulated period.
inline constexpr TimeMs kDefaultGenerateEnd = 1793462400000;

// What a bank is drawn from. The bank is a function of these options, never of `threads`.
struct BankOptions {
  int64_t customers = 20000;  // >= 1
  int64_t products = 200;     // >= 1
  int64_t contents = 2000;    // >= 1 (a few of them are service items)
  int64_t days = 60;          // >= 1; length of the simulated period
  uint64_t seed = 42;
  TimeMs end = kDefaultGenerateEnd;  // exclusive end of the simulated period
  int threads = 0;                   // worker threads; 0 = all cores. Never changes the output.
};

// InvalidArgument with a one-line reason naming the option's flag when one is out of range.
[[nodiscard]] Status ValidateBankOptions(const BankOptions& options);

// The options a generated bank's folder was written with (its truth/truth.json "options"), so
// that Bank::Create rebuilds the same world. NotFound when `data_dir` has no truth/truth.json (not
// a generated bank); Corruption naming the file when it does not hold them.
[[nodiscard]] Result<BankOptions> ReadBankOptions(const std::string& data_dir);

// The world of a synthetic bank: customers (customers.csv), items (items.csv), each one's hidden
// latent taste, the calibrated true response model and the logging policy's pools and targeting
// (truth/truth.json describes them all). Customer and item indexes are the files' row order, so
// they are also the indexes of a Dataset loaded from the bank's folder.
// Immutable once built: every method is const and thread-safe.
class Bank {
 public:
  // Draws the world and calibrates the response model's intercepts (the first phases of
  // `qianmian generate`: seconds for 1M customers). InvalidArgument for bad options; NotFound
  // when the time zone database has no Asia/Shanghai (the bank's local time).
  [[nodiscard]] static Result<std::unique_ptr<Bank>> Create(const BankOptions& options);
  ~Bank();
  Bank(const Bank&) = delete;
  Bank& operator=(const Bank&) = delete;

  const BankOptions& options() const;
  uint32_t num_customers() const;
  uint32_t num_items() const;
  // The ids written to customers.csv / items.csv. REQUIRES: index in range.
  const std::string& customer_id(uint32_t customer) const;
  const std::string& item_id(uint32_t item) const;
  // The simulated period [start, end) and the start of its held-out part
  // (metrics::HoldoutStart over metrics::HoldoutDays(days) days of 24 hours).
  TimeMs start() const;
  TimeMs end() const;
  TimeMs holdout_start() const;

  // The customers and items exactly as LoadDataset reads them from the bank's folder (no events):
  // customers.csv and items.csv are written to a fresh temporary folder, loaded with core's
  // loaders and removed, so the two can never disagree. IoError when the folder cannot be written.
  [[nodiscard]] Result<Dataset> ToDataset(const DataConfig& config = DataConfig()) const;

  // The true affinity dot(customer_latent, item_latent) of truth/. REQUIRES: indexes in range.
  float Affinity(uint32_t customer, uint32_t item) const;

  // The world itself, for the module's own code (its type is private to synth/src).
  const gen::World& world() const { return *world_; }

 private:
  explicit Bank(std::unique_ptr<gen::World> world);
  std::unique_ptr<gen::World> world_;
};

}  // namespace qm::synth
