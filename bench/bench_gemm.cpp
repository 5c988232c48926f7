// CPU GEMM benchmark: nabla::cpu::gemm against OpenBLAS cblas_sgemm, float,
// row-major, on square problems and on the GEMMs of the FashionCNN layers.
//
//   square      256^3, 1024^3
//   conv1       im2col per sample:   M=32  N=784     K=9
//   conv2       im2col per sample:   M=64  N=196     K=288
//   conv2_b64   batch 64 side by side: M=64 N=196*64 K=288
//   fc1_fwd     Y = X W^T:           M=64  N=128     K=3136  (trans_b)
//   fc2_fwd     Y = X W^T:           M=64  N=10      K=128   (trans_b)
//   fc1_dW      dW = dY^T X:         M=128 N=3136    K=64    (trans_a)
//   fc1_dX      dX = dY W:           M=64  N=3136    K=128
//
// The last argument of every benchmark is the thread count (1 or 2): ours gets
// omp_set_num_threads, OpenBLAS openblas_set_num_threads. Work is 2*M*N*K flops
// per iteration, reported as the rate counter GFLOP (that is, GFLOP/s, from wall
// time). Compare ratios within one run; absolute numbers move with machine load.
//
// OpenBLAS picks its kernels at run time from the CPU it recognises: 0.3.21 takes
// an AMD Zen 5 for Haswell (AVX2). OPENBLAS_CORETYPE=SkylakeX in the environment
// makes it use its AVX-512 kernels, the fairer baseline on such a machine.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/gemm.h"

#ifdef NABLA_HAVE_OPENBLAS
#include <cblas.h>
// Not every cblas.h declares it (the reference netlib header does not).
extern "C" void openblas_set_num_threads(int);
#endif

namespace {

struct Problem {
  bool ta, tb;
  int64_t M, N, K;
  std::vector<float> A, B, C;
  int64_t lda, ldb, ldc;
};

Problem make_problem(bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
  Problem p{ta, tb, M, N, K, {}, {}, {}, ta ? M : K, tb ? K : N, N};
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  p.A.resize(static_cast<std::size_t>(M * K));
  p.B.resize(static_cast<std::size_t>(K * N));
  p.C.resize(static_cast<std::size_t>(M * N));
  for (auto& x : p.A) x = dist(rng);
  for (auto& x : p.B) x = dist(rng);
  return p;
}

void set_flops(benchmark::State& state, const Problem& p) {
  state.counters["GFLOP"] = benchmark::Counter(
      2.0 * static_cast<double>(p.M) * static_cast<double>(p.N) * static_cast<double>(p.K) * 1e-9 *
          static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

// args: ta, tb, M, N, K, threads
void BM_nabla_sgemm(benchmark::State& state) {
  Problem p =
      make_problem(state.range(0), state.range(1), state.range(2), state.range(3), state.range(4));
  omp_set_num_threads(static_cast<int>(state.range(5)));
  for (auto _ : state) {
    nabla::cpu::gemm<float>(p.ta, p.tb, p.M, p.N, p.K, 1.0f, p.A.data(), p.lda, p.B.data(), p.ldb,
                            0.0f, p.C.data(), p.ldc);
    benchmark::DoNotOptimize(p.C.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, p);
}

#ifdef NABLA_HAVE_OPENBLAS
void BM_openblas_sgemm(benchmark::State& state) {
  Problem p =
      make_problem(state.range(0), state.range(1), state.range(2), state.range(3), state.range(4));
  openblas_set_num_threads(static_cast<int>(state.range(5)));
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, p.ta ? CblasTrans : CblasNoTrans, p.tb ? CblasTrans : CblasNoTrans,
                static_cast<int>(p.M), static_cast<int>(p.N), static_cast<int>(p.K), 1.0f,
                p.A.data(), static_cast<int>(p.lda), p.B.data(), static_cast<int>(p.ldb), 0.0f,
                p.C.data(), static_cast<int>(p.ldc));
    benchmark::DoNotOptimize(p.C.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, p);
}
#endif

// Every shape, for threads 1 and 2, named so ours and OpenBLAS sort side by side.
void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"ta", "tb", "M", "N", "K", "threads"});
  for (int64_t threads : {1, 2}) {
    b->Args({0, 0, 256, 256, 256, threads});
    b->Args({0, 0, 1024, 1024, 1024, threads});
    b->Args({0, 0, 32, 784, 9, threads});         // conv1 im2col, one sample
    b->Args({0, 0, 64, 196, 288, threads});       // conv2 im2col, one sample
    b->Args({0, 0, 64, 196 * 64, 288, threads});  // conv2, batch 64 side by side
    b->Args({0, 1, 64, 128, 3136, threads});      // fc1 forward
    b->Args({0, 1, 64, 10, 128, threads});        // fc2 forward
    b->Args({1, 0, 128, 3136, 64, threads});      // fc1 dW = dY^T X
    b->Args({0, 0, 64, 3136, 128, threads});      // fc1 dX = dY W
  }
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}

BENCHMARK(BM_nabla_sgemm)->Apply(shapes);
#ifdef NABLA_HAVE_OPENBLAS
BENCHMARK(BM_openblas_sgemm)->Apply(shapes);
#endif

}  // namespace

BENCHMARK_MAIN();
