// pybind11 bindings of the C++ container (module ui2c.entropy._container), so Python
// and libui2c share one implementation of runtime/CONTAINER.md.  Errors surface as
// the ui2c.errors classes the Python reader raises.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "container.hpp"

namespace py = pybind11;
namespace c = ui2c::container;

namespace {

const uint8_t* bytes_ptr(std::string_view v) { return reinterpret_cast<const uint8_t*>(v.data()); }

py::bytes to_py(const std::vector<uint8_t>& v) { return py::bytes(reinterpret_cast<const char*>(v.data()), v.size()); }

}  // namespace

PYBIND11_MODULE(_container, m) {
  m.doc() = "The UI2C container (runtime/CONTAINER.md) implemented in C++ (libui2c).";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ui2c::Error& e) {
      py::object errs = py::module_::import("ui2c.errors");
      const char* name = e.code == UI2C_ERR_CORRUPT     ? "CorruptStreamError"
                         : e.code == UI2C_ERR_TRUNCATED ? "TruncatedStreamError"
                         : e.code == UI2C_ERR_VERSION   ? "UnsupportedVersionError"
                                                        : nullptr;
      if (name == nullptr) {
        PyErr_SetString(PyExc_ValueError, e.what());
      } else {
        PyErr_SetString(errs.attr(name).ptr(), e.what());
      }
    }
  });
  m.def("crc32", [](const py::bytes& data, uint32_t crc) {
    const std::string_view v = data;
    return c::crc32(bytes_ptr(v), v.size(), crc);
  }, py::arg("data"), py::arg("crc") = 0);
  m.def(
      "header_to_bytes",
      [](uint32_t width, uint32_t height, uint32_t frame_count, uint32_t fps_num, uint32_t fps_den, uint8_t chroma,
         std::string preset, std::string weights, std::string tables, std::string backend) {
        c::SequenceHeader h{width, height, frame_count, fps_num, fps_den, chroma, preset, weights, tables, backend};
        return to_py(h.to_bytes());
      },
      py::arg("width"), py::arg("height"), py::arg("frame_count"), py::arg("fps_num"), py::arg("fps_den"),
      py::arg("chroma"), py::arg("preset"), py::arg("weights_fingerprint"), py::arg("tables_fingerprint"),
      py::arg("backend"));
  m.def(
      "parse_header",
      [](const py::bytes& data) {
        const std::string_view v = data;
        size_t used;
        const c::SequenceHeader h = c::parse_header(bytes_ptr(v), v.size(), &used);
        py::dict d;
        d["width"] = h.width, d["height"] = h.height, d["frame_count"] = h.frame_count;
        d["fps_num"] = h.fps_num, d["fps_den"] = h.fps_den, d["chroma"] = h.chroma;
        d["preset"] = h.preset, d["weights_fingerprint"] = h.weights_fingerprint;
        d["tables_fingerprint"] = h.tables_fingerprint, d["backend"] = h.backend;
        return py::make_tuple(d, used);
      },
      py::arg("data"), "(fields, bytes consumed) of the sequence header at the start of data.");
  m.def(
      "packet_to_bytes",
      [](uint32_t first_frame, std::vector<uint8_t> qps, bool reset, const py::bytes& payload) {
        const std::string_view v = payload;
        c::Packet p{first_frame, std::move(qps), reset, std::vector<uint8_t>(bytes_ptr(v), bytes_ptr(v) + v.size())};
        return to_py(p.to_bytes());
      },
      py::arg("first_frame"), py::arg("qps"), py::arg("reset"), py::arg("payload"));
  m.def(
      "parse_packet",
      [](const py::bytes& data, uint32_t index) {
        const std::string_view v = data;
        size_t used;
        const c::Packet p = c::parse_packet(bytes_ptr(v), v.size(), index, &used);
        return py::make_tuple(p.first_frame, p.qps, p.reset, to_py(p.payload), used);
      },
      py::arg("data"), py::arg("index"), "(first_frame, qps, reset, payload, bytes consumed) of one packet.");
  m.def("pack_substreams", [](const std::vector<py::bytes>& streams) {
    std::vector<std::vector<uint8_t>> v;
    for (const auto& s : streams) {
      const std::string_view sv = s;
      v.emplace_back(bytes_ptr(sv), bytes_ptr(sv) + sv.size());
    }
    return to_py(c::pack_substreams(v));
  });
  m.def("unpack_substreams", [](const py::bytes& payload) {
    const std::string_view v = payload;
    py::list out;
    for (const auto& s : c::unpack_substreams(bytes_ptr(v), v.size())) out.append(to_py(s));
    return out;
  });
}
