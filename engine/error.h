// nabla::Error: the one exception type of the engine.
// Every check that can fail on user input throws it, with a message that names
// the op and every shape involved (see shape_str in tensor.h).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace nabla {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace nabla

// NABLA_CHECK(cond, parts...): throw nabla::Error(concat(parts...)) unless cond.
#define NABLA_CHECK(cond, ...)                                               \
  do {                                                                       \
    if (!(cond)) throw ::nabla::Error(::nabla::detail::concat(__VA_ARGS__)); \
  } while (0)
