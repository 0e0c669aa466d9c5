#include "qianmian/features/feature_space.h"

#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include <nlohmann/json.hpp>

#include "qianmian/content/text_features.h"

namespace qm::features {

float Dot(const float* a, const float* b, int n) {
  return Eigen::Map<const Eigen::VectorXf>(a, n).dot(Eigen::Map<const Eigen::VectorXf>(b, n));
}

void ScaledProduct(const float* a, const float* b, int n, float scale, float* out) {
  Eigen::Map<Eigen::VectorXf>(out, n) =
      Eigen::Map<const Eigen::VectorXf>(a, n).cwiseProduct(Eigen::Map<const Eigen::VectorXf>(b, n)) * scale;
}

using json = nlohmann::json;

void CustomerBatch::Clear() {
  n = 0;
  cat.clear();
  dense.clear();
  labels.clear();
  label_offsets.clear();
  history.clear();
}

void ItemBatch::Clear() {
  n = 0;
  cat.clear();
  tags.clear();
  tag_offsets.clear();
  text.clear();
  text_offsets.clear();
}

void GatherItems(const ItemBatch& all, const uint32_t* rows, int64_t n, ItemBatch* out) {
  out->Clear();
  const int C = FeatureSpace::kItemCatFields;
  auto copy_bag = [&](uint32_t it, const std::vector<int64_t>& vals, const std::vector<int64_t>& offs,
                      std::vector<int64_t>* ov, std::vector<int64_t>* oo) {
    int64_t b = offs[it];
    int64_t e = it + 1 < offs.size() ? offs[it + 1] : static_cast<int64_t>(vals.size());
    oo->push_back(static_cast<int64_t>(ov->size()));
    ov->insert(ov->end(), vals.begin() + b, vals.begin() + e);
  };
  for (int64_t k = 0; k < n; ++k) {
    uint32_t it = rows[k];
    out->cat.insert(out->cat.end(), all.cat.begin() + static_cast<int64_t>(it) * C,
                    all.cat.begin() + static_cast<int64_t>(it + 1) * C);
    copy_bag(it, all.tags, all.tag_offsets, &out->tags, &out->tag_offsets);
    copy_bag(it, all.text, all.text_offsets, &out->text, &out->text_offsets);
    ++out->n;
  }
}

HistoryIndex::HistoryIndex(const EventLog& events, size_t num_customers, TimeMs until) {
  begin_.assign(num_customers + 1, 0);
  const size_t m = events.size();
  auto keep = [&](size_t i) {
    return IsPositive(events.type[i]) && (until == kNoTime || events.ts[i] < until) &&
           events.customer[i] < num_customers;
  };
  for (size_t i = 0; i < m; ++i) {
    if (keep(i)) ++begin_[events.customer[i] + 1];
  }
  for (size_t c = 0; c < num_customers; ++c) begin_[c + 1] += begin_[c];
  ts_.resize(begin_.back());
  item_.resize(begin_.back());
  std::vector<uint64_t> pos(begin_.begin(), begin_.end() - 1);
  for (size_t i = 0; i < m; ++i) {
    if (!keep(i)) continue;
    uint64_t p = pos[events.customer[i]]++;
    ts_[p] = events.ts[i];
    item_[p] = events.item[i];
  }
  // Sort each customer's slice by time (stable: file order breaks ties).
  std::vector<uint64_t> order;
  std::vector<TimeMs> ts_tmp;
  std::vector<uint32_t> item_tmp;
  for (size_t c = 0; c < num_customers; ++c) {
    uint64_t b = begin_[c], e = begin_[c + 1];
    if (std::is_sorted(ts_.begin() + b, ts_.begin() + e)) continue;
    order.resize(e - b);
    std::iota(order.begin(), order.end(), b);
    std::stable_sort(order.begin(), order.end(), [&](uint64_t x, uint64_t y) { return ts_[x] < ts_[y]; });
    ts_tmp.clear();
    item_tmp.clear();
    for (uint64_t o : order) {
      ts_tmp.push_back(ts_[o]);
      item_tmp.push_back(item_[o]);
    }
    std::copy(ts_tmp.begin(), ts_tmp.end(), ts_.begin() + b);
    std::copy(item_tmp.begin(), item_tmp.end(), item_.begin() + b);
  }
}

void HistoryIndex::Before(uint32_t customer, TimeMs t, int max_n, std::vector<uint32_t>* out) const {
  out->clear();
  if (customer + 1 >= begin_.size()) return;
  uint64_t b = begin_[customer], e = begin_[customer + 1];
  auto it = std::lower_bound(ts_.begin() + b, ts_.begin() + e, t);
  for (uint64_t p = it - ts_.begin(); p > b && static_cast<int>(out->size()) < max_n; --p) {
    out->push_back(item_[p - 1]);
  }
}

void HistoryIndex::SeenBefore(uint32_t customer, TimeMs t, std::vector<uint32_t>* out) const {
  out->clear();
  if (customer + 1 >= begin_.size()) return;
  uint64_t b = begin_[customer], e = begin_[customer + 1];
  auto it = std::lower_bound(ts_.begin() + b, ts_.begin() + e, t);
  out->assign(item_.begin() + b, item_.begin() + (it - ts_.begin()));
  std::sort(out->begin(), out->end());
  out->erase(std::unique(out->begin(), out->end()), out->end());
}

namespace {

const char* AssessmentName(const Customer& c, TimeMs now, TimeMs validity) {
  if (c.risk == kNoRisk || c.risk_assessed == kNoTime) return "missing";
  return now - c.risk_assessed > validity ? "expired" : "valid";
}

double SignedLog1p(double v) { return v < 0 ? -std::log1p(-v) : std::log1p(v); }

}  // namespace

void FeatureSpace::Finalize() {
  int64_t off = 0;
  for (auto& f : cust_fields_) {
    f.size = static_cast<int64_t>(f.vocab.size()) + 1;
    f.offset = off;
    off += f.size;
  }
  cust_vocab_size_ = off;
  off_kind_ = 0;
  off_category_ = off_kind_ + 2;
  off_risk_ = off_category_ + static_cast<int64_t>(categories_.size()) + 1;
  off_service_ = off_risk_ + 6;
  item_cat_vocab_size_ = off_service_ + 2;
}

Result<FeatureSpace> FeatureSpace::Fit(const Dataset& ds, const FeatureOptions& options) {
  if (options.history_length < 1) return Status::InvalidArgument("history_length must be >= 1");
  if (options.text_buckets < 16) return Status::InvalidArgument("text_buckets must be >= 16");
  if (options.numeric_buckets < 1) return Status::InvalidArgument("numeric_buckets must be >= 1");
  FeatureSpace fs;
  fs.options_ = options;
  auto add_field = [&](const std::string& name, const std::vector<std::string>& values) {
    CatField f;
    f.name = name;
    for (const auto& v : values) {
      if (!v.empty() && !f.vocab.count(v)) {
        int64_t id = static_cast<int64_t>(f.vocab.size()) + 1;
        f.vocab.emplace(v, id);
      }
    }
    fs.cust_fields_.push_back(std::move(f));
  };
  add_field("tier", {"mass", "affluent", "private"});
  add_field("risk", {"0", "1", "2", "3", "4", "5"});
  add_field("assessment", {"missing", "valid", "expired"});
  {
    std::vector<std::string> regions;
    for (uint32_t r = 1; r < ds.regions.size(); ++r) regions.push_back(ds.regions.Name(r));
    add_field("region", regions);
  }
  for (const auto& col : ds.features) {
    if (col.kind == FeatureColumn::Kind::kCategorical) {
      std::vector<std::string> values;
      for (uint32_t v = 1; v < col.categories.size(); ++v) values.push_back(col.categories.Name(v));
      add_field("x." + col.name, values);
    } else {
      NumericField nf;
      nf.name = col.name;
      double mn = INFINITY, mx = -INFINITY;
      for (float v : col.numeric) {
        if (std::isnan(v)) continue;
        mn = std::min<double>(mn, v);
        mx = std::max<double>(mx, v);
      }
      nf.log = mn >= 0 && mx > 1000;
      double sum = 0, sq = 0;
      int64_t cnt = 0;
      for (float v : col.numeric) {
        if (std::isnan(v)) continue;
        double x = nf.log ? SignedLog1p(v) : v;
        sum += x;
        sq += x * x;
        ++cnt;
      }
      if (cnt > 0) {
        nf.mean = sum / cnt;
        double var = sq / cnt - nf.mean * nf.mean;
        nf.stddev = var > 1e-12 ? std::sqrt(var) : 1.0;
      }
      // Quantile boundaries: the numeric column is also a categorical field "q.<name>", which
      // lets the models treat thresholds and sentinel values (e.g. 999 = never) non-linearly.
      std::vector<float> sorted;
      for (float v : col.numeric) {
        if (!std::isnan(v)) sorted.push_back(v);
      }
      std::sort(sorted.begin(), sorted.end());
      for (int q = 1; q < options.numeric_buckets && !sorted.empty(); ++q) {
        double b = sorted[std::min(sorted.size() - 1, sorted.size() * q / options.numeric_buckets)];
        if (nf.bounds.empty() || b > nf.bounds.back()) nf.bounds.push_back(b);
      }
      fs.numeric_.push_back(nf);
    }
  }
  for (const auto& nf : fs.numeric_) {
    std::vector<std::string> buckets;
    for (size_t b = 1; b <= nf.bounds.size() + 1; ++b) buckets.push_back(std::to_string(b));
    add_field("q." + nf.name, buckets);
  }
  for (uint32_t l = 0; l < ds.labels.size(); ++l) fs.labels_.emplace(ds.labels.Name(l), l + 1);
  for (size_t i = 0; i < ds.items.size(); ++i) fs.item_ids_.emplace(ds.items[i].id, static_cast<int64_t>(i) + 2);
  for (uint32_t c = 1; c < ds.categories.size(); ++c) fs.categories_.emplace(ds.categories.Name(c), c);
  for (uint32_t t = 0; t < ds.item_tags.size(); ++t) fs.tags_.emplace(ds.item_tags.Name(t), t + 1);
  fs.Finalize();
  return fs;
}

int64_t FeatureSpace::ItemVocabId(const std::string& item_id) const {
  auto it = item_ids_.find(item_id);
  return it == item_ids_.end() ? 1 : it->second;
}

void FeatureSpace::EncodeCustomer(const Dataset& ds, uint32_t customer, TimeMs now, const std::vector<uint32_t>& recent,
                                  CustomerBatch* out) const {
  const Customer& c = ds.customers[customer];
  auto local = [](const CatField& f, const std::string& v) -> int64_t {
    auto it = f.vocab.find(v);
    return f.offset + (it == f.vocab.end() ? 0 : it->second);
  };
  for (const CatField& f : cust_fields_) {
    if (f.name == "tier")
      out->cat.push_back(local(f, TierName(c.tier)));
    else if (f.name == "risk")
      out->cat.push_back(local(f, std::to_string(c.risk)));
    else if (f.name == "assessment")
      out->cat.push_back(local(f, AssessmentName(c, now, options_.risk_validity)));
    else if (f.name == "region")
      out->cat.push_back(local(f, ds.regions.Name(c.region)));
    else if (f.name.rfind("q.", 0) == 0) {
      int64_t id = f.offset;
      for (const NumericField& nf : numeric_) {
        if (f.name.compare(2, std::string::npos, nf.name) != 0) continue;
        for (const auto& col : ds.features) {
          if (col.kind == FeatureColumn::Kind::kNumeric && col.name == nf.name) {
            if (customer < col.numeric.size()) id = f.offset + Bucket(nf, col.numeric[customer]);
            break;
          }
        }
        break;
      }
      out->cat.push_back(id);
    } else {
      // Extra categorical column "x.<name>".
      int64_t id = f.offset;
      for (const auto& col : ds.features) {
        if (col.kind == FeatureColumn::Kind::kCategorical && f.name.compare(2, std::string::npos, col.name) == 0) {
          if (customer < col.codes.size()) id = local(f, col.categories.Name(col.codes[customer]));
          break;
        }
      }
      out->cat.push_back(id);
    }
  }
  for (const NumericField& nf : numeric_) {
    float v = NAN;
    for (const auto& col : ds.features) {
      if (col.kind == FeatureColumn::Kind::kNumeric && col.name == nf.name) {
        if (customer < col.numeric.size()) v = col.numeric[customer];
        break;
      }
    }
    if (std::isnan(v)) {
      out->dense.push_back(0.0f);
      out->dense.push_back(1.0f);
    } else {
      double x = nf.log ? SignedLog1p(v) : v;
      double z = std::clamp((x - nf.mean) / nf.stddev, -5.0, 5.0);
      out->dense.push_back(static_cast<float>(z));
      out->dense.push_back(0.0f);
    }
  }
  out->label_offsets.push_back(static_cast<int64_t>(out->labels.size()));
  size_t before = out->labels.size();
  for (uint32_t l : c.tags) {
    auto it = labels_.find(ds.labels.Name(l));
    if (it != labels_.end()) out->labels.push_back(it->second);
  }
  if (out->labels.size() == before) out->labels.push_back(0);
  int h = 0;
  for (; h < options_.history_length && h < static_cast<int>(recent.size()); ++h) {
    uint32_t it = recent[h];
    out->history.push_back(it < ds.items.size() ? ItemVocabId(ds.items[it].id) : 1);
  }
  for (; h < options_.history_length; ++h) out->history.push_back(0);
  ++out->n;
}

int64_t FeatureSpace::Bucket(const NumericField& f, float v) {
  if (std::isnan(v)) return 0;
  return 1 + (std::upper_bound(f.bounds.begin(), f.bounds.end(), static_cast<double>(v)) - f.bounds.begin());
}

void FeatureSpace::EncodeCustomers(const Dataset& ds, const uint32_t* customers, int64_t n, TimeMs now,
                                   const HistoryIndex* history, CustomerBatch* out) const {
  std::vector<uint32_t> recent;
  for (int64_t i = 0; i < n; ++i) {
    recent.clear();
    if (history) history->Before(customers[i], now, options_.history_length, &recent);
    EncodeCustomer(ds, customers[i], now, recent, out);
  }
}

void FeatureSpace::EncodeUnknownCustomer(CustomerBatch* out) const {
  for (const CatField& f : cust_fields_) {
    int64_t id = f.offset;
    auto pick = [&](const std::string& v) {
      auto it = f.vocab.find(v);
      if (it != f.vocab.end()) id = f.offset + it->second;
    };
    if (f.name == "tier")
      pick("mass");
    else if (f.name == "risk")
      pick("0");
    else if (f.name == "assessment")
      pick("missing");
    out->cat.push_back(id);
  }
  for (size_t i = 0; i < numeric_.size(); ++i) {
    out->dense.push_back(0.0f);
    out->dense.push_back(1.0f);
  }
  out->label_offsets.push_back(static_cast<int64_t>(out->labels.size()));
  out->labels.push_back(0);
  for (int h = 0; h < options_.history_length; ++h) out->history.push_back(0);
  ++out->n;
}

void FeatureSpace::EncodeItems(const Dataset& ds, const uint32_t* items, int64_t n, ItemBatch* out) const {
  content::TextFeatureOptions topt;
  topt.buckets = options_.text_buckets;
  std::vector<uint32_t> grams;
  for (int64_t i = 0; i < n; ++i) {
    const Item& it = ds.items[items[i]];
    out->cat.push_back(ItemVocabId(it.id));
    out->cat.push_back(off_kind_ + (it.kind == ItemKind::kProduct ? 0 : 1));
    auto cat = categories_.find(ds.categories.Name(it.category));
    out->cat.push_back(off_category_ + (cat == categories_.end() ? 0 : cat->second));
    out->cat.push_back(off_risk_ + std::min<int64_t>(it.risk, 5));
    out->cat.push_back(off_service_ + (it.service ? 1 : 0));
    out->tag_offsets.push_back(static_cast<int64_t>(out->tags.size()));
    size_t before = out->tags.size();
    for (uint32_t t : it.tags) {
      auto f = tags_.find(ds.item_tags.Name(t));
      if (f != tags_.end()) out->tags.push_back(f->second);
    }
    if (out->tags.size() == before) out->tags.push_back(0);
    grams.clear();
    content::HashedNgrams(it.title, topt, &grams);
    content::HashedNgrams(it.text, topt, &grams);
    // Keep the first distinct n-grams (title first).
    out->text_offsets.push_back(static_cast<int64_t>(out->text.size()));
    size_t start = out->text.size();
    for (uint32_t g : grams) {
      if (static_cast<int>(out->text.size() - start) >= options_.max_text_ngrams) break;
      int64_t id = static_cast<int64_t>(g) + 1;
      if (std::find(out->text.begin() + start, out->text.end(), id) == out->text.end()) out->text.push_back(id);
    }
    if (out->text.size() == start) out->text.push_back(0);
    ++out->n;
  }
}

Status FeatureSpace::Save(const std::string& path) const {
  json j;
  j["format"] = "qianmian.features/1";
  j["options"] = {{"history_length", options_.history_length},
                  {"text_buckets", options_.text_buckets},
                  {"max_text_ngrams", options_.max_text_ngrams},
                  {"numeric_buckets", options_.numeric_buckets},
                  {"risk_validity_ms", options_.risk_validity}};
  for (const auto& f : cust_fields_) {
    std::vector<std::pair<int64_t, std::string>> v;
    for (const auto& [name, id] : f.vocab) v.emplace_back(id, name);
    std::sort(v.begin(), v.end());
    json values = json::array();
    for (auto& p : v) values.push_back(p.second);
    j["customer_fields"].push_back({{"name", f.name}, {"values", values}});
  }
  j["customer_fields"] = j.value("customer_fields", json::array());
  for (const auto& nf : numeric_) {
    j["numeric"].push_back(
        {{"name", nf.name}, {"log", nf.log}, {"mean", nf.mean}, {"stddev", nf.stddev}, {"bounds", nf.bounds}});
  }
  j["numeric"] = j.value("numeric", json::array());
  auto ordered = [](const std::unordered_map<std::string, int64_t>& m, int64_t first) {
    std::vector<std::string> out(m.size());
    for (const auto& [name, id] : m) out[id - first] = name;
    return out;
  };
  j["labels"] = ordered(labels_, 1);
  j["items"] = ordered(item_ids_, 2);
  j["categories"] = ordered(categories_, 1);
  j["tags"] = ordered(tags_, 1);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::IoError("cannot write '" + path + "'");
  out << j.dump();
  out.close();
  if (!out) return Status::IoError("writing '" + path + "' failed");
  return Status::Ok();
}

Result<FeatureSpace> FeatureSpace::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot open '" + path + "'");
  FeatureSpace fs;
  try {
    json j = json::parse(in);
    if (j.at("format") != "qianmian.features/1") return Status::Corruption("'" + path + "': unknown format");
    const auto& o = j.at("options");
    fs.options_.history_length = o.at("history_length");
    fs.options_.text_buckets = o.at("text_buckets");
    fs.options_.max_text_ngrams = o.at("max_text_ngrams");
    fs.options_.numeric_buckets = o.value("numeric_buckets", 16);
    fs.options_.risk_validity = o.at("risk_validity_ms");
    for (const auto& f : j.at("customer_fields")) {
      CatField cf;
      cf.name = f.at("name");
      int64_t id = 1;
      for (const auto& v : f.at("values")) cf.vocab.emplace(v.get<std::string>(), id++);
      fs.cust_fields_.push_back(std::move(cf));
    }
    for (const auto& n : j.at("numeric")) {
      NumericField nf{n.at("name"), n.at("log"), n.at("mean"), n.at("stddev"), {}};
      if (n.contains("bounds")) nf.bounds = n.at("bounds").get<std::vector<double>>();
      fs.numeric_.push_back(std::move(nf));
    }
    auto fill = [](const json& arr, int64_t first, std::unordered_map<std::string, int64_t>* m) {
      int64_t id = first;
      for (const auto& v : arr) m->emplace(v.get<std::string>(), id++);
    };
    fill(j.at("labels"), 1, &fs.labels_);
    fill(j.at("items"), 2, &fs.item_ids_);
    fill(j.at("categories"), 1, &fs.categories_);
    fill(j.at("tags"), 1, &fs.tags_);
  } catch (const std::exception& e) {
    return Status::Corruption("'" + path + "': " + e.what());
  }
  fs.Finalize();
  return fs;
}

namespace {

constexpr TimeMs kContactWindows[3] = {kMsPerDay, 7 * kMsPerDay, 30 * kMsPerDay};

bool IsExposure(EventType t) { return t == EventType::kImpression || t == EventType::kPushSent; }

// The counts behind the features, and the features from them.
struct ContactCounts {
  int item_exp[3] = {0, 0, 0}, cat_exp[3] = {0, 0, 0}, ch_exp[3] = {0, 0, 0};
  int item_pos = 0, cat_pos = 0;
  TimeMs last_channel = kNoTime, last_item = kNoTime;

  void Write(TimeMs now, float* out) const {
    static constexpr double kCapDays = 60.0;
    // log1p of small counts from a table (the same floats; serving computes these features for
    // every candidate of every request, mostly of counts 0 and 1).
    static const auto kLog1p = [] {
      std::array<float, 256> t{};
      for (size_t k = 0; k < t.size(); ++k) t[k] = std::log1p(static_cast<float>(k));
      return t;
    }();
    static const float kNeverContacted = static_cast<float>(std::log1p(kCapDays));
    const auto log1p_count = [&](int k) {
      return k < static_cast<int>(kLog1p.size()) ? kLog1p[k] : std::log1p(static_cast<float>(k));
    };
    for (int w = 0; w < 3; ++w) {
      out[w] = log1p_count(item_exp[w]);
      out[3 + w] = log1p_count(cat_exp[w]);
      out[6 + w] = log1p_count(ch_exp[w]);
    }
    auto days_since = [&](TimeMs t) {
      if (t == kNoTime) return kNeverContacted;
      double d = std::min(kCapDays, static_cast<double>(now - t) / kMsPerDay);
      return static_cast<float>(std::log1p(d));
    };
    out[9] = days_since(last_channel);
    out[10] = days_since(last_item);
    out[11] = log1p_count(item_pos);
    out[12] = log1p_count(cat_pos);
  }
};

}  // namespace

void ContactFeatures(const std::vector<ContactEvent>& recent, uint32_t item, uint32_t category, ChannelId channel,
                     TimeMs now, float* out) {
  ContactFeatures(recent.data(), recent.size(), item, category, channel, now, out);
}

void ContactFeatures(const ContactEvent* recent, size_t n, uint32_t item, uint32_t category, ChannelId channel,
                     TimeMs now, float* out) {
  ContactCounts c;
  for (const ContactEvent* p = recent; p < recent + n; ++p) {
    const ContactEvent& e = *p;
    if (e.ts >= now) break;
    TimeMs age = now - e.ts;
    if (IsExposure(e.type)) {
      for (int w = 0; w < 3; ++w) {
        if (age > kContactWindows[w]) continue;
        c.item_exp[w] += e.item == item;
        c.cat_exp[w] += e.category == category;
        c.ch_exp[w] += e.channel == channel;
      }
      if (e.channel == channel) c.last_channel = e.ts;
      if (e.item == item) c.last_item = e.ts;
    } else if (IsPositive(e.type) && age <= kContactWindows[2]) {
      c.item_pos += e.item == item;
      c.cat_pos += e.category == category;
    }
  }
  c.Write(now, out);
}

ContactSummary::ContactSummary(const std::vector<ContactEvent>& recent, ChannelId channel, TimeMs now) : now_(now) {
  auto find = [](std::vector<Key>* keys, uint32_t key) -> Key& {
    for (Key& k : *keys)
      if (k.key == key) return k;
    keys->push_back(Key{key});
    return keys->back();
  };
  for (const ContactEvent& e : recent) {
    if (e.ts >= now) break;
    const TimeMs age = now - e.ts;
    if (IsExposure(e.type)) {
      Key& it = find(&items_, e.item);
      Key& cat = find(&categories_, e.category);
      for (int w = 0; w < 3; ++w) {
        if (age > kContactWindows[w]) continue;
        ++it.exp[w];
        ++cat.exp[w];
        ch_exp_[w] += e.channel == channel;
      }
      if (e.channel == channel) last_channel_ = e.ts;
      it.last = e.ts;
    } else if (IsPositive(e.type) && age <= kContactWindows[2]) {
      ++find(&items_, e.item).pos;
      ++find(&categories_, e.category).pos;
    }
  }
  auto by_key = [](const Key& a, const Key& b) { return a.key < b.key; };
  std::sort(items_.begin(), items_.end(), by_key);
  std::sort(categories_.begin(), categories_.end(), by_key);
}

const ContactSummary::Key* ContactSummary::Find(const std::vector<Key>& keys, uint32_t key) {
  auto it = std::lower_bound(keys.begin(), keys.end(), key, [](const Key& k, uint32_t v) { return k.key < v; });
  return it != keys.end() && it->key == key ? &*it : nullptr;
}

void ContactSummary::Features(uint32_t item, uint32_t category, float* out) const {
  ContactCounts c;
  for (int w = 0; w < 3; ++w) c.ch_exp[w] = ch_exp_[w];
  c.last_channel = last_channel_;
  if (const Key* k = Find(items_, item)) {
    for (int w = 0; w < 3; ++w) c.item_exp[w] = k->exp[w];
    c.item_pos = k->pos;
    c.last_item = k->last;
  }
  if (const Key* k = Find(categories_, category)) {
    for (int w = 0; w < 3; ++w) c.cat_exp[w] = k->exp[w];
    c.cat_pos = k->pos;
  }
  c.Write(now_, out);
}

}  // namespace qm::features
