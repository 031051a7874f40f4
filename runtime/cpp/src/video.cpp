#include "video.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>

#include "container.hpp"
#include "errors.hpp"

namespace ui2c::video {
namespace {

using container::kMaxDimension;  // one limit for frames and stream headers
using container::kMaxPixels;
constexpr size_t kLineMax = 4096;

[[noreturn]] void input_error(const std::string& m) { throw Error(UI2C_ERR_INPUT, m); }

}  // namespace

void check_dimensions(uint32_t width, uint32_t height, ui2c_chroma chroma) {
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  if (width == 0 || height == 0) input_error("frame size " + size + " is not positive");
  if (std::max(width, height) > kMaxDimension || uint64_t(width) * height > kMaxPixels)
    input_error("frame size " + size + " exceeds the supported maximum");
  if (chroma == UI2C_CHROMA_420 && (width % 2 || height % 2))
    input_error("4:2:0 frame size " + size + " has an odd dimension");
  if (chroma != UI2C_CHROMA_420 && chroma != UI2C_CHROMA_444) input_error("chroma must be 4:2:0 or 4:4:4");
}

size_t frame_bytes(uint32_t width, uint32_t height, ui2c_chroma chroma) {
  const size_t luma = size_t(width) * height;
  return chroma == UI2C_CHROMA_420 ? luma + 2 * (size_t(width / 2) * (height / 2)) : 3 * luma;
}

uint32_t padded(uint32_t size) { return (size + 15) / 16 * 16; }

at::Tensor to_network(const uint8_t* frame, uint32_t width, uint32_t height, ui2c_chroma chroma) {
  const uint32_t ph = padded(height), pw = padded(width);
  at::Tensor x = at::empty({3, ph, pw}, at::kFloat);
  float* dst = x.data_ptr<float>();
  const bool sub = chroma == UI2C_CHROMA_420;
  const uint32_t cw = sub ? width / 2 : width;
  const uint8_t* planes[3] = {frame, frame + size_t(width) * height,
                              frame + size_t(width) * height + size_t(cw) * (sub ? height / 2 : height)};
  for (int c = 0; c < 3; ++c) {
    const int shift = c > 0 && sub ? 1 : 0;
    const uint32_t stride = c == 0 ? width : cw;
    for (uint32_t r = 0; r < ph; ++r) {
      const uint32_t sr = std::min(r, height - 1) >> shift;
      float* row = dst + (size_t(c) * ph + r) * pw;
      for (uint32_t col = 0; col < pw; ++col)
        row[col] = float(planes[c][size_t(sr) * stride + (std::min(col, width - 1) >> shift)]) / 255.0f;
    }
  }
  return x;
}

void from_network(const at::Tensor& x, uint32_t width, uint32_t height, ui2c_chroma chroma, uint8_t* out) {
  if (x.dim() != 3 || x.size(0) != 3 || x.size(1) < height || x.size(2) < width)
    throw Error(UI2C_ERR_ENGINE, "a graph returned a frame of shape " + c10::str(x.sizes()) + ", not (3, >= " +
                                     std::to_string(height) + ", >= " + std::to_string(width) + ")");
  const at::Tensor t = x.to(at::kCPU, at::kFloat).contiguous();
  const int64_t ph = t.size(1), pw = t.size(2);
  const float* src = t.data_ptr<float>();
  auto scaled = [&](int c, uint32_t r, uint32_t col) {
    return std::min(std::max(src[(c * ph + r) * pw + col], 0.0f), 1.0f) * 255.0f;
  };
  auto to_byte = [](float p) { return static_cast<uint8_t>(std::floor(std::min(std::max(p, 0.0f), 255.0f) + 0.5f)); };
  uint8_t* dst = out;
  for (uint32_t r = 0; r < height; ++r)
    for (uint32_t col = 0; col < width; ++col) *dst++ = to_byte(scaled(0, r, col));
  for (int c = 1; c < 3; ++c) {
    if (chroma == UI2C_CHROMA_444) {
      for (uint32_t r = 0; r < height; ++r)
        for (uint32_t col = 0; col < width; ++col) *dst++ = to_byte(scaled(c, r, col));
      continue;
    }
    for (uint32_t r = 0; r < height; r += 2)
      for (uint32_t col = 0; col < width; col += 2) {
        const float sum = scaled(c, r, col) + scaled(c, r, col + 1) + scaled(c, r + 1, col) + scaled(c, r + 1, col + 1);
        *dst++ = to_byte(sum / 4.0f);
      }
  }
}

// A Y4M header number: decimal digits only, below 2^32 (std::stoul would wrap or stop early).
static bool parse_u32(const std::string& text, uint32_t* out) {
  if (text.empty() || text.size() > 10 || text.find_first_not_of("0123456789") != std::string::npos) return false;
  const unsigned long long v = std::stoull(text);
  if (v > UINT32_MAX) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

OutputFile::OutputFile(const std::string& path) : path_(path) {
  // ".NAME.XXXXXX" beside the target (fileio.AtomicOutput's scheme): a unique new file,
  // so neither a user's file nor a concurrent run's is ever touched.
  const std::filesystem::path target(path);
  std::string name = (target.parent_path() / ("." + target.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkstemp(name.data());
  if (fd < 0) throw Error(UI2C_ERR_IO, "cannot write " + path + ": " + std::strerror(errno));
  tmp_ = name;
  f_.reset(::fdopen(fd, "wb"));
  if (!f_) {
    ::close(fd);
    std::remove(tmp_.c_str());
    throw Error(UI2C_ERR_IO, "cannot write " + path);
  }
}

OutputFile::~OutputFile() {
  if (!f_) return;
  f_.reset();
  std::remove(tmp_.c_str());
}

void OutputFile::fail() {
  f_.reset();
  std::remove(tmp_.c_str());
  throw Error(UI2C_ERR_IO, "cannot write " + path_);
}

void OutputFile::write(const void* data, size_t size) {
  if (!f_ || std::fwrite(data, 1, size, f_.get()) != size) fail();
}

void OutputFile::rewind() {
  if (!f_ || std::fflush(f_.get()) != 0 || std::fseek(f_.get(), 0, SEEK_SET) != 0) fail();
}

void OutputFile::commit() {
  if (!f_ || std::fflush(f_.get()) != 0 || std::ferror(f_.get())) fail();
  if (std::fclose(f_.release()) != 0) {
    std::remove(tmp_.c_str());
    throw Error(UI2C_ERR_IO, "cannot write " + path_);
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_.c_str());
    throw Error(UI2C_ERR_IO, "cannot write " + path_);
  }
}

Y4mReader::Y4mReader(const std::string& path) : f_(std::fopen(path.c_str(), "rb")), path_(path) {
  if (!f_) throw Error(UI2C_ERR_IO, "cannot open " + path);
  std::string line;
  for (int c; (c = std::fgetc(f_.get())) != EOF && c != '\n';) {
    if (line.size() >= kLineMax) input_error(path + ": Y4M header is not terminated by a newline");
    line.push_back(static_cast<char>(c));
  }
  if (line.rfind("YUV4MPEG2", 0) != 0) input_error(path + ": not a Y4M file");
  std::map<char, std::string> tags;
  size_t pos = 9;
  while (pos < line.size()) {
    const size_t end = std::min(line.find(' ', pos), line.size());
    if (end > pos) tags[line[pos]] = line.substr(pos + 1, end - pos - 1);
    pos = end + 1;
  }
  if (!tags.count('W') || !tags.count('H')) input_error(path + ": Y4M header lacks W or H");
  if (!parse_u32(tags['W'], &info.width) || !parse_u32(tags['H'], &info.height))
    input_error(path + ": Y4M header has a bad size W" + tags['W'] + " H" + tags['H']);
  const std::string c = tags.count('C') ? tags['C'] : "420jpeg";
  info.chroma = UI2C_CHROMA_420, info.siting = UI2C_SITING_CENTER;
  if (c == "444") info.chroma = UI2C_CHROMA_444;
  else if (c == "420mpeg2") info.siting = UI2C_SITING_LEFT;
  else if (c == "420paldv") info.siting = UI2C_SITING_PALDV;
  else if (c != "420" && c != "420jpeg") input_error(path + ": Y4M chroma C" + c + " is not supported (8-bit 4:2:0 or 4:4:4 only)");
  info.fps_num = 25, info.fps_den = 1;
  if (tags.count('F')) {
    const std::string& f = tags['F'];
    const size_t colon = f.find(':');  // "F30" means 30:1, as in video_io.py
    const bool ok = parse_u32(f.substr(0, colon), &info.fps_num) &&
                    (colon == std::string::npos || parse_u32(f.substr(colon + 1), &info.fps_den));
    if (!ok || info.fps_num == 0 || info.fps_den == 0) input_error(path + ": Y4M header has a bad frame rate F" + f);
  }
  if (tags.count('I') && tags['I'] != "p" && tags['I'] != "?")
    input_error(path + ": Y4M interlacing I" + tags['I'] + " is not supported: the codec codes progressive frames");
  check_dimensions(info.width, info.height, info.chroma);
}

bool Y4mReader::read(std::vector<uint8_t>& frame) {
  std::string line;
  int c;
  while ((c = std::fgetc(f_.get())) != EOF && c != '\n') {
    if (line.size() >= kLineMax) input_error(path_ + ": frame " + std::to_string(index_) + " marker is too long");
    line.push_back(static_cast<char>(c));
  }
  if (c == EOF && line.empty()) return false;
  if (line.substr(0, line.find(' ')) != "FRAME")
    input_error(path_ + ": frame " + std::to_string(index_) + " does not start with FRAME");
  frame.resize(frame_bytes(info.width, info.height, info.chroma));
  if (std::fread(frame.data(), 1, frame.size(), f_.get()) != frame.size())
    input_error(path_ + ": frame " + std::to_string(index_) + " truncated");
  ++index_;
  return true;
}

static std::string y4m_chroma_tag(const ui2c_video_info& info) {
  if (info.chroma == UI2C_CHROMA_444) return "444";
  return info.siting == UI2C_SITING_LEFT ? "420mpeg2" : info.siting == UI2C_SITING_PALDV ? "420paldv" : "420jpeg";
}

Y4mWriter::Y4mWriter(const std::string& path, const ui2c_video_info& info) : out_(path) {
  const std::string header = "YUV4MPEG2 W" + std::to_string(info.width) + " H" + std::to_string(info.height) + " F" +
                             std::to_string(info.fps_num) + ":" + std::to_string(info.fps_den) + " Ip A1:1 C" +
                             y4m_chroma_tag(info) + "\n";
  out_.write(header.data(), header.size());
}

void Y4mWriter::write(const uint8_t* frame, size_t size) {
  out_.write("FRAME\n", 6);
  out_.write(frame, size);
}

}  // namespace ui2c::video
