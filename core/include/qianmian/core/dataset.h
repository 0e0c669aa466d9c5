// Module core: the foundation: Status, domain types, CSV, time, configuration, dataset loading. May
// depend on: the standard library; toml++ and date (private).
// A bank's data as loaded from a SPEC §2 folder (customers.csv, items.csv, events.csv).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qianmian/core/core_config.h"
#include "qianmian/core/id_index.h"
#include "qianmian/core/status.h"
#include "qianmian/core/types.h"

namespace qm {

// One extra column of customers.csv, turned into a model feature.
struct FeatureColumn {
  enum class Kind : uint8_t { kNumeric, kCategorical };
  std::string name;
  Kind kind = Kind::kNumeric;
  std::vector<float> numeric;   // kNumeric: one per customer; NaN = missing
  std::vector<uint32_t> codes;  // kCategorical: one per customer; 0 = missing ("")
  Dictionary categories;        // kCategorical: code -> value
};

// What loading one file found: rows read, rows rejected and why.
struct FileReport {
  std::string path;
  uint64_t rows = 0;      // data rows seen (header excluded)
  uint64_t bad_rows = 0;  // rows rejected
  struct BadRow {
    uint64_t line;  // 1-based physical line where the row starts
    std::string reason;
  };
  std::vector<BadRow> errors;  // the first kMaxKeptErrors bad rows
  static constexpr size_t kMaxKeptErrors = 1000;
  std::vector<std::string> notes;  // non-fatal findings (e.g. holdings of unknown products)
};

struct LoadReport {
  FileReport customers, items, events;
  // Human-readable lines: "events.csv:17: unknown type 'klick'"; at most `max_rows` bad rows.
  std::string Format(size_t max_rows = 20) const;
};

class Dataset {
 public:
  ChannelRegistry channels;
  Dictionary regions;     // code 0 is ""
  Dictionary labels;      // customer tags (the bank's label system)
  Dictionary categories;  // item categories; code 0 is ""
  Dictionary item_tags;
  Dictionary campaigns;  // code 0 is "" (no campaign)

  std::vector<Customer> customers;
  std::vector<Item> items;
  std::vector<FeatureColumn> features;  // extra customers.csv columns, in file order
  // Customer portraits of the served version (issue 18: churn_risk, lifecycle, value_trend,
  // days_inactive, interest_1..3), for audiences; empty when the version has none. A customer
  // past their end (added since) has none. Not model features.
  std::vector<FeatureColumn> portraits;
  EventLog events;

  Dataset();  // interns "" as code 0 where documented above

  // Index of an id, or nullopt.
  std::optional<uint32_t> FindCustomer(std::string_view id) const;
  std::optional<uint32_t> FindItem(std::string_view id) const;

  // REQUIRES: id not present. Returns the new index.
  uint32_t AddCustomer(Customer c);
  uint32_t AddItem(Item item);

 private:
  IdIndex customer_index_;  // ids -> positions in customers
  IdIndex item_index_;      // ids -> positions in items
};

// Loads items.csv, then customers.csv, then events.csv (if present) from `dir`.
// Each malformed row is recorded in `report` (file, line, reason) and skipped; fails with
// InvalidArgument naming the file when a required column is missing or more than
// config.max_bad_row_share of a file's rows are bad. `report` may be null.
Result<Dataset> LoadDataset(const std::string& dir, const DataConfig& config, LoadReport* report = nullptr);

// Reads a version's portraits.csv (customer_id, then one column each: numeric when every
// non-empty cell is a number, else categorical) into columns indexed like ds.customers (rows of
// unknown customers skipped). Corruption naming the line when a row is malformed.
Result<std::vector<FeatureColumn>> LoadPortraitColumns(const std::string& path, const Dataset& ds);

// The single-file loaders LoadDataset uses, for callers that load piecemeal.
// Items before customers (holdings refer to items), both before events.
Status LoadItemsCsv(const std::string& path, const DataConfig& config, Dataset* ds, FileReport* report);
Status LoadCustomersCsv(const std::string& path, const DataConfig& config, Dataset* ds, FileReport* report);
Status LoadEventsCsv(const std::string& path, const DataConfig& config, Dataset* ds, FileReport* report);

}  // namespace qm
