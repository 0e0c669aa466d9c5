// Module core: the foundation every module stands on. Depends on nothing else of qianmian.
// A small RGB canvas for the PNG figures the commands write (push's contact pressure, report's
// arms): filled rectangles, text from stb_easy_font, PNG by stb_image_write (stb stays in
// canvas.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qianmian/core/status.h"

namespace qm {

class Canvas {
 public:
  Canvas(int width, int height);  // white
  int width() const { return w_; }
  int height() const { return h_; }
  // Fills [x0, x1) x [y0, y1), clipped to the canvas.
  void Rect(int x0, int y0, int x1, int y1, uint32_t rgb);
  // Text with its top-left at (x, y), `scale` pixels per font unit.
  void Text(int x, int y, const std::string& text, int scale = 2, uint32_t rgb = 0x202020);
  int TextWidth(const std::string& text, int scale = 2) const;
  // Writes the PNG through a temporary file renamed into place. IoError naming the file.
  Status WritePng(const std::string& path) const;

 private:
  int w_, h_;
  std::vector<uint8_t> px_;  // RGB, row-major
};

}  // namespace qm
