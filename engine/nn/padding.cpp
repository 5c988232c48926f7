// Padding layers (see padding.h): shape checks, then ops/shape.h's pad.
#include <nabla/nn/padding.h>

#include <sstream>

#include <nabla/error.h>

namespace nabla::nn {

Pad2d::Pad2d(const char* type_name, PadMode mode_, std::array<int64_t, 4> padding_)
    : Module(type_name), mode(mode_), padding(padding_) {
  for (int64_t p : padding)
    NABLA_CHECK(p >= 0, type_name, ": pads must be >= 0, got ",
                shape_str(std::vector<int64_t>(padding.begin(), padding.end())));
}

Tensor Pad2d::forward(const Tensor& x) {
  NABLA_CHECK(x.dim() == 3 || x.dim() == 4, type_name(), "(", extra_repr(),
              "): expects input [N, C, H, W] or [C, H, W], got ", shape_str(x.shape()));
  if (mode == PadMode::Reflect)
    NABLA_CHECK(std::max(padding[2], padding[3]) < x.size(-2) &&
                    std::max(padding[0], padding[1]) < x.size(-1),
                type_name(), "(", extra_repr(),
                "): each pad must be smaller than the dim it pads, got input ",
                shape_str(x.shape()));
  return pad(x, {padding[0], padding[1], padding[2], padding[3]}, mode);
}

std::string Pad2d::extra_repr() const {
  std::ostringstream os;
  if (padding[0] == padding[1] && padding[1] == padding[2] && padding[2] == padding[3])
    os << padding[0];
  else
    os << "(" << padding[0] << ", " << padding[1] << ", " << padding[2] << ", " << padding[3]
       << ")";
  return os.str();
}

}  // namespace nabla::nn
