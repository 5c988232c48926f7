// SaliencyDetector (see detector.h).
#include <nets/detector.h>

#include <string>

#include <nabla/error.h>
#include <nabla/ops.h>
#include <nabla/ops/pool.h>

namespace nabla::nets {

SaliencyDetector::SaliencyDetector(int64_t in_channels, Generator* gen)
    : nn::Module("SaliencyDetector"), in_channels_(in_channels) {
  NABLA_CHECK(in_channels >= 1, "SaliencyDetector: in_channels must be >= 1, got ", in_channels);
  conv1 = register_module("conv1",
                          std::make_shared<nn::Conv2d>(in_channels, 16, 3, 1, 1, 1, 1, true, gen));
  conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(16, 32, 3, 1, 1, 1, 1, true, gen));
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(32 * 7 * 7, 64, true, gen));
  fc2 = register_module("fc2", std::make_shared<nn::Linear>(64, kClasses, true, gen));
}

Tensor SaliencyDetector::forward(const Tensor& x) {
  NABLA_CHECK(x.dim() == 4 && x.size(1) == in_channels_ && x.size(2) == kSize && x.size(3) == kSize,
              "SaliencyDetector: expects inputs [N, ", in_channels_, ", 28, 28], got ",
              shape_str(x.shape()));
  Tensor h = max_pool2d(relu((*conv1)(x)), 2);
  h = max_pool2d(relu((*conv2)(h)), 2);
  h = relu((*fc1)(h.flatten(1)));
  return (*fc2)(h);
}

std::string SaliencyDetector::extra_repr() const {
  return "in_channels=" + std::to_string(in_channels_);
}

}  // namespace nabla::nets
