// UI2C interleaved rANS bitstream, format 1 (first byte 0xB5).
//
// This comment is the format specification; the C++ coder (rans.cpp) and the Triton
// kernels (plugins/triton_rans.py) implement it and must produce identical bytes.
//
// 1. Symbols and tables
//    A call codes n symbols s_i (int32) with table indexes t_i.  Table t is an integer
//    CDF row cdf[t][0 .. len_t-1], strictly increasing from 0 to 2^16 (16-bit
//    probabilities, spec §3.5).  Slot k has start cdf[t][k] and frequency
//    cdf[t][k+1] - cdf[t][k] (>= 1).  With v = s - offset[t] and E_t = len_t - 2,
//    a symbol with 0 <= v < E_t is coded as slot v; any other value is coded as the
//    escape slot E_t and its int32 value is appended to the escape array.  An escape
//    slot whose stored value lies inside [0, E_t) after subtracting the offset is
//    invalid (streams are canonical).
//    Skipped symbols: the CALLER removes every symbol that is not coded (for DCVC-RT
//    those whose scale is not above the force-zero threshold, spec §3.4) before
//    encoding, and passes the same reduced index list to the decoder.  The stream only
//    holds coded symbols; n = 0 is a valid stream.
//
// 2. Blocks and lanes
//    The n symbols are cut into `nblocks` blocks of B = ceil(n / nblocks) consecutive
//    symbols (the last block may be shorter); nblocks must satisfy
//    ceil(n / B) == nblocks so that no block is empty.  Every block has `lanes`
//    (1..32) independent rANS coders; symbol j of a block (0-based inside the block)
//    belongs to lane j % lanes and row j / lanes.  Blocks decode independently (one GPU
//    program each; lanes map to the threads of a warp).
//
// 3. The coder of one lane (rANS, 32-bit state, 16-bit words, L = 2^16)
//    Encoder: the state starts at x = L and codes the lane's symbols last to first:
//        if x >= f << 16 { emit word x & 0xFFFF; x >>= 16 }   // at most once
//        x = ((x / f) << 16) + (x % f) + start
//    Decoder: slot = x & 0xFFFF; find k with cdf[k] <= slot < cdf[k+1];
//        x = f * (x >> 16) + slot - start
//        if x < L { x = (x << 16) | next word }                // at most once
//    Because L = 2^16 = 2^(word bits) and probabilities have 16 bits, the state stays
//    in [2^16, 2^32) and renormalisation never loops.  After its last symbol every
//    lane's decoder state must be exactly L (integrity check).
//
// 4. Words of a block (uint16, little-endian)
//    words[2j], words[2j+1]: low and high half of lane j's final encoder state
//    (j = 0 .. lanes-1, also for lanes that received no symbol).  Then the
//    renormalisation words in decoder order: row 0, row 1, ...; inside a row, one word
//    for each lane that needs one, in increasing lane order.  A GPU program therefore
//    finds lane j's word at base + (exclusive prefix sum of the need flags)[j].
//
// 5. Stream
//      u8      0xB5                      format id
//      varint  n                         number of coded symbols
//      if n > 0:
//        varint  nblocks                 1 .. n
//        u8      lanes                   1 .. 32
//        per block: varint words_b, varint esc_b
//                                        renormalisation words (<= symbols in block)
//                                        and escapes (<= symbols in block) of block b
//      u8      crc8 of all previous header bytes (polynomial 0x07, initial value 0)
//      blocks  for b in order: (2 * lanes + words_b) uint16 words
//      escapes sum(esc_b) int32 little-endian, in symbol order
//    Varints are unsigned LEB128, canonical (no superfluous zero groups), <= 5 bytes,
//    value < 2^32.  The total size must equal what the header announces: a shorter
//    input is truncated, a longer one is corrupt.  Block b's words start at
//    sum_{b' < b} (2 * lanes + words_b') and its escapes at sum_{b' < b} esc_b'.
//
// 6. Layout policy (encoder only; decoders read nblocks and lanes from the header)
//    Every lane costs about 16 bits for its initial state plus the unused part of its
//    32-bit final state (~24 bits on average), so lanes are spent in proportion to the
//    information, not the symbol count: with cost(f) the 16.16 fixed-point estimate
//    of -log2(f / 2^16) below and bits = floor(sum cost / 2^16),
//        want = max(1, bits / bits_per_lane)           (default bits_per_lane 8192)
//        lanes = min(32, want, n);  nblocks = ceil(want / 32) (1 if want <= 32)
//        B = ceil(n / nblocks);    nblocks = ceil(n / B)
//    cost(f) = 16 * 2^16 - ((m << 16) | ((f << (16 - m)) & 0xFFFF)), m = floor(log2 f),
//    a piecewise-linear log2 that integer code on CPU and GPU evaluates identically.
//
// 7. Errors
//    Decoders never read outside the input and never loop on bad data: every lane
//    does one step per symbol.  Too little data -> truncated; bad id, CRC, counts,
//    sizes, escape values, word consumption or final states -> corrupt.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ui2c::rans {

constexpr uint8_t kFormatId = 0xB5;
constexpr uint32_t kMaxLanes = 32;
constexpr uint32_t kProbBits = 16;
constexpr uint32_t kWordBits = 16;
constexpr uint32_t kStateLow = 1u << 16;  // L
constexpr uint32_t kWordMask = 0xFFFFu;
constexpr uint32_t kDefaultBitsPerLane = 8192;
constexpr int kMaxVarintBytes = 5;

static_assert(kProbBits == kWordBits && kStateLow == (1u << kWordBits),
              "single-word renormalisation needs L = 2^word_bits = 2^prob_bits");

// 16.16 fixed-point estimate of -log2(f / 2^16) used by the layout policy (§6).
constexpr uint32_t freq_cost_q16(uint32_t f) {
  uint32_t m = 0;
  while ((f >> (m + 1)) != 0) ++m;
  const uint32_t log2_q16 = (m << 16) | ((f << (16 - m)) & 0xFFFFu);
  return (16u << 16) - log2_q16;
}

// CRC-8, polynomial x^8 + x^2 + x + 1, initial value 0, no reflection.
inline uint8_t crc8(const uint8_t* data, size_t size) {
  uint8_t crc = 0;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int b = 0; b < 8; ++b) crc = static_cast<uint8_t>((crc & 0x80) ? (crc << 1) ^ 0x07 : crc << 1);
  }
  return crc;
}

}  // namespace ui2c::rans
