// Padding layers with torch.nn's names: ReflectionPad2d, ReplicationPad2d, ZeroPad2d.
//
//   ReflectionPad2d(p)  x [N, C, H, W] -> [N, C, H + top + bottom, W + left + right], mirrored
//                       without repeating the edge (needs every pad < the padded dim)
//   ReplicationPad2d(p) the same shape, the edge repeated
//   ZeroPad2d(p)        the same shape, zeros
//
// p is one size for all four sides or {left, right, top, bottom} (torch's order). None has
// parameters; the forward is ops/shape.h's pad, whose backward sums the gradient of every copy
// back into the element it came from.
#pragma once

#include <array>

#include <nabla/nn/module.h>
#include <nabla/ops/shape.h>

namespace nabla::nn {

class Pad2d : public Module {
 public:
  // requires: every pad >= 0.
  Pad2d(const char* type_name, PadMode mode, std::array<int64_t, 4> padding);
  // requires: x [N, C, H, W] (or [C, H, W]); reflect: each pad < the padded dim.
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  PadMode mode;
  std::array<int64_t, 4> padding;  // left, right, top, bottom
};

class ReflectionPad2d : public Pad2d {
 public:
  explicit ReflectionPad2d(int64_t p) : Pad2d("ReflectionPad2d", PadMode::Reflect, {p, p, p, p}) {}
  explicit ReflectionPad2d(std::array<int64_t, 4> p)
      : Pad2d("ReflectionPad2d", PadMode::Reflect, p) {}
};

class ReplicationPad2d : public Pad2d {
 public:
  explicit ReplicationPad2d(int64_t p)
      : Pad2d("ReplicationPad2d", PadMode::Replicate, {p, p, p, p}) {}
  explicit ReplicationPad2d(std::array<int64_t, 4> p)
      : Pad2d("ReplicationPad2d", PadMode::Replicate, p) {}
};

class ZeroPad2d : public Pad2d {
 public:
  explicit ZeroPad2d(int64_t p) : Pad2d("ZeroPad2d", PadMode::Constant, {p, p, p, p}) {}
  explicit ZeroPad2d(std::array<int64_t, 4> p) : Pad2d("ZeroPad2d", PadMode::Constant, p) {}
};

}  // namespace nabla::nn
