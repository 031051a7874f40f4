// StageRunner over torch::inductor::AOTIModelPackageLoader (libtorch of the torch wheel).
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include "errors.hpp"
#include "runner.hpp"

namespace ui2c {
namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

class AotiRunner final : public StageRunner {
 public:
  explicit AotiRunner(const std::string& path) : loader_(path) {}

  std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs) override {
    try {
      return loader_.run(inputs);
    } catch (const c10::Error& e) {
      throw Error(UI2C_ERR_ENGINE, "AOTInductor run failed: " + first_line(e.what_without_backtrace()));
    }
  }

 private:
  torch::inductor::AOTIModelPackageLoader loader_;
};

}  // namespace

std::unique_ptr<StageRunner> make_runner(const std::string& kind, const std::string& path) {
  if (kind != "aoti") throw Error(UI2C_ERR_ENGINE, "no runner for engine target '" + kind + "' in this build");
  try {
    return std::make_unique<AotiRunner>(path);
  } catch (const c10::Error& e) {
    throw Error(UI2C_ERR_ENGINE, "cannot load AOTInductor package " + path + ": " +
                                     first_line(e.what_without_backtrace()));
  }
}

}  // namespace ui2c
