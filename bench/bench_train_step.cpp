// End-to-end training steps of the nets, the workloads of bench/compare_pytorch.py.
//
//   BM_fashioncnn_train_step   FashionCNN, batch 64, random data: forward, cross-entropy,
//                              backward, SGD (momentum 0.9) step; items = images
//   BM_fashioncnn_forward      the forward and the loss only (no autograd recording)
//   BM_fashioncnn_forward_backward  forward, loss and backward, no optimizer step
// Threads: OpenMP's (OMP_NUM_THREADS); compare_pytorch.py sets the same count for PyTorch.
#include <benchmark/benchmark.h>

#include <nabla/nabla.h>
#include <nabla/optim/optimizer.h>
#include <nets/classifier.h>

using namespace nabla;

namespace {

constexpr int64_t kBatch = 64;

struct Setup {
  Generator gen{0};
  nets::FashionCNN net{&gen};
  Tensor x = rand({kBatch, 1, 28, 28}, DType::Float32, Device::cpu(), &gen);
  Tensor y = randint(0, 10, {kBatch}, &gen);
};

void BM_fashioncnn_train_step(benchmark::State& state) {
  Setup s;
  optim::SGD opt(s.net.parameters(), {.lr = 0.01, .momentum = 0.9});
  for (auto _ : state) {
    Tensor loss = cross_entropy(s.net(s.x), s.y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_fashioncnn_train_step)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_fashioncnn_forward(benchmark::State& state) {
  Setup s;
  NoGradGuard ng;
  for (auto _ : state) {
    Tensor loss = cross_entropy(s.net(s.x), s.y);
    benchmark::DoNotOptimize(loss.item<float>());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_fashioncnn_forward)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_fashioncnn_forward_backward(benchmark::State& state) {
  Setup s;
  for (auto _ : state) {
    Tensor loss = cross_entropy(s.net(s.x), s.y);
    s.net.zero_grad();
    loss.backward();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_fashioncnn_forward_backward)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
