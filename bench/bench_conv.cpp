// CPU conv2d benchmark: forward, backward-input and backward-weight (float) at the
// FashionCNN layer shapes with batch 64, on 1 and 2 OpenMP threads.
//
//   conv1: x [64, 1, 28, 28],  w [32, 1, 3, 3],  pad 1 -> y [64, 32, 28, 28]
//   conv2: x [64, 32, 14, 14], w [64, 32, 3, 3], pad 1 -> y [64, 64, 14, 14]
//
// Every pass does 2*N*K*P*Q*(C/g)*R*S flops (one multiply-add per tap); the GFLOP counter
// is that per second of wall time, so thread counts compare directly. Run:
//   bench_conv --benchmark_counters_tabular=true
// on an otherwise idle machine: when another process holds a core, the 2-thread runs wait at
// every barrier for a descheduled thread (libgomp spins, then sleeps) and can come out many
// times slower than 1 thread; OMP_WAIT_POLICY=passive softens that.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdint>
#include <vector>

#include "kernels/conv.h"

namespace {

using nabla::Conv2dParams;

struct Layer {
  const char* name;
  int64_t C, H, W, K;
};

constexpr int64_t kBatch = 64;
constexpr Layer kLayers[] = {
    {"conv1 1->32 28x28", 1, 28, 28, 32},
    {"conv2 32->64 14x14", 32, 14, 14, 64},
};

enum class Pass { kForward, kBackwardInput, kBackwardWeight };

// Deterministic values in [-1, 1): uninitialised buffers could hold denormals or NaN, which
// change the speed of FP arithmetic.
std::vector<float> values(int64_t n, int seed) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i)
    v[i] = static_cast<float>((i * 7919 + seed * 104729) % 2000) / 1000.f - 1.f;
  return v;
}

// state.range(0): index into kLayers; state.range(1): OpenMP threads.
template <Pass kPass>
void bm_conv2d(benchmark::State& state) {
  const Layer& l = kLayers[state.range(0)];
  omp_set_num_threads(static_cast<int>(state.range(1)));
  Conv2dParams p;
  p.N = kBatch, p.C = l.C, p.H = l.H, p.W = l.W, p.K = l.K, p.R = 3, p.S = 3;
  p.pad_h = p.pad_w = 1;
  p.finalize();
  const int64_t nx = p.N * p.C * p.H * p.W, nw = p.K * p.C * p.R * p.S, ny = p.N * p.K * p.P * p.Q;
  const auto x = values(nx, 1), w = values(nw, 2), b = values(p.K, 3), dy = values(ny, 4);
  std::vector<float> y(ny), dx(nx), dw(nw, 0.f), db(p.K, 0.f);

  for (auto _ : state) {
    if constexpr (kPass == Pass::kForward) {
      nabla::cpu::conv2d_forward(p, x.data(), w.data(), b.data(), y.data());
      benchmark::DoNotOptimize(y.data());
    } else if constexpr (kPass == Pass::kBackwardInput) {
      nabla::cpu::conv2d_backward_input(p, dy.data(), w.data(), dx.data());
      benchmark::DoNotOptimize(dx.data());
    } else {
      nabla::cpu::conv2d_backward_weight(p, x.data(), dy.data(), dw.data(), db.data());
      benchmark::DoNotOptimize(dw.data());
    }
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * p.N * p.K * p.P * p.Q * (p.C / p.groups) * p.R * p.S;
  // Shown as "GFLOP  <n>/s": kIsRate divides by the (real) time of all iterations.
  state.counters["GFLOP"] = benchmark::Counter(
      flops * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(l.name);
}

void layer_and_threads(benchmark::internal::Benchmark* b) {
  b->ArgNames({"layer", "threads"});
  for (int64_t layer = 0; layer < 2; ++layer)
    for (int64_t threads : {1, 2}) b->Args({layer, threads});
  // OpenMP threads do not show in the main thread's CPU time: rate against wall time.
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

void BM_conv2d_forward(benchmark::State& s) {
  bm_conv2d<Pass::kForward>(s);
}
void BM_conv2d_backward_input(benchmark::State& s) {
  bm_conv2d<Pass::kBackwardInput>(s);
}
void BM_conv2d_backward_weight(benchmark::State& s) {
  bm_conv2d<Pass::kBackwardWeight>(s);
}

}  // namespace

BENCHMARK(BM_conv2d_forward)->Apply(layer_and_threads);
BENCHMARK(BM_conv2d_backward_input)->Apply(layer_and_threads);
BENCHMARK(BM_conv2d_backward_weight)->Apply(layer_and_threads);

BENCHMARK_MAIN();
