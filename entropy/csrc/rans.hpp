// CPU coder for the interleaved rANS format of rans_format.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "rans_format.hpp"

namespace ui2c::rans {

// The data ends before the structure it announces.
struct TruncatedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The data is inconsistent with the format or with the caller's symbol count.
struct CorruptError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The data is a stream of another format version (the message names it).
struct VersionError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What the encoder needs per (table, slot): start, frequency and an exact
// reciprocal, so that x / f = mulhi64(x, rcp) for every 32-bit x (f >= 2).
struct EncSlot {
  uint64_t rcp;
  uint32_t start;
  uint32_t freq;
};

// Validated CDF tables in the layouts the hot loops want.  Built once per table set.
class Tables {
 public:
  // cdf: [num, width] row-major int32; lengths, offsets: [num].  Throws
  // std::invalid_argument on tables that are not strictly increasing 0 .. 2^16.
  Tables(const int32_t* cdf, size_t num, size_t width, const int32_t* lengths, const int32_t* offsets);

  size_t size() const { return lengths_.size(); }
  uint32_t length(size_t t) const { return lengths_[t]; }
  int32_t offset(size_t t) const { return offsets_[t]; }
  const uint32_t* row(size_t t) const { return cdf_.data() + t * width_; }
  const EncSlot& enc(size_t t, uint32_t slot) const { return enc_[t * width_ + slot]; }
  uint32_t cost(size_t t, uint32_t slot) const { return cost_[t * width_ + slot]; }
  // Symbol slot that contains `slot & ~0xFF`; a decoder scans forward from it.
  uint32_t lut(size_t t, uint32_t slot) const { return lut_[t * 256 + (slot >> 8)]; }

 private:
  size_t width_;
  std::vector<uint32_t> cdf_;
  std::vector<uint32_t> lengths_;
  std::vector<int32_t> offsets_;
  std::vector<uint8_t> lut_;
  std::vector<EncSlot> enc_;
  std::vector<uint32_t> cost_;
};

// Lanes P and the groups they form (rans_format.hpp §2).
struct Layout {
  uint32_t lanes = 0;
  uint32_t groups() const { return lanes == 0 ? 0 : (lanes + kGroupLanes - 1) / kGroupLanes; }
  uint32_t group_lanes() const { return lanes == 0 ? 0 : lanes / groups(); }
};

// Layout policy of rans_format.hpp §6 for n symbols whose summed cost is cost_q16.
Layout plan_layout(uint64_t n, uint64_t cost_q16, uint32_t bits_per_lane);

// Parsed stream header with group offsets (bytes from the payload start, escapes
// from the escape-array start); both vectors have groups + 1 entries.
struct Header {
  uint64_t n = 0;
  Layout layout;
  size_t header_bytes = 0;
  std::vector<uint64_t> byte_begin;
  std::vector<uint64_t> esc_begin;
  size_t total_bytes() const { return header_bytes + byte_begin.back() + 4 * esc_begin.back(); }
};

// bytes[g] and escapes[g]: renormalisation bytes and escapes of group g.
std::vector<uint8_t> pack_header(uint64_t n, Layout layout, const std::vector<uint64_t>& bytes,
                                 const std::vector<uint64_t>& escapes);
// Parses and checks the header against `size` bytes of input; expected_n < 0 skips
// the check of the symbol count (a GPU decoder checks it on the device).
Header parse_header(const uint8_t* data, size_t size, int64_t expected_n);

// Encodes; `forced` (lanes) overrides the policy when nonzero.
std::vector<uint8_t> encode(const int32_t* symbols, const int32_t* indexes, size_t n, const Tables& tables,
                            int num_threads, uint32_t bits_per_lane, Layout forced);
void decode(const uint8_t* data, size_t size, const int32_t* indexes, size_t n, const Tables& tables,
            int num_threads, int32_t* out);

// Decodes one stream in consecutive segments (rans_format.hpp §8): each call decodes
// the next `count` coded symbols, so a caller can derive a segment's tables from the
// symbols of the segments before it (a unit's second latent step from its first).
// Each group keeps its lane states and cursors between segments.  `data` must
// outlive the decoder.  Stream problems show as TruncatedError / CorruptError /
// VersionError from the constructor, `decode` or `finish`.
class StreamDecoder {
 public:
  // expected_n >= 0 also checks the header's symbol count (parse_header).
  StreamDecoder(const uint8_t* data, size_t size, int64_t expected_n = -1);
  uint64_t symbols() const { return header_.n; }
  uint64_t decoded() const { return decoded_; }
  // The next `count` symbols into out[0, count); CorruptError when fewer remain.
  void decode(const int32_t* indexes, size_t count, const Tables& tables, int num_threads, int32_t* out);
  // As decode for `n` positions where index < 0 marks a skipped symbol (0 in `out`).
  void decode_skipping(const int32_t* indexes, size_t n, const Tables& tables, int num_threads, int32_t* out);
  // CorruptError unless every symbol was decoded and every group ended exactly (§3, §4).
  void finish() const;

  struct Cursor {  // where one group stands between segments
    uint32_t state[kGroupLanes];
    size_t pos = 0, esc = 0;
    bool bad = false;
  };

 private:
  const uint8_t* data_;
  Header header_;
  std::vector<Cursor> cursors_;
  uint64_t decoded_ = 0;
};

// As encode / decode for a call where index < 0 marks a skipped symbol (force-zero,
// spec §3.4): skipped symbols are left out of the stream (§1), decode writes 0 there.
// The Python binding and libui2c both code latent steps through these.
std::vector<uint8_t> encode_skipping(const int32_t* symbols, const int32_t* indexes, size_t n, const Tables& tables,
                                     int num_threads, uint32_t bits_per_lane, Layout forced);
void decode_skipping(const uint8_t* data, size_t size, const int32_t* indexes, size_t n, const Tables& tables,
                     int num_threads, int32_t* out);

}  // namespace ui2c::rans
