// The image pool (see pool.h).
#include <nabla/gan/pool.h>

#include <nabla/error.h>
#include <nabla/ops.h>

namespace nabla::gan {

ImagePool::ImagePool(int64_t capacity, uint64_t seed) : capacity_(capacity), gen_(seed) {
  NABLA_CHECK(capacity >= 0, "ImagePool: capacity ", capacity, " must be >= 0");
}

Tensor ImagePool::query(const Tensor& images) {
  NABLA_CHECK(
      images.defined() && images.dim() >= 1 && images.size(0) >= 1, "ImagePool::query: images ",
      images.defined() ? shape_str(images.shape()) : "undefined", " must be [N, ...] with N >= 1");
  Tensor x = images.detach();
  if (capacity_ == 0) return x;
  if (!stored_.empty()) {
    const Tensor& s = stored_.front();
    Shape want = s.shape(), got = x.shape();
    want.erase(want.begin());
    got.erase(got.begin());
    NABLA_CHECK(want == got && s.dtype() == x.dtype() && s.device() == x.device(),
                "ImagePool::query: images ", shape_str(x.shape()), " ", dtype_name(x.dtype()),
                " on ", x.device().str(), " do not match the stored images ", shape_str(s.shape()),
                " ", dtype_name(s.dtype()), " on ", s.device().str());
  }
  std::vector<Tensor> out;
  out.reserve(size_t(x.size(0)));
  for (int64_t n = 0; n < x.size(0); ++n) {
    Tensor xn = x.narrow(0, n, 1).clone();
    if (size() < capacity_) {
      stored_.push_back(xn);
      out.push_back(xn);
      continue;
    }
    const double coin = rand({1}, DType::Float64, Device::cpu(), &gen_).item<double>();
    if (coin > 0.5) {
      const int64_t slot = randint(0, capacity_, {1}, &gen_).item<int64_t>();
      out.push_back(stored_[size_t(slot)]);
      stored_[size_t(slot)] = xn;
    } else {
      out.push_back(xn);
    }
  }
  return concat(out, 0);
}

Tensor ImagePool::state() const {
  return stored_.empty() ? Tensor() : concat(stored_, 0);
}

void ImagePool::load_state(const Tensor& stored) {
  stored_.clear();
  if (!stored.defined()) return;
  NABLA_CHECK(stored.dim() >= 1 && stored.size(0) <= capacity_,
              "ImagePool::load_state: ", shape_str(stored.shape()),
              " holds more than the capacity ", capacity_);
  for (int64_t n = 0; n < stored.size(0); ++n) stored_.push_back(stored.narrow(0, n, 1).clone());
}

}  // namespace nabla::gan
