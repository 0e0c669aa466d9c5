#include "qianmian/core/progress.h"

#include <unistd.h>
#include <cstdio>
#include <cstdlib>

namespace qm {

namespace {
int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Human(double v) {
  char buf[32];
  if (v >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2fG", v / 1e9);
  else if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e4)
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

std::string Clock(double s) {
  if (s < 0 || s > 1e7) return "--:--";
  int t = static_cast<int>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%d:%02d", t / 60, t % 60);
  return buf;
}
}  // namespace

Progress::Progress(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), start_(std::chrono::steady_clock::now()) {
  total_.store(total);
  tty_ = ::isatty(STDERR_FILENO) != 0;
  const char* env = std::getenv("QM_PROGRESS");
  if (env && std::string(env) == "0") enabled_ = false;
  last_plain_ns_ = NowNs();
}

Progress::~Progress() { Finish(); }

void Progress::Add(uint64_t n) {
  done_.fetch_add(n, std::memory_order_relaxed);
  if (NowNs() >= next_render_ns_.load(std::memory_order_relaxed)) MaybeRender(false);
}

void Progress::Set(uint64_t done) {
  done_.store(done, std::memory_order_relaxed);
  if (NowNs() >= next_render_ns_.load(std::memory_order_relaxed)) MaybeRender(false);
}

void Progress::Finish() { MaybeRender(true); }

void Progress::MaybeRender(bool force) {
  if (!enabled_) return;
  std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
  if (force)
    lock.lock();
  else if (!lock.try_lock())
    return;
  if (finished_) return;
  int64_t now = NowNs();
  next_render_ns_.store(now + 100'000'000, std::memory_order_relaxed);  // at most 10 per second
  uint64_t done = done_.load(), total = total_.load();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = secs > 0 ? done / secs : 0;
  std::string line = label_;
  if (total > 0) {
    double frac = std::min(1.0, static_cast<double>(done) / total);
    int width = 24, fill = static_cast<int>(frac * width);
    line += " [" + std::string(fill, '#') + std::string(width - fill, ' ') + "] ";
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3.0f%%", frac * 100);
    line += pct;
    line += " " + Human(done) + "/" + Human(total) + unit_;
    line += " " + Human(rate) + unit_ + "/s";
    if (force)
      line += " in " + Clock(secs);
    else
      line += " ETA " + Clock(rate > 0 ? (total - std::min(done, total)) / rate : -1);
  } else {
    line += " " + Human(done) + unit_ + " " + Human(rate) + unit_ + "/s";
    if (force) line += " in " + Clock(secs);
  }
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), force ? "\n" : "");
  } else {
    int decile = total > 0 ? static_cast<int>(10.0 * done / total) : -1;
    bool due = force || (total > 0 && decile > last_decile_) || now - last_plain_ns_ > 10'000'000'000;
    if (due) {
      std::fprintf(stderr, "%s\n", line.c_str());
      last_decile_ = decile;
      last_plain_ns_ = now;
    }
  }
  std::fflush(stderr);
  if (force) finished_ = true;
}

}  // namespace qm
