#include "session.hpp"

#include <algorithm>

#include "errors.hpp"

namespace ui2c {

Session::Session(Engine& engine, uint32_t height, uint32_t width, int threads)
    : engine_(engine), height_(height), width_(width), threads_(threads) {
  if (height % 16 || width % 16 || height == 0 || width == 0)
    throw Error(UI2C_ERR_INPUT, "sessions code padded frames (multiples of 16)");
  // outside their dynamic dims a package may run anyway (its guards are not always compiled in)
  if (std::min(height, width) < uint32_t(engine.min_size) || std::max(height, width) > uint32_t(engine.max_size))
    throw Error(UI2C_ERR_INPUT, "padded frame size " + std::to_string(width) + "x" + std::to_string(height) +
                                    " is outside the " + std::to_string(engine.min_size) + ".." +
                                    std::to_string(engine.max_size) + " range the engine's packages were built for");
  const auto opts = at::TensorOptions().dtype(engine.dtype).device(engine.device);
  blank_ref_ = engine.run("adaptor", {at::zeros({1, 3, height, width}, opts)}, 1)[0];
  auto masks = engine.run("latent_masks", {at::zeros({1, engine.ch_y, height / 16, width / 16}, opts)}, 2);
  mask0_ = masks[0], mask1_ = masks[1];
  z_template_ = at::zeros({1, engine.ch_z, (height + 63) / 64, (width + 63) / 64}, opts);
}

at::Tensor Session::qp_tensor(const std::vector<int>& qps) const {
  return at::tensor(std::vector<int32_t>(qps.begin(), qps.end()), at::kInt).to(engine_.device);
}

std::vector<uint8_t> Session::encode_symbols(const at::Tensor& symbols, const at::Tensor& indexes,
                                             const rans::Tables& t) {
  const at::Tensor idx = indexes.to(at::kCPU).contiguous(), sym = symbols.to(at::kCPU).contiguous();
  return rans::encode_skipping(sym.data_ptr<int32_t>(), idx.data_ptr<int32_t>(), idx.numel(), t, threads_,
                               rans::kDefaultBitsPerLane, rans::Layout{});
}

at::Tensor Session::decode_symbols(rans::StreamDecoder& stream, const at::Tensor& indexes, const rans::Tables& t) {
  const at::Tensor idx = indexes.to(at::kCPU).contiguous();
  at::Tensor out = at::empty_like(idx);
  stream.decode_skipping(idx.data_ptr<int32_t>(), idx.numel(), t, threads_, out.data_ptr<int32_t>());
  return out.to(engine_.device);
}

std::vector<at::Tensor> Session::finish(const at::Tensor& part0, const at::Tensor& part1, const at::Tensor& q_dec,
                                        const at::Tensor& ctx, const at::Tensor& qp, size_t frames, bool reconstruct) {
  const at::Tensor y_hat = ((part0 + part1) * q_dec).to(engine_.dtype);
  auto dec = engine_.run("decoder", {y_hat, ctx, qp}, 2);
  current_ = dec[1];
  if (!reconstruct) return {};
  auto rec = engine_.run("recon", {dec[0], qp}, size_t(engine_.frames));
  std::vector<at::Tensor> out;
  for (size_t s = 0; s < frames; ++s) out.push_back(rec[s][0]);
  return out;
}

EncoderSession::EncoderSession(Engine& engine, uint32_t height, uint32_t width, const EncoderOptions& options)
    : Session(engine, height, width, options.threads), options_(options) {
  if (options.qp < 0 || options.qp >= engine.qp_levels)
    throw Error(UI2C_ERR_ARGUMENT, "qp must be in [0, " + std::to_string(engine.qp_levels - 1) + "], got " +
                                       std::to_string(options.qp));
}

std::vector<container::Packet> EncoderSession::push(const at::Tensor& frame) {
  if (frame.dim() != 3 || frame.size(0) != 3 || frame.size(1) != height_ || frame.size(2) != width_)
    throw Error(UI2C_ERR_INPUT, "frame does not match the session's padded size");
  pending_.push_back(frame.to(engine_.device, at::kFloat));
  recon_.clear();
  if (pending_.size() < size_t(engine_.frames)) return {};
  return {code_unit()};
}

std::vector<container::Packet> EncoderSession::flush() {
  recon_.clear();
  if (pending_.empty()) return {};
  return {code_unit()};
}

// runtime/session.py Encoder._host_reset: the first unit, and every unit that holds a
// multiple of reset_interval (units start on even frames, so an odd interval still
// resets on average every reset_interval frames).
bool EncoderSession::host_reset(uint32_t first, size_t count) const {
  if (first == 0) return true;
  const uint64_t n = options_.reset_interval, last = uint64_t(first) + count - 1;
  return n && last / n != (uint64_t(first) - 1) / n;
}

container::Packet EncoderSession::code_unit() {
  std::vector<at::Tensor> frames;
  frames.swap(pending_);
  const uint32_t first = frame_index_;
  const size_t count = frames.size(), slots = size_t(engine_.frames);
  const auto& offsets = engine_.qp_offsets;
  std::vector<int> qps;
  for (size_t s = 0; s < slots; ++s)
    qps.push_back(options_.qp + offsets[(first + (count == slots ? s : 0)) % offsets.size()]);
  const at::Tensor qp = qp_tensor(qps);
  std::vector<at::Tensor> slot_frames;
  for (size_t s = 0; s < slots; ++s) slot_frames.push_back(frames[std::min(s, count - 1)]);
  const at::Tensor pair = at::cat(slot_frames, 0).unsqueeze(0).to(engine_.dtype);

  bool reset = host_reset(first, count) || !current_ || drifted_;
  if (!reset && options_.scene_cut_threshold > 0 && previous_luma_) {
    std::vector<at::Tensor> lumas{*previous_luma_};
    for (const auto& f : frames) lumas.push_back(f[0]);
    for (size_t k = 0; k + 1 < lumas.size(); ++k)
      if ((lumas[k] - lumas[k + 1]).abs().mean().item<float>() > options_.scene_cut_threshold) reset = true;
  }
  previous_luma_ = frames.back()[0];

  auto context = engine_.run("context", {reset ? blank_ref_ : *current_, qp}, 2);
  const at::Tensor &ctx = context[0], &temporal = context[1];
  auto enc = engine_.run("encoder", {pair, ctx, qp}, 2);
  const at::Tensor &y = enc[0], &z_hat = enc[1];
  const at::Tensor z_symbols = z_hat.reshape(-1).to(at::kInt);
  const at::Tensor z_indexes = engine_.run("latent_z_indexes", {z_hat, qp}, 1)[0];
  auto prior = engine_.run("prior", {z_hat, temporal}, 4);
  const at::Tensor &q_dec = prior[0], &params = prior[3];
  const at::Tensor ys = y / q_dec;
  auto step0 = engine_.run("latent_encode_step", {ys, prior[2], prior[1], mask0_}, 3);
  auto spatial = engine_.run("spatial_prior", {step0[2].to(engine_.dtype), params}, 2);
  auto step1 = engine_.run("latent_encode_step", {ys, spatial[1], spatial[0], mask1_}, 3);
  // both y steps in one stream (rans_format.hpp §8), as runtime/session.py writes them
  const at::Tensor y_symbols = at::cat({step0[1].reshape(-1), step1[1].reshape(-1)});
  const at::Tensor y_indexes = at::cat({step0[0].reshape(-1), step1[0].reshape(-1)});
  std::vector<std::vector<uint8_t>> streams{encode_symbols(z_symbols, z_indexes, *engine_.z_tables),
                                            encode_symbols(y_symbols, y_indexes, *engine_.y_tables)};
  const bool guarded = options_.drift_guard_db >= 0;
  recon_ = finish(step0[2], step1[2], q_dec, ctx, qp, count, options_.reconstruct || guarded);
  if (guarded) guard(frames, recon_, reset);
  if (!options_.reconstruct) recon_.clear();
  frame_index_ += static_cast<uint32_t>(count);
  container::Packet packet;
  packet.first_frame = first;
  for (size_t s = 0; s < count; ++s) packet.qps.push_back(static_cast<uint8_t>(qps[s]));
  packet.reset = reset;
  packet.payload = container::pack_substreams(streams);
  return packet;
}

// runtime/session.py Encoder._guard: a unit whose PSNR falls more than drift_guard_db
// under the last reset unit's makes the next unit a reset point (same ATen arithmetic).
void EncoderSession::guard(const std::vector<at::Tensor>& frames, const std::vector<at::Tensor>& recon, bool reset) {
  std::vector<at::Tensor> mse;
  for (size_t s = 0; s < recon.size(); ++s) mse.push_back((recon[s].to(at::kFloat) - frames[s]).pow(2).mean());
  const at::Tensor psnr = -10 * at::log10(at::stack(mse).mean().clamp_min(1e-10));
  if (!reset_psnr_ || reset) reset_psnr_ = psnr;
  drifted_ = (psnr < *reset_psnr_ - options_.drift_guard_db).item<bool>();
}

DecoderSession::DecoderSession(Engine& engine, uint32_t height, uint32_t width, int threads)
    : Session(engine, height, width, threads) {}

// rANS errors name the packet, as runtime/session.py's do; the type (and so the status) stays.
std::vector<at::Tensor> DecoderSession::decode(const container::Packet& packet) {
  const std::string name = "packet " + std::to_string(packet.first_frame / 2);
  try {
    return decode_unit(packet, name);
  } catch (const rans::TruncatedError& e) {
    throw rans::TruncatedError(name + ": " + e.what());
  } catch (const rans::CorruptError& e) {
    throw rans::CorruptError(name + ": " + e.what());
  } catch (const rans::VersionError& e) {
    throw rans::VersionError(name + ": " + e.what());
  }
}

std::vector<at::Tensor> DecoderSession::decode_unit(const container::Packet& packet, const std::string& name) {
  const size_t slots = size_t(engine_.frames);
  const int top = *std::max_element(packet.qps.begin(), packet.qps.end());
  if (top >= engine_.qp_rows)  // would index past the networks' qp tables
    throw Error(UI2C_ERR_CORRUPT, name + ": qp " + std::to_string(top) + " is beyond the model's " +
                                      std::to_string(engine_.qp_rows) + " qp rows");
  std::vector<int> qps(packet.qps.begin(), packet.qps.end());
  if (qps.size() != slots) qps.assign(slots, packet.qps[0]);
  const at::Tensor qp = qp_tensor(qps);
  const auto streams = container::unpack_substreams(packet.payload.data(), packet.payload.size());
  if (streams.size() != 2)
    throw Error(UI2C_ERR_CORRUPT, name + " has " + std::to_string(streams.size()) +
                                      " sub-streams, expected 2 (z, y)");
  if (packet.reset) current_ = blank_ref_;
  if (!current_)
    throw Error(UI2C_ERR_INPUT, "this unit is not a reset point and no reference was decoded before it");
  auto context = engine_.run("context", {*current_, qp}, 2);
  const at::Tensor &ctx = context[0], &temporal = context[1];
  const at::Tensor z_indexes = engine_.run("latent_z_indexes", {z_template_, qp}, 1)[0];
  rans::StreamDecoder z_stream(streams[0].data(), streams[0].size()), y_stream(streams[1].data(), streams[1].size());
  const at::Tensor z_hat =
      decode_symbols(z_stream, z_indexes, *engine_.z_tables).to(engine_.dtype).view(z_template_.sizes());
  z_stream.finish();
  auto prior = engine_.run("prior", {z_hat, temporal}, 4);
  const at::Tensor &q_dec = prior[0], &params = prior[3];
  const auto folded = std::vector<int64_t>{engine_.ch_y / 2, height_ / 16, width_ / 16};
  const at::Tensor idx0 = engine_.run("latent_step_indexes", {prior[1], mask0_}, 1)[0];
  const at::Tensor sym0 = decode_symbols(y_stream, idx0, *engine_.y_tables).view(folded);
  const at::Tensor part0 = engine_.run("latent_dequantize", {sym0, prior[2], mask0_}, 1)[0];
  auto spatial = engine_.run("spatial_prior", {part0.to(engine_.dtype), params}, 2);
  const at::Tensor idx1 = engine_.run("latent_step_indexes", {spatial[0], mask1_}, 1)[0];
  const at::Tensor sym1 = decode_symbols(y_stream, idx1, *engine_.y_tables).view(folded);
  y_stream.finish();
  const at::Tensor part1 = engine_.run("latent_dequantize", {sym1, spatial[1], mask1_}, 1)[0];
  return finish(part0, part1, q_dec, ctx, qp, packet.qps.size(), true);
}

}  // namespace ui2c
