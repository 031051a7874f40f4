// Stand-alone stress driver for the CPU coder, built by tests/test_entropy_sanitize.py
// with -fsanitize=address,undefined: random tables, symbols and layouts round-trip,
// then mutated streams must decode or throw the typed errors, with no sanitizer report;
// every fourth stream also gets a random header with a valid check (deep header paths);
// odd iterations skip a third of the symbols (index -1) through encode/decode_skipping;
// odd mutations decode through StreamDecoder in two segments cut at a random position.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "rans.hpp"

using namespace ui2c::rans;

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 200;
  std::mt19937 rng(12345);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  // Random valid tables of 3..257 entries with random offsets; table 0 has the most the
  // format allows, so the decoder's uint8 slot table and scan reach their last entry.
  const int num = 16, width = 257;
  std::vector<int32_t> cdf(num * width, 0), lengths(num), offsets(num);
  for (int t = 0; t < num; ++t) {
    lengths[t] = t == 0 ? width : uniform(3, width);
    std::vector<int32_t> cuts;
    while (static_cast<int>(cuts.size()) < lengths[t] - 2) {
      const int c = uniform(1, 65535);
      if (std::find(cuts.begin(), cuts.end(), c) == cuts.end()) cuts.push_back(c);
    }
    std::sort(cuts.begin(), cuts.end());
    for (int k = 0; k + 2 < lengths[t]; ++k) cdf[t * width + k + 1] = cuts[k];
    cdf[t * width + lengths[t] - 1] = 65536;
    offsets[t] = uniform(-20, 5);
  }
  const Tables tables(cdf.data(), num, width, lengths.data(), offsets.data());
  long decoded = 0, rejected = 0;
  for (int it = 0; it < iterations; ++it) {
    const size_t n = uniform(0, 3000);
    const bool skipping = it % 2 == 1;
    const auto encoder = skipping ? encode_skipping : encode;
    const auto decoder = skipping ? decode_skipping : decode;
    std::vector<int32_t> symbols(n), indexes(n), out(n);
    size_t coded = 0;
    for (size_t i = 0; i < n; ++i) {
      const bool skip = skipping && uniform(0, 2) == 0;
      indexes[i] = skip ? -1 : uniform(0, num - 1);
      symbols[i] = skip ? 0 : uniform(0, 50) == 0 ? static_cast<int32_t>(rng()) : uniform(-25, uniform(0, 1) ? 40 : 280);
      coded += !skip;
    }
    Layout forced{};
    if (coded > 0 && uniform(0, 1)) {
      uint32_t lanes = uniform(1, 32 * 5);
      if (lanes > 32) lanes -= lanes % 32;
      if (lanes <= coded) forced = {lanes};
    }
    const auto data = encoder(symbols.data(), indexes.data(), n, tables, uniform(1, 3), uniform(1, 9000), forced);
    decoder(data.data(), data.size(), indexes.data(), n, tables, uniform(1, 3), out.data());
    if (out != symbols) {
      std::fprintf(stderr, "round trip mismatch at iteration %d\n", it);
      return 1;
    }
    const size_t header = coded > 0 ? parse_header(data.data(), data.size(), coded).header_bytes : 0;
    for (int m = 0; m < 20; ++m) {
      std::vector<uint8_t> bad(data);
      if (header > 3 && it % 4 == 0) {  // mutate header fields, then fix the check
        for (int f = uniform(1, 2); f > 0; --f) bad[uniform(1, static_cast<int>(header) - 3)] = uniform(0, 255);
        const uint32_t check = header_check(bad.data(), header - 2);
        bad[header - 2] = static_cast<uint8_t>(check);
        bad[header - 1] = static_cast<uint8_t>(check >> 8);
      } else if (uniform(0, 3) == 0) {
        bad.resize(uniform(0, static_cast<int>(bad.size())));
      } else {
        for (int f = uniform(1, 3); f > 0; --f) bad[uniform(0, static_cast<int>(bad.size()) - 1)] ^= 1 << uniform(0, 7);
      }
      try {
        if (m % 2 == 0) {
          decoder(bad.data(), bad.size(), indexes.data(), n, tables, 2, out.data());
        } else {
          StreamDecoder d(bad.data(), bad.size());
          const size_t cut = uniform(0, static_cast<int>(n));
          const auto segment = skipping ? &StreamDecoder::decode_skipping : &StreamDecoder::decode;
          (d.*segment)(indexes.data(), cut, tables, 2, out.data());
          (d.*segment)(indexes.data() + cut, n - cut, tables, 1, out.data() + cut);
          d.finish();
        }
        ++decoded;
      } catch (const TruncatedError&) {
        ++rejected;
      } catch (const CorruptError&) {
        ++rejected;
      } catch (const VersionError&) {
        ++rejected;
      }
    }
  }
  std::printf("ok: %ld mutated streams rejected, %ld decoded\n", rejected, decoded);
  return 0;
}
