// Shared by the command-line programs: argument parsing and one-line error exits.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "errors.hpp"
#include "ui2c/ui2c.h"

namespace ui2c::tools {

// Exits with the status as the process code after printing "prog: kind: message".
inline void check(const char* prog, ui2c_status status) {
  if (status == UI2C_OK) return;
  std::fprintf(stderr, "%s: %s: %s\n", prog, ui2c_status_name(status), ui2c_last_error());
  std::exit(static_cast<int>(status));
}

[[noreturn]] inline void usage(const char* prog, const char* text, const std::string& problem) {
  std::fprintf(stderr, "%s: %s\nusage: %s %s\n", prog, problem.c_str(), prog, text);
  std::exit(static_cast<int>(UI2C_ERR_ARGUMENT));
}

// "--key value" options and positional arguments; every option takes a value.
struct Args {
  std::map<std::string, std::string> options;
  std::vector<std::string> positional;
};

inline Args parse(int argc, char** argv, const char* text, const std::vector<std::string>& known) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("-", 0) == 0 && a.size() > 1) {
      bool ok = false;
      for (const auto& k : known) ok |= k == a;
      if (!ok) usage(argv[0], text, "unknown option " + a);
      if (i + 1 >= argc) usage(argv[0], text, a + " needs a value");
      args.options[a] = argv[++i];
    } else {
      args.positional.push_back(a);
    }
  }
  return args;
}

inline long number(const char* prog, const char* text, const std::string& value, const std::string& name) {
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end) usage(prog, text, name + " must be an integer, got '" + value + "'");
  return v;
}

}  // namespace ui2c::tools
