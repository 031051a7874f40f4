// Codec sessions in C++: the pair scheduling and stage order of runtime/session.py,
// with every network and latent op run through the engine's compiled graphs and the
// rANS coder of entropy/csrc, so streams match the Python sessions byte for byte.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <vector>

#include "container.hpp"
#include "engine.hpp"

namespace ui2c {

struct EncoderOptions {
  int qp = 32;
  uint32_t reset_interval = 0;
  float scene_cut_threshold = 0.1f;  // <= 0: off
  bool reconstruct = false;
  int threads = 1;
  float drift_guard_db = -1.0f;  // < 0: off (runtime/session.py's drift_guard_db=None)
};

class Session {
 protected:
  Session(Engine& engine, uint32_t height, uint32_t width, int threads);
  at::Tensor qp_tensor(const std::vector<int>& qps) const;
  std::vector<uint8_t> encode_symbols(const at::Tensor& symbols, const at::Tensor& indexes, const rans::Tables& t);
  // The next segment of a stream (rans_format.hpp §8), on the engine's device.
  at::Tensor decode_symbols(rans::StreamDecoder& stream, const at::Tensor& indexes, const rans::Tables& t);
  // decoder + recon stages; returns the unit's frames (3, H, W) when `reconstruct`.
  std::vector<at::Tensor> finish(const at::Tensor& part0, const at::Tensor& part1, const at::Tensor& q_dec,
                                 const at::Tensor& ctx, const at::Tensor& qp, size_t frames, bool reconstruct);

  Engine& engine_;
  uint32_t height_, width_;
  int threads_;
  at::Tensor blank_ref_, mask0_, mask1_, z_template_;
  std::optional<at::Tensor> current_;
};

class EncoderSession : public Session {
 public:
  EncoderSession(Engine& engine, uint32_t height, uint32_t width, const EncoderOptions& options);
  // Frame: float32 (3, H, W) padded.  Returns the units completed by this call.
  std::vector<container::Packet> push(const at::Tensor& frame);
  std::vector<container::Packet> flush();
  const std::vector<at::Tensor>& recon() const { return recon_; }

 private:
  container::Packet code_unit();
  bool host_reset(uint32_t first, size_t count) const;
  void guard(const std::vector<at::Tensor>& frames, const std::vector<at::Tensor>& recon, bool reset);

  EncoderOptions options_;
  std::vector<at::Tensor> pending_, recon_;
  std::optional<at::Tensor> previous_luma_, reset_psnr_;
  bool drifted_ = false;
  uint32_t frame_index_ = 0;
};

class DecoderSession : public Session {
 public:
  DecoderSession(Engine& engine, uint32_t height, uint32_t width, int threads);
  std::vector<at::Tensor> decode(const container::Packet& packet);

 private:
  std::vector<at::Tensor> decode_unit(const container::Packet& packet, const std::string& name);
};

}  // namespace ui2c
