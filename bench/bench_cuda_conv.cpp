// GPU conv2d benchmark: nabla::cuda::conv2d_* (kernels/cuda/conv.cu, implicit GEMM) against
// cuDNN (float, NCHW, CUDNN_FMA_MATH: plain FP32, no TF32 tensor cores, so both sides do the
// same arithmetic), forward, backward-data and backward-filter, on the layers of the nets:
//
//   FashionCNN, batch 64, 3x3 pad 1:   1->32 at 28x28, 32->64 at 14x14
//   U-Net 64x64, batch 8, 3x3 pad 1:   3->64 and 64->64 at 64x64, 128->128 at 32x32,
//                                      256->256 at 16x16, 512->512 at 8x8
//   DCGAN 32x32, batch 64, 4x4 s2 p1:  discriminator 3->64 at 32x32, 64->128 at 16x16,
//                                      128->256 at 8x8; generator (transposed) 256->128 4x4->8x8,
//                                      128->64 8x8->16x16, 64->3 16x16->32x32
//
// A transposed conv is benchmarked as the conv it is built from (engine/ops/conv.cpp): its
// forward is that conv's backward-data, its backward-data that conv's forward, its
// backward-filter that conv's backward-filter. Benchmark names say the transposed pass and
// the kernel that runs it, e.g. ours/dcgan_G1_tconv_256-128_4-8/tforward=bwd_data.
//
// cuDNN runs the fastest algorithm cudnnFind* reports among those without tensor cores.
// "ours_det" is our backward-filter in deterministic mode (fixed-order split reduction instead
// of atomics). Timing: CUDA events around `reps` back-to-back launches after a warm-up launch
// (reps chosen so that one timed batch is about 2 GFLOP), the time per pass goes to
// SetIterationTime (UseManualTime). Counters: GFLOP/s (2 N K P Q C/g R S per pass), bytes
// (every tensor the pass reads or writes, once) and items (flops). Compare within one run.
// Without a GPU (or without the CUDA build) nothing is registered and one line says so.
#include <benchmark/benchmark.h>

#include "cuda_timing.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nabla/nabla.h>

#include "kernels/conv.h"

#ifdef NABLA_HAVE_CUDA
#include <cuda_runtime.h>
#ifdef NABLA_HAVE_CUDNN
// cuDNN 9 marks the legacy convolution API deprecated; it is still the simplest baseline.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <cudnn.h>
#endif

namespace {

using nabla::Conv2dParams;

struct Layer {
  const char* name;
  int64_t N, C, H, K, RS, stride, pad;  // square images and kernels
  bool transposed;  // a generator layer: benchmarked as the conv it is built from
};

// For transposed layers, C and H describe the transposed conv's OUTPUT (the conv's input).
const Layer kLayers[] = {
    {"fashion_conv1_1-32_28", 64, 1, 28, 32, 3, 1, 1, false},
    {"fashion_conv2_32-64_14", 64, 32, 14, 64, 3, 1, 1, false},
    {"unet_3-64_64", 8, 3, 64, 64, 3, 1, 1, false},
    {"unet_64-64_64", 8, 64, 64, 64, 3, 1, 1, false},
    {"unet_128-128_32", 8, 128, 32, 128, 3, 1, 1, false},
    {"unet_256-256_16", 8, 256, 16, 256, 3, 1, 1, false},
    {"unet_512-512_8", 8, 512, 8, 512, 3, 1, 1, false},
    {"dcgan_D1_3-64_32", 64, 3, 32, 64, 4, 2, 1, false},
    {"dcgan_D2_64-128_16", 64, 64, 16, 128, 4, 2, 1, false},
    {"dcgan_D3_128-256_8", 64, 128, 8, 256, 4, 2, 1, false},
    // generator: x [64, 256, 4, 4] -> [64, 128, 8, 8] is the conv 128 -> 256 at 8x8, s2 p1
    {"dcgan_G1_tconv_256-128_4-8", 64, 128, 8, 256, 4, 2, 1, true},
    {"dcgan_G2_tconv_128-64_8-16", 64, 64, 16, 128, 4, 2, 1, true},
    {"dcgan_G3_tconv_64-3_16-32", 64, 3, 32, 64, 4, 2, 1, true},
};

enum class Pass { kForward, kBackwardData, kBackwardFilter };

const char* pass_name(Pass p, bool transposed) {
  switch (p) {
    case Pass::kForward:
      return transposed ? "tbackward_data=fwd" : "fwd";
    case Pass::kBackwardData:
      return transposed ? "tforward=bwd_data" : "bwd_data";
    case Pass::kBackwardFilter:
      return transposed ? "tbackward_filter=bwd_filter" : "bwd_filter";
  }
  return "?";
}

Conv2dParams params_of(const Layer& l) {
  Conv2dParams p;
  p.N = l.N, p.C = l.C, p.H = p.W = l.H, p.K = l.K, p.R = p.S = l.RS;
  p.stride_h = p.stride_w = l.stride, p.pad_h = p.pad_w = l.pad;
  p.finalize();
  return p;
}

// Device tensors of one layer, random in [-1, 1).
struct Operands {
  Conv2dParams p;
  nabla::Tensor x, w, y, dy, dx, dw;
};

Operands make_operands(const Layer& l) {
  Operands o;
  o.p = params_of(l);
  const Conv2dParams& p = o.p;
  nabla::Generator gen(42);
  const nabla::Device g = nabla::Device::cuda(0), c = nabla::Device::cpu();
  const auto f32 = nabla::DType::Float32;
  o.x = nabla::rand({p.N, p.C, p.H, p.W}, f32, c, &gen, -1, 1).to(g);
  o.w = nabla::rand({p.K, p.C / p.groups, p.R, p.S}, f32, c, &gen, -1, 1).to(g);
  o.dy = nabla::rand({p.N, p.K, p.P, p.Q}, f32, c, &gen, -1, 1).to(g);
  o.y = nabla::zeros({p.N, p.K, p.P, p.Q}, f32, g);
  o.dx = nabla::zeros({p.N, p.C, p.H, p.W}, f32, g);
  o.dw = nabla::zeros({p.K, p.C / p.groups, p.R, p.S}, f32, g);
  return o;
}

double flops_of(const Conv2dParams& p) {
  return 2.0 * double(p.N) * double(p.K) * double(p.P) * double(p.Q) * double(p.C / p.groups) *
         double(p.R) * double(p.S);
}

// Bytes a pass must move at least: its two inputs and its output, once each.
double bytes_of(const Conv2dParams& p, Pass pass) {
  const double x = double(p.N * p.C * p.H * p.W), w = double(p.K * (p.C / p.groups) * p.R * p.S),
               y = double(p.N * p.K * p.P * p.Q);
  switch (pass) {
    case Pass::kForward:
      return 4.0 * (x + w + y);
    case Pass::kBackwardData:
      return 4.0 * (y + w + x);
    case Pass::kBackwardFilter:
      return 4.0 * (x + y + 2 * w);  // dw is read and written (+=)
  }
  return 0;
}

// Times `launch` (one pass, on the legacy default stream) with CUDA events; sets the counters.
template <typename Launch>
void time_pass(benchmark::State& state, const Layer& l, const Conv2dParams& p, Pass pass,
               Launch&& launch) {
  const double flops = flops_of(p);
  // About 2 GFLOP between two events: at least one launch, at most 100.
  const int reps = nabla::bench::reps_for(flops, 2e9, 100);
  if (!nabla::bench::time_with_events(state, reps, launch)) return;
  const double iters = double(state.iterations());
  // kIsRate with UseManualTime divides by the event-measured time.
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9 * iters, benchmark::Counter::kIsRate);
  state.SetBytesProcessed(int64_t(iters * bytes_of(p, pass)));
  state.SetItemsProcessed(int64_t(iters * flops));
  state.SetLabel(std::string("x [") + std::to_string(p.N) + "," + std::to_string(p.C) + "," +
                 std::to_string(p.H) + "," + std::to_string(p.W) + "] w [" + std::to_string(p.K) +
                 "," + std::to_string(p.C / p.groups) + "," + std::to_string(p.R) + "," +
                 std::to_string(p.S) + "] s" + std::to_string(p.stride_h) +
                 (l.transposed ? " (transposed layer)" : ""));
}

void bm_ours(benchmark::State& state, Layer l, Pass pass, bool deterministic) {
  Operands o = make_operands(l);
  const Conv2dParams& p = o.p;
  const bool prev = nabla::deterministic();
  nabla::set_deterministic(deterministic);
  time_pass(state, l, p, pass, [&] {
    switch (pass) {
      case Pass::kForward:
        nabla::cuda::conv2d_forward<float>(p, o.x.data<float>(), o.w.data<float>(), nullptr,
                                           o.y.data<float>());
        break;
      case Pass::kBackwardData:
        nabla::cuda::conv2d_backward_input<float>(p, o.dy.data<float>(), o.w.data<float>(),
                                                  o.dx.data<float>());
        break;
      case Pass::kBackwardFilter:
        nabla::cuda::conv2d_backward_weight<float>(p, o.x.data<float>(), o.dy.data<float>(),
                                                   o.dw.data<float>(), nullptr);
        break;
    }
  });
  nabla::set_deterministic(prev);
}

#ifdef NABLA_HAVE_CUDNN

bool cudnn_ok(benchmark::State& state, cudnnStatus_t s, const char* what) {
  if (s == CUDNN_STATUS_SUCCESS) return true;
  state.SkipWithError((std::string(what) + ": " + cudnnGetErrorString(s)).c_str());
  return false;
}

bool tensor_op(cudnnMathType_t m) {
  return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// The fastest measured algorithm that runs without tensor cores; false if there is none.
template <typename Perf, typename Algo>
bool fastest(const Perf* perf, int count, Algo* algo, size_t* bytes) {
  for (int i = 0; i < count; ++i)  // cudnnFind* sorts by time
    if (perf[i].status == CUDNN_STATUS_SUCCESS && !tensor_op(perf[i].mathType)) {
      *algo = perf[i].algo;
      *bytes = perf[i].memory;
      return true;
    }
  return false;
}

void bm_cudnn(benchmark::State& state, Layer l, Pass pass) {
  Operands o = make_operands(l);
  const Conv2dParams& p = o.p;
  cudnnHandle_t h = nullptr;
  cudnnTensorDescriptor_t xd = nullptr, yd = nullptr;
  cudnnFilterDescriptor_t wd = nullptr;
  cudnnConvolutionDescriptor_t cd = nullptr;
  const bool ok =
      cudnn_ok(state, cudnnCreate(&h), "cudnnCreate") &&
      cudnn_ok(state, cudnnCreateTensorDescriptor(&xd), "descriptor") &&
      cudnn_ok(state, cudnnCreateTensorDescriptor(&yd), "descriptor") &&
      cudnn_ok(state, cudnnCreateFilterDescriptor(&wd), "descriptor") &&
      cudnn_ok(state, cudnnCreateConvolutionDescriptor(&cd), "descriptor") &&
      cudnn_ok(state,
               cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(p.N),
                                          int(p.C), int(p.H), int(p.W)),
               "x descriptor") &&
      cudnn_ok(state,
               cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(p.N),
                                          int(p.K), int(p.P), int(p.Q)),
               "y descriptor") &&
      cudnn_ok(state,
               cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, int(p.K),
                                          int(p.C / p.groups), int(p.R), int(p.S)),
               "w descriptor") &&
      cudnn_ok(state,
               cudnnSetConvolution2dDescriptor(cd, int(p.pad_h), int(p.pad_w), int(p.stride_h),
                                               int(p.stride_w), int(p.dil_h), int(p.dil_w),
                                               CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
               "conv descriptor") &&
      cudnn_ok(state, cudnnSetConvolutionGroupCount(cd, int(p.groups)), "group count") &&
      cudnn_ok(state, cudnnSetConvolutionMathType(cd, CUDNN_FMA_MATH), "math type");
  if (ok) {
    const float one = 1.f, zero = 0.f;
    int count = 0;
    size_t bytes = 0;
    bool found = false;
    cudnnConvolutionFwdAlgo_t fwd_algo{};
    cudnnConvolutionBwdDataAlgo_t data_algo{};
    cudnnConvolutionBwdFilterAlgo_t filter_algo{};
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    if (pass == Pass::kForward) {
      cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      st = cudnnFindConvolutionForwardAlgorithm(h, xd, wd, cd, yd, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                &count, perf);
      found = st == CUDNN_STATUS_SUCCESS && fastest(perf, count, &fwd_algo, &bytes);
    } else if (pass == Pass::kBackwardData) {
      cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      st = cudnnFindConvolutionBackwardDataAlgorithm(
          h, wd, yd, cd, xd, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf);
      found = st == CUDNN_STATUS_SUCCESS && fastest(perf, count, &data_algo, &bytes);
    } else {
      cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      st = cudnnFindConvolutionBackwardFilterAlgorithm(
          h, xd, yd, cd, wd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf);
      found = st == CUDNN_STATUS_SUCCESS && fastest(perf, count, &filter_algo, &bytes);
    }
    if (!found) {
      state.SkipWithError("cuDNN found no FMA-math algorithm for this layer");
    } else {
      const nabla::Tensor ws = nabla::empty({int64_t(bytes / sizeof(float)) + 1},
                                            nabla::DType::Float32, nabla::Device::cuda(0));
      cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
      time_pass(state, l, p, pass, [&] {
        cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
        switch (pass) {
          case Pass::kForward:
            s = cudnnConvolutionForward(h, &one, xd, o.x.data<float>(), wd, o.w.data<float>(), cd,
                                        fwd_algo, ws.data<float>(), bytes, &zero, yd,
                                        o.y.data<float>());
            break;
          case Pass::kBackwardData:
            s = cudnnConvolutionBackwardData(h, &one, wd, o.w.data<float>(), yd, o.dy.data<float>(),
                                             cd, data_algo, ws.data<float>(), bytes, &zero, xd,
                                             o.dx.data<float>());
            break;
          case Pass::kBackwardFilter:
            // beta = 1: accumulate, like ours
            s = cudnnConvolutionBackwardFilter(
                h, &one, xd, o.x.data<float>(), yd, o.dy.data<float>(), cd, filter_algo,
                ws.data<float>(), bytes, &one, wd, o.dw.data<float>());
            break;
        }
        if (s != CUDNN_STATUS_SUCCESS) status = s;
      });
      if (status != CUDNN_STATUS_SUCCESS) state.SkipWithError(cudnnGetErrorString(status));
    }
  }
  if (cd) cudnnDestroyConvolutionDescriptor(cd);
  if (wd) cudnnDestroyFilterDescriptor(wd);
  if (yd) cudnnDestroyTensorDescriptor(yd);
  if (xd) cudnnDestroyTensorDescriptor(xd);
  if (h) cudnnDestroy(h);
}

#endif  // NABLA_HAVE_CUDNN

void register_all() {
  // For each layer and pass: ours, ours in deterministic mode (backward-filter only: the other
  // passes have no atomics to avoid), and cuDNN, side by side.
  for (const Layer& l : kLayers)
    for (const Pass pass : {Pass::kForward, Pass::kBackwardData, Pass::kBackwardFilter}) {
      const std::string suffix = std::string("/") + l.name + "/" + pass_name(pass, l.transposed);
      benchmark::RegisterBenchmark(("ours" + suffix).c_str(), bm_ours, l, pass, false)
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
      if (pass == Pass::kBackwardFilter)
        benchmark::RegisterBenchmark(("ours_det" + suffix).c_str(), bm_ours, l, pass, true)
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
#ifdef NABLA_HAVE_CUDNN
      benchmark::RegisterBenchmark(("cudnn" + suffix).c_str(), bm_cudnn, l, pass)
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
#endif
    }
}

}  // namespace
#endif  // NABLA_HAVE_CUDA

int main(int argc, char** argv) {
#ifdef NABLA_HAVE_CUDA
  if (nabla::cuda_available())
    register_all();
  else
    std::printf("bench_cuda_conv: no CUDA GPU on this machine, nothing to run\n");
#ifndef NABLA_HAVE_CUDNN
  std::printf("bench_cuda_conv: built without cuDNN, only our kernels run\n");
#endif
#else
  std::printf("bench_cuda_conv: nabla was built without the CUDA backend, nothing to run\n");
#endif
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
