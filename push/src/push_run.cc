#include "qianmian/push/push_run.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include "qianmian/core/file.h"
#include "qianmian/core/progress.h"
#include "qianmian/core/time.h"

namespace qm::push {

namespace fs = std::filesystem;

namespace {

// RFC 4180 quoting of one cell.
void Cell(std::string* out, std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    out->append(s);
    return;
  }
  out->push_back('"');
  for (char c : s) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

// A temporary file beside `path`, renamed over it once complete.
std::string TempPath(const std::string& path) { return path + ".tmp-" + std::to_string(::getpid()); }

// Fails (IoError naming the option) unless `path` can be created and written.
Status CheckWritable(const std::string& path, const char* what) {
  const std::string tmp = TempPath(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return Status::IoError(std::string("cannot write ") + what + " '" + path + "'");
  std::fclose(f);
  std::remove(tmp.c_str());
  return Status::Ok();
}

int Bucket(int pushes) { return std::min(pushes, kPressureBuckets - 1); }

// What one worker saw; merged at the end.
struct Tally {
  int64_t sent_customers = 0, sends = 0, scheduled = 0, service = 0, replayed = 0, skipped = 0;
  std::map<std::string, int64_t> skipped_by;
  std::vector<double> scores;
  std::map<std::string, int64_t> items;
  double expected_clicks = 0, expected_conversions = 0;
  int64_t pressure[2][2][kPressureBuckets] = {};
  double pressure_sum[2][2] = {};

  void Merge(const Tally& o) {
    sent_customers += o.sent_customers;
    sends += o.sends;
    scheduled += o.scheduled;
    service += o.service;
    replayed += o.replayed;
    skipped += o.skipped;
    for (const auto& [k, v] : o.skipped_by) skipped_by[k] += v;
    scores.insert(scores.end(), o.scores.begin(), o.scores.end());
    for (const auto& [k, v] : o.items) items[k] += v;
    expected_clicks += o.expected_clicks;
    expected_conversions += o.expected_conversions;
    for (int a = 0; a < 2; ++a) {
      for (int w = 0; w < 2; ++w) {
        pressure_sum[a][w] += o.pressure_sum[a][w];
        for (int b = 0; b < kPressureBuckets; ++b) pressure[a][w][b] += o.pressure[a][w][b];
      }
    }
  }
};

}  // namespace

Result<PushSummary> RunPush(serving::Engine* engine, const PushRunOptions& o) {
  // Everything checkable is checked before the first reservation.
  if (!o.dry_run && o.run_id.empty()) return Status::InvalidArgument("a push run needs --run-id");
  if (o.per_customer < 1 || o.per_customer > 10) return Status::InvalidArgument("--per-customer must be in 1..10");
  if (o.batch < 1) return Status::InvalidArgument("batch must be >= 1");
  const auto& channels = engine->policy().channels();
  if (!channels.Find(o.channel)) {
    std::string known;
    for (int c = 0; c < channels.size(); ++c) known += (c ? ", " : "") + channels.Name(static_cast<ChannelId>(c));
    return Status::InvalidArgument("unknown channel '" + o.channel + "' (known: " + known + ")");
  }
  for (const auto& r : engine->policy().config().reserve_channels) {
    if (r == o.channel)
      return Status::InvalidArgument(
          "channel '" + o.channel + "' is not a push channel (its contacts are reservations confirmed by impressions)");
  }
  QM_ASSIGN_OR_RETURN(TimeZone tz, TimeZone::Load(o.time_zone));
  const TimeMs now = o.now == kNoTime ? engine->Now() : o.now;  // the wall clock or the data's end
  std::vector<std::string> ids;
  if (o.customers) {
    ids = *o.customers;
  } else if (!o.audience.empty() && o.audience[0] == '@') {
    QM_ASSIGN_OR_RETURN(ids, ReadIdFile(o.audience.substr(1)));
  } else {
    Status st;
    engine->WithDataset([&](const Dataset& ds) {
      auto a = Audience::Compile(o.audience, ds);
      if (!a.ok()) {
        st = a.status();
        return;
      }
      std::vector<uint32_t> idx = a->Select(ds);
      ids.reserve(idx.size());
      for (uint32_t c : idx) ids.push_back(ds.customers[c].id);
    });
    QM_RETURN_IF_ERROR(st);
  }
  if (!o.shard.all() && !o.customers) {
    ids.erase(std::remove_if(ids.begin(), ids.end(), [&](const std::string& id) { return !o.shard.Holds(id); }),
              ids.end());
  }
  if (o.out.empty()) return Status::InvalidArgument("--out is required");
  QM_RETURN_IF_ERROR(CheckWritable(o.out, "--out"));
  if (!o.summary.empty()) QM_RETURN_IF_ERROR(CheckWritable(o.summary, "--summary"));
  if (!o.plot.empty()) QM_RETURN_IF_ERROR(CheckWritable(o.plot, "--plot"));

  PushSummary sum;
  sum.run_id = o.run_id;
  sum.channel = o.channel;
  sum.dry_run = o.dry_run;
  sum.model_version = engine->model_version();
  sum.shard = o.shard.ToString();
  sum.audience = static_cast<int64_t>(ids.size());

  // Customers are handed out in claims of up to `batch`, in audience order. With a budget
  // (max_sends), a claim also holds send capacity (per_customer a customer): a claim never takes
  // more customers than the capacity left, and returns what it did not send; when none is left
  // and no claim is out, the rest of the audience is skipped as "campaign.budget". So the run
  // never sends more than max_sends, whatever the number of threads.
  std::vector<std::pair<size_t, std::string>> parts;  // (first customer, rows), guarded by mu
  const int workers =
      o.threads > 0 ? o.threads : 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const bool budgeted = o.max_sends >= 0;
  size_t cursor = 0;                        // guarded by mu: the next customer to hand out
  int64_t capacity = o.max_sends, out = 0;  // guarded by mu: sends left unclaimed; claims out
  std::condition_variable returned;         // a claim came back
  std::atomic<int64_t> done{0};
  std::atomic<bool> stop{false};
  std::mutex mu;       // guards first_error, total, parts, cursor, capacity, out
  std::mutex observe;  // one on_choice call at a time
  Status first_error;
  Tally total;
  std::unique_ptr<Progress> progress;
  if (o.progress)
    progress = std::make_unique<Progress>(o.dry_run ? "push (dry run)" : "push", ids.size(), " customers");
  const auto t0 = std::chrono::steady_clock::now();
  // The next claim [lo, hi) of customers; false when there is none.
  auto claim = [&](size_t* lo, size_t* hi) {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      if (stop.load() || cursor >= ids.size()) return false;
      size_t k = std::min<size_t>(static_cast<size_t>(o.batch), ids.size() - cursor);
      if (budgeted) k = std::min<size_t>(k, static_cast<size_t>(std::max<int64_t>(0, capacity / o.per_customer)));
      if (k > 0) {
        *lo = cursor;
        *hi = cursor + k;
        cursor += k;
        capacity -= static_cast<int64_t>(k) * o.per_customer;
        ++out;
        return true;
      }
      if (out == 0) {  // the budget is spent: the rest of the audience is skipped
        const int64_t rest = static_cast<int64_t>(ids.size() - cursor);
        total.skipped += rest;
        total.skipped_by["campaign.budget"] += rest;
        done.fetch_add(rest);
        if (progress) progress->Add(static_cast<size_t>(rest));
        cursor = ids.size();
        return false;
      }
      returned.wait(lock);
    }
  };
  auto give_back = [&](size_t lo, size_t hi, int64_t sends) {
    std::lock_guard<std::mutex> lock(mu);
    capacity += static_cast<int64_t>(hi - lo) * o.per_customer - sends;
    --out;
    returned.notify_all();
  };
  auto work = [&] {
    Tally t;
    serving::PushRequest req;
    req.channel = o.channel;
    req.per_customer = o.per_customer;
    req.now_ms = now;
    req.dry_run = o.dry_run;
    req.run_id = o.run_id;
    req.include_service = o.include_service;
    req.campaign = o.campaign;
    std::vector<serving::PushChoice> choices;
    std::string reasons;
    size_t lo = 0, hi = 0;
    while (claim(&lo, &hi)) {
      req.customer_ids.assign(ids.begin() + lo, ids.begin() + hi);
      Status st = engine->Push(req, &choices);
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = st;
        stop = true;
        --out;
        returned.notify_all();
        break;
      }
      if (o.on_choice) {
        std::lock_guard<std::mutex> lock(observe);
        for (size_t k = 0; k < choices.size(); ++k) o.on_choice(req.customer_ids[k], choices[k]);
      }
      std::string part;
      const int64_t sends_before = t.sends;
      for (size_t k = 0; k < choices.size(); ++k) {
        const serving::PushChoice& c = choices[k];
        const int sent = static_cast<int>(c.items.size());
        if (sent == 0) {
          ++t.skipped;
          ++t.skipped_by[c.skipped_by];
        } else {
          ++t.sent_customers;
        }
        if (c.replayed) ++t.replayed;
        const int before[2] = {c.pushes_7d, c.pushes_30d};
        for (int w = 0; w < 2; ++w) {
          ++t.pressure[0][w][Bucket(before[w])];
          ++t.pressure[1][w][Bucket(before[w] + sent)];
          t.pressure_sum[0][w] += before[w];
          t.pressure_sum[1][w] += before[w] + sent;
        }
        for (int j = 0; j < sent; ++j) {
          ++t.sends;
          if (c.send_at[j] > now) ++t.scheduled;
          t.scores.push_back(c.items[j].score);
          reasons.clear();
          for (const auto& r : c.items[j].reasons) {
            if (!reasons.empty()) reasons += ';';
            reasons += r;
            if (r == "exempt:service") ++t.service;
          }
          ++t.items[c.items[j].item_id];
          Cell(&part, req.customer_ids[k]);
          part.push_back(',');
          Cell(&part, c.items[j].item_id);
          part.push_back(',');
          part += FormatIsoLocal(c.send_at[j], tz);
          part.push_back(',');
          Cell(&part, reasons);
          part.push_back('\n');
        }
        t.expected_clicks += c.expected_clicks;
        t.expected_conversions += c.expected_conversions;
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        parts.emplace_back(lo, std::move(part));
      }
      give_back(lo, hi, t.sends - sends_before);
      const int64_t d = done.fetch_add(static_cast<int64_t>(hi - lo)) + static_cast<int64_t>(hi - lo);
      if (progress) progress->Add(hi - lo);
      if (o.stop_after >= 0 && d >= o.stop_after) stop = true;
    }
    std::lock_guard<std::mutex> lock(mu);
    total.Merge(t);
  };
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w) pool.emplace_back(work);
  for (auto& th : pool) th.join();
  if (progress) progress->Finish();
  QM_RETURN_IF_ERROR(first_error);
  if (o.stop_after >= 0 && done.load() < sum.audience) {
    return Status::Unavailable("push run stopped after " + std::to_string(done.load()) + " customers (stop_after)");
  }
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sum.customers_per_second = sum.seconds > 0 ? static_cast<double>(sum.audience) / sum.seconds : 0;

  sum.sent_customers = total.sent_customers;
  sum.sends = total.sends;
  sum.scheduled = total.scheduled;
  sum.service = total.service;
  sum.replayed = total.replayed;
  sum.skipped = total.skipped;
  sum.skipped_by = total.skipped_by;
  sum.items = total.items;
  sum.expected_clicks = total.expected_clicks;
  sum.expected_conversions = total.expected_conversions;
  for (int a = 0; a < 2; ++a) {
    for (int w = 0; w < 2; ++w) {
      std::copy_n(total.pressure[a][w], kPressureBuckets, sum.pressure[a][w]);
      sum.mean_pressure[a][w] = sum.audience > 0 ? total.pressure_sum[a][w] / static_cast<double>(sum.audience) : 0;
    }
  }
  auto& sc = total.scores;
  if (!sc.empty()) {
    std::sort(sc.begin(), sc.end());
    for (double q : {0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0}) {
      sum.score_quantiles.push_back(sc[static_cast<size_t>(std::llround(q * static_cast<double>(sc.size() - 1)))]);
    }
    sum.score_histogram.assign(10, 0);
    const double lo = sc.front(), span = sc.back() - sc.front();
    for (double s : sc) {
      const int b = span > 0 ? std::min(9, static_cast<int>((s - lo) / span * 10)) : 0;
      ++sum.score_histogram[b];
    }
  }

  std::sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> rows = {"customer_id,item_id,scheduled_at,reasons\n"};
  for (auto& [_, part] : parts) rows.push_back(std::move(part));
  QM_RETURN_IF_ERROR(WriteFileAtomically(o.out, rows));
  if (!o.summary.empty()) QM_RETURN_IF_ERROR(WriteFileAtomically(o.summary, {sum.Format()}));
  if (!o.plot.empty()) QM_RETURN_IF_ERROR(WritePressurePlot(sum, o.plot));
  return sum;
}

std::string PushSummary::Format() const {
  std::string s;
  char buf[256];
  auto line = [&](const char* fmt, auto... args) {
    std::snprintf(buf, sizeof buf, fmt, args...);
    s += buf;
    s += '\n';
  };
  line("push run %s on %s%s (model %s)", run_id.empty() ? "(none)" : run_id.c_str(), channel.c_str(),
       dry_run ? " -- DRY RUN, nothing reserved" : "", model_version.c_str());
  if (shard != "1/1") line("  %-34s %12s", "shard of the audience", shard.c_str());
  line("  %-34s %12lld", "audience (customers)", static_cast<long long>(audience));
  line("  %-34s %12lld", "customers sent to", static_cast<long long>(sent_customers));
  line("  %-34s %12lld", "sends (rows of the send list)", static_cast<long long>(sends));
  line("  %-34s %12lld", "  scheduled after quiet hours", static_cast<long long>(scheduled));
  line("  %-34s %12lld", "  service items (exempt)", static_cast<long long>(service));
  line("  %-34s %12lld", "  replayed from this run id", static_cast<long long>(replayed));
  line("  %-34s %12lld", "customers skipped", static_cast<long long>(skipped));
  for (const auto& [rule, n] : skipped_by) line("    %-32s %12lld", rule.c_str(), static_cast<long long>(n));
  if (!score_quantiles.empty()) {
    line("  score of sent items: min %.3f  p10 %.3f  p25 %.3f  median %.3f  p75 %.3f  p90 %.3f  max %.3f",
         score_quantiles[0], score_quantiles[1], score_quantiles[2], score_quantiles[3], score_quantiles[4],
         score_quantiles[5], score_quantiles[6]);
    std::string h = "  score histogram (10 bins min..max):";
    for (int64_t c : score_histogram) h += " " + std::to_string(c);
    s += h + "\n";
  }
  if (sends > 0) {
    line("  %-34s %12.1f", "predicted clicks (sum of p_click)", expected_clicks);
    line("  %-34s %12.2f", "predicted conversions (p_convert)", expected_conversions);
    std::vector<std::pair<int64_t, std::string>> top;
    for (const auto& [item, n] : items) top.emplace_back(-n, item);
    std::sort(top.begin(), top.end());
    std::string t = "  items sent (most first):";
    for (size_t k = 0; k < std::min<size_t>(top.size(), 8); ++k)
      t += " " + top[k].second + " " + std::to_string(-top[k].first);
    if (top.size() > 8) t += " ... (" + std::to_string(top.size()) + " items)";
    s += t + "\n";
  }
  for (const auto& [ch, n] : channel_sends)
    line("    %-32s %12lld", ("sends on " + ch).c_str(), static_cast<long long>(n));
  if (channel_sends.empty()) {  // several channels: no single pressure table
    line("  contact pressure: customers by pushes on %s", channel.c_str());
    std::string head = "    pushes      ";
    for (int b = 0; b < kPressureBuckets; ++b) {
      std::snprintf(buf, sizeof buf, "%9s",
                    b == kPressureBuckets - 1 ? (std::to_string(b) + "+").c_str() : std::to_string(b).c_str());
      head += buf;
    }
    s += head + "       mean\n";
    const char* names[2][2] = {{"7d before ", "30d before"}, {"7d after  ", "30d after "}};
    for (int w = 0; w < 2; ++w) {
      for (int a = 0; a < 2; ++a) {
        std::string row = std::string("    ") + names[a][w] + "  ";
        for (int b = 0; b < kPressureBuckets; ++b) {
          std::snprintf(buf, sizeof buf, "%9lld", static_cast<long long>(pressure[a][w][b]));
          row += buf;
        }
        std::snprintf(buf, sizeof buf, "  %9.3f", mean_pressure[a][w]);
        s += row + buf + "\n";
      }
    }
  }
  line("  %-34s %12.1f s (%.0f customers/s)", "choose + reserve time", seconds, customers_per_second);
  return s;
}

}  // namespace qm::push
