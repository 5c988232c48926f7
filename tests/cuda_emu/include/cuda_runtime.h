// The CUDA runtime as seen by kernels/cuda/*.cu when they are compiled as host C++ for the
// emulator (tests/cuda_emu/README.md): the qualifiers, the built-in index variables, vector
// types, the device intrinsics the kernels use, and the runtime API of cuda_runtime_api.h that
// the backend calls. Everything runs on the host:
//
//   device memory   host memory (posix_memalign, the exact size asked for), up to a cap
//   a launch        queued on its stream; at a synchronization point each block runs as one
//                   fiber per CUDA thread (scheduler.cpp), blocks one after another
//   __shared__      static storage (blocks never run side by side); dynamic shared memory is
//                   one buffer per block of the size the launch asked for
//   shuffles        through a per-warp exchange, with a warp barrier
//   atomics         plain read-modify-writes (fibers never preempt each other)
//
// Only what nabla's kernels, backend and tests use is here, plus the obvious neighbours.
#pragma once

// The C++ overloads of the math functions in the global namespace (fma(float, float, float),
// sqrt(float), ...), as CUDA's math library declares them for device code: a float argument
// gets the single-precision function.
#include <math.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <tuple>
#include <type_traits>
#include <utility>

// ---------------------------------------------------------------- qualifiers
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Blocks run one at a time, so static storage is block storage.
#define __shared__ static
#define __constant__ static

// ---------------------------------------------------------------- vector types
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) double2 {
  double x, y;
};
struct alignas(8) int2 {
  int x, y;
};
struct alignas(16) int4 {
  int x, y, z, w;
};
inline float2 make_float2(float x, float y) {
  return {x, y};
}
inline float4 make_float4(float x, float y, float z, float w) {
  return {x, y, z, w};
}
inline double2 make_double2(double x, double y) {
  return {x, y};
}
inline int2 make_int2(int x, int y) {
  return {x, y};
}
inline int4 make_int4(int x, int y, int z, int w) {
  return {x, y, z, w};
}

// ---------------------------------------------------------------- built-in variables
// Set by the scheduler before it switches to a thread's fiber; read-only for kernels.
extern uint3 threadIdx;
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;
constexpr int warpSize = 32;

// ---------------------------------------------------------------- runtime types
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchFailure = 719,
};
typedef enum cudaError cudaError_t;

struct CUstream_st;
struct CUevent_st;
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxBlockDimX = 2,
  cudaDevAttrMaxGridDimX = 5,
  cudaDevAttrMaxGridDimY = 6,
  cudaDevAttrMaxGridDimZ = 7,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMaxRegistersPerBlock = 12,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
  cudaDevAttrMaxRegistersPerMultiprocessor = 82,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int regsPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int major, minor;
  int multiProcessorCount;
  size_t sharedMemPerMultiprocessor;
  int regsPerMultiprocessor;
  size_t sharedMemPerBlockOptin;
  int maxThreadsPerMultiProcessor;
};

constexpr unsigned cudaHostAllocDefault = 0;
constexpr unsigned cudaStreamDefault = 0;
constexpr unsigned cudaStreamNonBlocking = 1;
constexpr unsigned cudaEventDefault = 0;
constexpr unsigned cudaEventDisableTiming = 2;

// ---------------------------------------------------------------- runtime API
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMemGetInfo(size_t* free, size_t* total);

cudaError_t cudaMalloc(void** p, size_t n);
cudaError_t cudaFree(void* p);
cudaError_t cudaHostAlloc(void** p, size_t n, unsigned flags);
cudaError_t cudaMallocHost(void** p, size_t n);
cudaError_t cudaFreeHost(void* p);
template <typename T>
cudaError_t cudaMalloc(T** p, size_t n) {
  return cudaMalloc(reinterpret_cast<void**>(p), n);
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t n);
cudaError_t cudaMemsetAsync(void* p, int value, size_t n, cudaStream_t s = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags = 0);

cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t e);
// For an error the emulator raised, the generic text followed by what it found (which check,
// which kernel and block); otherwise the generic text.
const char* cudaGetErrorString(cudaError_t e);

// cudaFuncSetAttribute(kernel, attr, value) is rewritten into this call: the emulator knows a
// kernel by the text that names it at its launches (rewrite_launches.cpp).
namespace cuda_emu {
cudaError_t func_set_attribute(const char* kernel, cudaFuncAttribute attr, int value);
}

// ---------------------------------------------------------------- device intrinsics
namespace cuda_emu::detail {
// Where a kernel called an intrinsic, for the emulator's messages. std::source_location where the
// library has it; clang 14 with libstdc++ 12 lacks __builtin_source_location, so there a struct
// with the same three accessors, filled by the builtins (evaluated at the intrinsic's call site,
// as a default argument).
#if defined(__cpp_lib_source_location)
using Site = std::source_location;
#else
struct Site {
  static constexpr Site current(const char* file = __builtin_FILE(),
                                unsigned line = __builtin_LINE(),
                                unsigned column = __builtin_COLUMN()) noexcept {
    return Site{file, line, column};
  }
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr unsigned line() const noexcept { return line_; }
  constexpr unsigned column() const noexcept { return column_; }
  const char* file_;
  unsigned line_;
  unsigned column_;
};
#endif
void block_barrier(const Site& site);
// Warp-level rendezvous of the lanes in `mask`: stores this lane's 8-byte value, waits for
// every lane of the mask to arrive at the same intrinsic, then returns the exchange (32 slots)
// and the lanes that took part. `what` names the intrinsic in messages.
const uint64_t* warp_exchange(unsigned mask, uint64_t value, const char* what, const Site& site);
int lane_id();
[[noreturn]] void device_fault(const char* what, const Site& site);
void* dynamic_shared();
template <typename T>
uint64_t to_slot(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>,
                "shuffle of a type over 8 bytes");
  uint64_t s = 0;
  std::memcpy(&s, &v, sizeof(T));
  return s;
}
template <typename T>
T from_slot(uint64_t s) {
  T v;
  std::memcpy(&v, &s, sizeof(T));
  return v;
}
// The source lane of a shuffle within its segment of `width` lanes.
template <typename T>
T shuffle(unsigned mask, T v, int src, int width, const char* what, const Site& site) {
  if (width < 1 || width > 32 || (width & (width - 1)))
    device_fault("shuffle width must be a power of two in [1, 32]", site);
  const uint64_t* slots = warp_exchange(mask, to_slot(v), what, site);
  const int lane = lane_id();
  const int base = lane & ~(width - 1);
  const int from = base + (src & (width - 1));
  if (!(mask >> from & 1u))
    device_fault("shuffle reads a lane outside its mask (the value is undefined)", site);
  return from_slot<T>(slots[from]);
}
}  // namespace cuda_emu::detail

inline void __syncthreads(
    const ::cuda_emu::detail::Site& site = ::cuda_emu::detail::Site::current()) {
  ::cuda_emu::detail::block_barrier(site);
}
inline void __syncwarp(unsigned mask = 0xffffffffu,
                       const ::cuda_emu::detail::Site& site = ::cuda_emu::detail::Site::current()) {
  ::cuda_emu::detail::warp_exchange(mask, 0, "__syncwarp", site);
}
template <typename T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32,
              const ::cuda_emu::detail::Site& site = ::cuda_emu::detail::Site::current()) {
  return ::cuda_emu::detail::shuffle(mask, v, src, width, "__shfl_sync", site);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32,
                  const ::cuda_emu::detail::Site& site = ::cuda_emu::detail::Site::current()) {
  const int lane = ::cuda_emu::detail::lane_id();
  return ::cuda_emu::detail::shuffle(mask, v, (lane ^ lane_mask) & (width - 1), width,
                                     "__shfl_xor_sync", site);
}
// Lanes whose source falls outside their segment keep their own value, as on the GPU.
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32,
                   const ::cuda_emu::detail::Site& site = ::cuda_emu::detail::Site::current()) {
  const int in_seg = ::cuda_emu::detail::lane_id() & (width - 1);
  const bool keep = in_seg + int(delta) >= width;
  const T r = ::cuda_emu::detail::shuffle(mask, v, keep ? in_seg : in_seg + int(delta), width,
                                          "__shfl_down_sync", site);
  return keep ? v : r;
}
template <typename T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32,
                 const ::cuda_emu::detail::Site& site = ::cuda_emu::detail::Site::current()) {
  const int in_seg = ::cuda_emu::detail::lane_id() & (width - 1);
  const bool keep = in_seg < int(delta);
  const T r = ::cuda_emu::detail::shuffle(mask, v, keep ? in_seg : in_seg - int(delta), width,
                                          "__shfl_up_sync", site);
  return keep ? v : r;
}
inline unsigned __ballot_sync(
    unsigned mask, int pred,
    const ::cuda_emu::detail::Site& site = ::cuda_emu::detail::Site::current()) {
  const uint64_t* s = ::cuda_emu::detail::warp_exchange(mask, pred != 0, "__ballot_sync", site);
  unsigned r = 0;
  for (int l = 0; l < 32; ++l)
    if ((mask >> l & 1u) && s[l]) r |= 1u << l;
  return r;
}
inline int __any_sync(unsigned mask, int pred,
                      const ::cuda_emu::detail::Site& site = ::cuda_emu::detail::Site::current()) {
  return __ballot_sync(mask, pred, site) != 0;
}
inline int __all_sync(unsigned mask, int pred,
                      const ::cuda_emu::detail::Site& site = ::cuda_emu::detail::Site::current()) {
  return __ballot_sync(mask, pred, site) == mask;
}
// Fibers switch only at barriers and warp intrinsics: every store is visible to every later
// read, so fences have nothing to do (the memory model is not emulated).
inline void __threadfence() {}
inline void __threadfence_block() {}

template <typename T>
inline T __ldg(const T* p) {
  return *p;
}

// Atomics: a fiber is never interrupted between the read and the write.
template <typename T>
inline T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <typename T>
inline T atomicSub(T* p, T v) {
  const T old = *p;
  *p = old - v;
  return old;
}
template <typename T>
inline T atomicMin(T* p, T v) {
  const T old = *p;
  *p = v < old ? v : old;
  return old;
}
template <typename T>
inline T atomicMax(T* p, T v) {
  const T old = *p;
  *p = v > old ? v : old;
  return old;
}
template <typename T>
inline T atomicExch(T* p, T v) {
  const T old = *p;
  *p = v;
  return old;
}
template <typename T>
inline T atomicCAS(T* p, T compare, T v) {
  const T old = *p;
  if (old == compare) *p = v;
  return old;
}

// Round-to-nearest arithmetic that nvcc never fuses into an fma. The empty asm makes the
// result opaque to GCC, so it cannot contract the product into a neighbouring add either.
#define CUDA_EMU_OPAQUE(T, expr) \
  do {                           \
    T r_ = (expr);               \
    __asm__("" : "+x"(r_));      \
    return r_;                   \
  } while (0)
inline float __fmul_rn(float a, float b) {
  CUDA_EMU_OPAQUE(float, a* b);
}
inline double __dmul_rn(double a, double b) {
  CUDA_EMU_OPAQUE(double, a* b);
}
inline float __fadd_rn(float a, float b) {
  CUDA_EMU_OPAQUE(float, a + b);
}
inline double __dadd_rn(double a, double b) {
  CUDA_EMU_OPAQUE(double, a + b);
}
inline float __fsub_rn(float a, float b) {
  CUDA_EMU_OPAQUE(float, a - b);
}
inline double __dsub_rn(double a, double b) {
  CUDA_EMU_OPAQUE(double, a - b);
}
inline float __fdiv_rn(float a, float b) {
  CUDA_EMU_OPAQUE(float, a / b);
}
inline double __ddiv_rn(double a, double b) {
  CUDA_EMU_OPAQUE(double, a / b);
}
#undef CUDA_EMU_OPAQUE
inline float __fmaf_rn(float a, float b, float c) {
  return fmaf(a, b, c);
}
inline double __fma_rn(double a, double b, double c) {
  return ::fma(a, b, c);
}
inline float __fsqrt_rn(float a) {
  return sqrtf(a);
}
inline double __dsqrt_rn(double a) {
  return ::sqrt(a);
}
inline float rsqrtf(float a) {
  return 1.0f / sqrtf(a);
}
inline double rsqrt(double a) {
  return 1.0 / ::sqrt(a);
}
inline float __expf(float a) {
  return expf(a);
}
inline float __logf(float a) {
  return logf(a);
}
inline float __saturatef(float a) {
  return a < 0.f ? 0.f : (a > 1.f ? 1.f : a);
}
inline int __float2int_rn(float a) {
  return int(nearbyintf(a));
}

// ---------------------------------------------------------------- launches
// tests/cuda_emu/rewrite_launches.cpp turns  kernel<<<grid, block, smem, stream>>>(args)
// into  ::cuda_emu::launch("kernel", __FILE__, __LINE__, kernel,
//                          ::cuda_emu::config(grid, block, smem, stream), args).
namespace cuda_emu {

struct LaunchConfig {
  dim3 grid, block;
  size_t smem = 0;
  cudaStream_t stream = nullptr;
};
inline LaunchConfig config(dim3 grid, dim3 block, size_t smem = 0, cudaStream_t stream = nullptr) {
  return {grid, block, smem, stream};
}

namespace detail {
// What one CUDA thread runs: the kernel on its own copy of the arguments. `call` is the
// rewriter's [](auto... args) { kernel(args...); }: it takes the arguments by value, so each
// thread's kernel gets its own copies, converted to the parameter types as in a call.
struct KernelBody {
  virtual ~KernelBody() = default;
  virtual void run() const = 0;
};
template <typename F, typename... A>
struct Body final : KernelBody {
  F call;
  std::tuple<A...> args;
  template <typename... B>
  explicit Body(F f, B&&... b) : call(f), args(std::forward<B>(b)...) {}
  void run() const override { std::apply(call, args); }
};
// Checks the configuration (cudaGetLastError reports a bad one, as after <<<>>>) and queues
// the launch on its stream; takes ownership of body.
void enqueue_launch(const char* name, const char* file, int line, const LaunchConfig& cfg,
                    KernelBody* body);
}  // namespace detail

template <typename F, typename... A>
void launch(const char* name, const char* file, int line, F call, const LaunchConfig& cfg,
            A&&... args) {
  detail::enqueue_launch(name, file, line, cfg,
                         new detail::Body<F, std::decay_t<A>...>(call, std::forward<A>(args)...));
}

// extern __shared__ T name[];  becomes  T* name = ::cuda_emu::dynamic_shared<T>();
template <typename T>
T* dynamic_shared() {
  return static_cast<T*>(detail::dynamic_shared());
}

}  // namespace cuda_emu
