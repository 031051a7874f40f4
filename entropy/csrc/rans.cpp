// CPU coder for the interleaved rANS format specified in rans_format.hpp.
#include "rans.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <memory>
#include <system_error>
#include <thread>

namespace ui2c::rans {
namespace {

constexpr uint32_t kTotal = 1u << kProbBits;
constexpr uint32_t kMaxSlots = 256;  // decoder LUT entries are uint8

// Runs fn(i) for i in [0, count) on up to `threads` threads (work stealing, so
// uneven blocks still balance); the first exception is rethrown after joining.  When
// the system refuses another thread, the ones already started (and this one) do the
// rest: a large thread count must cost speed, never an abort.
template <class F>
void parallel_for(size_t count, int threads, F&& fn) {
  const size_t workers = std::max<size_t>(1, std::min<size_t>(count, threads > 0 ? threads : 1));
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  auto work = [&]() {
    try {
      for (size_t i = next++; i < count && !failed; i = next++) fn(i);
    } catch (...) {
      if (!failed.exchange(true)) error = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  try {
    for (size_t w = 1; w < workers; ++w) pool.emplace_back(work);
  } catch (const std::system_error&) {  // no more threads: the started workers steal the rest
  }
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

inline uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

// Slot of a symbol value in table t, or the escape slot E = length - 2.
inline uint32_t slot_of(int32_t value, const Tables& tables, uint32_t t) {
  const int64_t v = static_cast<int64_t>(value) - tables.offset(t);
  const uint32_t esc = tables.length(t) - 2;
  return (v >= 0 && v < esc) ? static_cast<uint32_t>(v) : esc;
}

void put_varint(std::vector<uint8_t>& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

// Reads a canonical varint < 2^32 at data[pos], advancing pos.
uint64_t get_varint(const uint8_t* data, size_t size, size_t& pos) {
  uint64_t v = 0;
  for (int i = 0; i < kMaxVarintBytes; ++i) {
    if (pos >= size) throw TruncatedError("rANS header ends inside a varint");
    const uint8_t byte = data[pos++];
    v |= static_cast<uint64_t>(byte & 0x7F) << (7 * i);
    if (!(byte & 0x80)) {
      if (i > 0 && byte == 0) throw CorruptError("rANS header has a non-canonical varint");
      if (v >= (uint64_t{1} << 32)) throw CorruptError("rANS header varint exceeds 32 bits");
      return v;
    }
  }
  throw CorruptError("rANS header varint longer than 5 bytes");
}

// x / f for x < 2^32 with rcp = floor(2^64 / f) + 1: the error x * (rcp - 2^64 / f) / 2^64
// is below 2^-32 < 1/f, so the floor is exact.
inline uint32_t div_by_rcp(uint32_t x, uint64_t rcp) {
  __extension__ using u128 = unsigned __int128;
  return static_cast<uint32_t>((static_cast<u128>(x) * rcp) >> 64);
}

inline int32_t load_i32(const uint8_t* p) {
  const uint32_t u = p[0] | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
  return static_cast<int32_t>(static_cast<int64_t>(u) - ((static_cast<int64_t>(u) >> 31) << 32));
}

// Symbols of group g (rans_format.hpp §2): lane j of the group holds symbols
// row * lanes + first + j for the rows where that index is below n.
struct GroupView {
  size_t n, lanes, first, width;
  size_t rows() const { return n > first ? ceil_div(n - first, lanes) : 0; }
  size_t count(size_t row) const { return std::min(width, n - (row * lanes + first)); }
};

// One group: writes its bytes backward ending at `end`, returns the first byte.
uint8_t* encode_group(const int32_t* symbols, const int32_t* indexes, const GroupView& v, const Tables& tables,
                      uint8_t* end, std::vector<int32_t>& escapes) {
  uint32_t state[kGroupLanes];
  std::fill(state, state + v.width, kStateLow);
  uint8_t* p = end;
  for (size_t row = v.rows(); row-- > 0;) {
    const size_t base = row * v.lanes + v.first;
    for (size_t j = v.count(row); j-- > 0;) {
      const uint32_t t = static_cast<uint32_t>(indexes[base + j]);
      const uint32_t k = slot_of(symbols[base + j], tables, t);
      if (k == tables.length(t) - 2) escapes.push_back(symbols[base + j]);
      const EncSlot& e = tables.enc(t, k);
      uint32_t x = state[j];
      // renormalise without branches: emit n = 0..2 bytes (x < 2^32 <= x_max << 16).
      // Both candidate bytes are always stored; p stays >= 4 * width bytes above the
      // region start until the final states are written, so the stores stay inside it.
      const uint64_t x_max = uint64_t{e.freq} << 16;
      const uint32_t nbytes = (x >= x_max) + (x >= (x_max << 8));
      p[-1] = static_cast<uint8_t>(x);
      p[-2] = static_cast<uint8_t>(x >> 8);
      p -= nbytes;
      x = static_cast<uint32_t>(uint64_t{x} >> (8 * nbytes));
      const uint32_t q = e.freq > 1 ? div_by_rcp(x, e.rcp) : x;
      state[j] = (q << 16) + (x - q * e.freq) + e.start;
    }
  }
  for (size_t j = v.width; j-- > 0;)
    for (int s = 24; s >= 0; s -= 8) *--p = static_cast<uint8_t>(state[j] >> s);
  std::reverse(escapes.begin(), escapes.end());
  return p;
}

[[noreturn]] void index_error(const int32_t* indexes, size_t i, const Tables& tables) {
  throw std::invalid_argument("cdf index " + std::to_string(indexes[i]) + " at position " + std::to_string(i) +
                              " is outside [0, " + std::to_string(tables.size()) + ")");
}

void check_indexes(const int32_t* indexes, size_t n, const Tables& tables) {
  for (size_t i = 0; i < n; ++i)
    if (indexes[i] < 0 || static_cast<size_t>(indexes[i]) >= tables.size()) index_error(indexes, i, tables);
}

// Symbols [begin, end) of one group into out[i - begin], continuing from cursor c.
// Never reads outside bytes[0, num_bytes) or escapes[0, num_escapes) and does one
// step per symbol: reads past the end are clamped and show as a cursor that does not
// end exactly at finish; other inconsistencies set c.bad.
void decode_rows(const uint8_t* bytes, size_t num_bytes, const uint8_t* escapes, size_t num_escapes,
                 const int32_t* indexes, const GroupView& v, size_t begin, size_t end, const Tables& tables,
                 int32_t* out, StreamDecoder::Cursor& c) {
  uint32_t* state = c.state;
  size_t pos = c.pos, esc = c.esc;
  const size_t last = num_bytes - 1;  // num_bytes >= 4 * width > 0 (parse_header)
  bool bad = c.bad;
  const size_t rows = std::min(v.rows(), ceil_div(end, v.lanes));
  for (size_t row = begin / v.lanes; row < rows; ++row) {
    const size_t base = row * v.lanes + v.first;
    const size_t lo = begin > base ? std::min(begin - base, v.width) : 0;
    const size_t hi = end > base ? std::min(end - base, v.width) : 0;
    if (lo >= hi) continue;  // the segment holds none of this row's lanes of the group
    const int32_t* row_indexes = indexes + (base + lo - begin);
    int32_t* row_out = out + (base + lo - begin);
    for (size_t j = lo; j < hi; ++j) {
      const uint32_t t = static_cast<uint32_t>(row_indexes[j - lo]);
      if (t >= tables.size()) index_error(indexes, base + j - begin, tables);  // checked here, in parallel
      const uint32_t* cdf = tables.row(t);
      uint32_t x = state[j];
      const uint32_t slot = x & 0xFFFFu;
      uint32_t k = tables.lut(t, slot);
      while (cdf[k + 1] <= slot) ++k;  // ends inside the row: cdf[length - 1] = 2^16
      x = (cdf[k + 1] - cdf[k]) * (x >> 16) + slot - cdf[k];
      if (x < kStateLow) {  // at most two bytes (x >= 2^8 here)
        x = (x << 8) | bytes[std::min(pos++, last)];
        if (x < kStateLow) x = (x << 8) | bytes[std::min(pos++, last)];
      }
      state[j] = x;
      const uint32_t escape_slot = tables.length(t) - 2;
      if (k != escape_slot) {
        row_out[j - lo] = static_cast<int32_t>(k) + tables.offset(t);
      } else if (esc < num_escapes) {
        const int32_t value = load_i32(escapes + 4 * esc++);
        bad |= slot_of(value, tables, t) != escape_slot;  // non-canonical escape
        row_out[j - lo] = value;
      } else {
        bad = true;
        row_out[j - lo] = 0;
      }
    }
  }
  c.pos = pos;
  c.esc = esc;
  c.bad = bad;
}

// The coded (symbols, indexes) of a call where index < 0 marks a skipped symbol, into
// `sym` (when `symbols` is given) and `idx`; returns their count.  Branch-free: skips
// follow the latent's scales and look random to a branch predictor, and a branch per
// symbol cost more than the compaction's work (measured through the Python seam, half
// skipped: decode 2.7 -> 1.85 ms, encode 1.65 -> 0.73 ms per 261k-symbol step).
size_t compact(const int32_t* symbols, const int32_t* indexes, size_t n, int32_t* sym, int32_t* idx) {
  size_t c = 0;
  for (size_t k = 0; k < n; ++k) {
    const int32_t t = indexes[k];
    idx[c] = t;  // c <= k < n: always in bounds, overwritten unless coded
    if (symbols) sym[c] = symbols[k];  // loop-invariant test
    c += t >= 0;
  }
  return c;
}

// Uninitialised scratch with one spare element (the compaction writes every element
// that is read back; decode_skipping's scatter may read the spare one).
std::unique_ptr<int32_t[]> scratch(size_t n) { return std::unique_ptr<int32_t[]>(new int32_t[n + 1]); }

}  // namespace

Tables::Tables(const int32_t* cdf, size_t num, size_t width, const int32_t* lengths, const int32_t* offsets)
    : width_(width),
      cdf_(num * width),
      lengths_(num),
      offsets_(offsets, offsets + num),
      lut_(num * 256),
      enc_(num * width),
      cost_(num * width) {
  if (num == 0) throw std::invalid_argument("CDF tables are empty");
  for (size_t t = 0; t < num; ++t) {
    const int32_t len = lengths[t];
    if (len < 3 || static_cast<size_t>(len) > width || static_cast<uint32_t>(len) > kMaxSlots + 1)
      throw std::invalid_argument("cdf_length of table " + std::to_string(t) + " is outside [3, min(width, 257)]");
    if (static_cast<int64_t>(offsets[t]) + len > INT32_MAX)
      throw std::invalid_argument("offset of table " + std::to_string(t) + " overflows int32");
    const int32_t* in = cdf + t * width;
    if (in[0] != 0 || in[len - 1] != static_cast<int32_t>(kTotal))
      throw std::invalid_argument("CDF row " + std::to_string(t) + " must run from 0 to 65536");
    for (int32_t k = 0; k + 1 < len; ++k)
      if (in[k + 1] <= in[k]) throw std::invalid_argument("CDF row " + std::to_string(t) + " is not strictly increasing");
    lengths_[t] = static_cast<uint32_t>(len);
    uint32_t* row = cdf_.data() + t * width;
    for (int32_t k = 0; k < len; ++k) row[k] = static_cast<uint32_t>(in[k]);
    for (int32_t k = 0; k + 1 < len; ++k) {
      const uint32_t freq = row[k + 1] - row[k];
      // floor(2^64 / f) + 1; f = 1 is special-cased by the encoder
      const uint64_t rcp = freq > 1 ? ~uint64_t{0} / freq + 1 : 0;
      enc_[t * width + k] = {rcp, row[k], freq};
      cost_[t * width + k] = freq_cost_q16(freq);
    }
    uint32_t k = 0;
    for (uint32_t bucket = 0; bucket < 256; ++bucket) {
      while (row[k + 1] <= (bucket << 8)) ++k;
      lut_[t * 256 + bucket] = static_cast<uint8_t>(k);
    }
  }
}

Layout plan_layout(uint64_t n, uint64_t cost_q16, uint32_t bits_per_lane) {
  if (n == 0) return {};
  const uint64_t want = std::max<uint64_t>(1, (cost_q16 >> 16) / std::max<uint32_t>(1, bits_per_lane));
  uint64_t lanes = std::min<uint64_t>({want, n, kMaxLanes});
  if (lanes > kGroupLanes) lanes -= lanes % kGroupLanes;
  return {static_cast<uint32_t>(lanes)};
}

std::vector<uint8_t> pack_header(uint64_t n, Layout layout, const std::vector<uint64_t>& bytes,
                                 const std::vector<uint64_t>& escapes) {
  std::vector<uint8_t> out{kFormatId};
  put_varint(out, n);
  if (n > 0) {
    put_varint(out, layout.lanes);
    for (size_t g = 0; g < layout.groups(); ++g) {
      put_varint(out, bytes[g]);
      put_varint(out, escapes[g]);
    }
  }
  const uint32_t check = header_check(out.data(), out.size());
  out.push_back(static_cast<uint8_t>(check));
  out.push_back(static_cast<uint8_t>(check >> 8));
  return out;
}

Header parse_header(const uint8_t* data, size_t size, int64_t expected_n) {
  Header h;
  size_t pos = 0;
  if (size < 1) throw TruncatedError("rANS stream is empty");
  if (data[0] == kFormat1Id)
    throw VersionError("rANS stream is format 1 (0xB5); this build reads format 2 (0xB6) only: re-encode it");
  if (data[pos++] != kFormatId) throw CorruptError("not a UI2C rANS stream (bad format id)");
  h.n = get_varint(data, size, pos);
  if (expected_n >= 0 && h.n != static_cast<uint64_t>(expected_n))
    throw CorruptError("rANS stream holds " + std::to_string(h.n) + " symbols but " + std::to_string(expected_n) +
                       " were requested (do the skip masks differ?)");
  h.byte_begin.push_back(0);
  h.esc_begin.push_back(0);
  if (h.n > 0) {
    const uint64_t lanes = get_varint(data, size, pos);
    if (!valid_lanes(lanes) || lanes > h.n) throw CorruptError("rANS header has an invalid lane count");
    h.layout = {static_cast<uint32_t>(lanes)};
    for (uint64_t g = 0; g < h.layout.groups(); ++g) {
      const uint64_t width = h.layout.group_lanes();
      uint64_t symbols = 0;  // symbols of group g: lanes l in [g * W, (g + 1) * W) hold ceil((n - l) / P) each
      for (uint64_t j = 0; j < width; ++j) symbols += ceil_div(h.n - (g * width + j), lanes);
      const uint64_t bytes = get_varint(data, size, pos), escapes = get_varint(data, size, pos);
      if (bytes > 2 * symbols || escapes > symbols) throw CorruptError("rANS group announces more bytes than its symbols allow");
      h.byte_begin.push_back(h.byte_begin.back() + 4 * width + bytes);
      h.esc_begin.push_back(h.esc_begin.back() + escapes);
    }
  }
  if (pos + 2 > size) throw TruncatedError("rANS header ends before its check");
  if ((data[pos] | (uint32_t{data[pos + 1]} << 8)) != header_check(data, pos))
    throw CorruptError("rANS header check mismatch");
  h.header_bytes = pos + 2;
  if (size < h.total_bytes()) throw TruncatedError("rANS stream is shorter than its header announces");
  if (size > h.total_bytes()) throw CorruptError("rANS stream has trailing bytes");
  return h;
}

std::vector<uint8_t> encode(const int32_t* symbols, const int32_t* indexes, size_t n, const Tables& tables,
                            int num_threads, uint32_t bits_per_lane, Layout forced) {
  // The cost pass splits into chunks of at least kCostChunk symbols: a small call (z, a
  // low-rate step) must not start a thread per requested thread.  The sum is exact, so
  // the chunking never changes the layout.
  constexpr size_t kCostChunk = 1 << 16;
  const size_t chunks = std::max<size_t>(1, std::min<size_t>(std::max(1, num_threads), n / kCostChunk));
  std::vector<uint64_t> cost(chunks, 0);
  parallel_for(chunks, num_threads, [&](size_t c) {
    const size_t lo = n * c / chunks, hi = n * (c + 1) / chunks;
    check_indexes(indexes + lo, hi - lo, tables);
    uint64_t sum = 0;
    for (size_t i = lo; i < hi; ++i) {
      const uint32_t t = static_cast<uint32_t>(indexes[i]);
      sum += tables.cost(t, slot_of(symbols[i], tables, t));
    }
    cost[c] = sum;
  });
  uint64_t total_cost = 0;
  for (uint64_t c : cost) total_cost += c;
  Layout layout = plan_layout(n, total_cost, bits_per_lane);
  if (n > 0 && forced.lanes != 0) {
    if (!valid_lanes(forced.lanes) || forced.lanes > n)
      throw std::invalid_argument("forced lane count must be 1..32 or a multiple of 32, at most " +
                                  std::to_string(kMaxLanes) + " and at most the symbol count");
    layout = forced;
  }
  const uint32_t groups = layout.groups(), width = layout.group_lanes();
  // group g's region holds at most 2 bytes per symbol plus its final states
  std::vector<size_t> region_end(groups + 1, 0);
  for (uint32_t g = 0; g < groups; ++g) {
    const GroupView v{n, layout.lanes, size_t{g} * width, width};
    region_end[g + 1] = region_end[g] + 2 * v.rows() * width + 4 * width;
  }
  std::vector<uint8_t> region(region_end.back());
  std::vector<uint8_t*> first(groups);
  std::vector<std::vector<int32_t>> escapes(groups);
  parallel_for(groups, num_threads, [&](size_t g) {
    const GroupView v{n, layout.lanes, g * width, width};
    first[g] = encode_group(symbols, indexes, v, tables, region.data() + region_end[g + 1], escapes[g]);
  });
  std::vector<uint64_t> bytes(groups), esc_counts(groups);
  size_t total_bytes = 0, total_escapes = 0;
  for (size_t g = 0; g < groups; ++g) {
    const size_t size = static_cast<size_t>(region.data() + region_end[g + 1] - first[g]);
    bytes[g] = size - 4 * width;
    esc_counts[g] = escapes[g].size();
    total_bytes += size;
    total_escapes += escapes[g].size();
  }
  std::vector<uint8_t> out = pack_header(n, layout, bytes, esc_counts);
  size_t pos = out.size();
  out.resize(pos + total_bytes + 4 * total_escapes);
  for (size_t g = 0; g < groups; ++g) {
    const size_t size = bytes[g] + 4 * width;
    std::memcpy(out.data() + pos, first[g], size);
    pos += size;
  }
  for (const auto& group : escapes)
    for (int32_t v : group)
      for (int s = 0; s < 32; s += 8) out[pos++] = static_cast<uint8_t>(static_cast<uint32_t>(v) >> s);
  return out;
}

StreamDecoder::StreamDecoder(const uint8_t* data, size_t size, int64_t expected_n)
    : data_(data), header_(parse_header(data, size, expected_n)), cursors_(header_.layout.groups()) {
  const uint32_t width = header_.layout.group_lanes();
  const uint8_t* payload = data_ + header_.header_bytes;
  for (size_t g = 0; g < cursors_.size(); ++g) {
    const uint8_t* b = payload + header_.byte_begin[g];
    for (size_t j = 0; j < width; ++j)
      cursors_[g].state[j] = b[4 * j] | (uint32_t{b[4 * j + 1]} << 8) | (uint32_t{b[4 * j + 2]} << 16) |
                             (uint32_t{b[4 * j + 3]} << 24);
    cursors_[g].pos = 4 * width;
  }
}

void StreamDecoder::decode(const int32_t* indexes, size_t count, const Tables& tables, int num_threads,
                           int32_t* out) {
  if (count > header_.n - decoded_)
    throw CorruptError("rANS stream holds " + std::to_string(header_.n) + " symbols but at least " +
                       std::to_string(decoded_ + count) + " were requested (do the skip masks differ?)");
  const uint32_t width = header_.layout.group_lanes();
  const uint8_t* payload = data_ + header_.header_bytes;
  const uint8_t* escape_array = payload + header_.byte_begin.back();
  const size_t begin = decoded_, end = decoded_ + count;
  parallel_for(count ? cursors_.size() : 0, num_threads, [&](size_t g) {
    const GroupView v{header_.n, header_.layout.lanes, g * width, width};
    decode_rows(payload + header_.byte_begin[g], header_.byte_begin[g + 1] - header_.byte_begin[g],
                escape_array + 4 * header_.esc_begin[g], header_.esc_begin[g + 1] - header_.esc_begin[g], indexes, v,
                begin, end, tables, out, cursors_[g]);
  });
  decoded_ = end;
}

void StreamDecoder::decode_skipping(const int32_t* indexes, size_t n, const Tables& tables, int num_threads,
                                    int32_t* out) {
  auto idx = scratch(n), coded = scratch(n);
  const size_t count = compact(nullptr, indexes, n, nullptr, idx.get());
  decode(idx.get(), count, tables, num_threads, coded.get());
  coded[count] = 0;  // the spare slot the scatter may read (and discard) past the last symbol
  for (size_t k = 0, c = 0; k < n; ++k) {  // branch-free scatter
    const bool is_coded = indexes[k] >= 0;
    out[k] = is_coded ? coded[c] : 0;
    c += is_coded;
  }
}

void StreamDecoder::finish() const {
  if (decoded_ != header_.n)
    throw CorruptError("rANS stream holds " + std::to_string(header_.n) + " symbols but " + std::to_string(decoded_) +
                       " were decoded (do the skip masks differ?)");
  const uint32_t width = header_.layout.group_lanes();
  for (size_t g = 0; g < cursors_.size(); ++g) {
    const Cursor& c = cursors_[g];
    bool bad = c.bad || c.pos != header_.byte_begin[g + 1] - header_.byte_begin[g] ||
               c.esc != header_.esc_begin[g + 1] - header_.esc_begin[g];
    for (size_t j = 0; j < width; ++j) bad |= c.state[j] != kStateLow;
    if (bad) throw CorruptError("rANS group " + std::to_string(g) + " failed its consistency checks");
  }
}

void decode(const uint8_t* data, size_t size, const int32_t* indexes, size_t n, const Tables& tables,
            int num_threads, int32_t* out) {
  StreamDecoder d(data, size, static_cast<int64_t>(n));
  d.decode(indexes, n, tables, num_threads, out);
  d.finish();
}

std::vector<uint8_t> encode_skipping(const int32_t* symbols, const int32_t* indexes, size_t n, const Tables& tables,
                                     int num_threads, uint32_t bits_per_lane, Layout forced) {
  auto sym = scratch(n), idx = scratch(n);
  const size_t coded = compact(symbols, indexes, n, sym.get(), idx.get());
  return encode(sym.get(), idx.get(), coded, tables, num_threads, bits_per_lane, forced);
}

void decode_skipping(const uint8_t* data, size_t size, const int32_t* indexes, size_t n, const Tables& tables,
                     int num_threads, int32_t* out) {
  StreamDecoder d(data, size);
  d.decode_skipping(indexes, n, tables, num_threads, out);
  d.finish();
}

}  // namespace ui2c::rans
