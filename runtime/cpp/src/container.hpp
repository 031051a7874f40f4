// The UI2C container (runtime/CONTAINER.md is the spec): sequence header, packets,
// payload sub-streams.  The only implementation: the C++ runtime uses it directly and
// Python through the ui2c.entropy._container binding (runtime/container.py keeps only
// the streaming reader and writer around it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "errors.hpp"

namespace ui2c::container {

constexpr uint8_t kVersion = 2;  // 1: three payload sub-streams per packet (z, y0, y1), refused
constexpr size_t kHeaderPrefixBytes = 7;  // magic, version, body length: enough to size the header
constexpr size_t kPacketHeaderBytes = 20;
constexpr uint8_t kFlagReset = 0x01;
// Every buffer of a session is sized from the header before the first packet: a hostile
// header must not be able to ask for terabytes.  Same limits as ui2c.video_io.
constexpr uint32_t kMaxDimension = 16384;
constexpr uint64_t kMaxPixels = uint64_t(1) << 26;  // 8192x8192; 8K UHD fits

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc = 0);

constexpr uint8_t kMaxChromaCode = 3;
// The header's chroma code of a chroma format and siting; throws Error(kArgument) for
// a siting other than centred on 4:4:4.
uint8_t chroma_code(ui2c_chroma chroma, ui2c_siting siting);
ui2c_chroma chroma_of(uint8_t code);
ui2c_siting siting_of(uint8_t code);

struct SequenceHeader {
  uint32_t width = 0, height = 0, frame_count = 0, fps_num = 0, fps_den = 1;
  uint8_t chroma = 0;  // chroma code: 0 = 4:2:0 centred, 1 = 4:4:4, 2 = 4:2:0 left, 3 = 4:2:0 PAL-DV
  std::string preset, weights_fingerprint, tables_fingerprint, backend;

  // Throws Error(kArgument) on values the format cannot hold (the checks parse_header
  // makes, so a writer cannot produce a stream its reader refuses).
  std::vector<uint8_t> to_bytes() const;
};

// The total size of the header that starts with `data`, from its first
// kHeaderPrefixBytes: a streaming reader fetches the header in two reads.  Checks the
// magic, version and body length; fewer than kHeaderPrefixBytes is truncation.
size_t header_size(const uint8_t* data, size_t size);

// Parses a header at the start of `data`; `consumed` gets its size.  Corrupt,
// truncated or unsupported data throws the matching Error.
SequenceHeader parse_header(const uint8_t* data, size_t size, size_t* consumed);

struct Packet {
  uint32_t first_frame = 0;
  std::vector<uint8_t> qps;  // one per frame: 1 or 2 entries
  bool reset = false;
  std::vector<uint8_t> payload;

  std::vector<uint8_t> to_bytes() const;  // throws Error(kArgument) on values the format cannot hold
};

// The fixed 20 bytes before a payload, checked: a reader learns how much payload to
// fetch (and can skip it) before reading it.
struct PacketHead {
  uint32_t first_frame = 0;
  uint8_t frames = 0;
  bool reset = false;
  uint32_t payload_size = 0;
};

// `index` is the expected packet index (checked against the first frame and named in
// messages); nullopt when a reader starts at a byte offset and does not know it.
PacketHead parse_packet_head(const uint8_t* data, size_t size, std::optional<uint32_t> index);

// Parses one packet at `data`; `consumed` gets its size.  Checks of CONTAINER.md §2
// that need only the packet itself: its head, truncation and the CRC.
Packet parse_packet(const uint8_t* data, size_t size, std::optional<uint32_t> index, size_t* consumed);

// The sequence rules across packets (order, reset point first, odd last frame,
// announced count).  `first_frame` > 0 starts at a reset point inside the stream.
// `error` is what a broken rule throws: kCorrupt for a reader, kArgument for a writer,
// whose caller broke it.
class PacketSequence {
 public:
  explicit PacketSequence(uint32_t frame_count, uint32_t first_frame = 0, ui2c_status error = UI2C_ERR_CORRUPT)
      : frame_count_(frame_count), frames_(first_frame), error_(error) {}
  void add(uint32_t first_frame, size_t frames, bool reset);  // throws Error(error)
  void add(const Packet& packet) { add(packet.first_frame, packet.qps.size(), packet.reset); }
  void finish() const;  // throws Error(kTruncated) if announced frames are missing
  // The index the next packet must have (also after a 1-frame packet, so a packet that
  // follows one is refused for that, not for its index).
  uint32_t next_index() const { return (frames_ + 1) / 2; }
  uint32_t frames() const { return frames_; }

 private:
  uint32_t frame_count_;
  uint32_t frames_;
  ui2c_status error_;
  bool last_single_ = false;
};

std::vector<uint8_t> pack_substreams(const std::vector<std::vector<uint8_t>>& streams);
std::vector<std::vector<uint8_t>> unpack_substreams(const uint8_t* data, size_t size);

}  // namespace ui2c::container
