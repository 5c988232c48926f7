// The image pool of Shrivastava et al. 2017 ("Learning from simulated and unsupervised images
// through adversarial training", section 2.3), as CycleGAN's ImagePool uses it: the
// discriminator is updated on a mix of the newest generated images and older ones, which damps
// oscillations between G and D.
//
//   query(x), x [N, ...], one image at a time in order:
//     pool not full (fewer than `capacity` stored): store x_n, return x_n
//     pool full: with probability 1/2 return a stored image chosen uniformly and store x_n in
//                its place; otherwise return x_n and leave the pool as it is
//   capacity 0: query returns its input.
//
// Draws come from the pool's own seeded generator (one uniform for the coin, one for the slot),
// so a run is reproducible; state() and load_state() carry the stored images and the generator
// through a checkpoint.
#pragma once

#include <cstdint>
#include <vector>

#include <nabla/random.h>
#include <nabla/tensor.h>

namespace nabla::gan {

class ImagePool {
 public:
  // requires: capacity >= 0 (CycleGAN uses 50).
  explicit ImagePool(int64_t capacity = 50, uint64_t seed = 0);

  // requires: images [N, ...] with N >= 1, every query the same per-image shape, dtype and
  //   device (else nabla::Error naming both shapes).
  // ensures: [N, ...] as described above, detached (the pool feeds the discriminator's step);
  //   the stored images are copies.
  Tensor query(const Tensor& images);

  int64_t capacity() const { return capacity_; }
  int64_t size() const { return int64_t(stored_.size()); }
  Generator& generator() { return gen_; }

  // The stored images as one tensor [size, ...] (undefined when empty), and back.
  Tensor state() const;
  // requires: stored undefined or [k, ...] with k <= capacity.
  void load_state(const Tensor& stored);

 private:
  int64_t capacity_;
  Generator gen_;
  std::vector<Tensor> stored_;  // each [1, ...]
};

}  // namespace nabla::gan
