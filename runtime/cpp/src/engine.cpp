// Engine directory loading.  The identity checks mirror the Python sidecar checks
// (engines/aoti.py) at the level the C++ side can afford without a JSON library:
// every package's sidecar must name the manifest's preset, weights and code.
#include "engine.hpp"

#include <torch/version.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "errors.hpp"

namespace ui2c {
namespace fs = std::filesystem;
namespace {

const char* const kGraphs[] = {"adaptor", "context", "encoder", "prior", "spatial_prior", "decoder", "recon",
                               "latent_masks", "latent_encode_step", "latent_step_indexes", "latent_dequantize",
                               "latent_z_indexes"};

[[noreturn]] void fail(const std::string& m) { throw Error(UI2C_ERR_ENGINE, m); }

std::string read_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot read " + path.string());
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string json_string(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\": \"";
  const size_t at = json.find(needle);
  if (at == std::string::npos) return "";
  const size_t start = at + needle.size();
  return json.substr(start, json.find('"', start) - start);
}

std::unique_ptr<rans::Tables> read_tables(const std::string& data, size_t* pos) {
  auto u32 = [&](void) {
    if (*pos + 4 > data.size()) fail("tables.bin is truncated");
    uint32_t v;
    std::memcpy(&v, data.data() + *pos, 4);
    *pos += 4;
    return v;
  };
  const uint32_t rows = u32(), width = u32();
  const size_t count = size_t(rows) * width + 2 * size_t(rows);  // < 2^66 only in theory: 64-bit size_t, 32-bit factors
  if (rows == 0 || width == 0 || count > (data.size() - *pos) / 4) fail("tables.bin is truncated");
  std::vector<int32_t> v(count);
  std::memcpy(v.data(), data.data() + *pos, 4 * count);
  *pos += 4 * count;
  const int32_t* cdf = v.data();
  try {
    return std::make_unique<rans::Tables>(cdf, rows, width, cdf + size_t(rows) * width,
                                          cdf + size_t(rows) * width + rows);
  } catch (const std::exception& e) {
    fail(std::string("tables.bin holds invalid CDF tables: ") + e.what());
  }
}

// A manifest integer, or a one-line engine error naming the field (not std::stoi's "stoi").
int parse_int(const std::string& text, const std::string& key, const fs::path& manifest) {
  try {
    size_t used = 0;
    const int v = std::stoi(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  fail(manifest.string() + ": '" + key + "' is not an integer: '" + text + "'");
}

}  // namespace

Engine::Engine(const std::string& dir) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) fail("engine directory " + dir + " does not exist");
  const fs::path manifest = root / "ui2c-aoti.txt";
  if (!fs::is_regular_file(manifest))
    fail(dir + " has no ui2c-aoti.txt; build it with `ui2c build-engines --target aoti`");
  std::map<std::string, std::string> fields, packages;
  std::istringstream lines(read_file(manifest));
  for (std::string line; std::getline(lines, line);) {
    const size_t space = line.find(' ');
    if (space == std::string::npos) continue;
    const std::string key = line.substr(0, space), value = line.substr(space + 1);
    if (key == "package") {
      const size_t split = value.find(' ');
      packages[value.substr(0, split)] = split == std::string::npos ? "" : value.substr(split + 1);
    } else {
      fields[key] = value;
    }
  }
  for (const char* key : {"format", "preset", "weights", "tables", "backend", "device", "precision", "frames", "ch_y",
                          "ch_z", "code", "torch", "qp_offsets", "qp_levels", "min_size", "max_size"})
    if (!fields.count(key)) fail(manifest.string() + " lacks '" + key + "'");
  if (fields["format"] != "1") fail(manifest.string() + " has format " + fields["format"] + ", this build reads 1");
  const std::string built_torch = fields["torch"].substr(0, fields["torch"].find('+'));
  if (built_torch != TORCH_VERSION)
    fail(dir + " was built with torch " + fields["torch"] + ", this library links torch " TORCH_VERSION
         "; rebuild the packages");
  preset = fields["preset"], weights = fields["weights"], tables = fields["tables"], backend = fields["backend"];
  auto integer = [&](const char* key) { return parse_int(fields[key], key, manifest); };
  frames = integer("frames"), ch_y = integer("ch_y"), ch_z = integer("ch_z"), qp_levels = integer("qp_levels");
  min_size = integer("min_size"), max_size = integer("max_size");
  std::istringstream offsets(fields["qp_offsets"]);
  for (std::string v; std::getline(offsets, v, ',');) qp_offsets.push_back(parse_int(v, "qp_offsets", manifest));
  if (frames != 2 || qp_offsets.empty() || ch_y <= 0 || ch_y % 2 || ch_z <= 0 || qp_levels <= 0 ||
      *std::min_element(qp_offsets.begin(), qp_offsets.end()) < 0)
    fail(manifest.string() + " describes no pair model");
  qp_rows = qp_levels + *std::max_element(qp_offsets.begin(), qp_offsets.end());
  if (fields["device"] == "cuda") device = at::Device(at::kCUDA, 0);
  else if (fields["device"] != "cpu") fail(manifest.string() + ": unknown device " + fields["device"]);
  if (fields["precision"] == "fp16") dtype = at::kHalf;
  else if (fields["precision"] != "fp32") fail(manifest.string() + ": unknown precision " + fields["precision"]);

  // engines/aoti.py _write_tables: "UI2T", the number of table sets (2: y, z), the sets.
  const std::string data = read_file(root / "tables.bin");
  if (data.compare(0, 4, "UI2T") != 0) fail((root / "tables.bin").string() + " is not a UI2C table file");
  size_t pos = 4;
  uint32_t sets = 0;
  if (data.size() >= 8) std::memcpy(&sets, data.data() + 4, 4);
  if (sets != 2) fail((root / "tables.bin").string() + " holds " + std::to_string(sets) + " table sets, not 2 (y, z)");
  pos += 4;
  y_tables = read_tables(data, &pos);
  z_tables = read_tables(data, &pos);
  if (pos != data.size()) fail((root / "tables.bin").string() + " has trailing bytes");

  const std::string kind = backend.substr(0, backend.find('/'));
  for (const char* name : kGraphs) {
    if (!packages.count(name)) fail(manifest.string() + " lists no package for graph '" + name + "'");
    const fs::path package = root / packages[name];
    if (!fs::is_regular_file(package)) fail("package " + package.string() + " is missing");
    const fs::path side = package.string() + ".json";
    if (!fs::is_regular_file(side)) fail("package " + package.string() + " has no sidecar; its origin is unknown");
    const std::string json = read_file(side);
    for (const auto& [key, want] : {std::pair<std::string, std::string>{"preset", preset},
                                    {"weights_fingerprint", weights}, {"code_fingerprint", fields["code"]},
                                    {"precision", fields["precision"]}, {"graph", name}}) {
      const std::string got = json_string(json, key);
      if (got != want)
        fail("package " + package.string() + " is foreign: " + key + " '" + got + "', the directory's is '" + want +
             "'; rebuild with `ui2c build-engines --target aoti`");
    }
    runners_[name] = make_runner(kind, package.string());
  }
}

std::vector<at::Tensor> Engine::run(const std::string& name, const std::vector<at::Tensor>& inputs, size_t outputs) {
  auto out = runners_.at(name)->run(inputs);
  if (out.size() != outputs)
    throw Error(UI2C_ERR_ENGINE, "graph '" + name + "' returned " + std::to_string(out.size()) + " outputs, expected " +
                                     std::to_string(outputs));
  return out;
}

}  // namespace ui2c
