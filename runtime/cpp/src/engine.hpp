// An engine directory (`ui2c build-engines --target aoti`): identity, policy constants
// and CDF tables from ui2c-aoti.txt / tables.bin, and one runner per graph.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rans.hpp"
#include "runner.hpp"

namespace ui2c {

class Engine {
 public:
  // Throws Error(UI2C_ERR_ENGINE) naming what is missing, foreign or unloadable.
  explicit Engine(const std::string& dir);

  // Runs graph `name` and checks the output count.
  std::vector<at::Tensor> run(const std::string& name, const std::vector<at::Tensor>& inputs, size_t outputs);

  std::string preset, weights, tables, backend;
  int frames = 2, ch_y = 0, ch_z = 0, qp_levels = 64;
  int qp_rows = 0;  // rows of the networks' qp tables: qp_levels + the largest offset (models/ops.py QP_ROWS)
  int min_size = 0, max_size = 0;  // padded H and W the packages' dynamic dims cover
  std::vector<int> qp_offsets;
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
  std::unique_ptr<rans::Tables> y_tables, z_tables;

 private:
  std::map<std::string, std::unique_ptr<StageRunner>> runners_;
};

}  // namespace ui2c
