// Random numbers: one seeded, counter-based (Philox4x32-10) generator.
//
// A Generator is (seed, offset). Each draw of n numbers uses the counters
// [offset, offset + blocks(n)) and then advances offset, so a draw is reproducible from the
// generator's state alone, on the CPU and on a GPU alike (see kernels/random.h).
#pragma once

#include <cstdint>

#include <nabla/tensor.h>

namespace nabla {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  void manual_seed(uint64_t seed) {
    seed_ = seed;
    offset_ = 0;
  }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  // Restores a state read from seed() and offset() (resuming a run): the next draws are the
  // ones the saved generator would have made.
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  // Returns the current offset and reserves `blocks` counters after it.
  uint64_t advance(uint64_t blocks) {
    uint64_t o = offset_;
    offset_ += blocks;
    return o;
  }

 private:
  uint64_t seed_ = 0, offset_ = 0;
};

// The process-wide default generator of the CPU and every device (seeded with 0).
Generator& default_generator();
void manual_seed(uint64_t seed);

// Uniform in [lo, hi) and normal(mean, std). gen == nullptr uses the default generator.
Tensor rand(const Shape& s, DType dt = DType::Float32, Device dev = Device::cpu(),
            Generator* gen = nullptr, double lo = 0, double hi = 1);
Tensor randn(const Shape& s, DType dt = DType::Float32, Device dev = Device::cpu(),
             Generator* gen = nullptr, double mean = 0, double std = 1);
// Uniform integers in [lo, hi), int64.
Tensor randint(int64_t lo, int64_t hi, const Shape& s, Generator* gen = nullptr);
// A permutation of 0..n-1 (int64), from the generator (Fisher-Yates on Philox draws).
std::vector<int64_t> randperm(int64_t n, Generator* gen = nullptr);

}  // namespace nabla
