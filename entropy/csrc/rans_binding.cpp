// pybind11 bindings of the CPU rANS coder (module ui2c.entropy._rans).
// Stream errors surface as subclasses of ui2c.errors.TruncatedStreamError /
// CorruptStreamError; bad arguments as ValueError.  The GIL is released while coding.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "byte_buffer.hpp"
#include "rans.hpp"

namespace py = pybind11;
namespace rans = ui2c::rans;
using ui2c::py_bytes::Bytes;

namespace {

using IntArray = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

std::shared_ptr<rans::Tables> make_tables(const IntArray& cdf, const IntArray& lengths, const IntArray& offsets) {
  if (cdf.ndim() != 2 || lengths.ndim() != 1 || offsets.ndim() != 1 || lengths.shape(0) != cdf.shape(0) ||
      offsets.shape(0) != cdf.shape(0))
    throw std::invalid_argument("tables need cdf [N, width], cdf_length [N], offset [N]");
  return std::make_shared<rans::Tables>(cdf.data(), cdf.shape(0), cdf.shape(1), lengths.data(), offsets.data());
}

py::bytes encode(const IntArray& symbols, const IntArray& indexes, const rans::Tables& tables, int num_threads,
                 uint32_t bits_per_lane, uint32_t lanes, bool skip_negative) {
  if (symbols.ndim() != 1 || indexes.ndim() != 1 || symbols.shape(0) != indexes.shape(0))
    throw std::invalid_argument("symbols and cdf_indexes must be 1-D arrays of the same length");
  std::vector<uint8_t> out;
  {
    py::gil_scoped_release release;
    const auto coder = skip_negative ? rans::encode_skipping : rans::encode;
    out = coder(symbols.data(), indexes.data(), symbols.shape(0), tables, num_threads, bits_per_lane, {lanes});
  }
  return py::bytes(reinterpret_cast<const char*>(out.data()), out.size());
}

// `out`, when given, receives the symbols (a caller's pinned buffer, so the copy to a
// GPU needs no staging): a writable C-contiguous int32 array of the indexes' length.
py::array_t<int32_t> output_array(const py::object& out_arg, size_t n) {
  if (out_arg.is_none()) return py::array_t<int32_t>(n);
  auto out = py::array_t<int32_t>::ensure(out_arg);  // no conversion: a converted copy would not be the caller's
  if (!out || out.ptr() != out_arg.ptr() || out.ndim() != 1 || static_cast<size_t>(out.shape(0)) != n ||
      !(out.flags() & py::array::c_style) || !out.writeable())
    throw std::invalid_argument("out must be a writable C-contiguous int32 array of the indexes' length");
  return out;
}

py::array_t<int32_t> decode(const py::buffer& data, const IntArray& indexes, const rans::Tables& tables,
                            int num_threads, bool skip_negative, const py::object& out_arg) {
  if (indexes.ndim() != 1) throw std::invalid_argument("cdf_indexes must be a 1-D array");
  const Bytes stream(data);
  const size_t n = indexes.shape(0);
  py::array_t<int32_t> out = output_array(out_arg, n);
  int32_t* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    const auto coder = skip_negative ? rans::decode_skipping : rans::decode;
    coder(stream.data(), stream.size(), indexes.data(), n, tables, num_threads, dst);
  }
  return out;
}

// rans::StreamDecoder over its own copy of the stream (Python may free the caller's).
class SegmentDecoder {
 public:
  explicit SegmentDecoder(const py::buffer& data) : bytes_(Bytes(data).copy()), decoder_(bytes_.data(), bytes_.size()) {}

  py::array_t<int32_t> next(const IntArray& indexes, const rans::Tables& tables, int num_threads,
                            bool skip_negative, const py::object& out_arg) {
    if (indexes.ndim() != 1) throw std::invalid_argument("cdf_indexes must be a 1-D array");
    const size_t n = indexes.shape(0);
    py::array_t<int32_t> out = output_array(out_arg, n);
    int32_t* dst = out.mutable_data();
    py::gil_scoped_release release;
    if (skip_negative)
      decoder_.decode_skipping(indexes.data(), n, tables, num_threads, dst);
    else
      decoder_.decode(indexes.data(), n, tables, num_threads, dst);
    return out;
  }

  void finish() const { decoder_.finish(); }
  uint64_t symbols() const { return decoder_.symbols(); }
  uint64_t decoded() const { return decoder_.decoded(); }

 private:
  std::vector<uint8_t> bytes_;
  rans::StreamDecoder decoder_;
};

py::tuple parse_header(const py::buffer& data, int64_t n) {
  const Bytes stream(data);
  const rans::Header h = rans::parse_header(stream.data(), stream.size(), n);
  return py::make_tuple(h.n, h.layout.lanes, h.header_bytes, h.byte_begin, h.esc_begin);
}

}  // namespace

PYBIND11_MODULE(_rans, m) {
  m.doc() = "Interleaved rANS CPU coder; the format is specified in csrc/rans_format.hpp.";
  py::object errors = py::module_::import("ui2c.errors");
  py::register_exception<rans::TruncatedError>(m, "TruncatedError", errors.attr("TruncatedStreamError"));
  py::register_exception<rans::CorruptError>(m, "CorruptError", errors.attr("CorruptStreamError"));
  py::register_exception<rans::VersionError>(m, "VersionError", errors.attr("UnsupportedVersionError"));

  py::class_<rans::Tables, std::shared_ptr<rans::Tables>>(m, "Tables")
      .def(py::init(&make_tables), py::arg("cdf"), py::arg("cdf_length"), py::arg("offset"))
      .def("__len__", &rans::Tables::size);

  m.def("encode", &encode, py::arg("symbols"), py::arg("cdf_indexes"), py::arg("tables"), py::arg("num_threads"),
        py::arg("bits_per_lane"), py::arg("lanes") = 0, py::arg("skip_negative") = false);
  m.def("decode", &decode, py::arg("data"), py::arg("cdf_indexes"), py::arg("tables"), py::arg("num_threads"),
        py::arg("skip_negative") = false, py::arg("out") = py::none());
  py::class_<SegmentDecoder>(m, "StreamDecoder", "Decodes one stream segment by segment (rans_format.hpp §8).")
      .def(py::init<const py::buffer&>(), py::arg("data"))
      .def("next", &SegmentDecoder::next, py::arg("cdf_indexes"), py::arg("tables"), py::arg("num_threads"),
           py::arg("skip_negative") = false, py::arg("out") = py::none())
      .def("finish", &SegmentDecoder::finish)
      .def_property_readonly("symbols", &SegmentDecoder::symbols)
      .def_property_readonly("decoded", &SegmentDecoder::decoded);
  m.def("parse_header", &parse_header, py::arg("data"), py::arg("n") = -1,
        "(n, lanes, header_bytes, byte_begin[groups+1], esc_begin[groups+1]) of a checked stream; "
        "n = -1 skips the symbol-count check.");
  m.def(
      "pack_header",
      [](uint64_t n, uint32_t lanes, const std::vector<uint64_t>& bytes, const std::vector<uint64_t>& escapes) {
        const rans::Layout layout{lanes};
        if (bytes.size() != layout.groups() || escapes.size() != layout.groups())
          throw std::invalid_argument("need one byte and escape count per group");
        const auto out = rans::pack_header(n, layout, bytes, escapes);
        return py::bytes(reinterpret_cast<const char*>(out.data()), out.size());
      },
      py::arg("n"), py::arg("lanes"), py::arg("bytes"), py::arg("escapes"));
  m.def(
      "plan_layout",
      [](uint64_t n, uint64_t cost_q16, uint32_t bits_per_lane) {
        return rans::plan_layout(n, cost_q16, bits_per_lane).lanes;
      },
      py::arg("n"), py::arg("cost_q16"), py::arg("bits_per_lane"));
  m.def(
      "freq_cost_table",
      []() {
        constexpr uint32_t total = 1u << rans::kProbBits;
        py::array_t<int64_t> out(total + 1);
        auto* p = out.mutable_data();
        p[0] = 0;
        for (uint32_t f = 1; f <= total; ++f) p[f] = rans::freq_cost_q16(f);
        return out;
      },
      "cost_q16 of every frequency 0..65536 (entry 0 unused), for GPU-side layout planning.");
  m.attr("DEFAULT_BITS_PER_LANE") = rans::kDefaultBitsPerLane;
  m.attr("MAX_LANES") = rans::kMaxLanes;
  m.attr("GROUP_LANES") = rans::kGroupLanes;
  m.attr("STATE_LOW") = rans::kStateLow;
  m.attr("FORMAT_ID") = rans::kFormatId;
}
