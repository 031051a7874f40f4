// Shared by the command-line programs: argument parsing and one-line error exits.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "errors.hpp"
#include "ui2c/ui2c.h"

namespace ui2c::tools {

// Owned C API handles, closed in reverse order of declaration.
struct HandleCloser {
  void operator()(ui2c_engine* h) const { ui2c_engine_close(h); }
  void operator()(ui2c_encoder* h) const { ui2c_encoder_close(h); }
  void operator()(ui2c_decoder* h) const { ui2c_decoder_close(h); }
};
template <class H>
using Handle = std::unique_ptr<H, HandleCloser>;

// A failed C API call as an exception, so the tool unwinds (removing its temporary
// output files) before it reports.
inline void check(ui2c_status status) {
  if (status != UI2C_OK) throw Error(status, ui2c_last_error());
}

// Runs a tool's body; any failure is one line "prog: kind: message" on stderr and the
// status as the exit code.
template <class Body>
int run(const char* prog, Body&& body) {
  try {
    body();
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: %s: %s\n", prog, ui2c_status_name(e.code), e.what());
    return static_cast<int>(e.code);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s: %s\n", prog, ui2c_status_name(UI2C_ERR_INTERNAL), e.what());
    return static_cast<int>(UI2C_ERR_INTERNAL);
  }
}

[[noreturn]] inline void usage(const char* prog, const char* text, const std::string& problem) {
  std::fprintf(stderr, "%s: %s\nusage: %s %s\n", prog, problem.c_str(), prog, text);
  std::exit(static_cast<int>(UI2C_ERR_ARGUMENT));
}

// "--key value" options, flags (no value) and positional arguments.
struct Args {
  std::map<std::string, std::string> options;
  std::set<std::string> flags;
  std::vector<std::string> positional;
};

inline Args parse(int argc, char** argv, const char* text, const std::vector<std::string>& known,
                  const std::vector<std::string>& known_flags = {}) {
  Args args;
  auto listed = [](const std::vector<std::string>& names, const std::string& a) {
    return std::find(names.begin(), names.end(), a) != names.end();
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("-", 0) == 0 && a.size() > 1) {
      if (listed(known_flags, a)) {
        args.flags.insert(a);
        continue;
      }
      if (!listed(known, a)) usage(argv[0], text, "unknown option " + a);
      if (i + 1 >= argc) usage(argv[0], text, a + " needs a value");
      args.options[a] = argv[++i];
    } else {
      args.positional.push_back(a);
    }
  }
  return args;
}

// As ui2c/fileio.py: an output is never one of the inputs, and an existing one is
// replaced only when the user said so (-y).
inline void check_output(const std::string& output, const std::vector<std::string>& inputs, bool overwrite) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(output, ec)) return;
  for (const auto& input : inputs)
    if (fs::equivalent(output, input, ec))
      throw Error(UI2C_ERR_ARGUMENT, "refusing to write " + output + ": it is the input file " + input);
  if (fs::is_directory(output, ec)) throw Error(UI2C_ERR_ARGUMENT, output + " is a directory, not a file name");
  if (!overwrite) throw Error(UI2C_ERR_ARGUMENT, output + " exists; pass -y to replace it");
}

// An integer option in [lo, hi]; anything else is a usage error naming the option.
inline long number(const char* prog, const char* text, const std::string& value, const std::string& name, long lo,
                   long hi) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end || errno == ERANGE || v < lo || v > hi)
    usage(prog, text, name + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" +
                          value + "'");
  return v;
}

// A finite real option.
inline float real(const char* prog, const char* text, const std::string& value, const std::string& name) {
  char* end = nullptr;
  const float v = std::strtof(value.c_str(), &end);
  if (value.empty() || *end || !std::isfinite(v)) usage(prog, text, name + " must be a finite number, got '" + value + "'");
  return v;
}

}  // namespace ui2c::tools
