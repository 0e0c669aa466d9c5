#include "qianmian/core/canvas.h"

#include <algorithm>
#include <cstdio>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_easy_font.h>
#include <stb/stb_image_write.h>

namespace qm {

Canvas::Canvas(int width, int height) : w_(width), h_(height), px_(static_cast<size_t>(width) * height * 3, 255) {}

void Canvas::Rect(int x0, int y0, int x1, int y1, uint32_t rgb) {
  x0 = std::max(0, x0), y0 = std::max(0, y0), x1 = std::min(w_, x1), y1 = std::min(h_, y1);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      uint8_t* p = &px_[(static_cast<size_t>(y) * w_ + x) * 3];
      p[0] = rgb >> 16 & 255, p[1] = rgb >> 8 & 255, p[2] = rgb & 255;
    }
  }
}

void Canvas::Text(int x, int y, const std::string& text, int scale, uint32_t rgb) {
  std::vector<char> buf(60000);
  std::string t = text;
  const int quads = stb_easy_font_print(0, 0, t.data(), nullptr, buf.data(), static_cast<int>(buf.size()));
  const float* v = reinterpret_cast<const float*>(buf.data());
  for (int q = 0; q < quads; ++q) {
    const float* a = v + q * 16;  // 4 vertices of x, y, z, color
    const float qx0 = a[0], qy0 = a[1], qx1 = a[8], qy1 = a[9];
    Rect(x + static_cast<int>(qx0 * scale), y + static_cast<int>(qy0 * scale), x + static_cast<int>(qx1 * scale),
         y + static_cast<int>(qy1 * scale), rgb);
  }
}

int Canvas::TextWidth(const std::string& text, int scale) const {
  std::string t = text;
  return stb_easy_font_width(t.data()) * scale;
}

Status Canvas::WritePng(const std::string& path) const {
  const std::string tmp = path + ".tmp-plot";
  if (!stbi_write_png(tmp.c_str(), w_, h_, 3, px_.data(), w_ * 3) || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::IoError("cannot write plot '" + path + "'");
  }
  return Status::Ok();
}

}  // namespace qm
