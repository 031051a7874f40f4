// ui2c-decode: UI2C container in (from ui2c-encode or `ui2c encode --backend aoti`), Y4M out.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

#include "common.hpp"
#include "video.hpp"

namespace t = ui2c::tools;

static const char* kUsage = "--engines DIR INPUT.ui2c -o OUTPUT.y4m";

int main(int argc, char** argv) {
  const char* prog = "ui2c-decode";
  const t::Args args = t::parse(argc, argv, kUsage, {"--engines", "-o"});
  if (args.positional.size() != 1 || !args.options.count("-o") || !args.options.count("--engines"))
    t::usage(prog, kUsage, "need --engines, one input and -o");
  std::ifstream in(args.positional[0], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "%s: I/O error: cannot open %s\n", prog, args.positional[0].c_str());
    return static_cast<int>(UI2C_ERR_IO);
  }
  const std::vector<uint8_t> stream((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ui2c_engine* engine = nullptr;
  t::check(prog, ui2c_engine_open(args.options.at("--engines").c_str(), &engine));
  ui2c_decoder* decoder = nullptr;
  size_t pos = 0, used = 0;
  t::check(prog, ui2c_decoder_open(engine, stream.data(), stream.size(), &used, &decoder));
  pos += used;
  ui2c_video_info info;
  t::check(prog, ui2c_decoder_info(decoder, &info));
  const std::string out = args.options.at("-o"), tmp = out + ".tmp";
  uint32_t total = 0;
  try {
    ui2c::video::Y4mWriter writer(tmp, info);
    while (pos < stream.size()) {
      uint32_t frames = 0;
      const ui2c_status status = ui2c_decoder_decode(decoder, stream.data() + pos, stream.size() - pos, &used, &frames);
      if (status != UI2C_OK) std::remove(tmp.c_str());
      t::check(prog, status);
      pos += used;
      for (uint32_t i = 0; i < frames; ++i) {
        const uint8_t* frame;
        size_t size;
        t::check(prog, ui2c_decoder_frame(decoder, i, &frame, &size));
        writer.write(frame, size);
      }
      total += frames;
    }
    const ui2c_status status = ui2c_decoder_finish(decoder);
    if (status != UI2C_OK) std::remove(tmp.c_str());
    t::check(prog, status);
    writer.close();
  } catch (const ui2c::Error& e) {
    std::remove(tmp.c_str());
    std::fprintf(stderr, "%s: %s: %s\n", prog, ui2c_status_name(e.code), e.what());
    return static_cast<int>(e.code);
  }
  if (std::rename(tmp.c_str(), out.c_str()) != 0) {
    std::fprintf(stderr, "%s: I/O error: cannot write %s\n", prog, out.c_str());
    return static_cast<int>(UI2C_ERR_IO);
  }
  std::printf("%s: %u frames %ux%u\n", out.c_str(), total, info.width, info.height);
  ui2c_decoder_close(decoder);
  ui2c_engine_close(engine);
  return 0;
}
