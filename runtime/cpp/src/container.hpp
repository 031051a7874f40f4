// The UI2C container (runtime/CONTAINER.md is the spec): sequence header, packets,
// payload sub-streams.  One implementation for the C++ runtime and, through the
// ui2c.entropy._container binding, for Python.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "errors.hpp"

namespace ui2c::container {

constexpr uint8_t kVersion = 1;
constexpr size_t kPacketHeaderBytes = 20;
constexpr uint8_t kFlagReset = 0x01;

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

  // Throws Error(kArgument) on values the format cannot hold.
  std::vector<uint8_t> to_bytes() const;
};

// Parses a header at the start of `data`; `consumed` gets its size.  Corrupt,
// truncated or unsupported data throws the matching Error.
SequenceHeader parse_header(const uint8_t* data, size_t size, size_t* consumed);

struct Packet {
  uint32_t first_frame = 0;
  std::vector<uint8_t> qps;  // one per frame: 1 or 2 entries
  bool reset = false;
  std::vector<uint8_t> payload;

  std::vector<uint8_t> to_bytes() const;
};

// Parses one packet at `data` (`index` = expected packet index, checked); `consumed`
// gets its size.  Checks of CONTAINER.md §2 that need only the packet itself.
Packet parse_packet(const uint8_t* data, size_t size, uint32_t index, size_t* consumed);

// The sequence rules across packets (order, odd last frame, announced count).
class PacketSequence {
 public:
  explicit PacketSequence(uint32_t frame_count) : frame_count_(frame_count) {}
  void add(const Packet& packet);  // throws CorruptError on an impossible sequence
  void finish() const;             // throws TruncatedError if announced frames are missing
  uint32_t next_index() const { return frames_ / 2; }
  uint32_t frames() const { return frames_; }

 private:
  uint32_t frame_count_;
  uint32_t frames_ = 0;
  bool last_single_ = false;
};

std::vector<uint8_t> pack_substreams(const std::vector<std::vector<uint8_t>>& streams);
std::vector<std::vector<uint8_t>> unpack_substreams(const uint8_t* data, size_t size);

}  // namespace ui2c::container
