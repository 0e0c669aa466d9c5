// UCI Bank Marketing (bank-additional-full.csv) -> SPEC §2 folder (see importers.h).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "import_common.h"
#include "qianmian/core/csv.h"
#include "qianmian/core/progress.h"
#include "qianmian/tools/importers.h"

namespace qm::tools {

namespace {

namespace fs = std::filesystem;
using import_internal::BadLine;
using import_internal::IsNumber;
using import_internal::OutputFolder;
using import_internal::Quoted;

// Attributes known before the call, in the order of the distributed file.
const char* const kNumericColumns[] = {"age",           "campaign",     "pdays",
                                       "previous",      "emp.var.rate", "cons.price.idx",
                                       "cons.conf.idx", "euribor3m",    "nr.employed"};
const char* const kCategoricalColumns[] = {"job", "marital", "education", "default", "housing", "loan"};
constexpr const char* kLabelColumn = "y";
constexpr const char* kLeakColumn = "duration";  // known only after the call: never a feature

constexpr TimeMs kConvertDelayMs = kMsPerMinute;

constexpr const char* kItemId = "term_deposit";

// The customer id of 1-based row `row`: "b000001".
std::string CustomerId(uint64_t row) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "b%06llu", static_cast<unsigned long long>(row));
  return buf;
}

// Time of 0-based row `i` of `n`, evenly spread over [start, end) without overflow.
TimeMs RowTime(uint64_t i, uint64_t n) {
  const uint64_t span = static_cast<uint64_t>(kBankMarketingEndMs - kBankMarketingStartMs);
  const uint64_t q = span / n, r = span % n;
  return kBankMarketingStartMs + static_cast<TimeMs>(i * q + (i * r) / n);
}

}  // namespace

Status ImportBankMarketing(const std::string& file, const std::string& out, ImportStats* stats) {
  ImportStats local;
  if (!stats) stats = &local;
  *stats = ImportStats();
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    return Status::NotFound("'" + file + "' is missing (the UCI Bank Marketing file, e.g. bank-additional-full.csv)");
  }
  QM_ASSIGN_OR_RETURN(auto reader, CsvReader::Open(file, ';'));

  // Header: which columns exist, which are written, which are numeric.
  CsvRecord rec;
  if (!reader->Next(&rec)) {
    QM_RETURN_IF_ERROR(reader->status().Annotate(file));
    return Status::InvalidArgument("'" + file + "' is empty (a header row is required)");
  }
  if (!rec.error.empty()) return BadLine(file, rec.line, "bad header: " + rec.error);
  std::map<std::string, int> by_name;
  std::vector<std::string> names;
  for (size_t i = 0; i < rec.fields.size(); ++i) {
    std::string name(Trim(rec.fields[i]));
    if (name.empty())
      return BadLine(file, rec.line, "empty column name in the header (column " + std::to_string(i + 1) + ")");
    if (!by_name.emplace(name, static_cast<int>(i)).second)
      return BadLine(file, rec.line, "duplicate column " + Quoted(name));
    names.push_back(std::move(name));
  }
  std::vector<std::string> required(std::begin(kNumericColumns), std::end(kNumericColumns));
  required.insert(required.end(), std::begin(kCategoricalColumns), std::end(kCategoricalColumns));
  required.push_back(kLabelColumn);
  std::string missing;
  for (const auto& c : required) {
    if (!by_name.count(c)) missing += (missing.empty() ? "'" : ", '") + c + "'";
  }
  if (!missing.empty()) {
    return BadLine(file, rec.line,
                   "missing required column" + std::string(missing.find(',') != std::string::npos ? "s " : " ") +
                       missing + " (is this bank-additional-full.csv, ';'-separated with a header?)");
  }
  const std::set<std::string> numeric(std::begin(kNumericColumns), std::end(kNumericColumns));
  const int label_col = by_name[kLabelColumn];
  std::vector<int> kept;  // input columns written as customer attributes, in file order
  std::vector<bool> kept_numeric;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == kLabelColumn || names[i] == kLeakColumn) continue;
    kept.push_back(static_cast<int>(i));
    kept_numeric.push_back(numeric.count(names[i]) > 0);
  }
  const size_t width = names.size();

  // Rows: validate everything before writing anything. Cells are kept in one buffer.
  std::string chars;
  std::vector<uint64_t> offsets{0};  // kept.size() cells a row
  std::vector<bool> converted;
  {
    Progress progress("reading bank marketing", reader->size(), "B");
    uint64_t n = 0;
    while (reader->Next(&rec)) {
      if (!rec.error.empty()) return BadLine(file, rec.line, rec.error);
      if (rec.fields.size() != width) {
        return BadLine(file, rec.line,
                       "expected " + std::to_string(width) + " fields, found " + std::to_string(rec.fields.size()));
      }
      for (size_t k = 0; k < kept.size(); ++k) {
        auto cell = Trim(rec.fields[kept[k]]);
        if (kept_numeric[k] && !IsNumber(cell)) {
          return BadLine(file, rec.line, names[kept[k]] + " " + Quoted(cell) + " is not a number");
        }
        chars.append(cell);
        offsets.push_back(chars.size());
      }
      auto y = Trim(rec.fields[label_col]);
      if (y == "1" || y == "yes")
        converted.push_back(true);
      else if (y == "0" || y == "no")
        converted.push_back(false);
      else
        return BadLine(file, rec.line, "y " + Quoted(y) + " is not 0 or 1");
      if ((++n & 0xFFF) == 0) progress.Set(reader->bytes_read());
    }
    progress.Set(reader->bytes_read());
    progress.Finish();
    QM_RETURN_IF_ERROR(reader->status().Annotate(file));
  }
  const uint64_t rows = converted.size();
  if (rows == 0) return Status::InvalidArgument("'" + file + "' has a header but no rows");

  QM_ASSIGN_OR_RETURN(auto folder, OutputFolder::Create(out));
  std::vector<std::string> ids;
  ids.reserve(rows);
  for (uint64_t i = 0; i < rows; ++i) ids.push_back(CustomerId(i + 1));
  {
    QM_ASSIGN_OR_RETURN(CsvWriter * w, folder->Open("customers.csv"));
    w->Field(std::string_view("customer_id"));
    w->Field(std::string_view("tier"));
    for (int c : kept) w->Field(names[c]);
    w->EndRow();
    std::string_view all(chars);
    Progress progress("writing customers", rows);
    for (uint64_t i = 0; i < rows; ++i) {
      w->RawField(ids[i]);
      w->RawField("mass");
      for (size_t k = 0; k < kept.size(); ++k) {
        size_t cell = i * kept.size() + k;
        w->Field(all.substr(offsets[cell], offsets[cell + 1] - offsets[cell]));
      }
      w->EndRow();
      if (((i + 1) & 0xFFF) == 0) progress.Set(i + 1);
    }
    progress.Set(rows);
    progress.Finish();
    stats->customers = rows;
  }
  {
    QM_ASSIGN_OR_RETURN(CsvWriter * w, folder->Open("items.csv"));
    w->Row({"item_id", "kind", "title", "category"});
    w->Row({kItemId, "product", "Term deposit", "deposit"});
    stats->items = 1;
  }
  {
    QM_ASSIGN_OR_RETURN(CsvWriter * w, folder->Open("events.csv"));
    w->Row({"ts", "customer_id", "item_id", "type", "channel"});
    const TimeMs step = (kBankMarketingEndMs - kBankMarketingStartMs) / static_cast<TimeMs>(rows);
    const TimeMs convert_delay = std::min(kConvertDelayMs, step / 2);
    Progress progress("writing events", rows);
    for (uint64_t i = 0; i < rows; ++i) {
      const TimeMs ts = RowTime(i, rows);
      w->Field(static_cast<int64_t>(ts));
      w->RawField(ids[i]);
      w->RawField(kItemId);
      w->RawField("impression");
      w->RawField("app_home");
      w->EndRow();
      ++stats->impressions;
      if (converted[i]) {
        w->Field(static_cast<int64_t>(ts + convert_delay));
        w->RawField(ids[i]);
        w->RawField(kItemId);
        w->RawField("convert");
        w->RawField("app_home");
        w->EndRow();
        ++stats->converts;
      }
      if (((i + 1) & 0xFFF) == 0) progress.Set(i + 1);
    }
    progress.Set(rows);
    progress.Finish();
    stats->events = stats->impressions + stats->converts;
  }
  std::vector<std::string> numeric_out, categorical_out;
  for (size_t k = 0; k < kept.size(); ++k) {
    const std::string& name = names[kept[k]];
    if (kept_numeric[k])
      numeric_out.push_back(name);
    else if (std::find(std::begin(kCategoricalColumns), std::end(kCategoricalColumns), name) !=
             std::end(kCategoricalColumns))
      categorical_out.push_back(name);
    // Other columns (not in the distributed file) are typed by the loader from their values.
  }
  QM_RETURN_IF_ERROR(folder->WriteText("schema.toml", import_internal::SchemaToml(numeric_out, categorical_out)));
  return folder->Commit();
}

}  // namespace qm::tools
