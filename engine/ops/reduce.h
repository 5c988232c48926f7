// Reductions: sum, mean, var, max and argmax, over the whole tensor or along dims.
// Whole-tensor reductions return a 0-dim tensor (shape []).
#pragma once

#include <utility>
#include <vector>

#include <nabla/tensor.h>

namespace nabla {

Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Variance of all elements with Bessel's correction (like torch.var(x)); for another
// correction, name the dims: var(x, {0, 1}, 0) is the biased variance of a 2-D tensor.
Tensor var(const Tensor& x);
Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction = 1,
           bool keepdim = false);
// Max of all elements. The gradient goes to the first maximal element.
Tensor max(const Tensor& x);
// Max along dim: (values, int64 indices). Gradient flows to the indexed elements.
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x);  // flat index, int64, shape []
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);

// Sums g over the broadcast dims so that it has `shape` (the backward of broadcasting).
// requires: shape broadcasts to g.shape().
Tensor sum_to(const Tensor& g, const Shape& shape);

}  // namespace nabla
