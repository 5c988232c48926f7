// The emulated CUDA runtime: one device with an H100's properties, device memory in host
// memory, and streams and events as queues that run lazily, at synchronization points.
//
// Laziness is the point: a kernel, memset or copy runs only when the host waits for it
// (cudaStreamSynchronize, cudaEventSynchronize, cudaDeviceSynchronize, a copy into pageable
// host memory, cudaFree). So a program that changes host memory a queued copy still has to
// read, or reads a result before waiting for it, gets wrong data here every time, instead of
// on a GPU now and then. The rules of the real runtime that a program may rely on are kept:
//   - a copy from pageable host memory takes its data when it is called (a staging copy);
//     a copy from page-locked memory (cudaHostAlloc) reads it when it runs;
//   - a copy into pageable host memory returns when it is done;
//   - the legacy default stream waits for all earlier work of the blocking streams of its
//     device, and they wait for it; cudaStreamNonBlocking streams do not;
//   - cudaFree and cudaFreeHost wait for the device first.
// Kernel faults (scheduler.cpp) come back from the synchronizing call as
// cudaErrorLaunchFailure; cudaGetErrorString then says what happened where.
#include "emu_internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

struct CUstream_st {
  int device = 0;
  bool legacy = false, blocking = true, destroyed = false;
  struct Op {
    std::function<void()> run;
    std::vector<std::pair<CUstream_st*, uint64_t>> deps;  // (stream, ops of it that must be done)
    size_t staged = 0;                                    // bytes held for a pageable source
  };
  std::deque<Op> queue;
  uint64_t enqueued = 0, done = 0;
};

struct CUevent_st {
  CUstream_st* stream = nullptr;
  uint64_t seq = 0;  // done once stream->done >= seq
  std::chrono::steady_clock::time_point when;
};

namespace cuda_emu {
namespace detail {
namespace {

constexpr int kDevices = 1;
constexpr size_t kDefaultMemory = size_t(81559) << 20;  // an H100 SXM's 80 GB
// Staged bytes (pageable sources) after which a stream's queue runs, so that a program that
// never synchronizes cannot hold unbounded copies.
constexpr size_t kMaxStaged = size_t(256) << 20;

struct Allocation {
  size_t size = 0;
  bool device = false;  // else page-locked host memory
};

struct Counter {
  int64_t n = 0;
};

struct Runtime {
  std::mutex mu;
  std::map<uintptr_t, Allocation> allocations;  // by base address
  size_t limit = kDefaultMemory, in_use = 0;
  std::vector<std::unique_ptr<CUstream_st>> streams;  // [0]: the legacy stream of device 0
  std::vector<std::unique_ptr<CUevent_st>> events;
  size_t staged = 0;
  int64_t syncs = 0;
  std::map<std::string, Counter> calls;
  std::map<std::string, int> max_dynamic_smem;  // cudaFuncAttributeMaxDynamicSharedMemorySize
  // The first kernel fault since the last synchronizing call returned it.
  cudaError_t fault = cudaSuccess;
  std::string fault_text;
  bool quiet = false;
  int sms = 132;  // an H100 SXM's

  Runtime() {
    if (const char* e = std::getenv("NABLA_EMU_MEMORY_MB")) limit = size_t(std::atoll(e)) << 20;
    if (const char* e = std::getenv("NABLA_EMU_SMS")) sms = std::max(1, std::atoi(e));
    if (const char* e = std::getenv("NABLA_EMU_QUIET")) quiet = std::string(e) == "1";
    streams.push_back(std::make_unique<CUstream_st>());
    streams.back()->legacy = true;
  }
};

Runtime& rt() {
  static Runtime* r = new Runtime();  // never destroyed: tensors may be freed after main
  return *r;
}

thread_local cudaError_t t_last = cudaSuccess;
thread_local cudaError_t t_detail_code = cudaSuccess;
thread_local std::string t_detail;

// Records an error with what the emulator knows about it; returns it.
cudaError_t error(cudaError_t e, const std::string& detail) {
  t_last = e;
  t_detail_code = e;
  t_detail = detail;
  return e;
}

Counter& api_counter(const char* fn) {
  return rt().calls[fn];
}
#define CUDA_EMU_API(fn)                      \
  std::lock_guard<std::mutex> lock_(rt().mu); \
  ++api_counter(fn).n

CUstream_st* stream_of(cudaStream_t s) {
  return s ? s : rt().streams[0].get();
}

// ---------------------------------------------------------------- queues

void run_until(CUstream_st* s, uint64_t seq) {
  while (s->done < seq) {
    CUstream_st::Op op = std::move(s->queue.front());
    s->queue.pop_front();
    for (const auto& [t, n] : op.deps) run_until(t, n);
    rt().staged -= op.staged;
    op.run();
    ++s->done;
  }
}

void run_all(CUstream_st* s) {
  run_until(s, s->enqueued);
}

void run_device() {
  for (auto& s : rt().streams) run_all(s.get());
}

// Queues op on s, with the implicit ordering of the legacy default stream; returns its
// sequence number.
uint64_t enqueue(CUstream_st* s, std::function<void()> run, size_t staged = 0) {
  Runtime& r = rt();
  CUstream_st::Op op;
  op.run = std::move(run);
  op.staged = staged;
  if (s->legacy) {
    for (auto& t : r.streams)
      if (t.get() != s && t->blocking && t->device == s->device && t->enqueued > t->done)
        op.deps.emplace_back(t.get(), t->enqueued);
  } else if (s->blocking) {
    CUstream_st* legacy = r.streams[0].get();
    if (legacy->enqueued > legacy->done) op.deps.emplace_back(legacy, legacy->enqueued);
  }
  s->queue.push_back(std::move(op));
  r.staged += staged;
  const uint64_t seq = ++s->enqueued;
  if (r.staged > kMaxStaged) run_all(s);
  return seq;
}

// A host wait: counted, and the first kernel fault since the last one is returned.
cudaError_t host_wait() {
  ++rt().syncs;
  Runtime& r = rt();
  if (r.fault == cudaSuccess) return cudaSuccess;
  const cudaError_t e = r.fault;
  r.fault = cudaSuccess;
  return error(e, r.fault_text);
}

// ---------------------------------------------------------------- memory

const Allocation* find(const void* p, uintptr_t* base = nullptr) {
  auto& a = rt().allocations;
  const uintptr_t u = reinterpret_cast<uintptr_t>(p);
  auto it = a.upper_bound(u);
  if (it == a.begin()) return nullptr;
  --it;
  if (u >= it->first + it->second.size && !(it->second.size == 0 && u == it->first)) return nullptr;
  if (base) *base = it->first;
  return &it->second;
}

enum class Mem { kDevice, kPinned, kPageable };

Mem kind_of(const void* p) {
  const Allocation* a = find(p);
  return !a ? Mem::kPageable : (a->device ? Mem::kDevice : Mem::kPinned);
}

std::string hex(const void* p) {
  char b[32];
  std::snprintf(b, sizeof b, "%p", p);
  return b;
}

// A device range must lie inside one live allocation.
cudaError_t check_device_range(const char* fn, const void* p, size_t n) {
  uintptr_t base = 0;
  const Allocation* a = find(p, &base);
  if (!a || !a->device)
    return error(cudaErrorInvalidValue,
                 std::string(fn) + ": " + hex(p) + " is not device memory (or was freed)");
  if (reinterpret_cast<uintptr_t>(p) + n > base + a->size)
    return error(cudaErrorInvalidValue, std::string(fn) + ": " + std::to_string(n) + " bytes at " +
                                            hex(p) + " run past the end of the allocation of " +
                                            std::to_string(a->size) + " bytes at " +
                                            hex(reinterpret_cast<void*>(base)));
  return cudaSuccess;
}

cudaError_t copy(const char* fn, void* dst, const void* src, size_t n, cudaMemcpyKind kind,
                 CUstream_st* s, bool synchronous) {
  if (n == 0) return cudaSuccess;
  const Mem dk = kind_of(dst), sk = kind_of(src);
  const bool dst_dev = dk == Mem::kDevice, src_dev = sk == Mem::kDevice;
  bool ok = true;
  switch (kind) {
    case cudaMemcpyHostToDevice:
      ok = dst_dev && !src_dev;
      break;
    case cudaMemcpyDeviceToHost:
      ok = !dst_dev && src_dev;
      break;
    case cudaMemcpyDeviceToDevice:
      ok = dst_dev && src_dev;
      break;
    case cudaMemcpyHostToHost:
      ok = !dst_dev && !src_dev;
      break;
    case cudaMemcpyDefault:
      break;
  }
  if (!ok)
    return error(cudaErrorInvalidValue,
                 std::string(fn) + ": the copy kind " + std::to_string(int(kind)) +
                     " does not match the pointers (destination " + (dst_dev ? "device" : "host") +
                     ", source " + (src_dev ? "device" : "host") + ")");
  if (dst_dev)
    if (cudaError_t e = check_device_range(fn, dst, n)) return e;
  if (src_dev)
    if (cudaError_t e = check_device_range(fn, src, n)) return e;
  uint64_t seq;
  if (sk == Mem::kPageable) {
    // The real runtime stages a pageable source before it returns: take the bytes now.
    auto staging = std::make_shared<std::vector<unsigned char>>(
        static_cast<const unsigned char*>(src), static_cast<const unsigned char*>(src) + n);
    seq = enqueue(
        s, [dst, staging] { std::memcpy(dst, staging->data(), staging->size()); }, n);
  } else {
    seq = enqueue(s, [dst, src, n] { std::memmove(dst, src, n); });
  }
  // A pageable destination holds the data when the call returns.
  if (synchronous || dk == Mem::kPageable) {
    run_until(s, seq);
    return host_wait();
  }
  return cudaSuccess;
}

cudaError_t memset(const char* fn, void* p, int value, size_t n, CUstream_st* s, bool synchronous) {
  if (n == 0) return cudaSuccess;
  if (cudaError_t e = check_device_range(fn, p, n)) return e;
  const uint64_t seq = enqueue(s, [p, value, n] { std::memset(p, value, n); });
  if (synchronous) {
    run_until(s, seq);
    return host_wait();
  }
  return cudaSuccess;
}

cudaError_t check_device(int device) {
  if (device < 0 || device >= kDevices)
    return error(cudaErrorInvalidDevice,
                 "device " + std::to_string(device) + " (the emulator has one device, 0)");
  return cudaSuccess;
}

cudaError_t check_stream(const char* fn, cudaStream_t s) {
  if (!s) return cudaSuccess;
  for (auto& t : rt().streams)
    if (t.get() == s && !t->destroyed) return cudaSuccess;
  return error(cudaErrorInvalidResourceHandle, std::string(fn) + ": not a live stream");
}

cudaError_t check_event(const char* fn, cudaEvent_t e) {
  for (auto& t : rt().events)
    if (t.get() == e) return cudaSuccess;
  return error(cudaErrorInvalidResourceHandle, std::string(fn) + ": not a live event");
}

std::string dim_str(dim3 d) {
  // Appended piece by piece: GCC 12 reports a false -Wrestrict for `"literal" + std::string&&`.
  std::string s = "(";
  s += std::to_string(d.x);
  s += ',';
  s += std::to_string(d.y);
  s += ',';
  s += std::to_string(d.z);
  s += ')';
  return s;
}

}  // namespace

// ---------------------------------------------------------------- launches

}  // namespace detail

cudaError_t func_set_attribute(const char* kernel, cudaFuncAttribute attr, int value) {
  using namespace detail;
  CUDA_EMU_API("cudaFuncSetAttribute");
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || value > 232448)
    return error(cudaErrorInvalidValue,
                 "cudaFuncSetAttribute: attribute " + std::to_string(int(attr)) + " value " +
                     std::to_string(value) + " (at most 227 KiB of dynamic shared memory)");
  rt().max_dynamic_smem[kernel] = value;
  return cudaSuccess;
}

namespace detail {

void enqueue_launch(const char* name, const char* file, int line, const LaunchConfig& cfg,
                    KernelBody* body) {
  std::unique_ptr<KernelBody> owned(body);
  CUDA_EMU_API("launch");
  const dim3 g = cfg.grid, b = cfg.block;
  const uint64_t threads = uint64_t(b.x) * b.y * b.z;
  std::string bad;
  if (b.x == 0 || b.y == 0 || b.z == 0 || g.x == 0 || g.y == 0 || g.z == 0)
    bad = "a grid or block dimension is 0";
  else if (b.x > 1024 || b.y > 1024 || b.z > 64 || threads > 1024)
    bad = "blockDim " + dim_str(b) + ": at most (1024, 1024, 64) and 1024 threads in all";
  else if (g.x > 2147483647u || g.y > 65535 || g.z > 65535)
    bad = "gridDim " + dim_str(g) + ": y and z are at most 65535, x at most 2^31 - 1";
  else {
    auto it = rt().max_dynamic_smem.find(name);
    const size_t max_smem = it == rt().max_dynamic_smem.end() ? 48 << 10 : size_t(it->second);
    if (cfg.smem > max_smem)
      bad = std::to_string(cfg.smem) + " bytes of dynamic shared memory, more than " +
            std::to_string(max_smem) +
            (it == rt().max_dynamic_smem.end()
                 ? " (48 KiB without cudaFuncAttributeMaxDynamicSharedMemorySize)"
                 : " (the kernel's cudaFuncAttributeMaxDynamicSharedMemorySize)");
  }
  if (bad.empty() && cfg.stream && check_stream("launch", cfg.stream)) return;
  if (!bad.empty()) {
    error(cudaErrorInvalidConfiguration, std::string("launch of ") + name + " at " + file + ":" +
                                             std::to_string(line) + ": " + bad);
    return;
  }
  auto desc = std::make_shared<LaunchDesc>();
  desc->name = name;
  desc->file = file;
  desc->line = line;
  desc->cfg = cfg;
  desc->body = std::move(owned);
  enqueue(stream_of(cfg.stream), [desc] {
    const std::string err = run_launch(*desc);
    if (err.empty()) return;
    Runtime& r = rt();
    if (!r.quiet) std::fprintf(stderr, "cuda emulator: %s\n", err.c_str());
    if (r.fault == cudaSuccess) {
      r.fault = cudaErrorLaunchFailure;
      r.fault_text = err;
    }
  });
}

}  // namespace detail

// ---------------------------------------------------------------- controls (cuda_emu.h)

Order order() {
  return detail::current_order();
}
size_t memory_limit() {
  std::lock_guard<std::mutex> lock(detail::rt().mu);
  return detail::rt().limit;
}
void set_memory_limit(size_t bytes) {
  std::lock_guard<std::mutex> lock(detail::rt().mu);
  detail::rt().limit = bytes;
}
size_t memory_in_use() {
  std::lock_guard<std::mutex> lock(detail::rt().mu);
  return detail::rt().in_use;
}
int64_t host_syncs() {
  std::lock_guard<std::mutex> lock(detail::rt().mu);
  return detail::rt().syncs;
}
int64_t api_calls(const std::string& function) {
  std::lock_guard<std::mutex> lock(detail::rt().mu);
  auto it = detail::rt().calls.find(function);
  return it == detail::rt().calls.end() ? 0 : it->second.n;
}
void mark_allocation_async(void* p, size_t valid, size_t size, cudaStream_t stream) {
#if defined(__SANITIZE_ADDRESS__)
  std::lock_guard<std::mutex> lock(detail::rt().mu);
  detail::enqueue(detail::stream_of(stream), [p, valid, size] {
    ASAN_UNPOISON_MEMORY_REGION(p, valid);
    ASAN_POISON_MEMORY_REGION(static_cast<char*>(p) + valid, size - valid);
  });
#else
  (void)p, (void)valid, (void)size, (void)stream;
#endif
}

int64_t pending_operations() {
  std::lock_guard<std::mutex> lock(detail::rt().mu);
  int64_t n = 0;
  for (auto& s : detail::rt().streams) n += int64_t(s->enqueued - s->done);
  return n;
}
int64_t kernels_run() {
  std::lock_guard<std::mutex> lock(detail::rt().mu);
  return detail::launches_run();
}
int64_t fiber_switches() {
  std::lock_guard<std::mutex> lock(detail::rt().mu);
  return detail::fiber_switches();
}

}  // namespace cuda_emu

// ---------------------------------------------------------------- the runtime API

using namespace cuda_emu::detail;

cudaError_t cudaGetDeviceCount(int* count) {
  CUDA_EMU_API("cudaGetDeviceCount");
  *count = kDevices;
  return cudaSuccess;
}

namespace {
thread_local int t_device = 0;
}

cudaError_t cudaSetDevice(int device) {
  CUDA_EMU_API("cudaSetDevice");
  if (cudaError_t e = check_device(device)) return e;
  t_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  CUDA_EMU_API("cudaGetDevice");
  *device = t_device;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  CUDA_EMU_API("cudaGetDeviceProperties");
  if (cudaError_t e = check_device(device)) return e;
  *p = cudaDeviceProp{};
  std::snprintf(p->name, sizeof p->name, "NVIDIA H100 (nabla CUDA emulator)");
  p->totalGlobalMem = rt().limit;
  p->sharedMemPerBlock = 48 << 10;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = rt().sms;
  p->sharedMemPerMultiprocessor = 228 << 10;
  p->regsPerMultiprocessor = 65536;
  p->sharedMemPerBlockOptin = 227 << 10;
  p->maxThreadsPerMultiProcessor = 2048;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  CUDA_EMU_API("cudaDeviceGetAttribute");
  if (cudaError_t e = check_device(device)) return e;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock:
      *value = 1024;
      break;
    case cudaDevAttrMaxBlockDimX:
      *value = 1024;
      break;
    case cudaDevAttrMaxGridDimX:
      *value = 2147483647;
      break;
    case cudaDevAttrMaxGridDimY:
      *value = 65535;
      break;
    case cudaDevAttrMaxGridDimZ:
      *value = 65535;
      break;
    case cudaDevAttrMaxSharedMemoryPerBlock:
      *value = 48 << 10;
      break;
    case cudaDevAttrWarpSize:
      *value = 32;
      break;
    case cudaDevAttrMaxRegistersPerBlock:
      *value = 65536;
      break;
    case cudaDevAttrMultiProcessorCount:
      *value = rt().sms;
      break;
    case cudaDevAttrComputeCapabilityMajor:
      *value = 9;
      break;
    case cudaDevAttrComputeCapabilityMinor:
      *value = 0;
      break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor:
      *value = 228 << 10;
      break;
    case cudaDevAttrMaxRegistersPerMultiprocessor:
      *value = 65536;
      break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *value = 227 << 10;
      break;
    default:
      return error(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute " +
                                              std::to_string(int(attr)) + " is not emulated");
  }
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  CUDA_EMU_API("cudaDeviceSynchronize");
  run_device();
  return host_wait();
}

cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  CUDA_EMU_API("cudaMemGetInfo");
  *total = rt().limit;
  *free = rt().limit > rt().in_use ? rt().limit - rt().in_use : 0;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t n) {
  CUDA_EMU_API("cudaMalloc");
  Runtime& r = rt();
  *p = nullptr;
  if (n > r.limit || r.in_use > r.limit - n)
    return error(cudaErrorMemoryAllocation,
                 "cudaMalloc of " + std::to_string(n) + " bytes: " + std::to_string(r.in_use) +
                     " of the emulated device's " + std::to_string(r.limit) + " are in use");
  // 256-byte aligned like cudaMalloc, and exactly n bytes: ASan reports an overrun.
  if (posix_memalign(p, 256, n ? n : 1) != 0)
    return error(cudaErrorMemoryAllocation,
                 "cudaMalloc of " + std::to_string(n) + " bytes: the host has no memory left");
  r.allocations[reinterpret_cast<uintptr_t>(*p)] = {n, true};
  r.in_use += n;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  CUDA_EMU_API("cudaFree");
  if (!p) return cudaSuccess;
  run_device();  // cudaFree waits for the device
  Runtime& r = rt();
  auto it = r.allocations.find(reinterpret_cast<uintptr_t>(p));
  if (it == r.allocations.end() || !it->second.device)
    return error(cudaErrorInvalidValue, "cudaFree(" + hex(p) + "): not a live device allocation");
  r.in_use -= it->second.size;
  r.allocations.erase(it);
  std::free(p);
  return host_wait();
}

cudaError_t cudaHostAlloc(void** p, size_t n, unsigned) {
  CUDA_EMU_API("cudaHostAlloc");
  *p = nullptr;
  if (posix_memalign(p, 256, n ? n : 1) != 0)
    return error(cudaErrorMemoryAllocation,
                 "cudaHostAlloc of " + std::to_string(n) + " bytes: the host has no memory left");
  rt().allocations[reinterpret_cast<uintptr_t>(*p)] = {n, false};
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** p, size_t n) {
  return cudaHostAlloc(p, n, cudaHostAllocDefault);
}

cudaError_t cudaFreeHost(void* p) {
  CUDA_EMU_API("cudaFreeHost");
  if (!p) return cudaSuccess;
  run_device();
  Runtime& r = rt();
  auto it = r.allocations.find(reinterpret_cast<uintptr_t>(p));
  if (it == r.allocations.end() || it->second.device)
    return error(cudaErrorInvalidValue,
                 "cudaFreeHost(" + hex(p) + "): not a live page-locked allocation");
  r.allocations.erase(it);
  std::free(p);
  return host_wait();
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  CUDA_EMU_API("cudaMemcpy");
  return copy("cudaMemcpy", dst, src, n, kind, stream_of(nullptr), true);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t s) {
  CUDA_EMU_API("cudaMemcpyAsync");
  if (cudaError_t e = check_stream("cudaMemcpyAsync", s)) return e;
  return copy("cudaMemcpyAsync", dst, src, n, kind, stream_of(s), false);
}

cudaError_t cudaMemset(void* p, int value, size_t n) {
  CUDA_EMU_API("cudaMemset");
  return memset("cudaMemset", p, value, n, stream_of(nullptr), true);
}

cudaError_t cudaMemsetAsync(void* p, int value, size_t n, cudaStream_t s) {
  CUDA_EMU_API("cudaMemsetAsync");
  if (cudaError_t e = check_stream("cudaMemsetAsync", s)) return e;
  return memset("cudaMemsetAsync", p, value, n, stream_of(s), false);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  CUDA_EMU_API("cudaStreamCreate");
  auto st = std::make_unique<CUstream_st>();
  st->device = t_device;
  st->blocking = !(flags & cudaStreamNonBlocking);
  *s = st.get();
  rt().streams.push_back(std::move(st));
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* s) {
  return cudaStreamCreateWithFlags(s, cudaStreamDefault);
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
  CUDA_EMU_API("cudaStreamDestroy");
  if (!s) return error(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: the default stream");
  if (cudaError_t e = check_stream("cudaStreamDestroy", s)) return e;
  // Its queued work still runs, as on the GPU; the object stays for events recorded on it.
  run_all(s);
  s->destroyed = true;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  CUDA_EMU_API("cudaStreamSynchronize");
  if (cudaError_t e = check_stream("cudaStreamSynchronize", s)) return e;
  run_all(stream_of(s));
  return host_wait();
}

cudaError_t cudaStreamQuery(cudaStream_t s) {
  CUDA_EMU_API("cudaStreamQuery");
  if (cudaError_t e = check_stream("cudaStreamQuery", s)) return e;
  const CUstream_st* st = stream_of(s);
  return st->done == st->enqueued ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
  CUDA_EMU_API("cudaStreamWaitEvent");
  if (cudaError_t err = check_stream("cudaStreamWaitEvent", s)) return err;
  if (cudaError_t err = check_event("cudaStreamWaitEvent", e)) return err;
  if (!e->stream) return cudaSuccess;  // never recorded: nothing to wait for
  CUstream_st* st = stream_of(s);
  enqueue(st, [] {});
  st->queue.back().deps.emplace_back(e->stream, e->seq);
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  CUDA_EMU_API("cudaEventCreate");
  rt().events.push_back(std::make_unique<CUevent_st>());
  *e = rt().events.back().get();
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* e) {
  return cudaEventCreateWithFlags(e, cudaEventDefault);
}

cudaError_t cudaEventDestroy(cudaEvent_t e) {
  CUDA_EMU_API("cudaEventDestroy");
  auto& ev = rt().events;
  for (auto it = ev.begin(); it != ev.end(); ++it)
    if (it->get() == e) {
      ev.erase(it);
      return cudaSuccess;
    }
  return error(cudaErrorInvalidResourceHandle, "cudaEventDestroy: not a live event");
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  CUDA_EMU_API("cudaEventRecord");
  if (cudaError_t err = check_event("cudaEventRecord", e)) return err;
  if (cudaError_t err = check_stream("cudaEventRecord", s)) return err;
  CUstream_st* st = stream_of(s);
  // A marker in the queue: with the legacy stream's implicit waits it completes after all the
  // work the real event would wait for.
  e->stream = st;
  e->seq = enqueue(st, [e] { e->when = std::chrono::steady_clock::now(); });
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  CUDA_EMU_API("cudaEventSynchronize");
  if (cudaError_t err = check_event("cudaEventSynchronize", e)) return err;
  if (e->stream) run_until(e->stream, e->seq);
  return host_wait();
}

cudaError_t cudaEventQuery(cudaEvent_t e) {
  CUDA_EMU_API("cudaEventQuery");
  if (cudaError_t err = check_event("cudaEventQuery", e)) return err;
  return !e->stream || e->stream->done >= e->seq ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  CUDA_EMU_API("cudaEventElapsedTime");
  if (!start->stream || !end->stream || start->stream->done < start->seq ||
      end->stream->done < end->seq)
    return error(cudaErrorNotReady, "cudaEventElapsedTime: an event has not completed");
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = t_last;
  t_last = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() {
  return t_last;
}

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError:
      return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice:
      return "cudaErrorNoDevice";
    case cudaErrorInvalidResourceHandle:
      return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady:
      return "cudaErrorNotReady";
    case cudaErrorIllegalAddress:
      return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources:
      return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
  const char* generic = "unknown error";
  switch (e) {
    case cudaSuccess:
      generic = "no error";
      break;
    case cudaErrorInvalidValue:
      generic = "invalid argument";
      break;
    case cudaErrorMemoryAllocation:
      generic = "out of memory";
      break;
    case cudaErrorInitializationError:
      generic = "initialization error";
      break;
    case cudaErrorInvalidConfiguration:
      generic = "invalid configuration argument";
      break;
    case cudaErrorInvalidDevice:
      generic = "invalid device ordinal";
      break;
    case cudaErrorNoDevice:
      generic = "no CUDA-capable device is detected";
      break;
    case cudaErrorInvalidResourceHandle:
      generic = "invalid resource handle";
      break;
    case cudaErrorNotReady:
      generic = "device not ready";
      break;
    case cudaErrorIllegalAddress:
      generic = "an illegal memory access was encountered";
      break;
    case cudaErrorLaunchOutOfResources:
      generic = "too many resources requested for launch";
      break;
    case cudaErrorLaunchFailure:
      generic = "unspecified launch failure";
      break;
  }
  if (e != cudaSuccess && e == t_detail_code && !t_detail.empty()) {
    thread_local std::string s;
    s = std::string(generic) + "; emulator: " + t_detail;
    return s.c_str();
  }
  return generic;
}
