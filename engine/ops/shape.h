// Shape ops: concat, split, pad and flatten.
//
//   concat(xs, dim)       xs[i] [..., D_i, ...] -> y [..., sum_i D_i, ...]  (all other dims equal)
//   split(x, sizes, dim)  x [..., sum_i sizes_i, ...] -> y_i [..., sizes_i, ...]
//   split(x, chunk, dim)  pieces of `chunk` along dim, the last one smaller (like torch.split)
//   pad(x, pads, mode)    pads pairs from the LAST dim backwards, like torch.nn.functional.pad:
//                         {left, right} pads the last dim, {left, right, top, bottom} the last two
//   flatten(x, a, b)      merges dims a..b into one (a view when x is contiguous)
//
// concat and split copy (their outputs never alias the inputs); their backward passes copy the
// gradient slices back. split records one autograd node with every non-empty piece as an
// output, so a loss that uses only some pieces still gets a gradient of x's full shape (zeros
// elsewhere); empty pieces carry no gradient and do not require grad.
#pragma once

#include <cstdint>
#include <vector>

#include <nabla/tensor.h>

namespace nabla {

enum class PadMode {
  Constant,   // fill with `value`; any number of dims; negative pads crop
  Reflect,    // mirror without repeating the edge: [1, 2, 3] by 2 -> [3, 2, 1, 2, 3, 2, 1]
  Replicate,  // repeat the edge: [1, 2, 3] by 2 -> [1, 1, 1, 2, 3, 3, 3]
};
const char* pad_mode_name(PadMode mode);  // "constant", "reflect", "replicate"

// requires: xs non-empty; same dtype, device and number of dims; shapes equal except at dim.
Tensor concat(const std::vector<Tensor>& xs, int64_t dim = 0);

// requires: sizes >= 0 summing to x.size(dim). ensures: sizes.size() pieces, in order.
// A one-element braced list such as split(x, {n}) selects the chunk overload below; when it is
// valid for the sizes overload (n == x.size(dim)) both give the same single piece.
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
// requires: chunk >= 1. ensures: ceil(x.size(dim) / chunk) pieces (one empty piece if size 0).
std::vector<Tensor> split(const Tensor& x, int64_t chunk, int64_t dim = 0);

// requires: pads has an even length 2k <= 2 * x.dim().
//   Constant: any k; pads may be negative (crop) as long as no padded size is negative.
//   Reflect, Replicate: k is 1 or 2 (the last one or two dims), pads >= 0, value 0;
//   Reflect needs every pad < the size of its dim, Replicate a non-empty dim.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode = PadMode::Constant,
           double value = 0);

// Same as x.flatten(start_dim, end_dim).
Tensor flatten(const Tensor& x, int64_t start_dim = 1, int64_t end_dim = -1);

}  // namespace nabla
