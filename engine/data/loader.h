// Mini-batches over a data Source: a seeded shuffle per epoch, then items stacked per field.
//
//   epoch e, shuffle:  order = randperm(N) drawn from a Generator keyed by mix(seed, e)
//   batch i:           items order[i*B, min(N, (i+1)*B)), each field stacked into a fresh
//                      contiguous tensor [b, ...field shape]
//
// The permutation of an epoch depends only on (seed, epoch), so a run can resume at any epoch
// (and any batch) and reproduce the same batches, and no hidden state advances between calls.
// A TensorSource (every file loader's result) is gathered row by row with memcpy; any other
// source is read item by item with get(), on several threads, and every item of a batch must
// have the same shape and dtype per field.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <nabla/data/mnist.h>
#include <nabla/data/source.h>
#include <nabla/tensor.h>

namespace nabla::data {

// The fields of a batch ("image" [b, C, H, W], "label" [b], ...) and where they came from.
struct Batch : Example {
  std::vector<int64_t> indices;  // the source's items that make up the batch, in batch order
};

class DataLoader {
 public:
  // requires: batch_size > 0; source non-null with at least one field.
  // ensures: a loader at epoch 0 over the source. Throws nabla::Error naming the problem
  //   otherwise.
  DataLoader(std::shared_ptr<const Source> source, int64_t batch_size, bool shuffle, uint64_t seed,
             bool drop_last = false);
  // ensures: a loader over {"image": ds.images, "label": ds.labels} (any label shape: class
  //   indices [N], masks [N, H, W], float targets). It shares ds's tensors (copying only
  //   non-contiguous ones), so later in-place changes to ds.images show up in the batches.
  DataLoader(const Dataset& ds, int64_t batch_size, bool shuffle, uint64_t seed,
             bool drop_last = false);

  // requires: epoch >= 0.
  // ensures: with shuffle, the order becomes a permutation determined by (seed, epoch) alone;
  //   without shuffle it stays 0..N-1.
  void set_epoch(int64_t epoch);
  int64_t epoch() const { return epoch_; }

  // ensures: ceil(N / batch_size), or floor(N / batch_size) with drop_last.
  int64_t num_batches() const;
  int64_t size() const { return source_->size(); }
  const Source& source() const { return *source_; }

  // With pin_memory on, batches are gathered straight into page-locked host memory, so that
  // copying them to a GPU is faster (needs the CUDA backend and a GPU). Off by default.
  void set_pin_memory(bool on) { pin_memory_ = on; }

  // requires: 0 <= i < num_batches().
  // ensures: the i-th batch of the current epoch in fresh contiguous tensors; only the last
  //   batch may be smaller than batch_size (never with drop_last). Items whose field shapes or
  //   dtypes differ within the batch give nabla::Error naming both items, the field and both
  //   shapes. Thread-safe (const).
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
  Tensor allocate(const Shape& s, DType dt) const;
  Batch gather_rows(const TensorSource& src, std::vector<int64_t> idx) const;
  Batch stack_items(std::vector<int64_t> idx) const;

  std::shared_ptr<const Source> source_;
  const TensorSource* tensors_ = nullptr;  // source_ when it is a TensorSource
  int64_t batch_size_;
  bool shuffle_, drop_last_, pin_memory_ = false;
  uint64_t seed_;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
};

// requires: src non-null with at least one item; fields empty (all of them) or names of src's
//   fields.
// ensures: a TensorSource holding the chosen fields of every item stacked into [N, ...] tensors
//   (read in chunks through a DataLoader, so on several threads), item names src.describe(i).
//   Generating a synthetic set once this way saves regenerating it every epoch. Errors name the
//   field or the item.
std::shared_ptr<TensorSource> materialize(const std::shared_ptr<const Source>& src,
                                          const std::vector<std::string>& fields = {});

}  // namespace nabla::data
