#include "qianmian/synth/bank.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

#include <fstream>

#include <nlohmann/json.hpp>

#include "world.h"
#include "writers.h"

namespace qm::synth {

namespace fs = std::filesystem;

Status gen::CheckOptionRange(const char* flag, int64_t v, int64_t lo, int64_t hi) {
  if (v >= lo && v <= hi) return Status::Ok();
  return Status::InvalidArgument(std::string("--") + flag + " must be between " + std::to_string(lo) + " and " +
                                 std::to_string(hi) + " (got " + std::to_string(v) + ")");
}

Status ValidateBankOptions(const BankOptions& o) {
  QM_RETURN_IF_ERROR(gen::CheckOptionRange("customers", o.customers, 1, 50'000'000));
  QM_RETURN_IF_ERROR(gen::CheckOptionRange("products", o.products, 1, 1'000'000));
  QM_RETURN_IF_ERROR(gen::CheckOptionRange("contents", o.contents, 1, 10'000'000));
  QM_RETURN_IF_ERROR(gen::CheckOptionRange("days", o.days, 1, 3660));
  return gen::CheckOptionRange("threads", o.threads, 0, 1024);
}

Result<BankOptions> ReadBankOptions(const std::string& data_dir) {
  const std::filesystem::path path = std::filesystem::path(data_dir) / "truth" / "truth.json";
  std::ifstream in(path);
  if (!in) return Status::NotFound(path.string() + " is missing: not a generated bank");
  BankOptions o;
  try {
    const auto j = nlohmann::json::parse(in).at("options");
    o.customers = j.at("customers").get<int64_t>();
    o.products = j.at("products").get<int64_t>();
    o.contents = j.at("contents").get<int64_t>();
    o.days = j.at("days").get<int64_t>();
    o.seed = j.at("seed").get<uint64_t>();
    o.end = j.at("end_ms").get<TimeMs>();
  } catch (const std::exception& e) {
    return Status::Corruption(path.string() + ": no generate options (" + e.what() + ")");
  }
  QM_RETURN_IF_ERROR(ValidateBankOptions(o).Annotate(path.string()));
  return o;
}

Result<std::unique_ptr<Bank>> Bank::Create(const BankOptions& options) {
  QM_RETURN_IF_ERROR(ValidateBankOptions(options));
  auto world = std::make_unique<gen::World>();
  QM_RETURN_IF_ERROR(gen::BuildWorld(options, world.get()));
  gen::Calibrate(world.get());
  return std::unique_ptr<Bank>(new Bank(std::move(world)));
}

Bank::Bank(std::unique_ptr<gen::World> world) : world_(std::move(world)) {}
Bank::~Bank() = default;

const BankOptions& Bank::options() const { return world_->options; }
uint32_t Bank::num_customers() const { return static_cast<uint32_t>(world_->customers.size()); }
uint32_t Bank::num_items() const { return static_cast<uint32_t>(world_->items.size()); }
const std::string& Bank::customer_id(uint32_t customer) const { return world_->customer_ids[customer]; }
const std::string& Bank::item_id(uint32_t item) const { return world_->items[item].id; }
TimeMs Bank::start() const { return world_->start; }
TimeMs Bank::end() const { return world_->end; }
TimeMs Bank::holdout_start() const { return world_->holdout_start; }
float Bank::Affinity(uint32_t customer, uint32_t item) const { return world_->Affinity(customer, item); }

Result<Dataset> Bank::ToDataset(const DataConfig& config) const {
  static std::atomic<uint64_t> serial{0};
  const fs::path dir =
      fs::temp_directory_path() / ("qm_synth_bank_" + std::to_string(::getpid()) + "_" + std::to_string(serial++));
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create temporary folder '" + dir.string() + "': " + ec.message());
  Status st = gen::WriteItems(*world_, dir);
  if (st.ok()) st = gen::WriteCustomers(*world_, dir);
  Result<Dataset> ds = st.ok() ? LoadDataset(dir.string(), config) : Result<Dataset>(st);
  fs::remove_all(dir, ec);
  return ds;
}

}  // namespace qm::synth
