// ui2c-encode: Y4M in, UI2C container out (the same bytes `ui2c encode` writes with
// the aoti backend), optionally the encoder's reconstruction as Y4M.
#include <cstdio>
#include <memory>
#include <vector>

#include "common.hpp"
#include "video.hpp"

namespace t = ui2c::tools;

static const char* kUsage =
    "--engines DIR [--qp N] [--reset-interval N] [--scene-cut T] [--drift-guard DB] [--frames N] [--threads N] "
    "[--recon R.y4m] "
    "INPUT.y4m -o OUTPUT.ui2c";

int main(int argc, char** argv) {
  const char* prog = "ui2c-encode";
  const t::Args args = t::parse(argc, argv, kUsage,
                                {"--engines", "--qp", "--reset-interval", "--scene-cut", "--drift-guard", "--frames", "--threads",
                                 "--recon", "-o"});
  if (args.positional.size() != 1 || !args.options.count("-o") || !args.options.count("--engines"))
    t::usage(prog, kUsage, "need --engines, one input and -o");
  auto opt = [&](const char* k) { return args.options.count(k) ? args.options.at(k) : std::string(); };
  ui2c_encoder_options options;
  ui2c_default_encoder_options(&options);
  if (!opt("--qp").empty()) options.qp = static_cast<int>(t::number(prog, kUsage, opt("--qp"), "--qp"));
  if (!opt("--reset-interval").empty())
    options.reset_interval = static_cast<uint32_t>(t::number(prog, kUsage, opt("--reset-interval"), "--reset-interval"));
  if (!opt("--scene-cut").empty()) options.scene_cut_threshold = std::strtof(opt("--scene-cut").c_str(), nullptr);
  if (!opt("--drift-guard").empty()) options.drift_guard_db = std::strtof(opt("--drift-guard").c_str(), nullptr);
  if (!opt("--threads").empty()) options.threads = static_cast<int>(t::number(prog, kUsage, opt("--threads"), "--threads"));
  const long max_frames = opt("--frames").empty() ? -1 : t::number(prog, kUsage, opt("--frames"), "--frames");
  options.reconstruct = !opt("--recon").empty();

  std::unique_ptr<ui2c::video::Y4mReader> reader;
  std::unique_ptr<ui2c::video::Y4mWriter> recon;
  try {
    reader = std::make_unique<ui2c::video::Y4mReader>(args.positional[0]);
    if (options.reconstruct) recon = std::make_unique<ui2c::video::Y4mWriter>(opt("--recon"), reader->info);
  } catch (const ui2c::Error& e) {
    std::fprintf(stderr, "%s: %s: %s\n", prog, ui2c_status_name(e.code), e.what());
    return static_cast<int>(e.code);
  }
  ui2c_engine* engine = nullptr;
  t::check(prog, ui2c_engine_open(opt("--engines").c_str(), &engine));
  ui2c_encoder* encoder = nullptr;
  t::check(prog, ui2c_encoder_open(engine, &reader->info, &options, &encoder));

  const std::string out = opt("-o"), tmp = out + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) {
    std::fprintf(stderr, "%s: I/O error: cannot write %s\n", prog, tmp.c_str());
    return static_cast<int>(UI2C_ERR_IO);
  }
  const uint8_t* data;
  size_t size;
  uint32_t frames = 0, total = 0;
  t::check(prog, ui2c_encoder_header(encoder, 0, &data, &size));
  std::fwrite(data, 1, size, f);
  auto write_units = [&](ui2c_status status) {
    if (status != UI2C_OK) std::remove(tmp.c_str());
    t::check(prog, status);
    std::fwrite(data, 1, size, f);
    total += frames;
    for (uint32_t i = 0; recon && i < frames; ++i) {
      const uint8_t* frame;
      size_t bytes;
      t::check(prog, ui2c_encoder_recon(encoder, i, &frame, &bytes));
      recon->write(frame, bytes);
    }
  };
  std::vector<uint8_t> frame;
  long read = 0;
  try {
    while ((max_frames < 0 || read < max_frames) && reader->read(frame)) {
      ++read;
      write_units(ui2c_encoder_push(encoder, frame.data(), frame.size(), &data, &size, &frames));
    }
  } catch (const ui2c::Error& e) {
    std::remove(tmp.c_str());
    std::fprintf(stderr, "%s: %s: %s\n", prog, ui2c_status_name(e.code), e.what());
    return static_cast<int>(e.code);
  }
  write_units(ui2c_encoder_flush(encoder, &data, &size, &frames));
  if (read == 0) {
    std::remove(tmp.c_str());
    std::fprintf(stderr, "%s: bad input: %s holds no frames\n", prog, args.positional[0].c_str());
    return static_cast<int>(UI2C_ERR_INPUT);
  }
  t::check(prog, ui2c_encoder_header(encoder, total, &data, &size));  // patch the frame count
  std::fseek(f, 0, SEEK_SET);
  std::fwrite(data, 1, size, f);
  if (std::fclose(f) != 0 || std::rename(tmp.c_str(), out.c_str()) != 0) {
    std::fprintf(stderr, "%s: I/O error: cannot write %s\n", prog, out.c_str());
    return static_cast<int>(UI2C_ERR_IO);
  }
  if (recon) recon->close();
  std::printf("%s: %u frames %ux%u\n", out.c_str(), total, reader->info.width, reader->info.height);
  ui2c_encoder_close(encoder);
  ui2c_engine_close(engine);
  return 0;
}
