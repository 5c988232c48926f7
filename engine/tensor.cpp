// Tensor, Storage, Device, shapes, factories and view ops. See tensor.h.
#include <nabla/tensor.h>

#include <nabla/dispatch.h>
#include <nabla/memory.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <numeric>
#include <ostream>
#include <sstream>
#include <type_traits>

#include <nabla/autograd.h>
#include <nabla/ops/reduce.h>

#include "kernels/copy.h"

namespace nabla {

// ---------------------------------------------------------------- dtype / shape / device
size_t dtype_size(DType d) {
  return d == DType::Float32 ? 4 : 8;
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::Float32:
      return "float32";
    case DType::Float64:
      return "float64";
    case DType::Int64:
      return "int64";
  }
  return "?";
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

// Every partial product is checked, not only the final one: a zero dimension makes the product
// 0, but the strides of the other dimensions are still partial products and must fit in int64.
int64_t shape_numel(const Shape& s) {
  int64_t n = 1, partial = 1;
  for (int64_t d : s) {
    NABLA_CHECK(d >= 0, "shape ", shape_str(s), ": negative dimension ", d);
    NABLA_CHECK(!__builtin_mul_overflow(partial, std::max<int64_t>(d, 1), &partial), "shape ",
                shape_str(s), ": the element count overflows 64 bits");
    n *= d;  // |n| <= partial: cannot overflow
  }
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int64_t i = int64_t(s.size()) - 1; i >= 0; --i) {
    st[size_t(i)] = acc;
    NABLA_CHECK(!__builtin_mul_overflow(acc, std::max<int64_t>(s[size_t(i)], 1), &acc), "shape ",
                shape_str(s), ": the strides overflow 64 bits");
  }
  return st;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    NABLA_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ",
                shape_str(b), " cannot be broadcast together (dim ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t lo = -std::max<int64_t>(ndim, 1), hi = std::max<int64_t>(ndim, 1) - 1;
  NABLA_CHECK(dim >= lo && dim <= hi, op, ": dim ", dim, " out of range for a tensor with ", ndim,
              " dims");
  return dim < 0 ? dim + std::max<int64_t>(ndim, 1) : dim;
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    std::string idx = s.substr(5);
    NABLA_CHECK(!idx.empty() && std::all_of(idx.begin(), idx.end(), ::isdigit),
                "Device: cannot parse '", s, "' (expected cpu, cuda or cuda:N)");
    int i = 0;
    const auto [end, ec] = std::from_chars(idx.data(), idx.data() + idx.size(), i);
    NABLA_CHECK(ec == std::errc() && end == idx.data() + idx.size(), "Device: cannot parse '", s,
                "' (the device index is out of range)");
    return cuda(i);
  }
  throw Error("Device: cannot parse '" + s + "' (expected cpu, cuda or cuda:N)");
}

namespace {
DeviceBackend* g_cuda_backend = nullptr;
bool g_deterministic = false;
}  // namespace

#ifdef NABLA_HAVE_CUDA
namespace cuda {
void ensure_backend();  // kernels/cuda/backend.cu: registers the backend on first use
}
#endif

DeviceBackend* cuda_backend() {
#ifdef NABLA_HAVE_CUDA
  cuda::ensure_backend();
#endif
  return g_cuda_backend;
}
void register_cuda_backend(DeviceBackend* b) {
  g_cuda_backend = b;
}
bool cuda_available() {
  DeviceBackend* b = cuda_backend();
  return b && b->device_count() > 0;
}
static bool g_debug_fill = std::getenv("NABLA_DEBUG_FILL") != nullptr;
void set_debug_fill(bool on) {
  g_debug_fill = on;
}
bool debug_fill() {
  return g_debug_fill;
}
static bool g_sync_checks = [] {
  const char* e = std::getenv("NABLA_SYNC_CHECKS");
  return e && std::string(e) != "0";
}();
void set_sync_checks(bool on) {
  g_sync_checks = on;
}
bool sync_checks() {
  return g_sync_checks;
}
void set_deterministic(bool on) {
  g_deterministic = on;
}
bool deterministic() {
  return g_deterministic;
}

static DeviceBackend& backend_for(Device d, const char* what) {
  NABLA_CHECK(d.is_cuda(), what, ": no backend for ", d.str());
  NABLA_CHECK(cuda_backend() != nullptr, what, ": ", d.str(),
              " requested but nabla was built without the CUDA backend (or no GPU was found)");
  NABLA_CHECK(d.index >= 0 && d.index < g_cuda_backend->device_count(), what, ": ", d.str(),
              " does not exist (", g_cuda_backend->device_count(), " CUDA devices)");
  return *g_cuda_backend;
}

// ---------------------------------------------------------------- storage
Storage::Storage(size_t nbytes, Device device, bool pinned)
    : nbytes_(nbytes), device_(device), pinned_(pinned) {
  if (pinned) {
    NABLA_CHECK(device.is_cpu(), "Storage: pinned memory is host memory, not ", device.str());
    data_ = backend_for(Device::cuda(0), "pin_memory").allocate_pinned(nbytes);
  } else if (device.is_cpu()) {
    data_ = host_allocator().allocate(nbytes);  // 64-byte aligned, cached (engine/memory.h)
  } else {
    data_ = backend_for(device, "Storage").allocate(nbytes, device.index);
  }
}

namespace detail {
bool select_device(Device d, const char* kernel) {
  if (d.is_cpu()) return false;
#ifdef NABLA_HAVE_CUDA
  backend_for(d, kernel).set_device(d.index);
  return true;
#else
  throw Error(std::string(kernel) + ": " + d.str() +
              " tensor, but nabla was built without the CUDA backend");
#endif
}
}  // namespace detail

MemoryStats memory_stats(Device d) {
  return d.is_cpu() ? host_allocator().stats()
                    : backend_for(d, "memory_stats").memory_stats(d.index);
}
void empty_cache(Device d) {
  if (d.is_cpu())
    host_allocator().empty_cache();
  else
    backend_for(d, "empty_cache").empty_cache(d.index);
}
void synchronize(Device d) {
  if (d.is_cuda()) backend_for(d, "synchronize").synchronize(d.index);
}

Storage::~Storage() {
  if (!data_) return;
  if (pinned_) {
    if (g_cuda_backend) g_cuda_backend->deallocate_pinned(data_);
  } else if (device_.is_cpu())
    host_allocator().deallocate(data_);
  else if (g_cuda_backend)
    g_cuda_backend->deallocate(data_, nbytes_, device_.index);
}

// ---------------------------------------------------------------- tensor basics
const TensorImpl& Tensor::checked() const {
  NABLA_CHECK(impl_ != nullptr, "Tensor: use of an undefined tensor");
  return *impl_;
}
const Shape& Tensor::shape() const {
  return checked().shape;
}
const Shape& Tensor::strides() const {
  return checked().strides;
}
int64_t Tensor::size(int64_t d) const {
  return shape()[wrap_dim(d, dim(), "size")];
}
int64_t Tensor::numel() const {
  return shape_numel(shape());
}
DType Tensor::dtype() const {
  return checked().dtype;
}
Device Tensor::device() const {
  return checked().device;
}
int64_t Tensor::offset() const {
  return checked().offset;
}

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // nothing to lay out; strides of empty dims are irrelevant
  const auto& sh = shape();
  const auto& st = strides();
  int64_t expect = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (sh[i] != 1 && st[i] != expect) return false;
    expect *= sh[i];
  }
  return true;
}

std::string Tensor::str() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype())) + shape_str(shape()) + " " + device().str();
}

void* Tensor::raw_data() const {
  const auto& t = checked();
  return static_cast<char*>(t.storage->data()) + t.offset * int64_t(dtype_size(t.dtype));
}

template <typename T>
T* Tensor::data() const {
  NABLA_CHECK(dtype() == dtype_of<T>(), "Tensor::data: tensor is ", str(), ", asked for ",
              dtype_name(dtype_of<T>()));
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int64_t* Tensor::data<int64_t>() const;

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(Device::cpu()).contiguous();
  std::vector<T> out(size_t(c.numel()));
  switch (c.dtype()) {
    case DType::Float32:
      std::copy_n(c.data<float>(), out.size(), out.begin());
      break;
    case DType::Float64:
      std::copy_n(c.data<double>(), out.size(), out.begin());
      break;
    case DType::Int64:
      std::copy_n(c.data<int64_t>(), out.size(), out.begin());
      break;
  }
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

template <typename T>
T Tensor::item() const {
  NABLA_CHECK(numel() == 1, "Tensor::item: needs exactly one element, tensor is ", str());
  return to_vector<T>()[0];
}
template float Tensor::item<float>() const;
template double Tensor::item<double>() const;
template int64_t Tensor::item<int64_t>() const;

// ---------------------------------------------------------------- raw creation and copies
namespace {
// numel(s) * dtype_size(dt), checked: a shape read from a file can claim more than 2^63 bytes.
size_t checked_nbytes(const Shape& s, DType dt, const char* op) {
  const int64_t n = shape_numel(s);
  int64_t bytes = 0;
  NABLA_CHECK(!__builtin_mul_overflow(n, int64_t(dtype_size(dt)), &bytes), op, ": shape ",
              shape_str(s), " of ", dtype_name(dt), " needs more than 2^63 bytes");
  return size_t(bytes);
}
}  // namespace

Tensor empty(const Shape& s, DType dt, Device dev) {
  for (int64_t d : s) NABLA_CHECK(d >= 0, "empty: negative dimension in shape ", shape_str(s));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(checked_nbytes(s, dt, "empty"), dev);
  impl->shape = s;
  impl->strides = contiguous_strides(s);
  impl->dtype = dt;
  impl->device = dev;
  return Tensor(impl);
}
Tensor empty_pinned(const Shape& s, DType dt) {
  for (int64_t d : s)
    NABLA_CHECK(d >= 0, "empty_pinned: negative dimension in shape ", shape_str(s));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage =
      std::make_shared<Storage>(checked_nbytes(s, dt, "empty_pinned"), Device::cpu(), true);
  impl->shape = s;
  impl->strides = contiguous_strides(s);
  impl->dtype = dt;
  impl->device = Device::cpu();
  return Tensor(impl);
}
Tensor empty_like(const Tensor& t) {
  return empty(t.shape(), t.dtype(), t.device());
}

void fill_(const Tensor& t, double value) {
  if (t.is_contiguous()) {
    const Device dev = t.device();
    switch (t.dtype()) {
      case DType::Float32:
        NABLA_KERNEL(dev, fill<float>)(t.data<float>(), t.numel(), float(value));
        return;
      case DType::Float64:
        NABLA_KERNEL(dev, fill<double>)(t.data<double>(), t.numel(), value);
        return;
      case DType::Int64:
        NABLA_KERNEL(dev, fill<int64_t>)(t.data<int64_t>(), t.numel(), int64_t(value));
        return;
    }
  }
  copy_(t, full(t.shape(), value, t.dtype(), t.device()));
}

namespace {
// Contiguous copy of t converted to dtype `to`, on t's device.
Tensor convert_to(const Tensor& t, DType to) {
  Tensor c = t.contiguous();
  if (c.dtype() == to) return c.clone();
  Tensor out = empty(c.shape(), to, c.device());
  const int64_t n = c.numel();
  const Device dev = c.device();
  auto go = [&](auto* src) {
    using S = std::remove_const_t<std::remove_pointer_t<decltype(src)>>;
    switch (to) {
      case DType::Float32:
        NABLA_KERNEL(dev, convert<S, float>)(src, out.data<float>(), n);
        break;
      case DType::Float64:
        NABLA_KERNEL(dev, convert<S, double>)(src, out.data<double>(), n);
        break;
      case DType::Int64:
        NABLA_KERNEL(dev, convert<S, int64_t>)(src, out.data<int64_t>(), n);
        break;
    }
  };
  switch (c.dtype()) {
    case DType::Float32:
      go(c.data<float>());
      break;
    case DType::Float64:
      go(c.data<double>());
      break;
    case DType::Int64:
      go(c.data<int64_t>());
      break;
  }
  return out;
}

template <typename T>
void strided_copy_t(const Tensor& src, const Tensor& dst) {
  NABLA_KERNEL(src.device(), strided_copy<T>)
  (int(src.dim()), src.shape().data(), src.data<T>(), src.strides().data(), dst.data<T>());
}
template <typename T>
void strided_scatter_t(const Tensor& src, const Tensor& dst) {
  NABLA_KERNEL(dst.device(), strided_scatter<T>)
  (int(dst.dim()), dst.shape().data(), src.data<T>(), dst.data<T>(), dst.strides().data());
}
void strided_scatter_any(const Tensor& src, const Tensor& dst) {
  switch (dst.dtype()) {
    case DType::Float32:
      strided_scatter_t<float>(src, dst);
      break;
    case DType::Float64:
      strided_scatter_t<double>(src, dst);
      break;
    case DType::Int64:
      strided_scatter_t<int64_t>(src, dst);
      break;
  }
}
}  // namespace

void copy_(const Tensor& dst, const Tensor& src) {
  NABLA_CHECK(dst.shape() == src.shape(), "copy_: destination ", dst.str(), " and source ",
              src.str(), " differ in shape");
  NABLA_CHECK(dst.dim() <= kMaxDims, "copy_: at most ", kMaxDims, " dims, got ", dst.str());
  if (dst.numel() == 0) return;
  Tensor s = src;
  if (s.dtype() != dst.dtype()) s = convert_to(s, dst.dtype());
  Tensor sc = s.is_contiguous() ? s : s.contiguous();
  const size_t nbytes = size_t(dst.numel()) * dtype_size(dst.dtype());
  if (dst.device() == sc.device()) {
    if (!dst.is_contiguous()) {
      strided_scatter_any(sc, dst);
    } else if (dst.device().is_cpu()) {
      std::memcpy(dst.raw_data(), sc.raw_data(), nbytes);
    } else {
      backend_for(dst.device(), "copy_")
          .copy(dst.raw_data(), dst.device(), sc.raw_data(), sc.device(), nbytes);
    }
    return;
  }
  // Across devices the backend moves contiguous bytes; a strided destination is filled from a
  // contiguous staging copy on its own device.
  Tensor staging = dst.is_contiguous() ? dst : empty(dst.shape(), dst.dtype(), dst.device());
  const Device via = dst.device().is_cuda() ? dst.device() : sc.device();
  backend_for(via, "copy_")
      .copy(staging.raw_data(), dst.device(), sc.raw_data(), sc.device(), nbytes);
  if (!dst.is_contiguous()) strided_scatter_any(staging, dst);
}

Tensor zeros(const Shape& s, DType dt, Device dev) {
  return full(s, 0.0, dt, dev);
}
Tensor ones(const Shape& s, DType dt, Device dev) {
  return full(s, 1.0, dt, dev);
}
Tensor full(const Shape& s, double value, DType dt, Device dev) {
  Tensor t = empty(s, dt, dev);
  fill_(t, value);
  return t;
}
Tensor zeros_like(const Tensor& t) {
  return zeros(t.shape(), t.dtype(), t.device());
}
Tensor ones_like(const Tensor& t) {
  return ones(t.shape(), t.dtype(), t.device());
}
Tensor full_like(const Tensor& t, double v) {
  return full(t.shape(), v, t.dtype(), t.device());
}

Tensor arange(double start, double end, double step, DType dt, Device dev) {
  NABLA_CHECK(step != 0, "arange: step must be non-zero");
  int64_t n = std::max<int64_t>(0, int64_t(std::ceil((end - start) / step)));
  Tensor t = empty({n}, DType::Float64, Device::cpu());
  double* p = t.data<double>();
  for (int64_t i = 0; i < n; ++i) p[i] = start + double(i) * step;
  return t.to(dt).to(dev);
}

template <typename T>
Tensor from_vector(const std::vector<T>& v, const Shape& s, Device dev) {
  NABLA_CHECK(int64_t(v.size()) == shape_numel(s), "from_vector: ", v.size(),
              " values do not fill shape ", shape_str(s));
  Tensor t = empty(s, dtype_of<T>(), Device::cpu());
  std::copy(v.begin(), v.end(), t.data<T>());
  return dev.is_cpu() ? t : t.to(dev);
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&, Device);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, Device);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, Device);

Tensor tensor(std::initializer_list<double> values, const Shape& s, DType dt) {
  return from_vector(std::vector<double>(values), s).to(dt);
}

// ---------------------------------------------------------------- conversions
Tensor Tensor::to(Device d) const {
  if (device() == d) return *this;
  Tensor out = empty(shape(), dtype(), d);
  copy_(out, *this);
  Device from = device();
  record("to_device", {*this}, out, [from](const std::vector<Tensor>& g, const std::vector<bool>&) {
    return std::vector<Tensor>{g[0].to(from)};
  });
  return out;
}

Tensor Tensor::pin_memory() const {
  NABLA_CHECK(device().is_cpu(), "pin_memory: expects a CPU tensor, got ", str());
  Tensor out = empty_pinned(shape(), dtype());
  copy_(out, detach());
  return out;
}

bool Tensor::is_pinned() const {
  return checked().storage && checked().storage->pinned();
}

Tensor Tensor::to(DType d) const {
  if (dtype() == d) return *this;
  Tensor out = convert_to(*this, d);
  if (is_floating(d) && is_floating(dtype())) {
    DType from = dtype();
    record("to_dtype", {*this}, out,
           [from](const std::vector<Tensor>& g, const std::vector<bool>&) {
             return std::vector<Tensor>{g[0].to(from)};
           });
  }
  return out;
}

namespace {
Tensor materialize(const Tensor& t) {
  NABLA_CHECK(t.dim() <= kMaxDims, "contiguous: at most ", kMaxDims, " dims, got ", t.str());
  Tensor out = empty(t.shape(), t.dtype(), t.device());
  switch (t.dtype()) {
    case DType::Float32:
      strided_copy_t<float>(t, out);
      break;
    case DType::Float64:
      strided_copy_t<double>(t, out);
      break;
    case DType::Int64:
      strided_copy_t<int64_t>(t, out);
      break;
  }
  count_kernel("strided_copy");
  return out;
}
BackwardRule identity_rule() {
  return [](const std::vector<Tensor>& g, const std::vector<bool>&) {
    return std::vector<Tensor>{g[0]};
  };
}
}  // namespace

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor out = materialize(*this);
  record("contiguous", {*this}, out, identity_rule());
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  copy_(out, *this);
  record("clone", {*this}, out, identity_rule());
  return out;
}

// ---------------------------------------------------------------- views
namespace {
Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  impl->device = base.device();
  return Tensor(impl);
}

Shape infer_shape(const Shape& s, int64_t numel, const char* op, const Shape& from) {
  Shape out = s;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      NABLA_CHECK(infer < 0, op, ": more than one -1 in ", shape_str(s));
      infer = int64_t(i);
    } else {
      NABLA_CHECK(out[i] >= 0, op, ": negative size in ", shape_str(s));
      NABLA_CHECK(!__builtin_mul_overflow(known, out[i], &known), op, ": cannot reshape ",
                  shape_str(from), " into ", shape_str(s), " (the sizes overflow 64 bits)");
    }
  }
  if (infer >= 0) {
    NABLA_CHECK(known != 0 && numel % known == 0, op, ": cannot reshape ", shape_str(from),
                " into ", shape_str(s));
    out[size_t(infer)] = numel / known;
  }
  NABLA_CHECK(shape_numel(out) == numel, op, ": cannot reshape ", shape_str(from), " (", numel,
              " elements) into ", shape_str(s));
  return out;
}
}  // namespace

Tensor Tensor::view(const Shape& s) const {
  Shape ns = infer_shape(s, numel(), "view", shape());
  NABLA_CHECK(is_contiguous(), "view: tensor ", str(), " is not contiguous; use reshape");
  Tensor out = make_view(*this, ns, contiguous_strides(ns), offset());
  Shape in = shape();
  record("view", {*this}, out, [in](const std::vector<Tensor>& g, const std::vector<bool>&) {
    return std::vector<Tensor>{g[0].reshape(in)};
  });
  return out;
}

Tensor Tensor::reshape(const Shape& s) const {
  if (is_contiguous()) return view(s);
  return contiguous().view(s);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  NABLA_CHECK(int64_t(dims.size()) == dim(), "permute: ", dims.size(), " dims given for ", str());
  Shape ns(dims.size()), nst(dims.size());
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    NABLA_CHECK(inverse[size_t(d)] < 0, "permute: dim ", d, " repeated, tensor ", str());
    inverse[size_t(d)] = int64_t(i);
    ns[i] = shape()[size_t(d)];
    nst[i] = strides()[size_t(d)];
  }
  Tensor out = make_view(*this, ns, nst, offset());
  record("permute", {*this}, out,
         [inverse](const std::vector<Tensor>& g, const std::vector<bool>&) {
           return std::vector<Tensor>{g[0].permute(inverse)};
         });
  return out;
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  std::vector<int64_t> p(static_cast<size_t>(dim()));
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[size_t(wrap_dim(a, dim(), "transpose"))], p[size_t(wrap_dim(b, dim(), "transpose"))]);
  return permute(p);
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow");
  int64_t n = shape()[size_t(d)];
  NABLA_CHECK(start >= 0 && length >= 0 && start + length <= n, "narrow: [", start, ", ",
              start + length, ") is out of range for dim ", d, " of ", str());
  Shape ns = shape();
  ns[size_t(d)] = length;
  Tensor out = make_view(*this, ns, strides(), offset() + start * strides()[size_t(d)]);
  Shape in = shape();
  record("narrow", {*this}, out,
         [in, d, start, length](const std::vector<Tensor>& g, const std::vector<bool>&) {
           Tensor gi = zeros(in, g[0].dtype(), g[0].device());
           copy_(gi.narrow(d, start, length), g[0]);
           return std::vector<Tensor>{gi};
         });
  return out;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  NABLA_CHECK(dim() >= 1, "slice: needs at least one dim, tensor is ", str());
  end = std::min(end, size(0));
  NABLA_CHECK(begin >= 0 && begin <= end, "slice: [", begin, ", ", end, ") invalid for ", str());
  return narrow(0, begin, end - begin);
}

Tensor Tensor::expand(const Shape& s) const {
  NABLA_CHECK(s.size() >= shape().size(), "expand: cannot expand ", str(), " to ", shape_str(s));
  size_t lead = s.size() - shape().size();
  Shape nst(s.size(), 0);
  for (size_t i = 0; i < s.size(); ++i) {
    if (i < lead) continue;
    int64_t have = shape()[i - lead];
    NABLA_CHECK(have == s[i] || have == 1, "expand: cannot expand ", str(), " to ", shape_str(s));
    nst[i] = have == s[i] ? strides()[i - lead] : 0;
  }
  if (s == shape()) return *this;
  Tensor out = make_view(*this, s, nst, offset());
  Shape in = shape();
  record("expand", {*this}, out, [in](const std::vector<Tensor>& g, const std::vector<bool>&) {
    return std::vector<Tensor>{sum_to(g[0], in)};
  });
  return out;
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  int64_t a = wrap_dim(start_dim, dim(), "flatten"), b = wrap_dim(end_dim, dim(), "flatten");
  NABLA_CHECK(a <= b, "flatten: start_dim ", start_dim, " after end_dim ", end_dim, " for ", str());
  Shape ns(shape().begin(), shape().begin() + a);
  int64_t m = 1;
  for (int64_t i = a; i <= b; ++i) m *= shape()[size_t(i)];
  ns.push_back(m);
  ns.insert(ns.end(), shape().begin() + b + 1, shape().end());
  return reshape(ns);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  NABLA_CHECK(shape()[size_t(d)] == 1, "squeeze: dim ", d, " of ", str(), " is not 1");
  Shape ns = shape();
  ns.erase(ns.begin() + d);
  return reshape(ns);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape ns = shape();
  ns.insert(ns.begin() + d, 1);
  return reshape(ns);
}

// ---------------------------------------------------------------- printing
std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  std::vector<double> v = t.dtype() == DType::Int64 ? std::vector<double>() : t.to_vector<double>();
  std::vector<int64_t> vi =
      t.dtype() == DType::Int64 ? t.to_vector<int64_t>() : std::vector<int64_t>();
  const Shape& s = t.shape();
  const int64_t n = t.numel();
  const bool summarize = n > 1000;  // like PyTorch: show 3 items at each end of long dims
  os << "tensor(";
  std::ostringstream body;
  body << std::setprecision(4);
  std::function<void(size_t, int64_t)> rec = [&](size_t d, int64_t base) {
    if (d == s.size()) {
      if (t.dtype() == DType::Int64)
        body << vi[size_t(base)];
      else
        body << v[size_t(base)];
      return;
    }
    int64_t stride = 1;
    for (size_t k = d + 1; k < s.size(); ++k) stride *= s[k];
    body << '[';
    const bool skip = summarize && s[d] > 6;
    // Rows of inner dims go on their own lines, aligned under the opening brackets.
    const std::string sep = d + 1 == s.size() ? ", " : ",\n" + std::string(d + 8, ' ');
    for (int64_t i = 0; i < s[d]; ++i) {
      if (skip && i == 3) {
        body << sep << "...";
        i = s[d] - 3;
      }
      if (i) body << sep;
      rec(d + 1, base + i * stride);
    }
    body << ']';
  };
  if (n > 0 || s.empty())
    rec(0, 0);
  else
    body << "[]";
  os << body.str() << ", " << t.str();
  if (t.requires_grad()) os << ", requires_grad";
  return os << ')';
}

}  // namespace nabla
