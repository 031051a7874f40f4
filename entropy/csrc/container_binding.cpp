// pybind11 bindings of the C++ container (module ui2c.entropy._container): the one
// implementation of runtime/CONTAINER.md's bytes and checks, shared by libui2c and
// runtime/container.py.  Stream errors surface as the ui2c.errors classes
// (CorruptStreamError, TruncatedStreamError, UnsupportedVersionError); values the
// format cannot hold, from a writer, as ValueError.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <limits>
#include <optional>
#include <stdexcept>
#include <utility>

#include "byte_buffer.hpp"
#include "container.hpp"

namespace py = pybind11;
namespace c = ui2c::container;
using ui2c::py_bytes::Bytes;

namespace {

py::bytes to_py(const std::vector<uint8_t>& v) { return py::bytes(reinterpret_cast<const char*>(v.data()), v.size()); }

// A Python int into an unsigned field of the format.  Python ints are unbounded, so the
// range check is the binding's: out of range is a ValueError naming the field, like
// any other value the format cannot hold (a frame rate of 2^40 / 1, a qp of 300).
template <typename T>
T field(const py::handle& value, const char* name) {
  const py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(value.ptr()));
  if (!index) throw py::error_already_set();  // TypeError: not an integer
  const unsigned long long v = PyLong_AsUnsignedLongLong(index.ptr());
  if (PyErr_Occurred()) {
    PyErr_Clear();  // negative or past 64 bits
  } else if (v <= std::numeric_limits<T>::max()) {
    return static_cast<T>(v);
  }
  throw py::value_error(std::string(name) + " " + py::str(value).cast<std::string>() + " is out of range 0.." +
                        std::to_string(std::numeric_limits<T>::max()));
}

// The names runtime/container.py's SequenceHeader uses for chroma (ui2c.video_io.Chroma
// and Siting); the C API's enums are the C++ side's.
constexpr std::pair<const char*, ui2c_chroma> kChromas[] = {{"420", UI2C_CHROMA_420}, {"444", UI2C_CHROMA_444}};
constexpr std::pair<const char*, ui2c_siting> kSitings[] = {
    {"center", UI2C_SITING_CENTER}, {"left", UI2C_SITING_LEFT}, {"paldv", UI2C_SITING_PALDV}};

template <typename E, size_t N>
E from_name(const std::pair<const char*, E> (&names)[N], const std::string& name, const char* what) {
  for (const auto& [n, e] : names)
    if (name == n) return e;
  throw py::value_error(std::string("unknown ") + what + " '" + name + "'");
}

template <typename E, size_t N>
const char* to_name(const std::pair<const char*, E> (&names)[N], E e) {
  for (const auto& [n, v] : names)
    if (v == e) return n;
  throw std::logic_error("unnamed chroma enum");
}

}  // namespace

PYBIND11_MODULE(_container, m) {
  m.doc() = "The UI2C container (runtime/CONTAINER.md) implemented in C++ (libui2c).";
  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ui2c::Error& e) {
      const char* name = e.code == UI2C_ERR_CORRUPT     ? "CorruptStreamError"
                         : e.code == UI2C_ERR_TRUNCATED ? "TruncatedStreamError"
                         : e.code == UI2C_ERR_VERSION   ? "UnsupportedVersionError"
                                                        : nullptr;
      if (name == nullptr) {
        PyErr_SetString(PyExc_ValueError, e.what());
      } else {
        PyErr_SetString(py::module_::import("ui2c.errors").attr(name).ptr(), e.what());
      }
    }
  });
  m.attr("HEADER_PREFIX_BYTES") = c::kHeaderPrefixBytes;
  m.attr("PACKET_HEADER_BYTES") = c::kPacketHeaderBytes;
  m.attr("MAX_DIMENSION") = c::kMaxDimension;
  m.attr("MAX_PIXELS") = c::kMaxPixels;

  m.def("crc32", [](const py::buffer& data, uint32_t crc) {
    const Bytes b(data);
    return c::crc32(b.data(), b.size(), crc);
  }, py::arg("data"), py::arg("crc") = 0, "zlib's CRC-32 (CONTAINER.md), continuing from crc.");

  m.def(
      "header_to_bytes",
      [](const py::handle& width, const py::handle& height, const py::handle& frame_count, const py::handle& fps_num,
         const py::handle& fps_den, const std::string& chroma, const std::string& siting, std::string preset,
         std::string weights, std::string tables, std::string backend) {
        const c::SequenceHeader h{
            field<uint32_t>(width, "width"),
            field<uint32_t>(height, "height"),
            field<uint32_t>(frame_count, "frame count"),
            field<uint32_t>(fps_num, "frame rate numerator"),
            field<uint32_t>(fps_den, "frame rate denominator"),
            c::chroma_code(from_name(kChromas, chroma, "chroma"), from_name(kSitings, siting, "siting")),
            std::move(preset), std::move(weights), std::move(tables), std::move(backend)};
        return to_py(h.to_bytes());
      },
      py::arg("width"), py::arg("height"), py::arg("frame_count"), py::arg("fps_num"), py::arg("fps_den"),
      py::arg("chroma"), py::arg("siting"), py::arg("preset"), py::arg("weights_fingerprint"),
      py::arg("tables_fingerprint"), py::arg("backend"),
      "The sequence header's bytes; ValueError on a value the format cannot hold.");

  m.def("header_size", [](const py::buffer& prefix) {
    const Bytes b(prefix);
    return c::header_size(b.data(), b.size());
  }, py::arg("prefix"), "Total header size from its first HEADER_PREFIX_BYTES (magic, version, length checked).");

  m.def(
      "parse_header",
      [](const py::buffer& data) {
        const Bytes b(data);
        size_t used;
        const c::SequenceHeader h = c::parse_header(b.data(), b.size(), &used);
        py::dict d;
        d["width"] = h.width, d["height"] = h.height, d["frame_count"] = h.frame_count;
        d["fps_num"] = h.fps_num, d["fps_den"] = h.fps_den;
        d["chroma"] = to_name(kChromas, c::chroma_of(h.chroma));
        d["siting"] = to_name(kSitings, c::siting_of(h.chroma));
        d["preset"] = h.preset, d["weights_fingerprint"] = h.weights_fingerprint;
        d["tables_fingerprint"] = h.tables_fingerprint, d["backend"] = h.backend;
        return py::make_tuple(d, used);
      },
      py::arg("data"), "(fields, bytes consumed) of the sequence header at the start of data.");

  m.def(
      "packet_to_bytes",
      [](const py::handle& first_frame, const py::sequence& qps, bool reset, const py::buffer& payload) {
        c::Packet p{field<uint32_t>(first_frame, "first frame"), {}, reset, Bytes(payload).copy()};
        for (const py::handle q : qps) p.qps.push_back(field<uint8_t>(q, "qp"));
        return to_py(p.to_bytes());
      },
      py::arg("first_frame"), py::arg("qps"), py::arg("reset"), py::arg("payload"),
      "A packet's bytes; ValueError on a value the format cannot hold.");

  m.def(
      "parse_packet_head",
      [](const py::buffer& data, std::optional<uint32_t> index) {
        const Bytes b(data);
        const c::PacketHead h = c::parse_packet_head(b.data(), b.size(), index);
        return py::make_tuple(h.first_frame, h.frames, h.reset, c::kPacketHeaderBytes + h.payload_size);
      },
      py::arg("data"), py::arg("index"),
      "(first_frame, frames, reset, packet size) from a packet's first PACKET_HEADER_BYTES; index None = unknown.");

  m.def(
      "parse_packet",
      [](const py::buffer& data, std::optional<uint32_t> index) {
        const Bytes b(data);
        size_t used;
        const c::Packet p = c::parse_packet(b.data(), b.size(), index, &used);
        return py::make_tuple(p.first_frame, py::tuple(py::cast(p.qps)), p.reset, to_py(p.payload), used);
      },
      py::arg("data"), py::arg("index"), "(first_frame, qps, reset, payload, bytes consumed) of one packet.");

  py::class_<c::PacketSequence>(m, "PacketSequence", "The sequence rules across packets (CONTAINER.md §2).")
      .def(py::init([](uint32_t frame_count, uint32_t first_frame, bool writer) {
             return c::PacketSequence(frame_count, first_frame, writer ? UI2C_ERR_ARGUMENT : UI2C_ERR_CORRUPT);
           }),
           py::arg("frame_count"), py::arg("first_frame") = 0, py::arg("writer") = false,
           "writer=True: a broken rule is the caller's ValueError, not a CorruptStreamError.")
      .def("add", py::overload_cast<uint32_t, size_t, bool>(&c::PacketSequence::add), py::arg("first_frame"),
           py::arg("frames"), py::arg("reset"))
      .def("finish", &c::PacketSequence::finish, "TruncatedStreamError unless the announced frames all came.")
      .def_property_readonly("next_index", &c::PacketSequence::next_index)
      .def_property_readonly("frames", &c::PacketSequence::frames);

  m.def("pack_substreams", [](const std::vector<py::buffer>& streams) {
    std::vector<std::vector<uint8_t>> v;
    for (const auto& s : streams) v.push_back(Bytes(s).copy());
    return to_py(c::pack_substreams(v));
  }, py::arg("streams"), "count, each length (uint_adaptive), then the streams back to back.");

  m.def("unpack_substreams", [](const py::buffer& payload) {
    const Bytes b(payload);
    py::list out;
    for (const auto& sub : c::unpack_substreams(b.data(), b.size())) out.append(to_py(sub));
    return out;
  }, py::arg("payload"), "Inverse of pack_substreams; CorruptStreamError unless the lengths cover every byte.");
}
