// Tensor: a strided view over ref-counted Storage, with dtype, device and autograd state.
//
//   element (i0, ..., ik) lives at  data + offset + sum_j ij * strides[j]   (in elements)
//
// Views (reshape of contiguous data, permute, transpose, narrow, slice, expand) share the
// storage; contiguous() copies only when needed. Shapes are std::vector<int64_t> (Shape).
// dtypes: float32 (default), float64 (CPU gradient checks), int64 (labels, indices).
// Devices: CPU, or CUDA:i when the CUDA backend is built and registered (engine/device.h).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nabla/device.h>
#include <nabla/error.h>

namespace nabla {

// ---------------------------------------------------------------- dtype
enum class DType : uint8_t { Float32, Float64, Int64 };
size_t dtype_size(DType d);
const char* dtype_name(DType d);  // "float32", "float64", "int64"
template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::Float32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::Float64;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::Int64;
}
inline bool is_floating(DType d) {
  return d != DType::Int64;
}

// ---------------------------------------------------------------- shape
using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2, 3, 4]"
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
// Broadcast two shapes NumPy-style; throws nabla::Error naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Normalise a possibly negative dim into [0, ndim); throws naming `op`.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

// ---------------------------------------------------------------- storage
// A block of memory on one device, shared by every tensor that views it.
class Storage {
 public:
  // ensures: nbytes of uninitialised memory on `device`; throws nabla::Error when the
  // allocation fails (naming the request) or when `device` has no backend.
  // pinned: page-locked host memory from the CUDA backend (device must be the CPU), which
  // makes host<->device copies faster and asynchronous.
  Storage(size_t nbytes, Device device, bool pinned = false);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  bool pinned() const { return pinned_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  bool pinned_ = false;
};

class Node;
class Tensor;
using TensorHook = std::function<std::optional<Tensor>(const Tensor& grad)>;

// The state behind a Tensor handle. Users normally never touch it.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape, strides;
  int64_t offset = 0;  // in elements
  DType dtype = DType::Float32;
  Device device;
  // autograd
  bool requires_grad = false;          // leaf that collects .grad, or a non-leaf on a graph
  std::shared_ptr<TensorImpl> grad;    // accumulated gradient (leaves, or retain_grad)
  std::shared_ptr<Node> grad_fn;       // producer; null for leaves
  int output_nr = 0;                   // which output of grad_fn this is
  std::vector<TensorHook> leaf_hooks;  // hooks of a leaf (non-leaf hooks live on grad_fn)
  bool retains_grad = false;
};

// ---------------------------------------------------------------- tensor
class Tensor {
 public:
  Tensor() = default;  // undefined tensor
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  int64_t offset() const;
  bool is_contiguous() const;
  std::string str() const;  // "float32[2, 3] cpu"

  // Raw element pointer (offset applied). requires: dtype matches T.
  template <typename T>
  T* data() const;
  void* raw_data() const;

  // Single value of a 1-element tensor, converted to T (copies from the device if needed).
  template <typename T>
  T item() const;
  // All elements in row-major order, converted to T.
  template <typename T>
  std::vector<T> to_vector() const;

  // Conversions (differentiable where they change device or float dtype).
  Tensor to(Device d) const;
  Tensor to(DType d) const;
  // A contiguous copy of this CPU tensor in page-locked (pinned) host memory, from which
  // copies to a GPU are faster; needs the CUDA backend and a GPU. No autograd history.
  Tensor pin_memory() const;
  bool is_pinned() const;
  Tensor contiguous() const;
  Tensor clone() const;

  // Views and reshapes (differentiable).
  Tensor reshape(const Shape& s) const;  // view when possible; -1 infers one dim
  Tensor view(const Shape& s) const;     // view only: throws when the strides forbid it
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t begin, int64_t end) const;  // rows [begin, end) of dim 0: batches
  Tensor expand(const Shape& s) const;             // broadcast view (stride 0)
  Tensor flatten(int64_t start_dim = 1, int64_t end_dim = -1) const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;

  // Autograd.
  bool requires_grad() const;
  Tensor& set_requires_grad(bool r = true);  // only on leaves
  bool is_leaf() const;
  Tensor grad() const;  // undefined until a backward reaches it
  void zero_grad();     // drops .grad
  // Seed defaults to ones for a 1-element tensor; any other shape needs an explicit seed.
  void backward(const Tensor& seed = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;  // same storage, no history
  Tensor& retain_grad();  // keep .grad on a non-leaf
  // Called with the gradient flowing into this tensor during backward; returning a tensor
  // replaces that gradient. Hooks on non-leaves read gradients (Grad-CAM).
  void register_hook(TensorHook hook) const;
  std::shared_ptr<Node> grad_fn() const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
  const TensorImpl& checked() const;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---------------------------------------------------------------- factories
// All take a dtype (default float32) and a device (default CPU).
Tensor empty(const Shape& s, DType dt = DType::Float32, Device dev = Device::cpu());
Tensor zeros(const Shape& s, DType dt = DType::Float32, Device dev = Device::cpu());
Tensor ones(const Shape& s, DType dt = DType::Float32, Device dev = Device::cpu());
Tensor full(const Shape& s, double value, DType dt = DType::Float32, Device dev = Device::cpu());
// Uninitialised CPU memory that is page-locked (pinned): the CUDA backend and a GPU needed.
Tensor empty_pinned(const Shape& s, DType dt = DType::Float32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor empty_like(const Tensor& t);
// [start, start+step, ...) below end.
Tensor arange(double start, double end, double step = 1, DType dt = DType::Float32,
              Device dev = Device::cpu());
inline Tensor arange(int64_t n, DType dt = DType::Float32) {
  return arange(0, double(n), 1, dt);
}

template <typename T>
Tensor from_vector(const std::vector<T>& v, const Shape& s, Device dev = Device::cpu());
// Convenience: a float32 tensor from a literal list, e.g. tensor({1, 2, 3, 4}, {2, 2}).
Tensor tensor(std::initializer_list<double> values, const Shape& s, DType dt = DType::Float32);

// Write a scalar into every element of t (any device), in place, outside autograd.
void fill_(const Tensor& t, double value);
// Copy src into dst (same shape; any strides, dtype conversion, device transfer), outside autograd.
void copy_(const Tensor& dst, const Tensor& src);

// ---------------------------------------------------------------- .npy
// NumPy .npy (version 1.0/2.0, little-endian, C order) for float32, float64 and int64.
// Loading a malformed file throws nabla::Error saying what was expected and where.
void save_npy(const std::string& path, const Tensor& t);
Tensor load_npy(const std::string& path);

}  // namespace nabla
