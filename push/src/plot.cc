// The contact-pressure PNG: two panels (7 and 30 days), customers by pushes per customer, before
// (grey) and after (blue) the run. Drawn in memory; text from stb_easy_font, PNG by stb_image_write.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_easy_font.h>
#include <stb/stb_image_write.h>

#include "qianmian/push/push_run.h"

namespace qm::push {

namespace {

struct Canvas {
  int w, h;
  std::vector<uint8_t> px;  // RGB
  Canvas(int width, int height) : w(width), h(height), px(static_cast<size_t>(width) * height * 3, 255) {}
  void Rect(int x0, int y0, int x1, int y1, uint32_t rgb) {
    x0 = std::max(0, x0), y0 = std::max(0, y0), x1 = std::min(w, x1), y1 = std::min(h, y1);
    for (int y = y0; y < y1; ++y) {
      for (int x = x0; x < x1; ++x) {
        uint8_t* p = &px[(static_cast<size_t>(y) * w + x) * 3];
        p[0] = rgb >> 16 & 255, p[1] = rgb >> 8 & 255, p[2] = rgb & 255;
      }
    }
  }
  // Text at (x, y) top-left, scaled by `s` pixels per font unit.
  void Text(int x, int y, const std::string& text, int s = 2, uint32_t rgb = 0x202020) {
    static char buf[60000];
    std::string t = text;
    const int quads = stb_easy_font_print(0, 0, t.data(), nullptr, buf, sizeof buf);
    const float* v = reinterpret_cast<const float*>(buf);
    for (int q = 0; q < quads; ++q) {
      const float* a = v + q * 16;  // 4 vertices of x, y, z, color
      const float qx0 = a[0], qy0 = a[1], qx1 = a[8], qy1 = a[9];
      Rect(x + static_cast<int>(qx0 * s), y + static_cast<int>(qy0 * s), x + static_cast<int>(qx1 * s),
           y + static_cast<int>(qy1 * s), rgb);
    }
  }
  int TextWidth(const std::string& text, int s = 2) {
    std::string t = text;
    return stb_easy_font_width(t.data()) * s;
  }
};

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
  const std::string tmp = path + ".tmp-plot";
  if (!stbi_write_png(tmp.c_str(), W, H, 3, c.px.data(), W * 3) || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::IoError("cannot write plot '" + path + "'");
  }
  return Status::Ok();
}

}  // namespace qm::push
