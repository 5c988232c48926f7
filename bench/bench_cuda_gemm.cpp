// GPU GEMM benchmark: nabla::cuda::gemm<float> (kernels/cuda/gemm.cu) against cublasSgemm
// with CUBLAS_DEFAULT_MATH (plain FP32: no TF32 tensor cores), row-major, on square problems
// and on the GEMMs of the FashionCNN linear layers (the conv-as-GEMM shapes are in
// bench_cuda_conv):
//
//   square_1024   1024^3
//   square_4096   4096^3
//   fc1_fwd       Y = X W^T:     M=64  N=128   K=3136  (trans_b)
//   fc1_dW        dW = dY^T X:   M=128 N=3136  K=64    (trans_a)
//   fc1_dX        dX = dY W:     M=64  N=3136  K=128
//   fc2_fwd       Y = X W^T:     M=64  N=10    K=128   (trans_b)
//   fc2_dW        dW = dY^T X:   M=10  N=128   K=64    (trans_a)
//   fc2_dX        dX = dY W:     M=64  N=128   K=10
//
// Timing: CUDA events around `reps` back-to-back launches after one warm-up launch, so that the
// small layer GEMMs are not measured at the event resolution; the time per GEMM goes to
// state.SetIterationTime (UseManualTime). Counters: GFLOP/s (2 M N K per GEMM), bytes (A, B and
// C once each per GEMM) and items (flops). Compare ours and cuBLAS within one run. Without a GPU
// (or without the CUDA build) nothing is registered and one line says so.
#include <benchmark/benchmark.h>

#include "cuda_timing.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nabla/nabla.h>

#include "kernels/gemm.h"

#ifdef NABLA_HAVE_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace {

struct GemmShape {
  const char* name;
  bool ta, tb;
  int64_t M, N, K;
};

const GemmShape kShapes[] = {
    {"square_1024", false, false, 1024, 1024, 1024},
    {"square_4096", false, false, 4096, 4096, 4096},
    {"fc1_fwd", false, true, 64, 128, 3136},
    {"fc1_dW", true, false, 128, 3136, 64},
    {"fc1_dX", false, false, 64, 3136, 128},
    {"fc2_fwd", false, true, 64, 10, 128},
    {"fc2_dW", true, false, 10, 128, 64},
    {"fc2_dX", false, false, 64, 128, 10},
};

// Device operands of one shape: A, B random in [-1, 1), C the output (beta = 0).
struct Operands {
  nabla::Tensor a, b, c;
  int64_t lda, ldb, ldc;
};

Operands make_operands(const GemmShape& s) {
  nabla::Generator gen(42);
  const nabla::Device g = nabla::Device::cuda(0);
  Operands o;
  o.a = nabla::rand({s.ta ? s.K : s.M, s.ta ? s.M : s.K}, nabla::DType::Float32,
                    nabla::Device::cpu(), &gen, -1, 1)
            .to(g);
  o.b = nabla::rand({s.tb ? s.N : s.K, s.tb ? s.K : s.N}, nabla::DType::Float32,
                    nabla::Device::cpu(), &gen, -1, 1)
            .to(g);
  o.c = nabla::zeros({s.M, s.N}, nabla::DType::Float32, g);
  o.lda = s.ta ? s.M : s.K;
  o.ldb = s.tb ? s.K : s.N;
  o.ldc = s.N;
  return o;
}

// Times `launch` (one GEMM on the legacy default stream) with CUDA events and sets the counters.
template <typename Launch>
void time_gemm(benchmark::State& state, const GemmShape& s, Launch&& launch) {
  const double flops = 2.0 * double(s.M) * double(s.N) * double(s.K);
  // About 2 GFLOP between two events, at least one launch and at most 100.
  const int reps = nabla::bench::reps_for(flops, 2e9, 100);
  if (!nabla::bench::time_with_events(state, reps, launch)) return;
  const double iters = double(state.iterations());
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9 * iters, benchmark::Counter::kIsRate);
  state.SetBytesProcessed(int64_t(iters * 4.0 * double(s.M * s.K + s.K * s.N + s.M * s.N)));
  state.SetItemsProcessed(int64_t(iters * flops));
  state.SetLabel(std::string(s.ta ? "A^T " : "A ") + (s.tb ? "B^T " : "B ") + std::to_string(s.M) +
                 "x" + std::to_string(s.N) + "x" + std::to_string(s.K));
}

void bm_ours(benchmark::State& state, GemmShape s) {
  Operands o = make_operands(s);
  time_gemm(state, s, [&] {
    nabla::cuda::gemm<float>(s.ta, s.tb, s.M, s.N, s.K, 1.f, o.a.data<float>(), o.lda,
                             o.b.data<float>(), o.ldb, 0.f, o.c.data<float>(), o.ldc);
  });
}

// Row-major C = op(A) op(B) as column-major C^T = op(B)^T op(A)^T (see test_cuda_gemm.cpp).
void bm_cublas(benchmark::State& state, GemmShape s) {
  Operands o = make_operands(s);
  cublasHandle_t h = nullptr;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) {
    state.SkipWithError("cublasCreate failed");
    return;
  }
  cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);  // FP32 on the CUDA cores, TF32 off
  const float alpha = 1.f, beta = 0.f;
  cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
  time_gemm(state, s, [&] {
    const cublasStatus_t st =
        cublasSgemm(h, s.tb ? CUBLAS_OP_T : CUBLAS_OP_N, s.ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(s.N),
                    int(s.M), int(s.K), &alpha, o.b.data<float>(), int(o.ldb), o.a.data<float>(),
                    int(o.lda), &beta, o.c.data<float>(), int(o.ldc));
    if (st != CUBLAS_STATUS_SUCCESS) status = st;
  });
  if (status != CUBLAS_STATUS_SUCCESS) state.SkipWithError("cublasSgemm failed");
  cublasDestroy(h);
}

void register_all() {
  // Ours and cuBLAS side by side for each shape.
  for (const GemmShape& s : kShapes) {
    benchmark::RegisterBenchmark((std::string("ours/") + s.name).c_str(), bm_ours, s)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string("cublas/") + s.name).c_str(), bm_cublas, s)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace
#endif

int main(int argc, char** argv) {
#ifdef NABLA_HAVE_CUDA
  if (nabla::cuda_available())
    register_all();
  else
    std::printf("bench_cuda_gemm: no CUDA GPU on this machine, nothing to run\n");
#else
  std::printf(
      "bench_cuda_gemm: nabla was built without the CUDA backend, "
      "nothing to run\n");
#endif
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
