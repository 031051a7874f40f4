// ui2c-decode: UI2C container in (from ui2c-encode or `ui2c encode --backend aoti`), Y4M out.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

#include "common.hpp"
#include "video.hpp"

namespace t = ui2c::tools;

static const char* kUsage = "--engines DIR [-y] INPUT.ui2c -o OUTPUT.y4m";

int main(int argc, char** argv) {
  const char* prog = "ui2c-decode";
  const t::Args args = t::parse(argc, argv, kUsage, {"--engines", "-o"}, {"-y"});
  if (args.positional.size() != 1 || !args.options.count("-o") || !args.options.count("--engines"))
    t::usage(prog, kUsage, "need --engines, one input and -o");
  return t::run(prog, [&] {
    t::check_output(args.options.at("-o"), args.positional, args.flags.count("-y") != 0);
    std::ifstream in(args.positional[0], std::ios::binary);
    if (!in) throw ui2c::Error(UI2C_ERR_IO, "cannot open " + args.positional[0]);
    const std::vector<uint8_t> stream((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw ui2c::Error(UI2C_ERR_IO, "cannot read " + args.positional[0]);
    ui2c_engine* engine_ptr = nullptr;
    t::check(ui2c_engine_open(args.options.at("--engines").c_str(), &engine_ptr));
    const t::Handle<ui2c_engine> engine(engine_ptr);
    ui2c_decoder* decoder_ptr = nullptr;
    size_t pos = 0, used = 0;
    t::check(ui2c_decoder_open(engine.get(), stream.data(), stream.size(), &used, &decoder_ptr));
    const t::Handle<ui2c_decoder> decoder(decoder_ptr);
    pos += used;
    ui2c_video_info info;
    t::check(ui2c_decoder_info(decoder.get(), &info));
    ui2c::video::Y4mWriter writer(args.options.at("-o"), info);
    uint32_t total = 0;
    while (pos < stream.size()) {
      uint32_t frames = 0;
      t::check(ui2c_decoder_decode(decoder.get(), stream.data() + pos, stream.size() - pos, &used, &frames));
      pos += used;
      for (uint32_t i = 0; i < frames; ++i) {
        const uint8_t* frame;
        size_t size;
        t::check(ui2c_decoder_frame(decoder.get(), i, &frame, &size));
        writer.write(frame, size);
      }
      total += frames;
    }
    t::check(ui2c_decoder_finish(decoder.get()));
    writer.commit();
    std::printf("%s: %u frames %ux%u\n", args.options.at("-o").c_str(), total, info.width, info.height);
  });
}
