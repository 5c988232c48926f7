// Mini-batches over an in-memory Dataset: a seeded shuffle per epoch, then contiguous gathers.
//
//   epoch e, shuffle:  order = randperm(N) drawn from a Generator keyed by mix(seed, e)
//   batch i:           rows order[i*B, min(N, (i+1)*B)) copied into fresh [b, C, H, W] / [b]
//
// The permutation of an epoch depends only on (seed, epoch), so a run can resume at any epoch
// and reproduce the same batches, and no hidden state advances between calls.
#pragma once

#include <cstdint>
#include <vector>

#include <nabla/data/mnist.h>
#include <nabla/tensor.h>

namespace nabla::data {

struct Batch {
  Tensor images;                 // [b, C, H, W], same dtype as the data set, CPU, contiguous
  Tensor labels;                 // int64 [b]
  std::vector<int64_t> indices;  // the data set rows that make up the batch, in batch order
};

class DataLoader {
 public:
  // requires: batch_size > 0; ds.images [N, ...] and ds.labels int64 [N] on the CPU.
  // ensures: a loader at epoch 0. It shares ds's tensors (copying only non-contiguous ones), so
  //   later in-place changes to ds.images show up in the batches. Throws nabla::Error naming the
  //   shapes otherwise.
  DataLoader(const Dataset& ds, int64_t batch_size, bool shuffle, uint64_t seed,
             bool drop_last = false);

  // requires: epoch >= 0.
  // ensures: with shuffle, the order becomes a permutation determined by (seed, epoch) alone;
  //   without shuffle it stays 0..N-1.
  void set_epoch(int64_t epoch);
  int64_t epoch() const { return epoch_; }

  // ensures: ceil(N / batch_size), or floor(N / batch_size) with drop_last.
  int64_t num_batches() const;

  // With pin_memory on, batches are gathered straight into page-locked host memory, so that
  // copying them to a GPU is faster (needs the CUDA backend and a GPU). Off by default.
  void set_pin_memory(bool on) { pin_memory_ = on; }

  // requires: 0 <= i < num_batches().
  // ensures: the i-th batch of the current epoch in fresh contiguous tensors; only the last
  //   batch may be smaller than batch_size (never with drop_last). Thread-safe (const).
  Batch batch(int64_t i) const;

  // Range-for over the batches of the current epoch: for (const Batch& b : loader) ...
  class Iterator {
   public:
    Iterator(const DataLoader* loader, int64_t i) : loader_(loader), i_(i) {}
    Batch operator*() const { return loader_->batch(i_); }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator!=(const Iterator& o) const { return i_ != o.i_; }

   private:
    const DataLoader* loader_;
    int64_t i_;
  };
  Iterator begin() const { return Iterator(this, 0); }
  Iterator end() const { return Iterator(this, num_batches()); }

 private:
  Tensor images_, labels_;
  int64_t batch_size_;
  bool shuffle_, drop_last_, pin_memory_ = false;
  uint64_t seed_;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace nabla::data
