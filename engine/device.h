// Device: where a tensor's memory lives, CPU or CUDA:index, and the pluggable backend
// that owns device memory. The CPU needs no backend; the CUDA backend registers itself
// (kernels/cuda) when it is built. There is no "current GPU" singleton: every call names
// its device index.
#pragma once

#include <cstddef>
#include <string>

#include <nabla/memory.h>

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
  // Copies between host and device or device and device; dst/src devices given. Returns when
  // the data is at dst (host destinations) or ordered on the device's current stream. A
  // page-locked (pinned) source is read when the copy runs: it must not be written before the
  // stream gets there, but it may be freed (the pinned cache reuses it only after that).
  virtual void copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes) = 0;
  virtual void synchronize(int index) = 0;
  // Makes `index` the device that kernels launched by this thread run on (cudaSetDevice).
  virtual void set_device(int index) = 0;
  // Page-locked host memory (faster, asynchronous host<->device copies), cached like the rest;
  // a freed block is handed out again only after the work queued before its free has run.
  virtual void* allocate_pinned(size_t nbytes) = 0;
  virtual void deallocate_pinned(void* p) = 0;
  // Caching-allocator statistics and cache release of device `index`.
  virtual MemoryStats memory_stats(int index) = 0;
  virtual void empty_cache(int index) = 0;
};

// The CUDA backend, or nullptr when nabla was built without CUDA (or no driver was found).
DeviceBackend* cuda_backend();
void register_cuda_backend(DeviceBackend* backend);
// True when a CUDA backend is registered and sees at least one GPU.
bool cuda_available();
// Memory statistics of a device (CPU: the host caching allocator) and cache release.
MemoryStats memory_stats(Device d);
void empty_cache(Device d);
// Waits for every kernel and copy queued on a CUDA device; no-op for the CPU.
void synchronize(Device d);

// Debug aid for parity tests: every new CUDA allocation is filled with 0xFF bytes, which read
// as NaN in float32 and float64, so an output element a kernel forgets to write shows up.
void set_debug_fill(bool on);
bool debug_fill();

// Synchronous device checks: CUDA kernels that validate their input on the device (the
// class-index losses' targets) report a bad value at the next synchronization, naming the op;
// with this on (or NABLA_SYNC_CHECKS=1 in the environment) they wait for the device and report
// it from the call itself. Off by default: a check then costs no host wait.
void set_sync_checks(bool on);
bool sync_checks();

// Deterministic mode: kernels that would reduce with atomics (weight gradients on the GPU)
// use a fixed-order reduction instead, so that two runs give the same bits. Off by default.
void set_deterministic(bool on);
bool deterministic();

}  // namespace nabla
