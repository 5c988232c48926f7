// FashionCNN (see classifier.h).
#include <nets/classifier.h>

#include <nabla/error.h>
#include <nabla/ops.h>

namespace nabla::nets {

FashionCNN::FashionCNN(Generator* gen) : nn::Module("FashionCNN") {
  conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(1, 32, 3, 1, 1, 1, 1, true, gen));
  conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(32, 64, 3, 1, 1, 1, 1, true, gen));
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(64 * 7 * 7, 128, true, gen));
  fc2 = register_module("fc2", std::make_shared<nn::Linear>(128, kClasses, true, gen));
}

Tensor FashionCNN::forward(const Tensor& x) {
  NABLA_CHECK(x.dim() == 4 && x.size(1) == kChannels && x.size(2) == kSize && x.size(3) == kSize,
              "FashionCNN: expects images [N, 1, 28, 28], got ", shape_str(x.shape()));
  Tensor h = max_pool2d(relu(conv1->forward(x)), 2);
  h = max_pool2d(relu(conv2->forward(h)), 2);
  h = relu(fc1->forward(h.flatten(1)));
  return fc2->forward(h);
}

}  // namespace nabla::nets
