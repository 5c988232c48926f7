// Device: where a tensor's memory lives, CPU or CUDA:index, and the pluggable backend
// that owns device memory. The CPU needs no backend; the CUDA backend registers itself
// (kernels/cuda) when it is built. There is no "current GPU" singleton: every call names
// its device index.
#pragma once

#include <cstddef>
#include <string>

namespace nabla {

struct Device {
  enum class Type : unsigned char { CPU, CUDA };
  Type type = Type::CPU;
  int index = 0;

  static Device cpu() { return {Type::CPU, 0}; }
  static Device cuda(int i = 0) { return {Type::CUDA, i}; }
  bool is_cpu() const { return type == Type::CPU; }
  bool is_cuda() const { return type == Type::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;  // "cpu", "cuda:0"
  // Parses "cpu", "cuda", "cuda:1"; throws nabla::Error on anything else.
  static Device parse(const std::string& s);
};

// Memory of one accelerator kind. All functions name the device index explicitly.
class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;
  virtual int device_count() = 0;
  // ensures: nbytes on device `index`, or throws nabla::Error naming the request and usage.
  virtual void* allocate(size_t nbytes, int index) = 0;
  virtual void deallocate(void* p, size_t nbytes, int index) = 0;
  // Copies between host and device or device and device; dst/src devices given.
  virtual void copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes) = 0;
  virtual void synchronize(int index) = 0;
};

// The CUDA backend, or nullptr when nabla was built without CUDA (or no driver was found).
DeviceBackend* cuda_backend();
void register_cuda_backend(DeviceBackend* backend);
// True when a CUDA backend is registered and sees at least one GPU.
bool cuda_available();

}  // namespace nabla
