// The CUDA emulator's own checks: each part of the execution model it claims (tests/cuda_emu/
// README.md) on a small kernel, and each fault it reports, provoked on purpose. Compiled like
// kernels/cuda/*.cu: through rewrite_launches, then as host C++.
#include <doctest/doctest.h>

#include <cuda_emu.h>
#include <cuda_runtime.h>

#include <nabla/device.h>
#include <nabla/memory.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace {

#define EMU_OK(expr)                                                                      \
  do {                                                                                    \
    const cudaError_t emu_err_ = (expr);                                                  \
    REQUIRE_MESSAGE(emu_err_ == cudaSuccess, #expr ": " << cudaGetErrorString(emu_err_)); \
  } while (0)

// Runs a launch and returns the error of the next synchronization, with its message.
struct Outcome {
  cudaError_t launch = cudaSuccess, sync = cudaSuccess;
  std::string text;
};

Outcome finish() {
  Outcome o;
  o.launch = cudaGetLastError();
  if (o.launch != cudaSuccess) {
    o.text = cudaGetErrorString(o.launch);
    return o;
  }
  o.sync = cudaDeviceSynchronize();
  o.text = cudaGetErrorString(o.sync);
  return o;
}

template <typename T>
T* device_array(size_t n) {
  T* p = nullptr;
  REQUIRE(cudaMalloc(&p, n * sizeof(T)) == cudaSuccess);
  REQUIRE(cudaMemset(p, 0, n * sizeof(T)) == cudaSuccess);
  return p;
}

template <typename T>
std::vector<T> to_host(const T* d, size_t n) {
  std::vector<T> h(n);
  REQUIRE(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
  return h;
}

// ---------------------------------------------------------------- kernels

// Every thread writes its global linear index plus 1000. It changes its copy of n: were the
// copy shared, later threads would see n <= i and leave out the 1000.
__global__ void index_kernel(int* out, int n) {
  const int bx = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const int tx = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int i = bx * (blockDim.x * blockDim.y * blockDim.z) + tx;
  if (i >= n) return;
  n -= i;
  out[i] = i + (n > 0 ? 1000 : 0);
}

// Reverses each block's segment through shared memory: correct only with the barrier.
template <bool kBarrier>
__global__ void reverse_kernel(const int* in, int* out) {
  __shared__ int s[256];
  const int t = threadIdx.x;
  s[t] = in[blockIdx.x * blockDim.x + t];
  if (kBarrier) __syncthreads();
  out[blockIdx.x * blockDim.x + t] = s[blockDim.x - 1 - t];
}

__global__ void warp_sum_kernel(const float* in, float* out) {
  float v = in[threadIdx.x];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  out[threadIdx.x] = v;
}

__global__ void shuffle_variants_kernel(int* down, int* up, int* idx, unsigned* ballot) {
  const int lane = threadIdx.x & 31;
  down[threadIdx.x] = __shfl_down_sync(0xffffffffu, lane, 3);
  up[threadIdx.x] = __shfl_up_sync(0xffffffffu, lane, 5);
  idx[threadIdx.x] = __shfl_sync(0xffffffffu, lane * 10, 7);
  ballot[threadIdx.x] = __ballot_sync(0xffffffffu, lane % 3 == 0);
}

// Lanes 0-15 and 16-31 reduce separately, each with its own half mask.
__global__ void half_warp_kernel(int* out) {
  const int lane = threadIdx.x & 31;
  const unsigned mask = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  int v = lane;
  for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(mask, v, o);
  out[threadIdx.x] = v;
}

__global__ void atomic_kernel(int* count, float* sum, long long* low) {
  atomicAdd(count, 1);
  atomicAdd(sum, 0.5f);
  atomicMin(low, (long long)(1000 - int(threadIdx.x)));
}

__global__ void dynamic_shared_kernel(int* out) {
  extern __shared__ int buf[];
  // Every block starts from garbage; a thread writes, the barrier publishes, another reads.
  buf[threadIdx.x] = int(blockIdx.x * 100 + threadIdx.x);
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = buf[(threadIdx.x + 1) % blockDim.x];
}

__global__ void rounding_kernel(const float* x, float* out) {
  out[0] = __fmul_rn(x[0], x[1]) + x[2];
  out[1] = __fmaf_rn(x[0], x[1], x[2]);
  out[2] = fma(x[0], x[1], x[2]);  // CUDA's fma(float, float, float) is single precision
}

// ---- faults

__global__ void barrier_after_return_kernel(int* out) {
  if (threadIdx.x >= 32) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x < 32) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

__global__ void exited_lane_kernel(float* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.f, 1);
}

__global__ void shuffle_vs_barrier_kernel(float* out) {
  float v = 1.f;
  if (threadIdx.x < 16)
    v = __shfl_xor_sync(0xffffffffu, v, 1);
  else
    __syncthreads();
  out[threadIdx.x] = v;
}

__global__ void outside_mask_kernel(int* out) {
  // Lane 0..15 read lane (lane + 16): outside their mask.
  if ((threadIdx.x & 31) < 16) out[threadIdx.x] = __shfl_sync(0x0000ffffu, 1, threadIdx.x + 16);
}

__global__ void missing_lanes_kernel(float* out) {
  // 48 threads: warp 1 has 16 lanes, but the mask names 32.
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.f, 1);
}

__global__ void add_one_kernel(float* x, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) x[i] += 1;
}

}  // namespace

// ---------------------------------------------------------------- the execution model

TEST_CASE("emulator: one device with an H100's properties") {
  int n = 0;
  EMU_OK(cudaGetDeviceCount(&n));
  CHECK(n == 1);
  cudaDeviceProp p;
  EMU_OK(cudaGetDeviceProperties(&p, 0));
  const int want_sms = std::getenv("NABLA_EMU_SMS") ? std::atoi(std::getenv("NABLA_EMU_SMS")) : 132;
  CHECK(p.multiProcessorCount == want_sms);
  CHECK(p.sharedMemPerMultiprocessor == 228u << 10);
  CHECK(p.regsPerMultiprocessor == 65536);
  CHECK(p.major == 9);
  int sms = 0;
  EMU_OK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  CHECK(sms == want_sms);
  CHECK(cudaSetDevice(1) == cudaErrorInvalidDevice);
  CHECK(sizeof(float4) == 16);
  CHECK(alignof(float4) == 16);
  CHECK(alignof(double2) == 16);
}

TEST_CASE("emulator: 3-D grids and blocks, each thread with its own arguments") {
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  const int total = 12 * 24;
  int* out = device_array<int>(total);
  index_kernel<<<grid, block>>>(out, total);
  const Outcome o = finish();
  REQUIRE_MESSAGE(o.sync == cudaSuccess, o.text);
  const std::vector<int> h = to_host(out, total);
  for (int i = 0; i < total; ++i) CHECK(h[size_t(i)] == i + 1000);
  EMU_OK(cudaFree(out));
}

TEST_CASE("emulator: __syncthreads orders shared memory; without it the race probe shows") {
  const int blocks = 3, threads = 256, n = blocks * threads;
  std::vector<int> in(n);
  for (int i = 0; i < n; ++i) in[size_t(i)] = i;
  int* d_in = device_array<int>(n);
  int* d_out = device_array<int>(n);
  EMU_OK(cudaMemcpy(d_in, in.data(), n * sizeof(int), cudaMemcpyHostToDevice));
  auto expect = [&](const std::vector<int>& h) {
    int bad = 0;
    for (int b = 0; b < blocks; ++b)
      for (int t = 0; t < threads; ++t)
        bad += h[size_t(b * threads + t)] != b * threads + threads - 1 - t;
    return bad;
  };
  const cuda_emu::Order before = cuda_emu::order();
  for (cuda_emu::Order ord :
       {cuda_emu::Order::kForward, cuda_emu::Order::kReverse, cuda_emu::Order::kShuffle}) {
    cuda_emu::set_order(ord, 7);
    reverse_kernel<true><<<blocks, threads>>>(d_in, d_out);
    REQUIRE(finish().sync == cudaSuccess);
    CHECK(expect(to_host(d_out, n)) == 0);
  }
  // Without the barrier, the thread that runs first reads slots nobody wrote yet: forward
  // order reads garbage in the first half of every block, reverse order in the second half.
  for (cuda_emu::Order ord : {cuda_emu::Order::kForward, cuda_emu::Order::kReverse}) {
    cuda_emu::set_order(ord);
    EMU_OK(cudaMemset(d_out, 0, n * sizeof(int)));
    reverse_kernel<false><<<blocks, threads>>>(d_in, d_out);
    REQUIRE(finish().sync == cudaSuccess);
    CHECK(expect(to_host(d_out, n)) > 0);
  }
  cuda_emu::set_order(before);
  EMU_OK(cudaFree(d_in));
  EMU_OK(cudaFree(d_out));
}

TEST_CASE("emulator: warp shuffles, full and half-warp masks, ballot") {
  std::vector<float> in(64);
  for (int i = 0; i < 64; ++i) in[size_t(i)] = float(i);
  float* d_in = device_array<float>(64);
  float* d_out = device_array<float>(64);
  EMU_OK(cudaMemcpy(d_in, in.data(), sizeof(float) * 64, cudaMemcpyHostToDevice));
  warp_sum_kernel<<<1, 64>>>(d_in, d_out);
  REQUIRE(finish().sync == cudaSuccess);
  const std::vector<float> sums = to_host(d_out, 64);
  for (int i = 0; i < 64; ++i) CHECK(sums[size_t(i)] == (i < 32 ? 496.f : 1520.f));

  int* down = device_array<int>(32);
  int* up = device_array<int>(32);
  int* idx = device_array<int>(32);
  unsigned* ballot = device_array<unsigned>(32);
  shuffle_variants_kernel<<<1, 32>>>(down, up, idx, ballot);
  REQUIRE(finish().sync == cudaSuccess);
  const auto hd = to_host(down, 32), hu = to_host(up, 32), hi = to_host(idx, 32);
  const auto hb = to_host(ballot, 32);
  unsigned want_ballot = 0;
  for (int l = 0; l < 32; l += 3) want_ballot |= 1u << l;
  for (int l = 0; l < 32; ++l) {
    CHECK(hd[size_t(l)] == (l + 3 < 32 ? l + 3 : l));  // out of range: the lane's own value
    CHECK(hu[size_t(l)] == (l >= 5 ? l - 5 : l));
    CHECK(hi[size_t(l)] == 70);
    CHECK(hb[size_t(l)] == want_ballot);
  }

  int* halves = device_array<int>(32);
  half_warp_kernel<<<1, 32>>>(halves);
  REQUIRE(finish().sync == cudaSuccess);
  const auto hh = to_host(halves, 32);
  for (int l = 0; l < 32; ++l) CHECK(hh[size_t(l)] == (l < 16 ? 120 : 376));
  for (void* p : {(void*)d_in, (void*)d_out, (void*)down, (void*)up, (void*)idx, (void*)ballot,
                  (void*)halves})
    EMU_OK(cudaFree(p));
}

TEST_CASE("emulator: atomics, dynamic shared memory per block, __fmul_rn stays unfused") {
  int* count = device_array<int>(1);
  float* sum = device_array<float>(1);
  long long* low = device_array<long long>(1);
  EMU_OK(cudaMemset(low, 0x7F, sizeof(long long)));
  atomic_kernel<<<4, 128>>>(count, sum, low);
  REQUIRE(finish().sync == cudaSuccess);
  CHECK(to_host(count, 1)[0] == 512);
  CHECK(to_host(sum, 1)[0] == 256.f);
  CHECK(to_host(low, 1)[0] == 1000 - 127);

  int* out = device_array<int>(3 * 64);
  dynamic_shared_kernel<<<3, 64, 64 * sizeof(int)>>>(out);
  REQUIRE(finish().sync == cudaSuccess);
  const auto h = to_host(out, 3 * 64);
  for (int b = 0; b < 3; ++b)
    for (int t = 0; t < 64; ++t) CHECK(h[size_t(b * 64 + t)] == b * 100 + (t + 1) % 64);

  // (1 + 2^-12)^2 - (1 + 2^-11) is 2^-24 exactly; the rounded product makes it 0.
  const float x[3] = {1.f + 0x1p-12f, 1.f + 0x1p-12f, -(1.f + 0x1p-11f)};
  float* dx = device_array<float>(3);
  float* r = device_array<float>(3);
  EMU_OK(cudaMemcpy(dx, x, sizeof x, cudaMemcpyHostToDevice));
  rounding_kernel<<<1, 1>>>(dx, r);
  REQUIRE(finish().sync == cudaSuccess);
  const auto hr = to_host(r, 3);
  CHECK(hr[0] == 0.f);
  CHECK(hr[1] == 0x1p-24f);
  CHECK(hr[2] == 0x1p-24f);
  for (void* p : {(void*)count, (void*)sum, (void*)low, (void*)out, (void*)dx, (void*)r})
    EMU_OK(cudaFree(p));
}

// ---------------------------------------------------------------- faults it reports

TEST_CASE("emulator: launch limits are checked at the launch") {
  int* out = device_array<int>(2048);
  index_kernel<<<1, 1025>>>(out, 2048);
  Outcome o = finish();
  CHECK(o.launch == cudaErrorInvalidConfiguration);
  CHECK(o.text.find("1024 threads") != std::string::npos);
  index_kernel<<<dim3(1, 65536), 32>>>(out, 2048);
  o = finish();
  CHECK(o.launch == cudaErrorInvalidConfiguration);
  CHECK(o.text.find("65535") != std::string::npos);
  index_kernel<<<dim3(1, 1, 0), 32>>>(out, 2048);
  CHECK(finish().launch == cudaErrorInvalidConfiguration);
  // 49 KiB of dynamic shared memory needs the opt-in attribute.
  dynamic_shared_kernel<<<1, 32, 49 << 10>>>(out);
  o = finish();
  CHECK(o.launch == cudaErrorInvalidConfiguration);
  CHECK(o.text.find("cudaFuncAttributeMaxDynamicSharedMemorySize") != std::string::npos);
  EMU_OK(cudaFuncSetAttribute(dynamic_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              64 << 10));
  dynamic_shared_kernel<<<1, 32, 49 << 10>>>(out);
  o = finish();
  CHECK(o.launch == cudaSuccess);
  CHECK(o.sync == cudaSuccess);
  // The device still works.
  index_kernel<<<2, 64>>>(out, 128);
  CHECK(finish().sync == cudaSuccess);
  EMU_OK(cudaFree(out));
}

TEST_CASE("emulator: barrier and shuffle faults fail the synchronizing call, naming them") {
  int* out = device_array<int>(128);
  float* f = device_array<float>(128);
  struct Fault {
    const char* what;
    std::function<void()> launch;
    const char* message;
  };
  const Fault faults[] = {
      {"barrier after return", [&] { barrier_after_return_kernel<<<2, 64>>>(out); },
       "after 32 threads of the block returned"},
      {"divergent barriers", [&] { divergent_barrier_kernel<<<1, 64>>>(out); },
       "divergent __syncthreads"},
      {"exited lane", [&] { exited_lane_kernel<<<1, 32>>>(f); }, "lane 5 of the mask has exited"},
      {"shuffle against a barrier", [&] { shuffle_vs_barrier_kernel<<<1, 32>>>(f); }, "deadlock"},
      {"source lane outside the mask", [&] { outside_mask_kernel<<<1, 32>>>(out); },
       "outside its mask"},
      {"lanes that do not exist", [&] { missing_lanes_kernel<<<1, 48>>>(f); },
       "names lanes 16..31"},
  };
  for (const Fault& fault : faults) {
    CAPTURE(fault.what);
    fault.launch();
    const Outcome o = finish();
    CHECK(o.launch == cudaSuccess);
    CHECK(o.sync == cudaErrorLaunchFailure);
    CHECK_MESSAGE(o.text.find(fault.message) != std::string::npos, o.text);
    // Reported once; the next launch runs normally.
    index_kernel<<<1, 128>>>(out, 128);
    CHECK(finish().sync == cudaSuccess);
  }
  EMU_OK(cudaFree(out));
  EMU_OK(cudaFree(f));
}

// ---------------------------------------------------------------- streams, events, memory

TEST_CASE("emulator: work runs lazily, at synchronization points, in stream order") {
  float* d = device_array<float>(4);
  float* pinned = nullptr;
  EMU_OK(cudaHostAlloc(reinterpret_cast<void**>(&pinned), 4 * sizeof(float), cudaHostAllocDefault));
  for (int i = 0; i < 4; ++i) pinned[i] = 1.f;
  std::vector<float> pageable(4, 10.f);
  const int64_t syncs = cuda_emu::host_syncs();
  // A pinned source is read when the copy runs, a pageable one when it is queued.
  EMU_OK(cudaMemcpyAsync(d, pinned, 2 * sizeof(float), cudaMemcpyHostToDevice, nullptr));
  EMU_OK(
      cudaMemcpyAsync(d + 2, pageable.data(), 2 * sizeof(float), cudaMemcpyHostToDevice, nullptr));
  add_one_kernel<<<1, 32>>>(d, 4);
  CHECK(cuda_emu::pending_operations() == 3);
  CHECK(cudaStreamQuery(nullptr) == cudaErrorNotReady);
  for (int i = 0; i < 4; ++i) pinned[i] = 2.f;
  pageable.assign(4, 20.f);
  CHECK(cuda_emu::host_syncs() == syncs);
  std::vector<float> h(4);
  EMU_OK(cudaMemcpy(h.data(), d, sizeof(float) * 4, cudaMemcpyDeviceToHost));
  CHECK(cuda_emu::host_syncs() == syncs + 1);
  CHECK(h == std::vector<float>{3.f, 3.f, 11.f, 11.f});
  CHECK(cuda_emu::pending_operations() == 0);

  // Two streams: b waits for a's event; a non-blocking stream is ordered only by events.
  cudaStream_t a, b;
  EMU_OK(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking));
  EMU_OK(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking));
  cudaEvent_t e;
  EMU_OK(cudaEventCreate(&e));
  add_one_kernel<<<1, 32, 0, a>>>(d, 4);
  EMU_OK(cudaEventRecord(e, a));
  CHECK(cudaEventQuery(e) == cudaErrorNotReady);
  EMU_OK(cudaStreamWaitEvent(b, e));
  add_one_kernel<<<1, 32, 0, b>>>(d, 4);
  EMU_OK(cudaStreamSynchronize(b));  // runs a's kernel first
  CHECK(cudaEventQuery(e) == cudaSuccess);
  EMU_OK(cudaMemcpy(h.data(), d, sizeof(float) * 4, cudaMemcpyDeviceToHost));
  CHECK(h == std::vector<float>{5.f, 5.f, 13.f, 13.f});
  EMU_OK(cudaEventDestroy(e));
  EMU_OK(cudaStreamDestroy(a));
  EMU_OK(cudaStreamDestroy(b));
  EMU_OK(cudaFreeHost(pinned));
  EMU_OK(cudaFree(d));
}

TEST_CASE("emulator: the legacy default stream waits for blocking streams, and they for it") {
  float* d = device_array<float>(1);
  cudaStream_t s;
  EMU_OK(cudaStreamCreate(&s));
  add_one_kernel<<<1, 1, 0, s>>>(d, 1);  // 1
  add_one_kernel<<<1, 1>>>(d, 1);        // 2, after s's kernel
  add_one_kernel<<<1, 1, 0, s>>>(d, 1);  // 3, after the legacy kernel
  EMU_OK(cudaStreamSynchronize(s));
  CHECK(cuda_emu::pending_operations() == 0);
  CHECK(to_host(d, 1)[0] == 3.f);
  EMU_OK(cudaStreamDestroy(s));
  EMU_OK(cudaFree(d));
}

TEST_CASE("emulator: device memory is capped, sized exactly and checked on copies") {
  const size_t before = cuda_emu::memory_limit();
  cuda_emu::set_memory_limit(cuda_emu::memory_in_use() + (1 << 20));
  void* p = nullptr;
  EMU_OK(cudaMalloc(&p, 1000));
  void* q = nullptr;
  CHECK(cudaMalloc(&q, 1 << 20) == cudaErrorMemoryAllocation);
  CHECK(std::string(cudaGetErrorString(cudaErrorMemoryAllocation)).find("in use") !=
        std::string::npos);
  CHECK(q == nullptr);
  // A copy that runs past the allocation's 1000 bytes is refused.
  std::vector<char> h(1001);
  CHECK(cudaMemcpy(p, h.data(), 1001, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
  EMU_OK(cudaMemcpy(p, h.data(), 1000, cudaMemcpyHostToDevice));
  CHECK(cudaMemset(static_cast<char*>(p) + 1, 0, 1000) == cudaErrorInvalidValue);
  EMU_OK(cudaFree(p));
  CHECK(cudaFree(p) == cudaErrorInvalidValue);  // twice
  cuda_emu::set_memory_limit(before);
  (void)cudaGetLastError();
}

TEST_CASE("emulator: under AddressSanitizer a device block is exactly the size asked for") {
#if defined(__SANITIZE_ADDRESS__)
  nabla::DeviceBackend* b = nabla::cuda_backend();
  REQUIRE(b != nullptr);
  // The caching allocator's block is a 1024-byte class; past the 1000 bytes it is poisoned,
  // and once freed (cached for reuse) all of it is.
  char* p = static_cast<char*>(b->allocate(1000, 0));
  EMU_OK(cudaDeviceSynchronize());  // the marks are queued in stream order
  CHECK_FALSE(__asan_address_is_poisoned(p));
  CHECK_FALSE(__asan_address_is_poisoned(p + 999));
  CHECK(__asan_address_is_poisoned(p + 1000));
  CHECK(__asan_address_is_poisoned(p + 1023));
  b->deallocate(p, 1000, 0);
  EMU_OK(cudaDeviceSynchronize());
  CHECK(__asan_address_is_poisoned(p));
  char* q = static_cast<char*>(b->allocate(1020, 0));  // the same class: the cached block
  EMU_OK(cudaDeviceSynchronize());
  CHECK(q == p);
  CHECK_FALSE(__asan_address_is_poisoned(q + 1019));
  CHECK(__asan_address_is_poisoned(q + 1020));
  b->deallocate(q, 1020, 0);
#else
  MESSAGE("skipped: this build has no AddressSanitizer (NABLA_CUDA_EMU_SANITIZE=ON has)");
#endif
}
