// Shared by every CUDA kernel file: error checking, the current stream, launch geometry and
// warp/block reductions.
//
// Conventions (DESIGN.md): the cuda:: entry points take the same arguments as their cpu::
// twins; they run on the current device (the op dispatch calls DeviceBackend::set_device) and
// queue on current_stream(); internal launchers take the stream as a cudaStream_t. Every CUDA
// API call is wrapped in CUDA_CHECK, every launch followed by CUDA_CHECK_LAUNCH(), so that a
// failure becomes a nabla::Error naming the call, the file and the line, never an abort.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <string>

#include <nabla/device.h>
#include <nabla/error.h>

namespace nabla::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line);

#define CUDA_CHECK(expr)                                                      \
  do {                                                                        \
    const cudaError_t nabla_err_ = (expr);                                    \
    if (nabla_err_ != cudaSuccess)                                            \
      ::nabla::cuda::throw_cuda_error(nabla_err_, #expr, __FILE__, __LINE__); \
  } while (0)

// After a <<<...>>> launch: reports bad launch configurations (the kernel's own faults surface
// at the next synchronizing call).
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

// The stream kernels of this thread queue on (the legacy default stream unless a StreamGuard
// is active), and the device the calls run on.
cudaStream_t current_stream();
int current_device();

// Sets this thread's current stream for its lifetime, then restores the previous one.
class StreamGuard {
 public:
  explicit StreamGuard(cudaStream_t s);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  cudaStream_t prev_;
};

// Device scratch memory from the current device's caching allocator, given back when it goes
// out of scope. Kernels that use it are queued on the current stream before that, and the
// allocator hands the block out again only to work queued later on the same stream, so the
// reuse is ordered after them (one stream per thread, as for tensor buffers).
class Scratch {
 public:
  explicit Scratch(size_t bytes) : device_(current_device()), bytes_(bytes) {
    p_ = cuda_backend()->allocate(bytes, device_);
  }
  ~Scratch() { cuda_backend()->deallocate(p_, bytes_, device_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename U>
  U* as() const {
    return static_cast<U*>(p_);
  }

 private:
  int device_;
  size_t bytes_;
  void* p_ = nullptr;
};

// Streaming multiprocessors of the current device (at least 1): grid sizing for split
// reductions. Asked once per device, then cached.
int sm_count();

// Checks of values a kernel computed, without a host wait per call. `words` (n device words,
// written by work queued on the current stream) are copied back asynchronously; at the next
// host wait of the backend (synchronize(), a copy to the host) `verdict` reads the copy and
// returns "" when all is well, or the message of the nabla::Error thrown there. With
// sync_checks() (NABLA_SYNC_CHECKS=1) the stream is synchronized at once and the error thrown
// from this call.
void defer_check(const long long* words, int n,
                 std::function<std::string(const long long*)> verdict);

constexpr int kThreads = 256;          // default block size of elementwise kernels
constexpr int64_t kMaxBlocks = 65535;  // grid-stride loops cover the rest

// Blocks for n items at `threads` per block, capped so grid-stride loops stay efficient.
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return unsigned(b < 1 ? 1 : (b > kMaxBlocks ? kMaxBlocks : b));
}

#ifdef __CUDACC__
// Sum over the 32 lanes of a warp; every lane gets the total (xor butterfly: same order on
// every run, so results are deterministic).
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const T w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

// Sum over a block of blockDim.x threads (a multiple of 32, at most 1024); the result is valid
// in every thread. `shared` holds at least 32 elements. Contains __syncthreads: call it from
// every thread of the block.
template <typename T>
__device__ T block_sum(T v, T* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // shared may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < warps ? shared[lane] : T(0);
  return warp_sum(v);
}
#endif

}  // namespace nabla::cuda
