// 8-bit planar YUV frames <-> network tensors, with exactly the float32 arithmetic of
// runtime/video_io.py (frame_to_array + pad, crop + array_to_frame), and Y4M files.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <cstdio>
#include <memory>
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

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// A file written under a unique hidden name beside PATH and renamed onto it by commit(),
// so a run that fails (or never commits) leaves neither a half-written file nor a changed PATH.  Every
// write is checked: a full disk is an error, not a short file.  Throws Error(UI2C_ERR_IO).
class OutputFile {
 public:
  explicit OutputFile(const std::string& path);
  ~OutputFile();  // uncommitted: removes the temporary file
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  void write(const void* data, size_t size);
  void rewind();  // later writes overwrite from offset 0 (patching a header)
  void commit();

 private:
  [[noreturn]] void fail();
  File f_;
  std::string path_, tmp_;
};

class Y4mReader {
 public:
  explicit Y4mReader(const std::string& path);  // throws Error(UI2C_ERR_IO / UI2C_ERR_INPUT)
  bool read(std::vector<uint8_t>& frame);  // false at a clean end of file
  ui2c_video_info info{};

 private:
  File f_;
  std::string path_;
  uint32_t index_ = 0;
};

// Y4M output through an OutputFile: nothing appears at `path` before commit().
class Y4mWriter {
 public:
  Y4mWriter(const std::string& path, const ui2c_video_info& info);
  void write(const uint8_t* frame, size_t size);
  void commit() { out_.commit(); }

 private:
  OutputFile out_;
};

}  // namespace ui2c::video
