// 8-bit planar YUV frames <-> network tensors, with exactly the float32 arithmetic of
// runtime/video_io.py (frame_to_array + pad, crop + array_to_frame), and Y4M files.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "ui2c/ui2c.h"

namespace ui2c::video {

size_t frame_bytes(uint32_t width, uint32_t height, ui2c_chroma chroma);
// Throws Error(UI2C_ERR_INPUT) on sizes the codec cannot take (video_io.check_dimensions).
void check_dimensions(uint32_t width, uint32_t height, ui2c_chroma chroma);
uint32_t padded(uint32_t size);

// (Y, U, V) / 255 at 4:4:4 (nearest-neighbour chroma), replicate-padded to multiples of 16.
at::Tensor to_network(const uint8_t* frame, uint32_t width, uint32_t height, ui2c_chroma chroma);
// Crop, clamp to [0, 1], x255, 2x2 mean chroma for 4:2:0, round half up.
void from_network(const at::Tensor& x, uint32_t width, uint32_t height, ui2c_chroma chroma, uint8_t* out);

class Y4mReader {
 public:
  explicit Y4mReader(const std::string& path);  // throws Error(UI2C_ERR_IO / UI2C_ERR_INPUT)
  ~Y4mReader();
  bool read(std::vector<uint8_t>& frame);  // false at a clean end of file
  ui2c_video_info info{};

 private:
  std::FILE* f_ = nullptr;
  std::string path_;
  uint32_t index_ = 0;
};

class Y4mWriter {
 public:
  Y4mWriter(const std::string& path, const ui2c_video_info& info);
  ~Y4mWriter();
  void write(const uint8_t* frame, size_t size);
  void close();

 private:
  std::FILE* f_ = nullptr;
  std::string path_;
};

}  // namespace ui2c::video
