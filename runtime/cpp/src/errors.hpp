// One exception type carrying a C API status code, so every layer reports failures
// the same way and the C API maps them without guessing.
#pragma once

#include <stdexcept>
#include <string>

#include "ui2c/ui2c.h"

namespace ui2c {

struct Error : std::runtime_error {
  ui2c_status code;
  Error(ui2c_status c, const std::string& message) : std::runtime_error(message), code(c) {}
};

}  // namespace ui2c
