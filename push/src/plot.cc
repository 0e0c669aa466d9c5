// The contact-pressure PNG: two panels (7 and 30 days), customers by pushes per customer, before
// (grey) and after (blue) the run, drawn on a core Canvas.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "qianmian/core/canvas.h"
#include "qianmian/push/push_run.h"

namespace qm::push {

namespace {

std::string Count(int64_t n) {
  if (n >= 1000000) return std::to_string(n / 100000 / 10.0).substr(0, 4) + "M";
  if (n >= 1000) return std::to_string(n / 1000) + "k";
  return std::to_string(n);
}

}  // namespace

Status WritePressurePlot(const PushSummary& s, const std::string& path) {
  const int W = 1200, H = 520;
  Canvas c(W, H);
  c.Text(20, 12,
         "Contact pressure on " + s.channel + ", run " + (s.run_id.empty() ? "(dry run)" : s.run_id) +
             (s.dry_run ? " (dry run)" : "") + ": customers by pushes per customer",
         2);
  c.Rect(W - 400, 50, W - 384, 64, 0xa0a0a0);
  c.Text(W - 378, 50, "before the run", 2);
  c.Rect(W - 150, 50, W - 134, 64, 0x2f6fb5);
  c.Text(W - 128, 50, "after", 2);
  const char* titles[2] = {"last 7 days", "last 30 days"};
  for (int w = 0; w < 2; ++w) {
    const int x0 = 60 + w * (W / 2), x1 = x0 + W / 2 - 90, y0 = 90, y1 = H - 60;
    c.Text(x0, 60, titles[w], 2);
    int64_t peak = 1;
    for (int a = 0; a < 2; ++a) {
      for (int b = 0; b < kPressureBuckets; ++b) peak = std::max(peak, s.pressure[a][w][b]);
    }
    c.Rect(x0, y1, x1, y1 + 2, 0x202020);      // x axis
    c.Rect(x0 - 2, y0, x0, y1 + 2, 0x202020);  // y axis
    c.Text(x0 - 50, y0 - 4, Count(peak), 2);
    c.Text(x0 - 20, y1 - 12, "0", 2);
    const int slot = (x1 - x0) / kPressureBuckets;
    for (int b = 0; b < kPressureBuckets; ++b) {
      const int sx = x0 + b * slot + 4;
      for (int a = 0; a < 2; ++a) {
        const int64_t n = s.pressure[a][w][b];
        const int hgt = static_cast<int>(std::lround(static_cast<double>(n) / peak * (y1 - y0)));
        const int bx = sx + a * (slot - 8) / 2;
        c.Rect(bx, y1 - hgt, bx + (slot - 8) / 2 - 1, y1, a == 0 ? 0xa0a0a0 : 0x2f6fb5);
        if (n > 0 && hgt < 18) c.Text(bx, y1 - hgt - 14 - a * 12, Count(n), 1);  // staggered: no overlap
      }
      const std::string label = b == kPressureBuckets - 1 ? std::to_string(b) + "+" : std::to_string(b);
      c.Text(sx + (slot - 8) / 2 - c.TextWidth(label) / 2, y1 + 8, label, 2);
    }
    c.Text(x0 + (x1 - x0) / 2 - 120, y1 + 32, "pushes per customer", 2);
  }
  return c.WritePng(path);
}

}  // namespace qm::push
