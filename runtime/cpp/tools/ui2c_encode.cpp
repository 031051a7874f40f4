// ui2c-encode: Y4M in, UI2C container out (the same bytes `ui2c encode` writes with
// the aoti backend), optionally the encoder's reconstruction as Y4M.
#include <climits>
#include <cstdio>
#include <optional>
#include <vector>

#include "common.hpp"
#include "video.hpp"

namespace t = ui2c::tools;

static const char* kUsage =
    "--engines DIR [--qp N] [--reset-interval N] [--scene-cut T] [--drift-guard DB] [--frames N] [--threads N] "
    "[--recon R.y4m] [-y] "
    "INPUT.y4m -o OUTPUT.ui2c";

int main(int argc, char** argv) {
  const char* prog = "ui2c-encode";
  const t::Args args = t::parse(argc, argv, kUsage,
                                {"--engines", "--qp", "--reset-interval", "--scene-cut", "--drift-guard", "--frames", "--threads",
                                 "--recon", "-o"},
                                {"-y"});
  if (args.positional.size() != 1 || !args.options.count("-o") || !args.options.count("--engines"))
    t::usage(prog, kUsage, "need --engines, one input and -o");
  auto opt = [&](const char* k) { return args.options.count(k) ? args.options.at(k) : std::string(); };
  auto integer = [&](const char* k, long lo, long hi) { return t::number(prog, kUsage, opt(k), k, lo, hi); };
  ui2c_encoder_options options;
  ui2c_default_encoder_options(&options);
  if (!opt("--qp").empty()) options.qp = static_cast<int>(integer("--qp", INT_MIN, INT_MAX));  // range: the encoder's message
  if (!opt("--reset-interval").empty()) options.reset_interval = static_cast<uint32_t>(integer("--reset-interval", 0, UINT32_MAX));
  if (!opt("--scene-cut").empty()) options.scene_cut_threshold = t::real(prog, kUsage, opt("--scene-cut"), "--scene-cut");
  if (!opt("--drift-guard").empty()) options.drift_guard_db = t::real(prog, kUsage, opt("--drift-guard"), "--drift-guard");
  if (!opt("--threads").empty()) options.threads = static_cast<int>(integer("--threads", 1, 1024));
  const long max_frames = opt("--frames").empty() ? -1 : integer("--frames", 1, LONG_MAX);
  options.reconstruct = !opt("--recon").empty();

  return t::run(prog, [&] {
    const bool overwrite = args.flags.count("-y") != 0;
    t::check_output(opt("-o"), args.positional, overwrite);
    if (options.reconstruct) t::check_output(opt("--recon"), {args.positional[0], opt("-o")}, overwrite);
    ui2c::video::Y4mReader reader(args.positional[0]);
    std::optional<ui2c::video::Y4mWriter> recon;
    if (options.reconstruct) recon.emplace(opt("--recon"), reader.info);
    ui2c_engine* engine_ptr = nullptr;
    t::check(ui2c_engine_open(opt("--engines").c_str(), &engine_ptr));
    const t::Handle<ui2c_engine> engine(engine_ptr);
    ui2c_encoder* encoder_ptr = nullptr;
    t::check(ui2c_encoder_open(engine.get(), &reader.info, &options, &encoder_ptr));
    const t::Handle<ui2c_encoder> encoder(encoder_ptr);

    ui2c::video::OutputFile out(opt("-o"));
    const uint8_t* data;
    size_t size;
    uint32_t frames = 0, total = 0;
    t::check(ui2c_encoder_header(encoder.get(), 0, &data, &size));
    out.write(data, size);
    auto write_units = [&](ui2c_status status) {
      t::check(status);
      out.write(data, size);
      total += frames;
      for (uint32_t i = 0; recon && i < frames; ++i) {
        const uint8_t* frame;
        size_t bytes;
        t::check(ui2c_encoder_recon(encoder.get(), i, &frame, &bytes));
        recon->write(frame, bytes);
      }
    };
    std::vector<uint8_t> frame;
    long read = 0;
    while ((max_frames < 0 || read < max_frames) && reader.read(frame)) {
      ++read;
      write_units(ui2c_encoder_push(encoder.get(), frame.data(), frame.size(), &data, &size, &frames));
    }
    write_units(ui2c_encoder_flush(encoder.get(), &data, &size, &frames));
    if (read == 0) throw ui2c::Error(UI2C_ERR_INPUT, args.positional[0] + " holds no frames");
    t::check(ui2c_encoder_header(encoder.get(), total, &data, &size));  // patch the frame count
    out.rewind();
    out.write(data, size);
    out.commit();
    if (recon) recon->commit();
    std::printf("%s: %u frames %ux%u\n", opt("-o").c_str(), total, reader.info.width, reader.info.height);
  });
}
