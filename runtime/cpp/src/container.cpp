// Container format of runtime/CONTAINER.md; messages match the Python reader's.
#include "container.hpp"

#include <array>

namespace ui2c::container {
namespace {

constexpr uint8_t kMagic[4] = {'U', 'I', '2', 'C'};
constexpr uint8_t kSync[4] = {'U', '2', 'P', 'K'};
constexpr size_t kPrefixBytes = 7;   // magic, version, body length
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
  if (chroma == UI2C_CHROMA_444) {
    if (siting != UI2C_SITING_CENTER) throw Error(UI2C_ERR_ARGUMENT, "4:4:4 frames have no chroma siting");
    return 1;
  }
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

std::vector<uint8_t> SequenceHeader::to_bytes() const {
  if (width == 0 || height == 0) throw Error(UI2C_ERR_ARGUMENT, "width and height must be positive");
  if (fps_num == 0 || fps_den == 0) throw Error(UI2C_ERR_ARGUMENT, "frame rate must be a positive rational");
  if (chroma > kMaxChromaCode) throw Error(UI2C_ERR_ARGUMENT, "chroma code must be 0..3 (runtime/CONTAINER.md)");
  std::vector<uint8_t> body;
  for (uint32_t v : {width, height, frame_count, fps_num, fps_den}) put32(body, v);
  body.push_back(chroma);
  for (const std::string* s : {&preset, &weights_fingerprint, &tables_fingerprint, &backend}) {
    if (s->size() > 255) throw Error(UI2C_ERR_ARGUMENT, "header string longer than 255 bytes");
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

SequenceHeader parse_header(const uint8_t* data, size_t size, size_t* consumed) {
  const size_t n = std::min<size_t>(size, 4);
  if (size == 0 || std::char_traits<char>::compare(reinterpret_cast<const char*>(data),
                                                    reinterpret_cast<const char*>(kMagic), n) != 0)
    corrupt("not a UI2C stream: bad magic, expected 'UI2C'");
  if (size < kPrefixBytes)
    truncated("sequence header truncated: " + std::to_string(size) + " of 7 bytes");
  if (data[4] != kVersion)
    throw Error(UI2C_ERR_VERSION, "container version " + std::to_string(data[4]) +
                                      " is not supported: this build reads version 1");
  const size_t length = size_t(data[5]) << 8 | data[6];
  if (length < kFixedBytes + 4) corrupt("sequence header length " + std::to_string(length) + " is too short");
  const size_t total = kPrefixBytes + length + 4;
  if (size < total)
    truncated("sequence header truncated: " + std::to_string(size) + " of " + std::to_string(total) + " bytes");
  if (crc32(data, total - 4) != get32(data + total - 4)) corrupt("sequence header CRC mismatch");
  const uint8_t* body = data + kPrefixBytes;
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
    if (!valid_utf8(body + pos + 1, body[pos])) corrupt("sequence header: a string is not valid UTF-8");
    s->assign(reinterpret_cast<const char*>(body + pos + 1), body[pos]);
    pos += 1 + body[pos];
  }
  if (pos != length) corrupt("sequence header: " + std::to_string(length - pos) + " unexpected trailing bytes");
  if (h.fps_den == 0) corrupt("sequence header: frame rate " + std::to_string(h.fps_num) + "/0");
  if (h.width == 0 || h.height == 0) corrupt("sequence header: width or height is 0");
  if (h.fps_num == 0) corrupt("sequence header: frame rate is 0");
  if (h.chroma > kMaxChromaCode) corrupt("sequence header: unknown chroma code " + std::to_string(h.chroma));
  *consumed = total;
  return h;
}

std::vector<uint8_t> Packet::to_bytes() const {
  if (qps.empty() || qps.size() > 2) throw Error(UI2C_ERR_ARGUMENT, "a packet holds 1 or 2 frames");
  if (first_frame % 2) throw Error(UI2C_ERR_ARGUMENT, "first frame must be even: packets hold frame pairs");
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

Packet parse_packet(const uint8_t* data, size_t size, uint32_t index, size_t* consumed) {
  const std::string where = "packet " + std::to_string(index);
  if (size < kPacketHeaderBytes)
    truncated(where + " truncated: header has " + std::to_string(size) + " of 20 bytes");
  if (std::char_traits<char>::compare(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(kSync), 4))
    corrupt(where + ": bad sync word");
  Packet p;
  p.first_frame = get32(data + 4);
  const uint8_t frames = data[8], qp0 = data[9], qp1 = data[10], flags = data[11];
  const uint32_t length = get32(data + 12);
  if (p.first_frame != 2 * uint64_t(index))
    corrupt(where + ": starts at frame " + std::to_string(p.first_frame) + ", expected " + std::to_string(2 * index));
  if ((frames != 1 && frames != 2) || (frames == 1 && qp1) || (flags & ~kFlagReset))
    corrupt(where + ": impossible header (frames " + std::to_string(frames) + ", flags " + std::to_string(flags) + ")");
  if (size - kPacketHeaderBytes < length)
    truncated(where + " truncated: payload has " + std::to_string(size - kPacketHeaderBytes) + " of " +
              std::to_string(length) + " bytes");
  const uint8_t* payload = data + kPacketHeaderBytes;
  if (crc32(payload, length, crc32(data + 4, 12)) != get32(data + 16)) corrupt(where + ": CRC mismatch");
  p.qps = frames == 2 ? std::vector<uint8_t>{qp0, qp1} : std::vector<uint8_t>{qp0};
  p.reset = flags & kFlagReset;
  p.payload.assign(payload, payload + length);
  *consumed = kPacketHeaderBytes + length;
  return p;
}

void PacketSequence::add(const Packet& packet) {
  const uint32_t index = packet.first_frame / 2;
  if (last_single_) corrupt("packet " + std::to_string(index) + " follows a 1-frame packet, which must be last");
  if (packet.first_frame != frames_)
    corrupt("packet " + std::to_string(index) + ": starts at frame " + std::to_string(packet.first_frame) +
            ", expected " + std::to_string(frames_));
  if (index == 0 && !packet.reset) corrupt("packet 0 is not a reset point");
  if (frame_count_ && packet.first_frame + packet.qps.size() > frame_count_)
    corrupt("packet " + std::to_string(index) + " holds frames beyond the announced " + std::to_string(frame_count_));
  frames_ += static_cast<uint32_t>(packet.qps.size());
  last_single_ = packet.qps.size() == 1;
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
