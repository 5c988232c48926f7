// Memory-bound GPU kernels in GB/s: batch norm forward (training) and backward (the two passes
// of the training dx plus dw and db), the L-inf attack step and the three passes of the L2
// step (kernels/cuda/norm.cu, attack.cu), each beside a device-to-device cudaMemcpy of the same
// tensor size, which is the bandwidth ceiling to compare them with.
//
// Shapes: the activations of FashionCNN at batch 64 ([64,32,28,28], [64,64,14,14]) and of a
// 64x64 U-Net at batch 8 ([8,64,64,64], [8,128,32,32], [8,256,16,16], [8,512,8,8]); the attack
// steps also on the two nets' inputs ([64,1,28,28], [8,3,64,64]). float32.
//
// Bytes counted (n elements of 4 bytes; per-channel and per-sample vectors left out):
//   batchnorm forward    3n: the statistics pass reads x, the affine pass reads x, writes y
//   batchnorm backward   5n: the reduce pass reads x and dy, the dx pass reads x, dy, writes dx
//   attack L-inf         4n: reads x, g, x0, writes y
//   attack L2            8n: norms read g; delta reads x, g, x0, writes u; project reads u, x0,
//                        writes y
//   memcpy               2n: reads and writes n
// GB/s = bytes / time (SetBytesProcessed with the event time). Timing: CUDA events around
// `reps` back-to-back calls after a warm-up call, time per call to SetIterationTime
// (UseManualTime). Compare the figures within one run. Without a GPU (or without the CUDA
// build) nothing is registered and one line says so.
#include <benchmark/benchmark.h>

#include "cuda_timing.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nabla/nabla.h>

#include "kernels/attack.h"
#include "kernels/norm.h"

#ifdef NABLA_HAVE_CUDA
#include <cuda_runtime.h>

namespace {

using nabla::Device;
using nabla::DType;
using nabla::Shape;
using nabla::Tensor;

struct Activation {
  const char* name;
  Shape shape;       // [N, C, H, W]
  bool attack_only;  // a net input: attack steps only (batch norm never sees it)
};

const Activation kActivations[] = {
    {"fashion_input", {64, 1, 28, 28}, true},   {"fashion_conv1", {64, 32, 28, 28}, false},
    {"fashion_conv2", {64, 64, 14, 14}, false}, {"unet_input", {8, 3, 64, 64}, true},
    {"unet_64x64", {8, 64, 64, 64}, false},     {"unet_32x32", {8, 128, 32, 32}, false},
    {"unet_16x16", {8, 256, 16, 16}, false},    {"unet_8x8", {8, 512, 8, 8}, false},
};

enum class Kind { kMemcpy, kBatchNormForward, kBatchNormBackward, kAttackLinf, kAttackL2 };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kMemcpy:
      return "memcpy_d2d";
    case Kind::kBatchNormForward:
      return "batchnorm_fwd";
    case Kind::kBatchNormBackward:
      return "batchnorm_bwd";
    case Kind::kAttackLinf:
      return "attack_linf";
    case Kind::kAttackL2:
      return "attack_l2";
  }
  return "?";
}

// Tensor-sized passes of each kind (see the header).
double passes(Kind k) {
  switch (k) {
    case Kind::kMemcpy:
      return 2;
    case Kind::kBatchNormForward:
      return 3;
    case Kind::kBatchNormBackward:
      return 5;
    case Kind::kAttackLinf:
      return 4;
    case Kind::kAttackL2:
      return 8;
  }
  return 0;
}

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Device tensors for every kind; random data, x0 near x so that the attack steps project.
struct Buffers {
  Tensor x, y, dy, dx, x0, g, w, b, mean, invstd, gsq, dsq, sdy, sdyx, dw, db;
};

Buffers make_buffers(const Shape& s) {
  const Device gd = Device::cuda(0), c = Device::cpu();
  const int64_t C = s[1], N = s[0];
  nabla::Generator gen(3);
  Buffers o;
  o.x = nabla::rand(s, DType::Float32, c, &gen).to(gd);
  o.x0 = nabla::rand(s, DType::Float32, c, &gen).to(gd);
  o.g = nabla::randn(s, DType::Float32, c, &gen).to(gd);
  o.dy = nabla::randn(s, DType::Float32, c, &gen).to(gd);
  o.y = nabla::empty(s, DType::Float32, gd);
  o.dx = nabla::empty(s, DType::Float32, gd);
  o.w = nabla::ones({C}, DType::Float32, gd);
  o.b = nabla::zeros({C}, DType::Float32, gd);
  o.mean = nabla::empty({C}, DType::Float32, gd);
  o.invstd = nabla::empty({C}, DType::Float32, gd);
  o.dw = nabla::empty({C}, DType::Float32, gd);
  o.db = nabla::empty({C}, DType::Float32, gd);
  o.sdy = nabla::empty({C}, DType::Float64, gd);
  o.sdyx = nabla::empty({C}, DType::Float64, gd);
  o.gsq = nabla::empty({N}, DType::Float64, gd);
  o.dsq = nabla::empty({N}, DType::Float64, gd);
  return o;
}

void bm(benchmark::State& state, Activation a, Kind kind) {
  Buffers o = make_buffers(a.shape);
  const Shape& s = a.shape;
  const int64_t n = numel(s), N = s[0], D = n / N;
  const nabla::NormGroups groups{s[0], s[1], s[2] * s[3], s[1]};
  float* x = o.x.data<float>();
  float* y = o.y.data<float>();
  auto call = [&] {
    switch (kind) {
      case Kind::kMemcpy:
        cudaMemcpyAsync(y, x, size_t(n) * sizeof(float), cudaMemcpyDeviceToDevice, nullptr);
        break;
      case Kind::kBatchNormForward:
        nabla::cuda::norm_forward_train<float>(groups, x, o.w.data<float>(), o.b.data<float>(),
                                               1e-5, 0.1, y, o.mean.data<float>(),
                                               o.invstd.data<float>(), nullptr, nullptr);
        break;
      case Kind::kBatchNormBackward:
        nabla::cuda::norm_backward_reduce<float>(groups, x, o.mean.data<float>(),
                                                 o.invstd.data<float>(), o.dy.data<float>(),
                                                 o.sdy.data<double>(), o.sdyx.data<double>());
        nabla::cuda::norm_backward_input<float>(
            groups, x, o.mean.data<float>(), o.invstd.data<float>(), o.w.data<float>(),
            o.dy.data<float>(), o.sdy.data<double>(), o.sdyx.data<double>(), o.dx.data<float>());
        nabla::cuda::norm_backward_weight<float>(groups, o.sdy.data<double>(),
                                                 o.sdyx.data<double>(), o.dw.data<float>(),
                                                 o.db.data<float>());
        break;
      case Kind::kAttackLinf:
        nabla::cuda::attack_step_linf<float>(x, o.g.data<float>(), o.x0.data<float>(), y, n,
                                             2.f / 255, 8.f / 255, 0.f, 1.f);
        break;
      case Kind::kAttackL2:
        nabla::cuda::attack_l2_sq_norms<float>(o.g.data<float>(), o.gsq.data<double>(), N, D);
        nabla::cuda::attack_step_l2_delta<float>(x, o.g.data<float>(), o.x0.data<float>(),
                                                 o.gsq.data<double>(), 0.5, y, o.dsq.data<double>(),
                                                 N, D);
        nabla::cuda::attack_step_l2_project<float>(o.x0.data<float>(), o.dsq.data<double>(), 1.0,
                                                   0.f, 1.f, y, N, D);
        break;
    }
  };
  // The backward reads the mean and invstd of a forward.
  if (kind == Kind::kBatchNormBackward)
    nabla::cuda::norm_forward_train<float>(groups, x, nullptr, nullptr, 1e-5, 0.1, y,
                                           o.mean.data<float>(), o.invstd.data<float>(), nullptr,
                                           nullptr);
  const double bytes = passes(kind) * double(n) * sizeof(float);
  // About 4 GB moved between two events: at least one call, at most 200.
  const int reps = nabla::bench::reps_for(bytes, 4e9, 200);
  if (nabla::bench::time_with_events(state, reps, call)) {
    const double iters = double(state.iterations());
    state.SetBytesProcessed(int64_t(iters * bytes));
    state.SetItemsProcessed(int64_t(iters * double(n)));
    state.counters["GB/s"] = benchmark::Counter(iters * bytes * 1e-9, benchmark::Counter::kIsRate);
    state.SetLabel(nabla::shape_str(s) + " float32, " + std::to_string(int(passes(kind))) + " x " +
                   std::to_string(n * 4) + " bytes");
  }
}

void register_all() {
  for (const Activation& a : kActivations) {
    std::vector<Kind> kinds = {Kind::kMemcpy, Kind::kAttackLinf, Kind::kAttackL2};
    if (!a.attack_only) {
      kinds.push_back(Kind::kBatchNormForward);
      kinds.push_back(Kind::kBatchNormBackward);
    }
    for (Kind k : kinds)
      benchmark::RegisterBenchmark((std::string(kind_name(k)) + "/" + a.name).c_str(), bm, a, k)
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace
#endif  // NABLA_HAVE_CUDA

int main(int argc, char** argv) {
#ifdef NABLA_HAVE_CUDA
  if (nabla::cuda_available())
    register_all();
  else
    std::printf("bench_cuda_memory: no CUDA GPU on this machine, nothing to run\n");
#else
  std::printf("bench_cuda_memory: nabla was built without the CUDA backend, nothing to run\n");
#endif
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
