// The CUDA backend: device memory through one caching allocator per device, pinned host
// memory, copies, synchronization, the current stream, and CUDA error reporting.
//
// Registered on first use (cuda::ensure_backend, called by nabla::cuda_backend()), so that a
// program that never touches a GPU never initializes the driver. With no driver or no GPU the
// backend still registers and reports 0 devices; asking for cuda:0 then names the reason.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nabla/device.h>
#include <nabla/memory.h>

#include "kernels/cuda/common.cuh"

#ifdef NABLA_CUDA_EMU
#include <cuda_emu.h>
#endif

namespace nabla::cuda {

void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  throw Error(std::string("CUDA error ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) +
              ") in " + expr + " at " + file + ":" + std::to_string(line));
}

namespace {
thread_local cudaStream_t t_stream = nullptr;  // the legacy default stream
thread_local int t_device = -1;                // what this thread last set, -1: unknown
}  // namespace

cudaStream_t current_stream() {
  return t_stream;
}

// The backend is the only caller of cudaSetDevice, so t_device mirrors the runtime's current
// device once known: kernel calls ask the runtime nothing.
int current_device() {
  if (t_device >= 0) return t_device;
  int d = 0;
  CUDA_CHECK(cudaGetDevice(&d));
  t_device = d;
  return d;
}

int sm_count() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cached[kMaxDevices] = {};  // 0: not asked yet
  const int d = current_device();
  if (d < kMaxDevices && cached[d].load(std::memory_order_relaxed) > 0)
    return cached[d].load(std::memory_order_relaxed);
  int n = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, d));
  n = n > 0 ? n : 1;
  if (d < kMaxDevices) cached[d].store(n, std::memory_order_relaxed);
  return n;
}

// ---------------------------------------------------------------- deferred device checks

namespace {

struct DeferredCheck {
  long long* host = nullptr;  // pinned copy of the device words
  int words = 0;
  cudaEvent_t copied = nullptr;
  std::function<std::string(const long long*)> verdict;
};

std::mutex g_checks_mu;
std::vector<DeferredCheck> g_checks;     // copies queued, not looked at yet
std::vector<cudaEvent_t> g_free_events;  // reused: creating an event per call is not free

// Evaluates the checks whose copies have arrived and throws the first failure. Called after
// every host wait of the backend, when the current stream's copies have all arrived.
void run_deferred_checks() {
  std::vector<DeferredCheck> ready;
  {
    std::lock_guard<std::mutex> lock(g_checks_mu);
    size_t kept = 0;
    for (DeferredCheck& c : g_checks) {
      if (cudaEventQuery(c.copied) == cudaSuccess)
        ready.push_back(std::move(c));
      else
        g_checks[kept++] = std::move(c);
    }
    g_checks.resize(kept);
  }
  std::string first;
  int failed = 0;
  for (DeferredCheck& c : ready) {
    std::string m = c.verdict(c.host);
    if (!m.empty() && failed++ == 0) first = std::move(m);
    cuda_backend()->deallocate_pinned(c.host);
    std::lock_guard<std::mutex> lock(g_checks_mu);
    g_free_events.push_back(c.copied);
  }
  if (failed > 1) first += " (and " + std::to_string(failed - 1) + " more failed device checks)";
  if (failed) throw Error(first);
}

}  // namespace

void defer_check(const long long* words, int n,
                 std::function<std::string(const long long*)> verdict) {
  const cudaStream_t s = current_stream();
  DeferredCheck c;
  c.words = n;
  c.verdict = std::move(verdict);
  c.host = static_cast<long long*>(cuda_backend()->allocate_pinned(size_t(n) * sizeof(long long)));
  {
    std::lock_guard<std::mutex> lock(g_checks_mu);
    if (!g_free_events.empty()) {
      c.copied = g_free_events.back();
      g_free_events.pop_back();
    }
  }
  if (!c.copied) CUDA_CHECK(cudaEventCreateWithFlags(&c.copied, cudaEventDisableTiming));
  CUDA_CHECK(
      cudaMemcpyAsync(c.host, words, size_t(n) * sizeof(long long), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaEventRecord(c.copied, s));
  {
    std::lock_guard<std::mutex> lock(g_checks_mu);
    g_checks.push_back(std::move(c));
  }
  if (sync_checks()) {
    CUDA_CHECK(cudaStreamSynchronize(s));
    run_deferred_checks();
  }
}

StreamGuard::StreamGuard(cudaStream_t s) : prev_(t_stream) {
  t_stream = s;
}
StreamGuard::~StreamGuard() {
  t_stream = prev_;
}

namespace {

class CudaBackend final : public DeviceBackend {
 public:
  CudaBackend() {
    const cudaError_t err = cudaGetDeviceCount(&count_);
    if (err != cudaSuccess) {
      count_ = 0;
      why_ = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
      (void)cudaGetLastError();  // clear the sticky error so later calls start clean
    }
    for (int i = 0; i < count_; ++i) {
      allocators_.push_back(std::make_unique<CachingAllocator>(
          "cuda:" + std::to_string(i) + " memory",
          [i](size_t n) -> void* {
            void* p = nullptr;
            if (cudaSetDevice(i) != cudaSuccess || cudaMalloc(&p, n) != cudaSuccess) {
              (void)cudaGetLastError();  // out of memory is reported by the allocator
              return nullptr;
            }
            t_device = i;
            return p;
          },
          [i](void* p) {
            cudaSetDevice(i);
            t_device = i;
            cudaFree(p);
          }));
    }
    pinned_ = std::make_unique<CachingAllocator>(
        "pinned host memory",
        [](size_t n) -> void* {
          void* p = nullptr;
          if (cudaHostAlloc(&p, n, cudaHostAllocDefault) != cudaSuccess) {
            (void)cudaGetLastError();
            return nullptr;
          }
          return p;
        },
        [](void* p) { cudaFreeHost(p); }, SIZE_MAX, /*host_memory=*/true);
    // A pinned block may be the source of a host-to-device copy that is still queued (copy()
    // returns before such a copy runs): it is reused only after an event recorded when it was
    // freed, on the freeing thread's current stream, has completed.
    if (count_ > 0)
      pinned_->set_fences(
          {[this] { return record_fence(); },
           [](void* e) { return cudaEventQuery(static_cast<cudaEvent_t>(e)) != cudaErrorNotReady; },
           [](void* e) { (void)cudaEventSynchronize(static_cast<cudaEvent_t>(e)); },
           [this](void* e) {
             std::lock_guard<std::mutex> lock(events_mu_);
             free_events_.push_back(static_cast<cudaEvent_t>(e));
           }});
  }

  int device_count() override { return count_; }

  void* allocate(size_t nbytes, int index) override {
    check_index(index, "allocate");
    set_device(index);
    void* p = allocators_[size_t(index)]->allocate(nbytes);
#ifdef NABLA_CUDA_EMU
    // Device memory is host memory there: AddressSanitizer sees the block at exactly nbytes,
    // from this point of the stream on (queued work of its last owner may still use it).
    cuda_emu::mark_allocation_async(p, nbytes, CachingAllocator::round_size(nbytes), t_stream);
#endif
    if (debug_fill())  // every fresh block reads as NaN: parity tests catch unwritten outputs
      CUDA_CHECK(cudaMemsetAsync(p, 0xFF, nbytes, t_stream));
    return p;
  }

  void deallocate(void* p, size_t nbytes, int index) override {
    if (index < 0 || index >= count_) return;
#ifdef NABLA_CUDA_EMU
    // Freed after the work queued so far: a later kernel that still reads it is reported.
    cuda_emu::mark_allocation_async(p, 0, CachingAllocator::round_size(nbytes), t_stream);
#endif
    allocators_[size_t(index)]->deallocate(p);
  }

  void copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes) override {
    if (nbytes == 0) return;
    if (dst_dev.is_cuda())
      set_device(dst_dev.index);
    else if (src_dev.is_cuda())
      set_device(src_dev.index);
    CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, t_stream));
    // A host destination must hold the data when copy() returns; the host waits, so this is
    // where the device checks of earlier calls report.
    if (dst_dev.is_cpu()) {
      CUDA_CHECK(cudaStreamSynchronize(t_stream));
      run_deferred_checks();
    }
  }

  void synchronize(int index) override {
    check_index(index, "synchronize");
    set_device(index);
    CUDA_CHECK(cudaDeviceSynchronize());
    run_deferred_checks();
  }

  void set_device(int index) override {
    if (t_device == index) return;
    check_index(index, "set_device");
    CUDA_CHECK(cudaSetDevice(index));
    t_device = index;
  }

  void* allocate_pinned(size_t nbytes) override {
    NABLA_CHECK(count_ > 0, "pinned memory needs a CUDA GPU (", why_, ")");
    return pinned_->allocate(nbytes);
  }
  void deallocate_pinned(void* p) override {
    pinned_->deallocate(p);
  }

  MemoryStats memory_stats(int index) override {
    check_index(index, "memory_stats");
    return allocators_[size_t(index)]->stats();
  }
  void empty_cache(int index) override {
    check_index(index, "empty_cache");
    allocators_[size_t(index)]->empty_cache();
  }

 private:
  void check_index(int index, const char* what) const {
    NABLA_CHECK(count_ > 0, "cuda:", index, " ", what, ": no CUDA GPU is available",
                why_.empty() ? std::string() : " (" + why_ + ")");
    NABLA_CHECK(index >= 0 && index < count_, "cuda:", index, " ", what, ": no such device (",
                count_, " CUDA devices)");
  }

  // An event after everything queued so far on this thread's current stream, or nullptr after
  // waiting for the device when no event can be recorded (never throws: called from
  // destructors).
  void* record_fence() {
    cudaEvent_t e = nullptr;
    {
      std::lock_guard<std::mutex> lock(events_mu_);
      if (!free_events_.empty()) {
        e = free_events_.back();
        free_events_.pop_back();
      }
    }
    if (!e && cudaEventCreateWithFlags(&e, cudaEventDisableTiming) != cudaSuccess) e = nullptr;
    if (e && cudaEventRecord(e, t_stream) == cudaSuccess) return e;
    (void)cudaGetLastError();
    (void)cudaDeviceSynchronize();
    if (e) {
      std::lock_guard<std::mutex> lock(events_mu_);
      free_events_.push_back(e);
    }
    return nullptr;
  }

  int count_ = 0;
  std::string why_;
  std::mutex events_mu_;
  std::vector<cudaEvent_t> free_events_;
  std::vector<std::unique_ptr<CachingAllocator>> allocators_;
  std::unique_ptr<CachingAllocator> pinned_;
};

}  // namespace

void ensure_backend() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Never destroyed: tensors with static storage duration may be freed after main returns.
    static CudaBackend* backend = new CudaBackend();
    register_cuda_backend(backend);
  });
}

}  // namespace nabla::cuda
