// DataLoader: per-epoch Philox permutations and row gathers (see loader.h).
#include <nabla/data/loader.h>

#include <cstring>
#include <numeric>

#include <nabla/error.h>
#include <nabla/random.h>

namespace nabla::data {

namespace {

// SplitMix64 finaliser: spreads (seed, epoch) into an unrelated Philox key, so neighbouring
// seeds or epochs give independent streams rather than shifted copies of one.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The gather is memory-bound: a Fashion-MNIST batch (400 KB) copies in tens of microseconds on
// one thread, and waking a team costs more than that on a busy machine. Only batches of big
// images (CycleGAN, histology: megabytes) are split across threads.
constexpr size_t kParallelBytes = size_t(4) << 20;

}  // namespace

DataLoader::DataLoader(const Dataset& ds, int64_t batch_size, bool shuffle, uint64_t seed,
                       bool drop_last)
    : images_(ds.images),
      labels_(ds.labels),
      batch_size_(batch_size),
      shuffle_(shuffle),
      drop_last_(drop_last),
      seed_(seed) {
  NABLA_CHECK(batch_size > 0, "DataLoader: batch_size must be positive, got ", batch_size);
  NABLA_CHECK(images_.defined() && labels_.defined(),
              "DataLoader: the data set has no images or no labels");
  NABLA_CHECK(images_.device().is_cpu() && labels_.device().is_cpu(),
              "DataLoader: expects a CPU data set, got images ", images_.str(), " and labels ",
              labels_.str());
  NABLA_CHECK(images_.dim() >= 1 && labels_.dim() == 1 && labels_.dtype() == DType::Int64 &&
                  images_.size(0) == labels_.size(0),
              "DataLoader: expects images [N, ...] and int64 labels [N], got images ",
              images_.str(), " and labels ", labels_.str());
  images_ = images_.contiguous();
  labels_ = labels_.contiguous();
  set_epoch(0);
}

void DataLoader::set_epoch(int64_t epoch) {
  NABLA_CHECK(epoch >= 0, "DataLoader::set_epoch: epoch must be >= 0, got ", epoch);
  epoch_ = epoch;
  const int64_t n = labels_.size(0);
  if (shuffle_) {
    Generator gen(mix(seed_ ^ mix(uint64_t(epoch))));
    order_ = randperm(n, &gen);
  } else {
    order_.resize(size_t(n));
    std::iota(order_.begin(), order_.end(), int64_t(0));
  }
}

int64_t DataLoader::num_batches() const {
  const int64_t n = labels_.size(0);
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

Batch DataLoader::batch(int64_t i) const {
  const int64_t nb = num_batches();
  NABLA_CHECK(i >= 0 && i < nb, "DataLoader::batch: index ", i, " out of range [0, ", nb, ")");
  const int64_t n = labels_.size(0);
  const int64_t begin = i * batch_size_, b = std::min(n, begin + batch_size_) - begin;

  Batch out;
  out.indices.assign(order_.begin() + begin, order_.begin() + begin + b);
  Shape shape = images_.shape();
  shape[0] = b;
  out.images = pin_memory_ ? empty_pinned(shape, images_.dtype()) : empty(shape, images_.dtype());
  out.labels = pin_memory_ ? empty_pinned({b}, DType::Int64) : empty({b}, DType::Int64);

  const size_t row_bytes =
      size_t(images_.numel() / std::max<int64_t>(n, 1)) * dtype_size(images_.dtype());
  const char* src = static_cast<const char*>(images_.raw_data());
  char* dst = static_cast<char*>(out.images.raw_data());
  const int64_t* src_labels = labels_.data<int64_t>();
  int64_t* dst_labels = out.labels.data<int64_t>();
  const int64_t* idx = out.indices.data();
#pragma omp parallel for schedule(static) if (size_t(b) * row_bytes > kParallelBytes)
  for (int64_t r = 0; r < b; ++r) {
    std::memcpy(dst + size_t(r) * row_bytes, src + size_t(idx[r]) * row_bytes, row_bytes);
    dst_labels[r] = src_labels[idx[r]];
  }
  return out;
}

}  // namespace nabla::data
