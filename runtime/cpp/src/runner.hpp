// The stage-runner seam: one compiled graph (a model stage or a latent graph) behind
// one interface.  AOTInductor packages are the only implementation shipped; a
// TensorRT runner would be one more subclass plus a branch in make_runner.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

namespace ui2c {

class StageRunner {
 public:
  virtual ~StageRunner() = default;
  // Inputs in the graph's declared order, on the engine's device; outputs likewise.
  virtual std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs) = 0;
};

// `kind` is the engine directory's target ("aoti").  Throws Error(UI2C_ERR_ENGINE).
std::unique_ptr<StageRunner> make_runner(const std::string& kind, const std::string& path);

}  // namespace ui2c
