// UI2C interleaved rANS bitstream, format 2 (first byte 0xB6).
//
// This comment is the format specification; the C++ coder (rans.cpp) and the Triton
// kernels (plugins/triton_rans.py) implement it and must produce identical bytes.
// Format 1 (first byte 0xB5: 16-bit words, consecutive blocks) is no longer written;
// decoders refuse it with an error that names the version.
//
// 1. Symbols and tables
//    A call codes n symbols s_i (int32) with table indexes t_i.  Table t is an integer
//    CDF row cdf[t][0 .. len_t-1], 3 <= len_t <= 257, strictly increasing from 0 to
//    2^16 (16-bit probabilities, spec §3.5).  Slot k has start cdf[t][k] and frequency
//    cdf[t][k+1] - cdf[t][k] (>= 1).  With v = s - offset[t] and E_t = len_t - 2, a
//    symbol with 0 <= v < E_t is coded as slot v; any other value is coded as the
//    escape slot E_t and its int32 value is appended to the escape array.  An escape
//    whose stored value lies inside [0, E_t) after subtracting the offset is invalid
//    (streams are canonical).
//    Skipped symbols (DCVC-RT force-zero, spec §3.4) are removed before coding: the
//    stream holds only coded symbols, in their original order; n = 0 is valid.
//
// 2. Lanes, rows and groups
//    P lanes (1..32, or a multiple of 32 up to kMaxLanes) interleave over the whole
//    call: symbol i belongs to lane i % P and row i / P, so every lane sees the same
//    statistics and lane l has ceil((n - l) / P) symbols (P <= n: none is empty).
//    Lanes form G = ceil(P / 32) groups of W = P / G lanes (lane l is lane j = l % W
//    of group g = l / W); a group is one GPU program (one warp), the unit whose bytes
//    and escapes are stored contiguously.
//
// 3. The coder of one lane (rANS, 32-bit state, byte renormalisation, L = 2^24)
//    Encoder: the state starts at x = L and codes the lane's symbols last to first:
//        while x >= f << 16 { emit byte x & 0xFF; x >>= 8 }    // at most twice
//        x = ((x / f) << 16) + (x % f) + start
//    Decoder: slot = x & 0xFFFF; find k with cdf[k] <= slot < cdf[k+1];
//        x = f * (x >> 16) + slot - start
//        while x < L { x = (x << 8) | next byte }              // at most twice
//    The state stays in [2^24, 2^32): x / f >= 2^8 keeps the coding loss of the
//    16-bit probabilities near 2^-8 of the L = 2^16 coder of format 1 (measured
//    0.15-0.25 % there).  x / f is exact integer division; implementations may use a
//    reciprocal as long as the quotient is exact.  After its last symbol every lane's
//    decoder state must be exactly L (integrity check).
//
// 4. Bytes of a group
//    First the final encoder state of each of its W lanes, 4 bytes little-endian, in
//    lane order.  Then the renormalisation bytes in decoder order: row 0, row 1, ...;
//    inside a row the lanes in increasing order, each with the 0, 1 or 2 bytes it
//    reads, in the order it reads them.  A decoder therefore finds lane j's bytes at
//    base + (exclusive prefix sum over the lanes of the bytes they read in this row).
//    Escapes of a group are stored in the same decoder order.
//
// 5. Stream
//      u8      0xB6                      format id
//      varint  n                         number of coded symbols
//      if n > 0:
//        varint  P                       lanes, as in §2
//        per group g: varint bytes_g     renormalisation bytes (<= 2 * symbols of g)
//                     varint esc_g       escapes (<= symbols of g)
//      u16     check, little-endian: sum over the previous header bytes b_k
//              (k = 0, 1, ...) of (k + 1) * b_k, modulo 65521.  A sum rather than a
//              CRC so that a GPU computes it with one parallel reduction; any single
//              changed byte changes it (65521 is prime and exceeds 255 * (k + 1)).
//      groups  for g in order: 4 * W + bytes_g bytes
//      escapes sum(esc_g) int32 little-endian, group by group
//    Varints are unsigned LEB128, canonical (no superfluous zero groups), <= 5 bytes,
//    value < 2^32.  The total size must equal what the header announces: a shorter
//    input is truncated, a longer one is corrupt.
//
// 6. Layout policy (encoder only; decoders read P from the header)
//    A lane costs about 28 bits: 24 for the initial state plus the unused part of its
//    32-bit final state (log2 x is about uniform in [24, 32)).  Lanes are spent in
//    proportion to the information, not to the symbol count: with cost(f) the 16.16
//    fixed-point estimate of -log2(f / 2^16) below and bits = floor(sum cost / 2^16),
//        P = min(max(1, bits / bits_per_lane), n, kMaxLanes)   (default 8192 bits)
//        if P > 32: P = 32 * floor(P / 32)
//    so lanes cost about 28 / 8192 = 0.34 % of the rate.
//    cost(f) = 16 * 2^16 - ((m << 16) | ((f << (16 - m)) & 0xFFFF)), m = floor(log2 f),
//    a piecewise-linear log2 that integer code on CPU and GPU evaluates identically.
//
// 7. Errors
//    Decoders never read outside the input and never loop on bad data: every lane
//    does one step per symbol.  Too little data -> truncated; a format-1 stream ->
//    unsupported version; bad id, check, counts, sizes, escape values, byte
//    consumption or final states -> corrupt.
//
// 8. Segments (decoder side only; the bytes are those of §1-§5)
//    A decoder may decode a stream's symbols in consecutive segments, i = 0 .. n0 - 1,
//    then n0 .. n0 + n1 - 1, and so on, learning a segment's table indexes only after
//    the previous segments are decoded.  Because rows run in symbol order and a row's
//    bytes and escapes in lane order (§4), a decoder just keeps each lane's state and
//    each group's byte and escape cursors between segments, even when a segment ends
//    mid-row.  The final-state and consumption checks of §3 and §4 apply once, after the
//    last segment.  The runtime codes a unit's two latent steps as one stream this way
//    (step 0's symbols first): one header, check and set of lane states per unit, not
//    per step.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ui2c::rans {

constexpr uint8_t kFormatId = 0xB6;
constexpr uint8_t kFormat1Id = 0xB5;
constexpr uint32_t kGroupLanes = 32;
constexpr uint32_t kMaxLanes = 32 * 256;
constexpr uint32_t kProbBits = 16;
constexpr uint32_t kStateLow = 1u << 24;  // L
constexpr uint32_t kDefaultBitsPerLane = 8192;
constexpr uint32_t kCheckModulus = 65521;
constexpr int kMaxVarintBytes = 5;

static_assert(kStateLow % (1u << kProbBits) == 0 && (kStateLow >> kProbBits) == 256,
              "byte renormalisation needs L = 2^8 * 2^prob_bits");

// 16.16 fixed-point estimate of -log2(f / 2^16) used by the layout policy (§6).
constexpr uint32_t freq_cost_q16(uint32_t f) {
  uint32_t m = 0;
  while ((f >> (m + 1)) != 0) ++m;
  const uint32_t log2_q16 = (m << 16) | ((f << (16 - m)) & 0xFFFFu);
  return (16u << 16) - log2_q16;
}

// True when P is a valid lane count (§2), ignoring the P <= n rule.
constexpr bool valid_lanes(uint64_t p) { return p >= 1 && p <= kMaxLanes && (p <= kGroupLanes || p % kGroupLanes == 0); }

// Header check of §5.
inline uint32_t header_check(const uint8_t* data, size_t size) {
  uint64_t sum = 0;
  for (size_t k = 0; k < size; ++k) sum += static_cast<uint64_t>(k + 1) * data[k];
  return static_cast<uint32_t>(sum % kCheckModulus);
}

}  // namespace ui2c::rans
