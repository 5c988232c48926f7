// DataLoader: per-epoch Philox permutations, row gathers and item stacking (see loader.h).
#include <nabla/data/loader.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>

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

size_t bytes_of(const Tensor& t) {
  return size_t(t.numel()) * dtype_size(t.dtype());
}

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Source> source, int64_t batch_size, bool shuffle,
                       uint64_t seed, bool drop_last)
    : source_(std::move(source)),
      batch_size_(batch_size),
      shuffle_(shuffle),
      drop_last_(drop_last),
      seed_(seed) {
  NABLA_CHECK(batch_size > 0, "DataLoader: batch_size must be positive, got ", batch_size);
  NABLA_CHECK(source_ != nullptr, "DataLoader: no data source");
  NABLA_CHECK(!source_->fields().empty(), "DataLoader: the source has no fields");
  tensors_ = dynamic_cast<const TensorSource*>(source_.get());
  set_epoch(0);
}

DataLoader::DataLoader(const Dataset& ds, int64_t batch_size, bool shuffle, uint64_t seed,
                       bool drop_last)
    : DataLoader(TensorSource::from(ds), batch_size, shuffle, seed, drop_last) {}

void DataLoader::set_epoch(int64_t epoch) {
  NABLA_CHECK(epoch >= 0, "DataLoader::set_epoch: epoch must be >= 0, got ", epoch);
  epoch_ = epoch;
  const int64_t n = source_->size();
  if (shuffle_) {
    Generator gen(mix(seed_ ^ mix(uint64_t(epoch))));
    order_ = randperm(n, &gen);
  } else {
    order_.resize(size_t(n));
    std::iota(order_.begin(), order_.end(), int64_t(0));
  }
}

int64_t DataLoader::num_batches() const {
  const int64_t n = source_->size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

Tensor DataLoader::allocate(const Shape& s, DType dt) const {
  return pin_memory_ ? empty_pinned(s, dt) : empty(s, dt);
}

Batch DataLoader::batch(int64_t i) const {
  const int64_t nb = num_batches();
  NABLA_CHECK(i >= 0 && i < nb, "DataLoader::batch: index ", i, " out of range [0, ", nb, ")");
  const int64_t begin = i * batch_size_, b = std::min(source_->size(), begin + batch_size_) - begin;
  std::vector<int64_t> idx(order_.begin() + begin, order_.begin() + begin + b);
  return tensors_ ? gather_rows(*tensors_, std::move(idx)) : stack_items(std::move(idx));
}

Batch DataLoader::gather_rows(const TensorSource& src, std::vector<int64_t> idx) const {
  Batch out;
  const int64_t b = int64_t(idx.size()), n = src.size();
  for (const auto& [name, field] : src.tensors().fields()) {
    Shape shape = field.shape();
    shape[0] = b;
    Tensor dst_t = allocate(shape, field.dtype());
    const size_t row_bytes = bytes_of(field) / size_t(std::max<int64_t>(n, 1));
    const char* src_p = static_cast<const char*>(field.raw_data());
    char* dst = static_cast<char*>(dst_t.raw_data());
    const int64_t* ix = idx.data();
#pragma omp parallel for schedule(static) if (size_t(b) * row_bytes > kParallelBytes)
    for (int64_t r = 0; r < b; ++r)
      std::memcpy(dst + size_t(r) * row_bytes, src_p + size_t(ix[r]) * row_bytes, row_bytes);
    out.set(name, dst_t);
  }
  out.indices = std::move(idx);
  return out;
}

Batch DataLoader::stack_items(std::vector<int64_t> idx) const {
  const int64_t b = int64_t(idx.size());
  const std::vector<std::string> names = source_->fields();
  std::vector<Example> items(static_cast<size_t>(b));
  std::vector<std::string> errors(static_cast<size_t>(b));
  // Items are independent (Source::get depends on the index alone); an exception must not leave
  // an OpenMP region, so each thread keeps its error for the loop below.
#pragma omp parallel for schedule(dynamic)
  for (int64_t r = 0; r < b; ++r) {
    try {
      items[size_t(r)] = source_->get(idx[size_t(r)]);
    } catch (const std::exception& e) {
      errors[size_t(r)] = e.what();
    }
  }
  for (int64_t r = 0; r < b; ++r)
    NABLA_CHECK(errors[size_t(r)].empty(), "DataLoader: ", source_->describe(idx[size_t(r)]), ": ",
                errors[size_t(r)]);

  Batch out;
  for (const std::string& name : names) {
    const Example& first = items[0];
    NABLA_CHECK(first.has(name), "DataLoader: ", source_->describe(idx[0]), " has no field '", name,
                "', which the source promises");
    const Tensor& t0 = first[name];
    for (int64_t r = 1; r < b; ++r) {
      const Example& it = items[size_t(r)];
      NABLA_CHECK(it.has(name), "DataLoader: ", source_->describe(idx[size_t(r)]),
                  " has no field '", name, "'");
      const Tensor& t = it[name];
      NABLA_CHECK(t.shape() == t0.shape() && t.dtype() == t0.dtype(), "DataLoader: field '", name,
                  "' of ", source_->describe(idx[size_t(r)]), " is ", t.str(), " but ",
                  source_->describe(idx[0]), " in the same batch has ", t0.str(),
                  ": every item of a batch needs the same shape and dtype per field");
    }
    Shape shape = t0.shape();
    shape.insert(shape.begin(), b);
    Tensor dst_t = allocate(shape, t0.dtype());
    const size_t row_bytes = bytes_of(t0);
    char* dst = static_cast<char*>(dst_t.raw_data());
    for (int64_t r = 0; r < b; ++r) {
      const Tensor src = items[size_t(r)][name].to(Device::cpu()).contiguous();
      std::memcpy(dst + size_t(r) * row_bytes, src.raw_data(), row_bytes);
    }
    out.set(name, dst_t);
  }
  out.indices = std::move(idx);
  return out;
}

std::shared_ptr<TensorSource> materialize(const std::shared_ptr<const Source>& src,
                                          const std::vector<std::string>& fields) {
  NABLA_CHECK(src != nullptr, "materialize: no data source");
  const int64_t n = src->size();
  NABLA_CHECK(n >= 1, "materialize: the source is empty");
  const std::vector<std::string> all = src->fields();
  const std::vector<std::string> keep = fields.empty() ? all : fields;
  std::string listed;
  for (const std::string& f : all) listed += (listed.empty() ? "" : ", ") + f;
  for (const std::string& f : keep)
    NABLA_CHECK(std::find(all.begin(), all.end(), f) != all.end(),
                "materialize: the source has no "
                "field '",
                f, "' (its fields: ", listed, ")");
  // Chunks of 256 items bound the memory held twice (items and their stacked copy).
  DataLoader loader(src, 256, /*shuffle=*/false, 0);
  Example out;
  std::vector<std::string> names;
  for (int64_t b = 0; b < loader.num_batches(); ++b) {
    const Batch batch = loader.batch(b);
    for (const std::string& f : keep) {
      const Tensor& t = batch[f];
      if (b == 0) {
        Shape s = t.shape();
        s[0] = n;
        out.set(f, empty(s, t.dtype()));
      }
      const size_t row = bytes_of(t) / size_t(t.size(0));
      std::memcpy(static_cast<char*>(out[f].raw_data()) + size_t(b) * 256 * row, t.raw_data(),
                  bytes_of(t));
    }
  }
  for (int64_t i = 0; i < n; ++i) names.push_back(src->describe(i));
  return std::make_shared<TensorSource>(std::move(out), std::move(names));
}

}  // namespace nabla::data
