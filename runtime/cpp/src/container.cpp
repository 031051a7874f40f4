// Container format of runtime/CONTAINER.md.  Python raises these messages too (through
// ui2c.entropy._container), and its tests match them: change both together.
#include "container.hpp"

#include <algorithm>
#include <array>

namespace ui2c::container {
namespace {

constexpr uint8_t kMagic[4] = {'U', 'I', '2', 'C'};
constexpr uint8_t kSync[4] = {'U', '2', 'P', 'K'};
constexpr size_t kFixedBytes = 21;   // width, height, count, fps num, fps den, chroma

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

void put32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

uint32_t get32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

// Bytes as text for a message: printable ASCII as is, the rest as \xNN.
std::string quoted(const uint8_t* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s = "'";
  for (size_t i = 0; i < n; ++i) {
    if (p[i] >= 0x20 && p[i] < 0x7F && p[i] != '\\' && p[i] != '\'') {
      s += static_cast<char>(p[i]);
    } else {
      s += std::string("\\x") + kHex[p[i] >> 4] + kHex[p[i] & 15];
    }
  }
  return s + "'";
}

[[noreturn]] void corrupt(const std::string& m) { throw Error(UI2C_ERR_CORRUPT, m); }
[[noreturn]] void truncated(const std::string& m) { throw Error(UI2C_ERR_TRUNCATED, m); }

bool valid_utf8(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n;) {
    const uint8_t c = p[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] >> 6) != 2) return false;
      cp = cp << 6 | (p[i + k] & 0x3F);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

void put_uint(std::vector<uint8_t>& out, size_t v) {
  if (v < (1u << 7)) {
    out.push_back(static_cast<uint8_t>(v));
  } else if (v < (1u << 14)) {
    out.push_back(static_cast<uint8_t>(0x80 | v >> 8));
    out.push_back(static_cast<uint8_t>(v));
  } else if (v < (1u << 30)) {
    put32(out, 0xC0000000u | static_cast<uint32_t>(v));
  } else {
    throw Error(UI2C_ERR_ARGUMENT, std::to_string(v) + " does not fit uint_adaptive (< 2^30)");
  }
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint8_t chroma_code(ui2c_chroma chroma, ui2c_siting siting) {
  static constexpr const char* kSitings[] = {"center", "left", "paldv"};
  if (chroma == UI2C_CHROMA_444) {
    if (siting != UI2C_SITING_CENTER)
      throw Error(UI2C_ERR_ARGUMENT, std::string("siting '") + (unsigned(siting) < 3 ? kSitings[siting] : "?") +
                                         "' does not apply to 4:4:4 frames, which have no chroma siting");
    return 1;
  }
  if (chroma != UI2C_CHROMA_420) throw Error(UI2C_ERR_ARGUMENT, "chroma must be 4:2:0 or 4:4:4");
  switch (siting) {
    case UI2C_SITING_CENTER: return 0;
    case UI2C_SITING_LEFT: return 2;
    case UI2C_SITING_PALDV: return 3;
  }
  throw Error(UI2C_ERR_ARGUMENT, "unknown chroma siting " + std::to_string(static_cast<int>(siting)));
}

ui2c_chroma chroma_of(uint8_t code) { return code == 1 ? UI2C_CHROMA_444 : UI2C_CHROMA_420; }

ui2c_siting siting_of(uint8_t code) {
  return code == 2 ? UI2C_SITING_LEFT : code == 3 ? UI2C_SITING_PALDV : UI2C_SITING_CENTER;
}

namespace {

// What makes a header impossible ("" if nothing): one list of checks for the writer
// (kArgument) and the reader (kCorrupt, after the CRC), so neither accepts what the
// other refuses.
std::string header_problem(const SequenceHeader& h) {
  const std::string size = std::to_string(h.width) + "x" + std::to_string(h.height);
  if (h.width == 0 || h.height == 0 || std::max(h.width, h.height) > kMaxDimension ||
      uint64_t(h.width) * h.height > kMaxPixels)
    return "frame size " + size + " is outside 1.." + std::to_string(kMaxDimension) + " per side and " +
           std::to_string(kMaxPixels) + " pixels";
  if (h.fps_num == 0 || h.fps_den == 0)
    return "frame rate " + std::to_string(h.fps_num) + "/" + std::to_string(h.fps_den) + " is not positive";
  if (h.chroma > kMaxChromaCode) return "unknown chroma code " + std::to_string(h.chroma);
  if (chroma_of(h.chroma) == UI2C_CHROMA_420 && (h.width % 2 || h.height % 2))
    return "4:2:0 frame size " + size + " has an odd dimension";
  const std::pair<const char*, const std::string*> strings[] = {{"preset", &h.preset},
                                                                 {"weights_fingerprint", &h.weights_fingerprint},
                                                                 {"tables_fingerprint", &h.tables_fingerprint},
                                                                 {"backend", &h.backend}};
  for (const auto& [name, s] : strings) {
    if (s->size() > 255) return std::string(name) + " is longer than 255 UTF-8 bytes";
    // Lower-case "utf-8", as Python's codec names itself.
    if (!valid_utf8(reinterpret_cast<const uint8_t*>(s->data()), s->size()))
      return std::string(name) + " is not valid utf-8";
  }
  return "";
}

}  // namespace

std::vector<uint8_t> SequenceHeader::to_bytes() const {
  if (const std::string problem = header_problem(*this); !problem.empty()) throw Error(UI2C_ERR_ARGUMENT, problem);
  std::vector<uint8_t> body;
  for (uint32_t v : {width, height, frame_count, fps_num, fps_den}) put32(body, v);
  body.push_back(chroma);
  for (const std::string* s : {&preset, &weights_fingerprint, &tables_fingerprint, &backend}) {
    body.push_back(static_cast<uint8_t>(s->size()));
    body.insert(body.end(), s->begin(), s->end());
  }
  std::vector<uint8_t> out(kMagic, kMagic + 4);
  out.push_back(kVersion);
  out.push_back(static_cast<uint8_t>(body.size() >> 8));
  out.push_back(static_cast<uint8_t>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
  put32(out, crc32(out.data(), out.size()));
  return out;
}

size_t header_size(const uint8_t* data, size_t size) {
  const size_t n = std::min<size_t>(size, 4);
  if (size == 0 || std::char_traits<char>::compare(reinterpret_cast<const char*>(data),
                                                    reinterpret_cast<const char*>(kMagic), n) != 0)
    corrupt("not a UI2C stream: magic is " + quoted(data, n) + ", expected 'UI2C'");
  if (size < kHeaderPrefixBytes)
    truncated("sequence header truncated: " + std::to_string(size) + " of " + std::to_string(kHeaderPrefixBytes) +
              " bytes");
  if (data[4] != kVersion)
    throw Error(UI2C_ERR_VERSION, "container version " + std::to_string(data[4]) +
                                      " is not supported: this build reads version " + std::to_string(kVersion));
  const size_t length = size_t(data[5]) << 8 | data[6];
  if (length < kFixedBytes + 4) corrupt("sequence header length " + std::to_string(length) + " is too short");
  return kHeaderPrefixBytes + length + 4;
}

SequenceHeader parse_header(const uint8_t* data, size_t size, size_t* consumed) {
  const size_t total = header_size(data, size);
  if (size < total)
    truncated("sequence header truncated: " + std::to_string(size) + " of " + std::to_string(total) + " bytes");
  if (crc32(data, total - 4) != get32(data + total - 4)) corrupt("sequence header CRC mismatch");
  const size_t length = total - kHeaderPrefixBytes - 4;
  const uint8_t* body = data + kHeaderPrefixBytes;
  SequenceHeader h;
  h.width = get32(body);
  h.height = get32(body + 4);
  h.frame_count = get32(body + 8);
  h.fps_num = get32(body + 12);
  h.fps_den = get32(body + 16);
  h.chroma = body[20];
  size_t pos = kFixedBytes;
  for (std::string* s : {&h.preset, &h.weights_fingerprint, &h.tables_fingerprint, &h.backend}) {
    if (pos >= length || pos + 1 + body[pos] > length) corrupt("sequence header: a string runs past the header");
    s->assign(reinterpret_cast<const char*>(body + pos + 1), body[pos]);
    pos += 1 + body[pos];
  }
  if (pos != length) corrupt("sequence header: " + std::to_string(length - pos) + " unexpected trailing bytes");
  if (const std::string problem = header_problem(h); !problem.empty()) corrupt("sequence header: " + problem);
  *consumed = total;
  return h;
}

std::vector<uint8_t> Packet::to_bytes() const {
  if (qps.empty() || qps.size() > 2) throw Error(UI2C_ERR_ARGUMENT, "a packet holds 1 or 2 frames");
  if (first_frame % 2)
    throw Error(UI2C_ERR_ARGUMENT,
                "first frame " + std::to_string(first_frame) + " must be even: packets hold frame pairs");
  if (payload.size() >= (uint64_t(1) << 32)) throw Error(UI2C_ERR_ARGUMENT, "payload exceeds 4 GiB");
  std::vector<uint8_t> out(kSync, kSync + 4);
  put32(out, first_frame);
  out.push_back(static_cast<uint8_t>(qps.size()));
  out.push_back(qps[0]);
  out.push_back(qps.size() == 2 ? qps[1] : 0);
  out.push_back(reset ? kFlagReset : 0);
  put32(out, static_cast<uint32_t>(payload.size()));
  const uint32_t crc = crc32(payload.data(), payload.size(), crc32(out.data() + 4, 12));
  put32(out, crc);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

namespace {

std::string packet_name(std::optional<uint32_t> index) {
  return index ? "packet " + std::to_string(*index) : std::string("packet");
}

}  // namespace

PacketHead parse_packet_head(const uint8_t* data, size_t size, std::optional<uint32_t> index) {
  const std::string where = packet_name(index);
  if (size < kPacketHeaderBytes)
    truncated(where + " truncated: header has " + std::to_string(size) + " of " +
              std::to_string(kPacketHeaderBytes) + " bytes");
  if (std::char_traits<char>::compare(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(kSync), 4))
    corrupt(where + ": bad sync word " + quoted(data, 4));
  PacketHead head;
  head.first_frame = get32(data + 4);
  head.frames = data[8];
  const uint8_t qp1 = data[10], flags = data[11];
  head.reset = flags & kFlagReset;
  head.payload_size = get32(data + 12);
  if (index && head.first_frame != 2 * uint64_t(*index))
    corrupt(where + ": starts at frame " + std::to_string(head.first_frame) + ", expected " +
            std::to_string(2 * uint64_t(*index)));
  if ((head.frames != 1 && head.frames != 2) || (head.frames == 1 && qp1) || (flags & ~kFlagReset) ||
      head.first_frame % 2)
    corrupt(where + ": impossible header (frames " + std::to_string(head.frames) + ", flags " +
            std::to_string(flags) + ")");
  return head;
}

Packet parse_packet(const uint8_t* data, size_t size, std::optional<uint32_t> index, size_t* consumed) {
  const PacketHead head = parse_packet_head(data, size, index);
  const std::string where = packet_name(head.first_frame / 2);  // checked against `index` when given
  if (size - kPacketHeaderBytes < head.payload_size)
    truncated(where + " truncated: payload has " + std::to_string(size - kPacketHeaderBytes) + " of " +
              std::to_string(head.payload_size) + " bytes");
  const uint8_t* payload = data + kPacketHeaderBytes;
  if (crc32(payload, head.payload_size, crc32(data + 4, 12)) != get32(data + 16)) corrupt(where + ": CRC mismatch");
  Packet p;
  p.first_frame = head.first_frame;
  p.qps.assign(data + 9, data + 9 + head.frames);
  p.reset = head.reset;
  p.payload.assign(payload, payload + head.payload_size);
  *consumed = kPacketHeaderBytes + head.payload_size;
  return p;
}

void PacketSequence::add(uint32_t first_frame, size_t frames, bool reset) {
  const std::string where = "packet " + std::to_string(first_frame / 2);
  if (last_single_) throw Error(error_, where + " follows a 1-frame packet, which must be the last one");
  if (first_frame != frames_)
    throw Error(error_, where + ": starts at frame " + std::to_string(first_frame) + ", expected " +
                            std::to_string(frames_));
  if (first_frame == 0 && !reset) throw Error(error_, where + " is not a reset point");
  if (frame_count_ && first_frame + frames > frame_count_)
    throw Error(error_, where + " holds frames beyond the announced " + std::to_string(frame_count_));
  frames_ += static_cast<uint32_t>(frames);
  last_single_ = frames == 1;
}

void PacketSequence::finish() const {
  if (frame_count_ && frames_ != frame_count_)
    truncated("stream ends before packet " + std::to_string(next_index()) + ": " + std::to_string(frames_) + " of " +
              std::to_string(frame_count_) + " announced frames");
}

std::vector<uint8_t> pack_substreams(const std::vector<std::vector<uint8_t>>& streams) {
  std::vector<uint8_t> out;
  put_uint(out, streams.size());
  for (const auto& s : streams) put_uint(out, s.size());
  for (const auto& s : streams) out.insert(out.end(), s.begin(), s.end());
  return out;
}

std::vector<std::vector<uint8_t>> unpack_substreams(const uint8_t* data, size_t size) {
  size_t pos = 0;
  auto get = [&]() -> size_t {
    if (pos >= size) corrupt("payload: sub-stream table runs past the payload");
    static constexpr size_t kSizes[4] = {1, 1, 2, 4};
    const size_t n = kSizes[data[pos] >> 6];
    if (pos + n > size) corrupt("payload: sub-stream table runs past the payload");
    size_t raw = 0;
    for (size_t k = 0; k < n; ++k) raw = raw << 8 | data[pos + k];
    pos += n;
    return raw & ((size_t(1) << (8 * n - (n == 1 ? 1 : 2))) - 1);
  };
  const size_t count = get();
  std::vector<size_t> lengths;
  uint64_t total = 0;
  for (size_t i = 0; i < count; ++i) {
    lengths.push_back(get());
    total += lengths.back();
  }
  if (pos + total != size)
    corrupt("payload: sub-streams need " + std::to_string(pos + total) + " bytes, the payload has " +
            std::to_string(size));
  std::vector<std::vector<uint8_t>> out;
  for (size_t length : lengths) {
    out.emplace_back(data + pos, data + pos + length);
    pos += length;
  }
  return out;
}

}  // namespace ui2c::container
