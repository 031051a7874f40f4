// Read-only view of a Python bytes-like argument, shared by the extension modules.
// pybind11's buffer request accepts strided views (memoryview(b)[::2], [::-1]); the
// coders read `size` consecutive bytes from the start pointer, so anything but one
// contiguous run of bytes is refused here instead of being read wrongly or past its end.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <vector>

namespace ui2c::py_bytes {

class Bytes {
 public:
  explicit Bytes(const pybind11::buffer& b) : info_(b.request()) {
    const bool flat = info_.ndim == 0 || (info_.ndim == 1 && (info_.shape[0] <= 1 || info_.strides[0] == 1));
    if (info_.itemsize != 1 || !flat) throw pybind11::value_error("expected contiguous bytes");
  }
  const uint8_t* data() const { return static_cast<const uint8_t*>(info_.ptr); }
  size_t size() const { return static_cast<size_t>(info_.size); }
  std::vector<uint8_t> copy() const { return {data(), data() + size()}; }

 private:
  pybind11::buffer_info info_;
};

}  // namespace ui2c::py_bytes
