// The C API: handles wrap the C++ sessions; every exception becomes a status code and
// a thread-local one-line message, so no C++ exception crosses the boundary.
#include <c10/util/Exception.h>

#include <cstring>
#include <memory>
#include <new>

#include "container.hpp"
#include "engine.hpp"
#include "errors.hpp"
#include "session.hpp"
#include "ui2c/ui2c.h"
#include "video.hpp"

struct ui2c_engine {
  std::unique_ptr<ui2c::Engine> engine;
};

struct ui2c_encoder {
  ui2c_engine* engine;
  ui2c_video_info info;
  std::unique_ptr<ui2c::EncoderSession> session;
  std::vector<uint8_t> header, packets, recon;
};

struct ui2c_decoder {
  ui2c_engine* engine;
  ui2c::container::SequenceHeader header;
  std::unique_ptr<ui2c::DecoderSession> session;
  std::unique_ptr<ui2c::container::PacketSequence> sequence;
  std::vector<at::Tensor> frames;
  std::vector<uint8_t> frame;
  // Set when a packet failed after it was accepted into the sequence: its reference
  // state is then unknown, and decoding on would give wrong frames without an error.
  ui2c_status failed = UI2C_OK;
  std::string failure;
};

namespace {

thread_local std::string last_error;

ui2c_status fail(ui2c_status code, const std::string& message) {
  last_error = message;
  return code;
}

template <class F>
ui2c_status guard(F&& body) {
  try {
    body();
    last_error.clear();
    return UI2C_OK;
  } catch (const ui2c::Error& e) {
    return fail(e.code, e.what());
  } catch (const ui2c::rans::TruncatedError& e) {
    return fail(UI2C_ERR_TRUNCATED, std::string("entropy stream truncated: ") + e.what());
  } catch (const ui2c::rans::CorruptError& e) {
    return fail(UI2C_ERR_CORRUPT, std::string("entropy stream corrupt: ") + e.what());
  } catch (const ui2c::rans::VersionError& e) {
    return fail(UI2C_ERR_VERSION, std::string("entropy stream: ") + e.what());
  } catch (const c10::Error& e) {
    const std::string m = e.what_without_backtrace();
    return fail(UI2C_ERR_INTERNAL, "torch: " + m.substr(0, m.find('\n')));
  } catch (const std::bad_alloc&) {
    return fail(UI2C_ERR_INTERNAL, "out of memory");
  } catch (const std::exception& e) {
    return fail(UI2C_ERR_INTERNAL, e.what());
  } catch (...) {  // nothing may cross the C boundary
    return fail(UI2C_ERR_INTERNAL, "unknown exception");
  }
}

void require(bool ok, const char* what) {
  if (!ok) throw ui2c::Error(UI2C_ERR_ARGUMENT, what);
}

void emit(ui2c_encoder* e, const std::vector<ui2c::container::Packet>& packets, const uint8_t** data, size_t* size,
          uint32_t* frames) {
  e->packets.clear();
  uint32_t count = 0;
  for (const auto& p : packets) {
    const auto bytes = p.to_bytes();
    e->packets.insert(e->packets.end(), bytes.begin(), bytes.end());
    count += static_cast<uint32_t>(p.qps.size());
  }
  *data = e->packets.data(), *size = e->packets.size();
  if (frames) *frames = count;
}

}  // namespace

extern "C" {

const char* ui2c_last_error(void) { return last_error.c_str(); }

const char* ui2c_status_name(ui2c_status s) {
  static const char* const names[] = {"ok",       "bad argument", "engine error",  "model mismatch", "corrupt stream",
                                      "truncated stream", "unsupported version", "bad input", "I/O error",
                                      "internal error"};
  return s >= UI2C_OK && s <= UI2C_ERR_INTERNAL ? names[s] : "unknown status";
}

void ui2c_default_encoder_options(ui2c_encoder_options* o) {
  if (o) *o = ui2c_encoder_options{32, 0, 0.1f, 0, 1, -1.0f};
}

size_t ui2c_frame_bytes(uint32_t width, uint32_t height, ui2c_chroma chroma) {
  try {
    ui2c::video::check_dimensions(width, height, chroma);
  } catch (const ui2c::Error&) {
    return 0;
  }
  return ui2c::video::frame_bytes(width, height, chroma);
}

ui2c_status ui2c_engine_open(const char* dir, ui2c_engine** out) {
  return guard([&] {
    require(dir && out, "engine directory and output handle must not be null");
    *out = nullptr;
    auto handle = std::make_unique<ui2c_engine>();
    handle->engine = std::make_unique<ui2c::Engine>(dir);
    *out = handle.release();
  });
}

const char* ui2c_engine_backend(const ui2c_engine* e) { return e ? e->engine->backend.c_str() : ""; }

void ui2c_engine_close(ui2c_engine* e) { delete e; }

ui2c_status ui2c_encoder_open(ui2c_engine* engine, const ui2c_video_info* info, const ui2c_encoder_options* options,
                              ui2c_encoder** out) {
  return guard([&] {
    require(engine && info && options && out, "engine, info, options and output handle must not be null");
    *out = nullptr;
    ui2c::video::check_dimensions(info->width, info->height, info->chroma);
    require(info->fps_num > 0 && info->fps_den > 0, "frame rate must be a positive rational");
    ui2c::container::chroma_code(info->chroma, info->siting);  // a siting the header can carry
    require(options->threads >= 1, "threads must be >= 1");
    auto e = std::make_unique<ui2c_encoder>();
    e->engine = engine, e->info = *info;
    ui2c::EncoderOptions o{options->qp, options->reset_interval, options->scene_cut_threshold,
                           options->reconstruct != 0, options->threads, options->drift_guard_db};
    e->session = std::make_unique<ui2c::EncoderSession>(*engine->engine, ui2c::video::padded(info->height),
                                                        ui2c::video::padded(info->width), o);
    *out = e.release();
  });
}

ui2c_status ui2c_encoder_header(ui2c_encoder* e, uint32_t frame_count, const uint8_t** data, size_t* size) {
  return guard([&] {
    require(e && data && size, "encoder, data and size must not be null");
    const ui2c::Engine& g = *e->engine->engine;
    ui2c::container::SequenceHeader h{e->info.width, e->info.height, frame_count, e->info.fps_num, e->info.fps_den,
                                      ui2c::container::chroma_code(e->info.chroma, e->info.siting), g.preset, g.weights, g.tables, g.backend};
    e->header = h.to_bytes();
    *data = e->header.data(), *size = e->header.size();
  });
}

ui2c_status ui2c_encoder_push(ui2c_encoder* e, const uint8_t* frame, size_t frame_size, const uint8_t** data,
                              size_t* size, uint32_t* frames) {
  return guard([&] {
    require(e && frame && data && size, "encoder, frame, data and size must not be null");
    const size_t want = ui2c::video::frame_bytes(e->info.width, e->info.height, e->info.chroma);
    if (frame_size != want)
      throw ui2c::Error(UI2C_ERR_INPUT, "frame has " + std::to_string(frame_size) + " bytes, a " +
                                            std::to_string(e->info.width) + "x" + std::to_string(e->info.height) +
                                            " frame has " + std::to_string(want));
    emit(e, e->session->push(ui2c::video::to_network(frame, e->info.width, e->info.height, e->info.chroma)), data,
         size, frames);
  });
}

ui2c_status ui2c_encoder_flush(ui2c_encoder* e, const uint8_t** data, size_t* size, uint32_t* frames) {
  return guard([&] {
    require(e && data && size, "encoder, data and size must not be null");
    emit(e, e->session->flush(), data, size, frames);
  });
}

ui2c_status ui2c_encoder_recon(ui2c_encoder* e, uint32_t i, const uint8_t** frame, size_t* size) {
  return guard([&] {
    require(e && frame && size, "encoder, frame and size must not be null");
    const auto& recon = e->session->recon();
    if (i >= recon.size())
      throw ui2c::Error(UI2C_ERR_ARGUMENT, "no reconstruction " + std::to_string(i) + " (the last call coded " +
                                               std::to_string(recon.size()) + " frames with reconstruct on)");
    e->recon.resize(ui2c::video::frame_bytes(e->info.width, e->info.height, e->info.chroma));
    ui2c::video::from_network(recon[i], e->info.width, e->info.height, e->info.chroma, e->recon.data());
    *frame = e->recon.data(), *size = e->recon.size();
  });
}

void ui2c_encoder_close(ui2c_encoder* e) { delete e; }

ui2c_status ui2c_decoder_open(ui2c_engine* engine, const uint8_t* data, size_t size, size_t* consumed,
                              ui2c_decoder** out) {
  return guard([&] {
    require(engine && (data || size == 0) && consumed && out, "engine, data, consumed and output must not be null");
    *out = nullptr;
    auto d = std::make_unique<ui2c_decoder>();
    d->engine = engine;
    d->header = ui2c::container::parse_header(data, size, consumed);
    const ui2c::Engine& g = *engine->engine;
    std::string diffs;
    auto compare = [&](const char* name, const std::string& stream, const std::string& ours) {
      if (stream != ours) diffs += std::string(diffs.empty() ? "" : "; ") + name + ": stream has '" + stream +
                                   "', decoder has '" + ours + "'";
    };
    compare("preset", d->header.preset, g.preset);
    compare("weights_fingerprint", d->header.weights_fingerprint, g.weights);
    compare("tables_fingerprint", d->header.tables_fingerprint, g.tables);
    compare("backend", d->header.backend, g.backend);
    if (!diffs.empty())
      throw ui2c::Error(UI2C_ERR_MISMATCH, "stream was produced by a different model setup: " + diffs);
    ui2c::video::check_dimensions(d->header.width, d->header.height, ui2c::container::chroma_of(d->header.chroma));
    d->sequence = std::make_unique<ui2c::container::PacketSequence>(d->header.frame_count);
    d->session = std::make_unique<ui2c::DecoderSession>(*engine->engine,
                                                        ui2c::video::padded(d->header.height),
                                                        ui2c::video::padded(d->header.width), 1);
    *out = d.release();
  });
}

ui2c_status ui2c_decoder_info(const ui2c_decoder* d, ui2c_video_info* info) {
  return guard([&] {
    require(d && info, "decoder and info must not be null");
    *info = ui2c_video_info{d->header.width,   d->header.height, d->header.fps_num, d->header.fps_den,
                            ui2c::container::chroma_of(d->header.chroma), d->header.frame_count,
                            ui2c::container::siting_of(d->header.chroma)};
  });
}

ui2c_status ui2c_decoder_decode(ui2c_decoder* d, const uint8_t* data, size_t size, size_t* consumed,
                                uint32_t* frames) {
  bool accepted = false;  // a packet that fails before this (e.g. truncated) leaves the decoder as it was
  const ui2c_status status = guard([&] {
    require(d && (data || size == 0) && consumed, "decoder, data and consumed must not be null");
    if (d->failed != UI2C_OK)
      throw ui2c::Error(d->failed, "an earlier packet failed (" + d->failure + "); open a new decoder");
    d->frames.clear();
    const auto packet = ui2c::container::parse_packet(data, size, d->sequence->next_index(), consumed);
    accepted = true;
    d->sequence->add(packet);
    d->frames = d->session->decode(packet);
    if (frames) *frames = static_cast<uint32_t>(d->frames.size());
  });
  if (accepted && status != UI2C_OK) d->failed = status, d->failure = last_error;
  return status;
}

ui2c_status ui2c_decoder_frame(ui2c_decoder* d, uint32_t i, const uint8_t** frame, size_t* size) {
  return guard([&] {
    require(d && frame && size, "decoder, frame and size must not be null");
    if (i >= d->frames.size())
      throw ui2c::Error(UI2C_ERR_ARGUMENT, "no frame " + std::to_string(i) + " in the last decoded packet");
    const auto chroma = ui2c::container::chroma_of(d->header.chroma);
    d->frame.resize(ui2c::video::frame_bytes(d->header.width, d->header.height, chroma));
    ui2c::video::from_network(d->frames[i], d->header.width, d->header.height, chroma, d->frame.data());
    *frame = d->frame.data(), *size = d->frame.size();
  });
}

ui2c_status ui2c_decoder_finish(ui2c_decoder* d) {
  return guard([&] {
    require(d, "decoder must not be null");
    if (d->failed != UI2C_OK) throw ui2c::Error(d->failed, "an earlier packet failed (" + d->failure + ")");
    if (d->sequence->frames() == 0) throw ui2c::Error(UI2C_ERR_CORRUPT, "the stream holds no frames");
    d->sequence->finish();
  });
}

void ui2c_decoder_close(ui2c_decoder* d) { delete d; }

}  // extern "C"
