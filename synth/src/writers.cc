// The writers of a bank's folder: SPEC §2 files, truth/ and oracle.json.
#include "writers.h"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <queue>
#include <unordered_map>

#include "qianmian/core/csv.h"
#include "qianmian/core/progress.h"
#include "world.h"

namespace qm::synth::gen {

namespace fs = std::filesystem;

namespace {

std::string ChannelList(uint32_t mask) {
  std::string s;
  for (int c = 0; c < 4; ++c) {
    if (!((mask >> c) & 1)) continue;
    if (!s.empty()) s += ';';
    s += kChannelNames[c];
  }
  return s;
}

Result<std::unique_ptr<CsvWriter>> OpenCsv(const fs::path& p) {
  auto w = CsvWriter::Open(p.string());
  if (!w.ok()) return w.status();
  return w;
}

Status WriteFloats(const fs::path& p, const float* data, size_t n) {
  std::FILE* f = std::fopen(p.string().c_str(), "wb");
  if (!f) return Status::IoError("cannot write '" + p.string() + "': " + std::strerror(errno));
  bool ok = std::fwrite(data, sizeof(float), n, f) == n;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return Status::IoError("write to '" + p.string() + "' failed");
  return Status::Ok();
}

std::string Num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.7g", v);
  return buf;
}

std::string Str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

template <typename T>
std::string NumArray(const std::vector<T>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + Num(static_cast<double>(v[i]));
  return s + "]";
}

std::string StrArray(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + Str(v[i]);
  return s + "]";
}

}  // namespace

size_t FormatRequestId(const Event& e, char (&buf)[kRequestIdChars]) {
  if (!e.request) return 0;
  buf[0] = (e.request & kPushRequest) ? 'p' : 'r';
  char* p = std::to_chars(buf + 1, buf + 20, e.customer + 1).ptr;
  p[0] = '-';
  p = std::to_chars(p + 1, buf + kRequestIdChars, e.request & ~kPushRequest).ptr;
  return static_cast<size_t>(p - buf);
}

Status WriteItems(const World& w, const fs::path& dir) {
  QM_ASSIGN_OR_RETURN(auto out, OpenCsv(dir / "items.csv"));
  out->Row({"item_id", "kind", "title", "category", "tags", "text", "risk_level", "tiers", "regions", "channels",
            "start", "end", "campaign_id", "value", "boost", "service"});
  for (const auto& it : w.items) {
    out->RawField(it.id);
    out->RawField(it.product ? "product" : "content");
    out->Field(it.title);
    out->RawField(w.categories[it.category]);
    out->RawField(it.tags);
    out->Field(it.text);
    out->RawField(it.risk ? "R" + std::to_string(it.risk) : "");
    std::string tiers;
    for (int t = 0; t < kNumTiers; ++t)
      if ((it.tiers >> t) & 1) tiers += (tiers.empty() ? "" : ";") + std::string(TierName(static_cast<Tier>(t)));
    out->RawField(tiers);
    std::string regions;
    for (int r = 0; r < kNumRegions; ++r)
      if ((it.regions >> r) & 1) regions += (regions.empty() ? "" : ";") + std::string(kRegionNames[r]);
    out->Field(regions);
    out->RawField(ChannelList(it.channels));
    out->RawField(it.start == kNoTime ? "" : FormatIsoLocal(it.start, w.tz));
    out->RawField(it.end == kNoTime ? "" : FormatIsoLocal(it.end, w.tz));
    out->RawField(it.campaign);
    out->Field(static_cast<double>(it.value), 6);
    out->Field(static_cast<double>(it.boost), 3);
    out->RawField(it.service ? "1" : "0");
    out->EndRow();
  }
  return out->Close();
}

Status WriteCustomers(const World& w, const fs::path& dir) {
  QM_ASSIGN_OR_RETURN(auto out, OpenCsv(dir / "customers.csv"));
  out->Row({"customer_id", "tier", "risk_level", "risk_assessed", "region", "tags", "holdings", "opt_out", "age",
            "gender", "income", "aum", "life_stage", "occupation"});
  std::unordered_map<TimeMs, std::string> dates;
  Progress progress("generate: writing customers", w.customers.size(), "");
  std::string buf;
  for (size_t c = 0; c < w.customers.size(); ++c) {
    const auto& cu = w.customers[c];
    out->RawField(w.customer_ids[c]);
    out->RawField(TierName(static_cast<Tier>(cu.tier)));
    out->RawField(cu.risk ? "C" + std::to_string(cu.risk) : "");
    if (cu.assessed == kNoTime) {
      out->RawField("");
    } else {
      auto it = dates.find(cu.assessed);
      if (it == dates.end()) it = dates.emplace(cu.assessed, FormatIsoLocal(cu.assessed, w.tz).substr(0, 10)).first;
      out->RawField(it->second);
    }
    out->Field(kRegionNames[cu.region]);
    buf.clear();
    for (int l = 0; l < kNumLabels; ++l) {
      if (!cu.HasLabel(static_cast<Label>(l))) continue;
      if (!buf.empty()) buf += ';';
      buf += kLabelNames[l];
    }
    out->RawField(buf);
    buf.clear();
    for (uint32_t k = w.holding_offsets[c]; k < w.holding_offsets[c + 1]; ++k) {
      if (!buf.empty()) buf += ';';
      buf += w.items[w.holdings[k]].id;
    }
    out->RawField(buf);
    out->RawField(ChannelList(cu.opt_out));
    out->Field(static_cast<int64_t>(cu.age));
    out->RawField(cu.female ? "F" : "M");
    out->Field(static_cast<int64_t>(cu.income));
    out->Field(static_cast<int64_t>(cu.aum));
    out->RawField(kLifeStageNames[cu.life_stage]);
    out->RawField(kOccupationNames[cu.occupation]);
    out->EndRow();
    if ((c & 0xFFFF) == 0xFFFF) progress.Set(c + 1);
  }
  progress.Set(w.customers.size());
  progress.Finish();
  return out->Close();
}

Status WriteEvents(const World& w, const std::vector<std::vector<Event>>& runs, uint64_t total, const fs::path& dir) {
  QM_ASSIGN_OR_RETURN(auto out, OpenCsv(dir / "events.csv"));
  out->Row({"ts", "customer_id", "item_id", "type", "channel", "request_id"});
  std::vector<size_t> pos(runs.size(), 0);
  auto greater = [&](uint32_t a, uint32_t b) { return runs[b][pos[b]] < runs[a][pos[a]]; };
  std::priority_queue<uint32_t, std::vector<uint32_t>, decltype(greater)> heap(greater);
  for (uint32_t r = 0; r < runs.size(); ++r)
    if (!runs[r].empty()) heap.push(r);
  Progress progress("generate: writing events", total, "");
  uint64_t n = 0;
  char req[kRequestIdChars];
  while (!heap.empty()) {
    uint32_t r = heap.top();
    heap.pop();
    const Event& e = runs[r][pos[r]];
    out->Field(static_cast<int64_t>(e.ts));
    out->RawField(w.customer_ids[e.customer]);
    out->RawField(w.items[e.item].id);
    out->RawField(EventTypeName(e.type));
    out->RawField(kChannelNames[e.channel]);
    out->RawField(std::string_view(req, FormatRequestId(e, req)));
    out->EndRow();
    if (++pos[r] < runs[r].size()) heap.push(r);
    if ((++n & 0xFFFFF) == 0) progress.Set(n);
  }
  progress.Set(n);
  progress.Finish();
  return out->Close();
}

Status WriteText(const fs::path& p, const std::string& text) {
  std::FILE* f = std::fopen(p.string().c_str(), "wb");
  if (!f) return Status::IoError("cannot write '" + p.string() + "': " + std::strerror(errno));
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return Status::IoError("write to '" + p.string() + "' failed");
  return Status::Ok();
}

// truth/churn.csv: every customer, whether they leave and when (planted; issue 18).
Status WriteChurn(const World& w, const fs::path& dir) {
  std::string out = "customer_id,leaves,churn_at\n";
  for (size_t c = 0; c < w.customers.size(); ++c) {
    const TimeMs at = w.customers[c].churn_at;
    out += w.customer_ids[c] + (at == kNoTime ? ",0,\n" : ",1," + FormatIsoUtc(at) + "\n");
  }
  return WriteText(dir / "churn.csv", out);
}

Status WriteTruth(const World& w, const fs::path& dir) {
  QM_RETURN_IF_ERROR(WriteChurn(w, dir));
  const size_t n = w.customers.size(), m = w.items.size();
  QM_RETURN_IF_ERROR(WriteFloats(dir / "customer_latent.f32", w.customer_latent.data(), w.customer_latent.size()));
  QM_RETURN_IF_ERROR(WriteFloats(dir / "customer_latent_observable.f32", w.customer_latent_observable.data(),
                                 w.customer_latent_observable.size()));
  QM_RETURN_IF_ERROR(WriteFloats(dir / "item_latent.f32", w.item_latent.data(), w.item_latent.size()));
  QM_RETURN_IF_ERROR(WriteFloats(dir / "item_bias.f32", w.item_bias.data(), m));
  QM_RETURN_IF_ERROR(WriteFloats(dir / "item_popularity.f32", w.item_pop.data(), m));
  std::vector<float> activity(n * 2);
  for (size_t c = 0; c < n; ++c) {
    activity[2 * c] = w.customers[c].app_rate;
    activity[2 * c + 1] = w.customers[c].push_rate;
  }
  QM_RETURN_IF_ERROR(WriteFloats(dir / "customer_activity.f32", activity.data(), activity.size()));
  const auto& p = w.params;
  const auto& o = w.options;
  std::vector<std::string> dims(kDimNames, kDimNames + kDim);
  std::vector<std::string> segments;
  for (int t = 0; t < kNumTiers; ++t)
    for (const char* band : {"<25", "25-34", "35-49", "50-59", "60+"})
      for (const char* persona : {"investor", "parent", "car_owner", "other"})
        segments.push_back(std::string(TierName(static_cast<Tier>(t))) + "/" + band + "/" + persona);
  std::string targeting = "[";
  for (int s = 0; s < kNumSegments; ++s) {
    std::vector<float> row(w.targeting.begin() + s * w.categories.size(),
                           w.targeting.begin() + (s + 1) * w.categories.size());
    targeting += std::string(s ? ",\n      " : "\n      ") + NumArray(row);
  }
  targeting += "]";
  std::string j = "{\n";
  j += "  \"format\": \"qianmian-generate-truth/1\",\n";
  j += "  \"options\": {\"customers\": " + std::to_string(o.customers) +
       ", \"products\": " + std::to_string(o.products) + ", \"contents\": " + std::to_string(o.contents) +
       ", \"days\": " + std::to_string(o.days) + ", \"seed\": " + std::to_string(o.seed) +
       ", \"end_ms\": " + std::to_string(o.end) + "},\n";
  j += "  \"timezone\": \"Asia/Shanghai\",\n";
  j += "  \"start_ms\": " + std::to_string(w.start) + ", \"end_ms\": " + std::to_string(w.end) +
       ", \"holdout_start_ms\": " + std::to_string(w.holdout_start) + ",\n";
  j += "  \"service_items\": " + std::to_string(w.num_services) + ",\n";
  j += "  \"dim\": " + std::to_string(kDim) + ",\n  \"dims\": " + StrArray(dims) + ",\n";
  j += "  \"files\": {\n"
       "    \"customer_latent.f32\": {\"dtype\": \"float32\", \"shape\": [" +
       std::to_string(n) + ", " + std::to_string(kDim) +
       "], \"rows\": \"customers.csv order\"},\n"
       "    \"customer_latent_observable.f32\": {\"dtype\": \"float32\", \"shape\": [" +
       std::to_string(n) + ", " + std::to_string(kDim) +
       "], \"rows\": \"customers.csv order\", \"meaning\": \"A*phi(c), centred and scaled: the part of customer_latent "
       "the customers.csv attributes determine (customer_latent minus the idiosyncratic e)\"},\n"
       "    \"item_latent.f32\": {\"dtype\": \"float32\", \"shape\": [" +
       std::to_string(m) + ", " + std::to_string(kDim) +
       "], \"rows\": \"items.csv order\"},\n"
       "    \"item_bias.f32\": {\"dtype\": \"float32\", \"shape\": [" +
       std::to_string(m) +
       "]},\n"
       "    \"item_popularity.f32\": {\"dtype\": \"float32\", \"shape\": [" +
       std::to_string(m) +
       "], \"meaning\": \"the logging policy's popularity weight\"},\n"
       "    \"customer_activity.f32\": {\"dtype\": \"float32\", \"shape\": [" +
       std::to_string(n) +
       ", 2], \"columns\": [\"app_home sessions per day\", \"marketing push runs per day\"]},\n"
       "    \"byte_order\": \"little endian, row-major\"\n  },\n";
  j += "  \"response_model\": {\n"
       "    \"affinity\": \"a(c,i) = dot(customer_latent[c], item_latent[i])\",\n"
       "    \"p_click_given_impression\": \"sigmoid(click_intercept + (product_click_offset if a product) + "
       "item_bias[i] + alpha*a - fatigue)\",\n"
       "    \"p_open_given_push_sent\": \"sigmoid(open_intercept + item_bias[i] + alpha*a - fatigue)\",\n"
       "    \"p_convert_given_click\": \"sigmoid(convert_intercept + convert_alpha*a) (products only)\",\n"
       "    \"p_dismiss_given_no_click\": \"sigmoid(dismiss_intercept + dismiss_alpha*a + 0.3*earlier exposures of the "
       "item)\",\n"
       "    \"fatigue\": \"fatigue_item * earlier exposures of the item to the customer + fatigue_category * exposures "
       "of the item's category, each halved every fatigue_half_life_days\",\n"
       "    \"p_opt_out_given_marketing_push\": \"closed loop only (qianmian simulate; generate draws none): "
       "sigmoid(opt_out_intercept + opt_out_pressure*marketing pushes in the 7 days up to and including this one - "
       "opt_out_alpha*a); an opt_out event on wechat_push, after which the bank pushes no more marketing\",\n"
       "    \"alpha\": " +
       Num(p.alpha) + ", \"click_intercept\": " + Num(p.click_intercept) +
       ", \"product_click_offset\": " + Num(p.product_click_offset) + ", \"open_intercept\": " + Num(p.open_intercept) +
       ", \"convert_intercept\": " + Num(p.convert_intercept) + ", \"convert_alpha\": " + Num(p.convert_alpha) +
       ", \"dismiss_intercept\": " + Num(p.dismiss_intercept) + ", \"dismiss_alpha\": " + Num(p.dismiss_alpha) +
       ",\n"
       "    \"fatigue_item\": " +
       Num(p.fatigue_item) + ", \"fatigue_category\": " + Num(p.fatigue_category) +
       ", \"fatigue_half_life_days\": " + Num(p.fatigue_half_life_days) +
       ", \"opt_out_intercept\": " + Num(p.opt_out_intercept) + ", \"opt_out_pressure\": " + Num(p.opt_out_pressure) +
       ", \"opt_out_alpha\": " + Num(p.opt_out_alpha) +
       ",\n"
       "    \"calibration_targets\": {\"ctr\": " +
       Num(p.target_ctr) + ", \"push_open\": " + Num(p.target_open) +
       ", \"convert_per_product_click\": " + Num(p.target_convert) + ", \"dismiss\": " + Num(p.target_dismiss) +
       "}\n  },\n";
  j += "  \"latents\": {\n"
       "    \"customer\": \"u = A*phi(c) + e: phi = the customers.csv attributes (age, age^2, age band, gender, tier, "
       "log income, log aum, risk level, life stage, occupation, region, tags), A = planted interpretable weights + "
       "N(0, 0.3^2); centred; e ~ N(0, s_k^2) idiosyncratic\",\n"
       "    \"item\": \"v = B*psi(i) + e: psi = category, tags and risk level of items.csv (content text is generated "
       "from category and tags), B = planted weights + N(0, 0.3^2); e idiosyncratic\",\n"
       "    \"scaling\": \"both sides multiplied by 1/sqrt(affinity_scale) so that a(c,i) has unit variance over "
       "random pairs\",\n"
       "    \"affinity_scale\": " +
       Num(w.affinity_scale) +
       ",\n"
       "    \"unobservable_share_target\": " +
       Num(p.unobservable_share) +
       ",\n"
       "    \"customer_observable_share\": " +
       NumArray(w.customer_observable_share) +
       ",\n"
       "    \"item_observable_share\": " +
       NumArray(w.item_observable_share) + "\n  },\n";
  j += "  \"logging_policy\": {\n"
       "    \"app_home\": \"sessions ~ Poisson(app_rate * trend * (weekend_factor on Sat/Sun)) per local day at "
       "diurnal times; each session (one request_id) shows product_slots products then content_slots contents\",\n"
       "    \"slot\": \"component ~ (popularity pi_popularity | segment pi_segment | uniform pi_random); popularity "
       "draws items with weight item_popularity, segment draws weight "
       "targeting[segment][category]*sqrt(item_popularity), uniform draws uniformly; rejection-sampled (max_tries) "
       "until eligible\",\n"
       "    \"eligible\": \"item channel allows the channel; customer has not opted out of it; tier, region and "
       "validity window; investment products (risk_level set) only when customer risk >= product risk and the "
       "assessment is younger than assessment_validity_days at the time; products not held (holdings or converted); "
       "nothing dismissed; content not already clicked or opened; not twice in one session\",\n"
       "    \"wechat_push\": \"on each local day with probability push_rate * trend, one content push at 09:30, 12:00 "
       "or 18:30 (+ up to 30 min), never before 08:00 or after 21:00; component popularity push_pi_popularity or "
       "segment push_pi_segment; never an item already shown to the customer; service items (account alerts) pushed "
       "with probability service_push_rate per day\",\n"
       "    \"trend\": \"1, or for a leaving customer (churn.csv) (1 - churn_decline) * (1 - 0.9 * (t - (churn_at - "
       "w)) / w) "
       "from churn_at - w to churn_at (w = churn_window_share * (end - start)), then 0\",\n"
       "    \"segment\": \"tier x age band (<25, 25-34, 35-49, 50-59, 60+) x persona (investor, else parent, else "
       "car_owner, else other: from tags)\",\n"
       "    \"product_slots\": " +
       std::to_string(p.product_slots) + ", \"content_slots\": " + std::to_string(p.content_slots) +
       ", \"pi_popularity\": " + Num(p.pi_popularity) + ", \"pi_segment\": " + Num(p.pi_segment) +
       ", \"pi_random\": " + Num(p.pi_random) +
       ",\n"
       "    \"push_pi_popularity\": " +
       Num(p.push_pi_popularity) + ", \"push_pi_segment\": " + Num(p.push_pi_segment) +
       ", \"service_push_rate\": " + Num(p.service_push_rate) + ", \"churn_decline\": " + Num(p.churn_decline) +
       ", \"churn_window_share\": " + Num(static_cast<float>(p.churn_window_share)) +
       ", \"churn_rate\": " + Num(p.churn_rate) + ", \"weekend_factor\": " + Num(p.weekend_factor) +
       ", \"max_tries\": " + std::to_string(p.max_tries) +
       ", \"assessment_validity_days\": " + std::to_string(p.assessment_validity / kMsPerDay) +
       ",\n"
       "    \"segments\": " +
       StrArray(segments) +
       ",\n"
       "    \"categories\": " +
       StrArray(w.categories) +
       ",\n"
       "    \"targeting\": " +
       targeting + "\n  }\n}\n";
  return WriteText(dir / "truth.json", j);
}

Status WriteOracle(const World& w, const OracleResult& r, int64_t oracle_sample, const fs::path& dir) {
  auto rk = [](const RecallAtKs& x) {
    return "{\"recall@10\": " + Num(x.at10) + ", \"recall@20\": " + Num(x.at20) + ", \"recall@50\": " + Num(x.at50) +
           "}";
  };
  std::string j = "{\n";
  j += "  \"holdout_start_ms\": " + std::to_string(w.holdout_start) + ",\n";
  j += "  \"end_ms\": " + std::to_string(w.end) + ",\n";
  j += "  \"holdout_days\": " + std::to_string((w.end - w.holdout_start) / kMsPerDay) + ",\n";
  j += "  \"metric\": {\n"
       "    \"name\": \"recall@k\",\n"
       "    \"k\": [10, 20, 50],\n"
       "    \"positives\": [\"click\", \"convert\", \"push_open\"],\n"
       "    \"definition\": \"holdout_start = end - max(1, days/5) days. For each customer with at least one positive "
       "in [holdout_start, end) on an item they had no positive on before holdout_start, targets = the distinct such "
       "items. The ranking covers all items except those the customer had a positive on before holdout_start. Recall@K "
       "= |top-K of the ranking intersected with targets| / |targets|, averaged over those customers (unweighted).\"\n"
       "  },\n";
  j += "  \"eligible_customers\": " + std::to_string(r.eligible) + ",\n";
  j += "  \"evaluated_customers\": " + std::to_string(r.evaluated) + ",\n";
  j += "  \"sample\": \"uniform without replacement from the eligible customers, seeded by the generator seed; all of "
       "them when there are at most " +
       std::to_string(oracle_sample) + "\",\n";
  j += "  \"oracle_score\": \"1 - exp(-lambda), lambda = E[app_home impressions of i in the holdout] * P(click | "
       "impression) + E[pushes of i in the holdout] * P(push_open | push), both from truth.json without fatigue; "
       "exposures from the logging policy's mixture restricted to the items eligible for the customer (validity and "
       "assessment averaged over the holdout; items held, converted, dismissed or, for content, positive before "
       "holdout_start excluded)\",\n";
  j += "  \"popularity_score\": \"number of positive events on the item before holdout_start (ties: items.csv "
       "order)\",\n";
  j += "  \"attribute_oracle_score\": \"the oracle score with customer_latent replaced by customer_latent_observable: "
       "everything known but each customer's idiosyncratic taste, which only their own history reveals (a reference a "
       "learned model can approach)\",\n";
  j += "  \"oracle\": " + rk(r.oracle) + ",\n";
  j += "  \"attribute_oracle\": " + rk(r.attribute_oracle) + ",\n";
  j += "  \"history_oracle_score\": \"the oracle score with customer_latent replaced by its MAP estimate from "
       "customer_latent_observable (prior mean), the idiosyncratic prior N(0, s_k^2) and the customer's own responses "
       "(click after impression, open after push) before holdout_start under the true response model with fatigue: the "
       "best a model that knew the items, the response model and the logging policy exactly could do with each "
       "customer's attributes and history\",\n";
  j += "  \"history_oracle\": " + rk(r.history_oracle) + ",\n";
  j += "  \"popularity\": " + rk(r.popularity) + "\n}\n";
  return WriteText(dir / "oracle.json", j);
}

}  // namespace qm::synth::gen
