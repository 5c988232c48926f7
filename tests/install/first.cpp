// The README's "first program", built by tests/install/check.sh against an installed nabla.
// clang-format off: kept exactly as the README prints it
#include <nabla/nabla.h>
#include <iostream>
using namespace nabla;

int main() {
  manual_seed(0);
  Tensor x = rand({1, 1, 8, 8}).set_requires_grad(true);       // an 8x8 "image"
  Tensor w1 = randn({4, 1, 3, 3}) * 0.5, b1 = zeros({4});      // conv 1 -> 4, 3x3
  Tensor w2 = randn({10, 4 * 4 * 4}) * 0.1, b2 = zeros({10});  // linear 64 -> 10
  w1.set_requires_grad(true);

  Tensor h = max_pool2d(relu(conv2d(x, w1, b1, /*stride=*/1, /*padding=*/1)), 2);
  Tensor logits = linear(h.flatten(1), w2, b2);
  Tensor loss = cross_entropy(logits, from_vector<int64_t>({3}, {1}));

  Tensor dx = grad({loss}, {x})[0];  // dL/dx only: w1's gradient is never computed
  std::cout << dx.reshape({8, 8}) << "\n";
  std::cout << "conv2d weight-gradient kernels run: " << kernel_count("conv2d_backward_weight")
            << "\n";
}
