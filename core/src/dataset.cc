#include "qianmian/core/dataset.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <unordered_set>

#include "qianmian/core/csv.h"
#include "qianmian/core/progress.h"
#include "qianmian/core/time.h"

namespace qm {

namespace fs = std::filesystem;

Dataset::Dataset() {
  regions.Intern("");
  categories.Intern("");
  campaigns.Intern("");
}

std::optional<uint32_t> Dataset::FindCustomer(std::string_view id) const { return customer_index_.Find(id, customers); }

std::optional<uint32_t> Dataset::FindItem(std::string_view id) const { return item_index_.Find(id, items); }

uint32_t Dataset::AddCustomer(Customer c) {
  uint32_t idx = static_cast<uint32_t>(customers.size());
  QM_CHECK_MSG(customer_index_.Insert(c.id, idx, customers), "duplicate customer id " + c.id);
  customers.push_back(std::move(c));
  return idx;
}

uint32_t Dataset::AddItem(Item item) {
  uint32_t idx = static_cast<uint32_t>(items.size());
  QM_CHECK_MSG(item_index_.Insert(item.id, idx, items), "duplicate item id " + item.id);
  items.push_back(std::move(item));
  return idx;
}

std::string LoadReport::Format(size_t max_rows) const {
  std::string out;
  for (const FileReport* f : {&items, &customers, &events}) {
    if (f->path.empty()) continue;
    std::string name = fs::path(f->path).filename().string();
    out += name + ": " + std::to_string(f->rows) + " rows, " + std::to_string(f->bad_rows) + " rejected\n";
    size_t shown = 0;
    for (const auto& e : f->errors) {
      if (shown++ >= max_rows) break;
      out += "  " + name + ":" + std::to_string(e.line) + ": " + e.reason + "\n";
    }
    if (f->bad_rows > shown) out += "  ... and " + std::to_string(f->bad_rows - shown) + " more\n";
    for (const auto& n : f->notes) out += "  note: " + n + "\n";
  }
  return out;
}

namespace {

// Column lookup by header name.
class Header {
 public:
  explicit Header(const CsvRecord& rec) {
    for (size_t i = 0; i < rec.fields.size(); ++i) {
      std::string name(Trim(rec.fields[i]));
      index_.emplace(name, static_cast<int>(i));
      names_.push_back(name);
    }
  }
  int Find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? -1 : it->second;
  }
  const std::vector<std::string>& names() const { return names_; }
  bool HasDuplicates() const { return index_.size() != names_.size(); }

 private:
  std::map<std::string, int> index_;
  std::vector<std::string> names_;
};

std::string_view Cell(const CsvRecord& rec, int col) {
  if (col < 0 || static_cast<size_t>(col) >= rec.fields.size()) return {};
  return Trim(rec.fields[col]);
}

std::string Quote(std::string_view s) {
  constexpr size_t kMax = 60;
  std::string v(s.substr(0, kMax));
  if (s.size() > kMax) v += "...";
  return "'" + v + "'";
}

bool ParseFloat(std::string_view s, float* out) {
  if (s.empty()) return false;
  if (s[0] == '+') s.remove_prefix(1);
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(*out);
}

// Shared row loop: opens the file, checks required columns, calls `row` per record, and
// applies the bad-row threshold. `row` returns an empty string when the row is good, else
// the reason it is rejected.
template <typename RowFn>
Status ForEachRow(const std::string& path, const std::vector<std::string>& required, const DataConfig& config,
                  FileReport* report, const char* label, const std::function<Status(const Header&)>& on_header,
                  RowFn row) {
  report->path = path;
  QM_ASSIGN_OR_RETURN(auto reader, CsvReader::Open(path));
  CsvRecord rec;
  std::string name = fs::path(path).filename().string();
  if (!reader->Next(&rec)) {
    QM_RETURN_IF_ERROR(reader->status());
    return Status::InvalidArgument(name + ": empty file (a header row is required)");
  }
  if (!rec.error.empty()) return Status::InvalidArgument(name + ":1: bad header: " + rec.error);
  Header header(rec);
  if (header.HasDuplicates()) return Status::InvalidArgument(name + ":1: duplicate column names in header");
  std::vector<std::string> missing;
  for (const auto& col : required) {
    if (header.Find(col) < 0) missing.push_back(col);
  }
  if (!missing.empty()) {
    std::string m;
    for (const auto& c : missing) m += (m.empty() ? "'" : ", '") + c + "'";
    return Status::InvalidArgument(name + ": missing required column" + (missing.size() > 1 ? "s " : " ") + m);
  }
  QM_RETURN_IF_ERROR(on_header(header));
  const size_t width = header.names().size();
  Progress progress(std::string("loading ") + label, reader->size() / (1 << 20), " MiB");
  uint64_t n = 0;
  std::string reason;
  while (reader->Next(&rec)) {
    ++report->rows;
    if (rec.error.empty() && rec.fields.size() != width) {
      reason = "expected " + std::to_string(width) + " fields, found " + std::to_string(rec.fields.size());
    } else if (!rec.error.empty()) {
      reason = rec.error;
    } else {
      reason.clear();
      row(rec, &reason);
    }
    if (!reason.empty()) {
      ++report->bad_rows;
      if (report->errors.size() < FileReport::kMaxKeptErrors) report->errors.push_back({rec.line, reason});
    }
    if ((++n & 0xFFFF) == 0) progress.Set(reader->bytes_read() >> 20);
  }
  progress.Set(reader->bytes_read() >> 20);
  progress.Finish();
  QM_RETURN_IF_ERROR(reader->status());
  if (report->rows > 0 &&
      static_cast<double>(report->bad_rows) > config.max_bad_row_share * static_cast<double>(report->rows)) {
    std::string first = report->errors.empty() ? ""
                                               : " (first: line " + std::to_string(report->errors[0].line) + ": " +
                                                     report->errors[0].reason + ")";
    char share[32];
    std::snprintf(share, sizeof share, "%.2f%%", 100.0 * report->bad_rows / report->rows);
    return Status::InvalidArgument(name + ": " + std::to_string(report->bad_rows) + " of " +
                                   std::to_string(report->rows) + " rows are malformed (" + share +
                                   ", more than the allowed " + std::to_string(config.max_bad_row_share * 100) + "%)" +
                                   first);
  }
  return Status::Ok();
}

Result<TimeZone> ZoneOf(const DataConfig& config) {
  auto tz = TimeZone::Load(config.timezone);
  if (!tz.ok()) return tz.status().Annotate("data.timezone");
  return tz;
}

Status DeclareChannels(const DataConfig& config, Dataset* ds) {
  for (const auto& c : config.channels) QM_RETURN_IF_ERROR(ds->channels.Declare(c).Annotate("data.channels"));
  return Status::Ok();
}

bool ParseChannelList(std::string_view cell, const ChannelRegistry& reg, ChannelMask* out, std::string* reason) {
  ChannelMask m = 0;
  for (auto part : SplitList(cell)) {
    auto c = reg.Find(part);
    if (!c) {
      *reason = "unknown channel " + Quote(part);
      return false;
    }
    m |= ChannelMask{1} << *c;
  }
  *out = m;
  return true;
}

std::vector<uint32_t> InternList(std::string_view cell, Dictionary* dict) {
  std::vector<uint32_t> out;
  for (auto part : SplitList(cell)) out.push_back(dict->Intern(part));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

Status LoadItemsCsv(const std::string& path, const DataConfig& config, Dataset* ds, FileReport* report) {
  QM_ASSIGN_OR_RETURN(TimeZone tz, ZoneOf(config));
  QM_RETURN_IF_ERROR(DeclareChannels(config, ds));
  struct Cols {
    int id, kind, title, category, tags, text, risk, tiers, regions, channels, start, end, campaign, value, boost,
        service;
  } c{};
  return ForEachRow(
      path, {"item_id", "kind"}, config, report, "items",
      [&](const Header& h) {
        c = {h.Find("item_id"),     h.Find("kind"),     h.Find("title"),      h.Find("category"),
             h.Find("tags"),        h.Find("text"),     h.Find("risk_level"), h.Find("tiers"),
             h.Find("regions"),     h.Find("channels"), h.Find("start"),      h.Find("end"),
             h.Find("campaign_id"), h.Find("value"),    h.Find("boost"),      h.Find("service")};
        for (const auto& n : h.names()) {
          static const std::unordered_set<std::string> kKnown = {
              "item_id", "kind",     "title", "category", "tags",        "text",  "risk_level", "tiers",
              "regions", "channels", "start", "end",      "campaign_id", "value", "boost",      "service"};
          if (!kKnown.count(n)) report->notes.push_back("column '" + n + "' is not used by the engine");
        }
        return Status::Ok();
      },
      [&](const CsvRecord& rec, std::string* reason) {
        Item it;
        it.id = std::string(Cell(rec, c.id));
        if (it.id.empty()) {
          *reason = "empty item_id";
          return;
        }
        if (ds->FindItem(it.id)) {
          *reason = "duplicate item_id " + Quote(it.id);
          return;
        }
        auto kind = ParseItemKind(Cell(rec, c.kind));
        if (!kind) {
          *reason = "bad kind " + Quote(Cell(rec, c.kind)) + " (product or content)";
          return;
        }
        it.kind = *kind;
        it.title = std::string(Cell(rec, c.title));
        it.category = ds->categories.Intern(Cell(rec, c.category));
        it.tags = InternList(Cell(rec, c.tags), &ds->item_tags);
        if (c.text >= 0) it.text = std::string(Cell(rec, c.text));
        auto risk = ParseRisk(Cell(rec, c.risk), 'R');
        if (!risk) {
          *reason = "bad risk_level " + Quote(Cell(rec, c.risk)) + " (R1..R5)";
          return;
        }
        if (*risk != kNoRisk && it.kind == ItemKind::kContent) {
          *reason = "risk_level on a content item";
          return;
        }
        it.risk = *risk;
        for (auto t : SplitList(Cell(rec, c.tiers))) {
          auto tier = ParseTier(t);
          if (!tier) {
            *reason = "bad tier " + Quote(t) + " in tiers";
            return;
          }
          it.tiers |= static_cast<uint8_t>(1u << static_cast<int>(*tier));
        }
        it.regions = InternList(Cell(rec, c.regions), &ds->regions);
        if (!ParseChannelList(Cell(rec, c.channels), ds->channels, &it.channels, reason)) return;
        for (auto [col, out, name] : {std::tuple{c.start, &it.start, "start"}, std::tuple{c.end, &it.end, "end"}}) {
          auto cell = Cell(rec, col);
          if (cell.empty()) continue;
          auto t = ParseTime(cell, tz);
          if (!t) {
            *reason = std::string("bad ") + name + " time " + Quote(cell);
            return;
          }
          *out = *t;
        }
        if (it.start != kNoTime && it.end != kNoTime && it.end <= it.start) {
          *reason = "end is not after start";
          return;
        }
        auto camp = Cell(rec, c.campaign);
        it.campaign = camp.empty() ? 0 : ds->campaigns.Intern(camp);
        for (auto [col, out, name] :
             {std::tuple{c.value, &it.value, "value"}, std::tuple{c.boost, &it.boost, "boost"}}) {
          auto cell = Cell(rec, col);
          if (cell.empty()) continue;
          if (!ParseFloat(cell, out) || *out < 0) {
            *reason = std::string("bad ") + name + " " + Quote(cell) + " (a number >= 0)";
            return;
          }
        }
        auto svc = Cell(rec, c.service);
        if (svc == "1" || svc == "true")
          it.service = true;
        else if (!(svc.empty() || svc == "0" || svc == "false")) {
          *reason = "bad service " + Quote(svc) + " (0 or 1)";
          return;
        }
        ds->AddItem(std::move(it));
      });
}

namespace {

// Raw values of one extra customer column, typed once the whole file is read.
struct RawColumn {
  std::string name;
  std::vector<uint64_t> offsets{0};
  std::string chars;
  bool all_numeric = true;
  std::string first_non_numeric;
};

struct Schema {
  std::map<std::string, FeatureColumn::Kind> kinds;
};

Result<Schema> LoadSchema(const std::string& path) {
  Schema s;
  QM_ASSIGN_OR_RETURN(ConfigFile f, ConfigFile::Load(path));
  ConfigTable cols = f.Root().Table("columns");
  std::vector<std::string> names;
  // toml tables have no key enumeration in ConfigTable; read via a known list is not possible,
  // so the schema lists columns explicitly: numeric = [...], categorical = [...].
  std::vector<std::string> numeric, categorical;
  cols.Read("numeric", &numeric);
  cols.Read("categorical", &categorical);
  QM_RETURN_IF_ERROR(f.Finish().Annotate("schema"));
  for (const auto& n : numeric) s.kinds[n] = FeatureColumn::Kind::kNumeric;
  for (const auto& n : categorical) {
    if (s.kinds.count(n))
      return Status::InvalidArgument("schema '" + path + "': column '" + n + "' is both numeric and categorical");
    s.kinds[n] = FeatureColumn::Kind::kCategorical;
  }
  return s;
}

}  // namespace

Status LoadCustomersCsv(const std::string& path, const DataConfig& config, Dataset* ds, FileReport* report) {
  QM_ASSIGN_OR_RETURN(TimeZone tz, ZoneOf(config));
  QM_RETURN_IF_ERROR(DeclareChannels(config, ds));
  Schema schema;
  std::string schema_path = config.schema;
  if (schema_path.empty()) {
    fs::path p = fs::path(path).parent_path() / "schema.toml";
    if (fs::exists(p)) schema_path = p.string();
  }
  if (!schema_path.empty()) {
    QM_ASSIGN_OR_RETURN(schema, LoadSchema(schema_path));
  }
  struct Cols {
    int id, tier, risk, assessed, region, tags, holdings, opt_out;
  } c{};
  std::vector<std::pair<int, RawColumn>> extras;
  uint64_t unknown_holdings = 0;
  Status st = ForEachRow(
      path, {"customer_id"}, config, report, "customers",
      [&](const Header& h) {
        c = {h.Find("customer_id"), h.Find("tier"), h.Find("risk_level"), h.Find("risk_assessed"),
             h.Find("region"),      h.Find("tags"), h.Find("holdings"),   h.Find("opt_out")};
        static const std::unordered_set<std::string> kKnown = {"customer_id", "tier", "risk_level", "risk_assessed",
                                                               "region",      "tags", "holdings",   "opt_out"};
        for (size_t i = 0; i < h.names().size(); ++i) {
          if (kKnown.count(h.names()[i])) continue;
          if (h.names()[i].empty())
            return Status::InvalidArgument(fs::path(path).filename().string() + ":1: empty column name in header");
          RawColumn rc;
          rc.name = h.names()[i];
          extras.emplace_back(static_cast<int>(i), std::move(rc));
        }
        for (const auto& [name, kind] : schema.kinds) {
          if (h.Find(name) < 0) report->notes.push_back("schema column '" + name + "' is not in the file");
        }
        return Status::Ok();
      },
      [&](const CsvRecord& rec, std::string* reason) {
        Customer cu;
        cu.id = std::string(Cell(rec, c.id));
        if (cu.id.empty()) {
          *reason = "empty customer_id";
          return;
        }
        if (ds->FindCustomer(cu.id)) {
          *reason = "duplicate customer_id " + Quote(cu.id);
          return;
        }
        auto tier_cell = Cell(rec, c.tier);
        if (!tier_cell.empty()) {
          auto tier = ParseTier(tier_cell);
          if (!tier) {
            *reason = "bad tier " + Quote(tier_cell) + " (mass, affluent or private)";
            return;
          }
          cu.tier = *tier;
        }
        auto risk = ParseRisk(Cell(rec, c.risk), 'C');
        if (!risk) {
          *reason = "bad risk_level " + Quote(Cell(rec, c.risk)) + " (C1..C5)";
          return;
        }
        cu.risk = *risk;
        auto assessed = Cell(rec, c.assessed);
        if (!assessed.empty()) {
          auto t = ParseTime(assessed, tz);
          if (!t) {
            *reason = "bad risk_assessed time " + Quote(assessed);
            return;
          }
          cu.risk_assessed = *t;
        }
        cu.region = ds->regions.Intern(Cell(rec, c.region));
        cu.tags = InternList(Cell(rec, c.tags), &ds->labels);
        if (!ParseChannelList(Cell(rec, c.opt_out), ds->channels, &cu.opt_out, reason)) return;
        for (auto h : SplitList(Cell(rec, c.holdings))) {
          auto idx = ds->FindItem(h);
          if (idx)
            cu.holdings.push_back(*idx);
          else
            ++unknown_holdings;
        }
        std::sort(cu.holdings.begin(), cu.holdings.end());
        cu.holdings.erase(std::unique(cu.holdings.begin(), cu.holdings.end()), cu.holdings.end());
        for (auto& [col, raw] : extras) {
          auto v = Cell(rec, col);
          raw.chars.append(v);
          raw.offsets.push_back(raw.chars.size());
          if (raw.all_numeric && !v.empty()) {
            float f;
            if (!ParseFloat(v, &f)) {
              raw.all_numeric = false;
              raw.first_non_numeric = std::string(v);
            }
          }
        }
        ds->AddCustomer(std::move(cu));
      });
  QM_RETURN_IF_ERROR(st);
  if (unknown_holdings > 0) {
    report->notes.push_back(std::to_string(unknown_holdings) + " holdings name products not in items.csv (ignored)");
  }
  // Type the extra columns.
  for (auto& [col, raw] : extras) {
    FeatureColumn fc;
    fc.name = raw.name;
    auto forced = schema.kinds.find(raw.name);
    bool numeric = forced == schema.kinds.end() ? raw.all_numeric : forced->second == FeatureColumn::Kind::kNumeric;
    if (numeric && !raw.all_numeric) {
      return Status::InvalidArgument(fs::path(path).filename().string() + ": column '" + raw.name +
                                     "' is numeric in the schema but holds " + Quote(raw.first_non_numeric));
    }
    size_t n = raw.offsets.size() - 1;
    std::string_view all(raw.chars);
    if (numeric) {
      fc.kind = FeatureColumn::Kind::kNumeric;
      fc.numeric.resize(n);
      for (size_t i = 0; i < n; ++i) {
        auto v = all.substr(raw.offsets[i], raw.offsets[i + 1] - raw.offsets[i]);
        float f;
        fc.numeric[i] = (!v.empty() && ParseFloat(v, &f)) ? f : std::nanf("");
      }
    } else {
      fc.kind = FeatureColumn::Kind::kCategorical;
      fc.categories.Intern("");
      fc.codes.resize(n);
      for (size_t i = 0; i < n; ++i) {
        fc.codes[i] = fc.categories.Intern(all.substr(raw.offsets[i], raw.offsets[i + 1] - raw.offsets[i]));
      }
    }
    ds->features.push_back(std::move(fc));
  }
  return Status::Ok();
}

Status LoadEventsCsv(const std::string& path, const DataConfig& config, Dataset* ds, FileReport* report) {
  QM_ASSIGN_OR_RETURN(TimeZone tz, ZoneOf(config));
  QM_RETURN_IF_ERROR(DeclareChannels(config, ds));
  struct Cols {
    int ts, customer, item, type, channel, request;
  } c{};
  {
    std::error_code ec;
    auto size = fs::file_size(path, ec);
    if (!ec) ds->events.Reserve(size / 48);
  }
  return ForEachRow(
      path, {"ts", "customer_id", "item_id", "type", "channel"}, config, report, "events",
      [&](const Header& h) {
        c = {h.Find("ts"),   h.Find("customer_id"), h.Find("item_id"),
             h.Find("type"), h.Find("channel"),     h.Find("request_id")};
        for (const auto& n : h.names()) {
          static const std::unordered_set<std::string> kKnown = {"ts",   "customer_id", "item_id",
                                                                 "type", "channel",     "request_id"};
          if (!kKnown.count(n)) report->notes.push_back("column '" + n + "' is not used by the engine");
        }
        return Status::Ok();
      },
      [&](const CsvRecord& rec, std::string* reason) {
        auto ts_cell = Cell(rec, c.ts);
        auto ts = ParseTime(ts_cell, tz);
        if (!ts) {
          *reason = "bad ts " + Quote(ts_cell);
          return;
        }
        auto cust = ds->FindCustomer(Cell(rec, c.customer));
        if (!cust) {
          *reason = "unknown customer_id " + Quote(Cell(rec, c.customer));
          return;
        }
        auto item = ds->FindItem(Cell(rec, c.item));
        if (!item) {
          *reason = "unknown item_id " + Quote(Cell(rec, c.item));
          return;
        }
        auto type = ParseEventType(Cell(rec, c.type));
        if (!type) {
          *reason = "unknown type " + Quote(Cell(rec, c.type));
          return;
        }
        auto ch = ds->channels.Find(Cell(rec, c.channel));
        if (!ch) {
          *reason = "unknown channel " + Quote(Cell(rec, c.channel));
          return;
        }
        ds->events.Append(*ts, *cust, *item, *type, *ch, Cell(rec, c.request));
      });
}

Result<Dataset> LoadDataset(const std::string& dir, const DataConfig& config, LoadReport* report) {
  LoadReport local;
  if (!report) report = &local;
  if (!fs::is_directory(dir)) return Status::NotFound("data folder '" + dir + "' does not exist");
  Dataset ds;
  auto items = (fs::path(dir) / "items.csv").string();
  auto customers = (fs::path(dir) / "customers.csv").string();
  auto events = (fs::path(dir) / "events.csv").string();
  if (!fs::exists(items)) return Status::NotFound("'" + items + "' is missing");
  if (!fs::exists(customers)) return Status::NotFound("'" + customers + "' is missing");
  QM_RETURN_IF_ERROR(LoadItemsCsv(items, config, &ds, &report->items));
  QM_RETURN_IF_ERROR(LoadCustomersCsv(customers, config, &ds, &report->customers));
  if (fs::exists(events)) QM_RETURN_IF_ERROR(LoadEventsCsv(events, config, &ds, &report->events));
  return ds;
}

}  // namespace qm

namespace qm {

Result<std::vector<FeatureColumn>> LoadPortraitColumns(const std::string& path, const Dataset& ds) {
  QM_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> in, CsvReader::Open(path));
  CsvRecord rec;
  if (!in->Next(&rec) || rec.fields.empty() || rec.fields[0] != "customer_id") {
    QM_RETURN_IF_ERROR(in->status());
    return Status::Corruption(path + ": the header must start with customer_id");
  }
  const size_t width = rec.fields.size();
  std::vector<std::string> names(rec.fields.begin() + 1, rec.fields.end());
  // Rows of known customers, as text, and whether every non-empty cell of a column is a number.
  std::vector<std::pair<uint32_t, std::vector<std::string>>> rows;
  std::vector<bool> numeric(names.size(), true);
  while (in->Next(&rec)) {
    if (!rec.error.empty() || rec.fields.size() != width) {
      return Status::Corruption(path + ":" + std::to_string(rec.line) + ": " +
                                (rec.error.empty() ? "expected " + std::to_string(width) + " fields" : rec.error));
    }
    const auto c = ds.FindCustomer(rec.fields[0]);
    if (!c) continue;
    std::vector<std::string> cells(rec.fields.begin() + 1, rec.fields.end());
    for (size_t k = 0; k < cells.size(); ++k) {
      if (cells[k].empty() || !numeric[k]) continue;
      char* end = nullptr;
      std::strtod(cells[k].c_str(), &end);
      numeric[k] = end != cells[k].c_str() && *end == '\0';
    }
    rows.emplace_back(*c, std::move(cells));
  }
  QM_RETURN_IF_ERROR(in->status());
  std::vector<FeatureColumn> out(names.size());
  const size_t n = ds.customers.size();
  for (size_t k = 0; k < names.size(); ++k) {
    FeatureColumn& col = out[k];
    col.name = names[k];
    col.kind = numeric[k] ? FeatureColumn::Kind::kNumeric : FeatureColumn::Kind::kCategorical;
    if (numeric[k]) {
      col.numeric.assign(n, NAN);
    } else {
      col.codes.assign(n, 0);
      col.categories.Intern("");
    }
  }
  for (const auto& [c, cells] : rows) {
    for (size_t k = 0; k < cells.size(); ++k) {
      if (cells[k].empty()) continue;
      if (numeric[k]) {
        out[k].numeric[c] = std::strtof(cells[k].c_str(), nullptr);
      } else {
        out[k].codes[c] = out[k].categories.Intern(cells[k]);
      }
    }
  }
  return out;
}

}  // namespace qm
