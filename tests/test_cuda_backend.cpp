// The CUDA backend: device memory, copies in every direction, strided copies, fill and dtype
// conversion on the device, pinned memory, allocator statistics and out-of-memory errors.
// Without a GPU each case says so and passes; the error paths that need no GPU always run.
#include <cmath>

#include <nabla/nabla.h>
#include <nets/classifier.h>

#include "cuda_parity.h"
#include "gradcheck.h"

#ifdef NABLA_CUDA_EMU
#include <cuda_emu.h>
#endif

using namespace nabla;
using namespace nabla::test;

TEST_CASE("without a usable device, asking for one is a clear error") {
  if (cuda_available()) {
    check_error([] { zeros({2}, DType::Float32, Device::cuda(63)); }, {"cuda:63"});
    return;
  }
  check_error([] { zeros({2}, DType::Float32, Device::cuda(0)); }, {"cuda:0"});
  check_error([] { ones({3}).to(Device::cuda(0)); }, {"cuda:0"});
}

TEST_CASE("deterministic mode and debug fill are process-wide switches") {
  CHECK_FALSE(deterministic());
  set_deterministic(true);
  CHECK(deterministic());
  set_deterministic(false);
  set_debug_fill(true);
  CHECK(debug_fill());
  set_debug_fill(false);
}

TEST_CASE("check_parity restores debug fill when the function or a check in it throws") {
  if (!gpu_or_skip()) return;
  set_debug_fill(false);
  auto throws_on_gpu = [](const std::vector<Tensor>& v) -> std::vector<Tensor> {
    if (v[0].device().is_cuda()) throw Error("thrown on the GPU side");
    return {v[0]};
  };
  CHECK_THROWS_WITH_AS(check_parity("throws", throws_on_gpu, {ones({3})}), "thrown on the GPU side",
                       Error);
  CHECK_FALSE(debug_fill());
  // A setting made before is kept, not switched off.
  set_debug_fill(true);
  check_parity("identity", [](const std::vector<Tensor>& v) { return std::vector<Tensor>{v[0]}; },
               {ones({3})});
  CHECK(debug_fill());
  set_debug_fill(false);
}

TEST_CASE("host <-> device round trips keep every value and dtype") {
  if (!gpu_or_skip()) return;
  const Device g = Device::cuda(0);
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64}) {
    Tensor x = arange(-5, 1000, 1, dt);
    Tensor y = x.to(g);
    CHECK(y.device() == g);
    CHECK(y.dtype() == dt);
    check_close(y.to(Device::cpu()), x, 0, 0);
    check_close(y.clone().to(Device::cpu()), x, 0, 0);  // device -> device
  }
  Tensor empty_t = zeros({0, 3}).to(g);
  CHECK(empty_t.numel() == 0);
}

TEST_CASE("fill, full, zeros and dtype conversion run on the device") {
  if (!gpu_or_skip()) return;
  const Device g = Device::cuda(0);
  check_close(full({5}, 2.5, DType::Float32, g).to(Device::cpu()), {2.5, 2.5, 2.5, 2.5, 2.5});
  check_close(zeros({3}, DType::Int64, g).to(Device::cpu()), {0, 0, 0});
  Tensor x = tensor({-1.75, 0.5, 3.25}, {3}).to(g);
  check_close(x.to(DType::Float64).to(Device::cpu()), {-1.75, 0.5, 3.25}, 0, 0);
  check_close(x.to(DType::Int64).to(Device::cpu()), {-1, 0, 3}, 0, 0);  // truncation, as C++
  // A strided destination: rows 1 and 2 of the transpose are columns 1 and 2 of the base.
  Tensor base = ones({4, 4}).to(g);
  Tensor s = base.transpose(0, 1).narrow(0, 1, 2);
  fill_(s, 7);
  check_close(s.to(Device::cpu()), full({2, 4}, 7), 0, 0);
  const std::vector<float> v = base.to(Device::cpu()).to_vector<float>();
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c)
      CHECK_MESSAGE(v[size_t(r * 4 + c)] == (c == 1 || c == 2 ? 7.f : 1.f),
                    "base[" << r << ", " << c << "]");
}

TEST_CASE("strided views: contiguous() and copy_ into a strided destination on the device") {
  if (!gpu_or_skip()) return;
  const Device g = Device::cuda(0);
  Tensor x = arange(0, 24).reshape({2, 3, 4});
  Tensor xt = x.permute({2, 0, 1});
  check_close(xt.to(g).contiguous().to(Device::cpu()), xt.contiguous(), 0, 0);
  check_close(x.to(g).permute({2, 0, 1}).contiguous().to(Device::cpu()), xt.contiguous(), 0, 0);
  Tensor d = zeros({4, 6}).to(g);
  copy_(d.narrow(1, 2, 3), ones({4, 3}));  // host source, strided device destination
  Tensor back = d.to(Device::cpu());
  std::vector<float> v = back.to_vector<float>();
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 6; ++c) CHECK(v[size_t(r * 6 + c)] == ((c >= 2 && c < 5) ? 1.f : 0.f));
  // expand (stride 0) materializes on the device.
  Tensor e = tensor({1, 2, 3}, {3, 1}).to(g).expand({3, 4}).contiguous();
  check_close(e.to(Device::cpu()), {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}, 0, 0);
}

TEST_CASE("the device allocator caches, reports statistics and fails cleanly") {
  if (!gpu_or_skip()) return;
  const Device g = Device::cuda(0);
  synchronize(g);
  const MemoryStats s0 = memory_stats(g);
  { Tensor a = empty({1 << 20}, DType::Float32, g); }
  const MemoryStats s1 = memory_stats(g);
  { Tensor b = empty({1 << 20}, DType::Float32, g); }
  const MemoryStats s2 = memory_stats(g);
  CHECK(s1.in_use == s0.in_use);
  CHECK(s2.system_allocs == s1.system_allocs);  // the second request reused the block
  CHECK(s1.peak_in_use >= s0.in_use + (size_t(4) << 20));
  // 1 PiB: the allocator releases its cache, then names the request and what is in use.
  check_error([&] { empty({int64_t(1) << 48}, DType::Float32, g); },
              {"out of cuda:0 memory", "in use"});
  empty_cache(g);
  CHECK(memory_stats(g).reserved == memory_stats(g).in_use);
  // The device still works after the failed request.
  check_close(full({2}, 1, DType::Float32, g).to(Device::cpu()), {1, 1});
}

TEST_CASE("out of device memory: the cache is released and the request retried, then an error") {
  if (!gpu_or_skip()) return;
#ifdef NABLA_CUDA_EMU
  // An 8 MiB device (the emulator's memory cap) over what is in use now.
  const Device g = Device::cuda(0);
  empty_cache(g);
  const size_t cap_before = cuda_emu::memory_limit();
  cuda_emu::set_memory_limit(cuda_emu::memory_in_use() + (size_t(8) << 20));
  const int64_t mib = int64_t(1) << 18;                // floats per MiB
  { Tensor a = empty({5 * mib}, DType::Float32, g); }  // 5 MiB, then cached
  const MemoryStats s0 = memory_stats(g);
  // 6 MiB, another size class, does not fit beside the cached 5: the cache goes, the retry fits.
  Tensor b = full({6 * mib}, 2, DType::Float32, g);
  const MemoryStats s1 = memory_stats(g);
  CHECK(s1.system_frees == s0.system_frees + 1);
  CHECK(s1.reserved == s1.in_use);
  CHECK(sum(b).item<double>() == doctest::Approx(2.0 * 6 * mib));
  // Another 6 MiB cannot fit beside b: the error names the request and what is in use.
  check_error([&] { empty({6 * mib}, DType::Float32, g); },
              {"out of cuda:0 memory", "cannot allocate 6.0 MiB", "in use 6.0 MiB"});
  b = Tensor();
  empty_cache(g);
  cuda_emu::set_memory_limit(cap_before);
#else
  MESSAGE("skipped: a device memory cap needs the CUDA emulator's runtime");
#endif
}

TEST_CASE("a module moves to the GPU and back with its parameters and buffers") {
  if (!gpu_or_skip()) return;
  nn::BatchNorm2d bn(3);
  bn.to(Device::cuda(0));
  CHECK(bn.weight.device().is_cuda());
  CHECK(bn.weight.requires_grad());
  CHECK(bn.running_mean.device().is_cuda());
  bn.to(Device::cpu());
  check_close(bn.running_var, {1, 1, 1});
}

TEST_CASE("pinned host memory: copies both ways, errors without a GPU") {
  if (!cuda_available()) {
    check_error([] { ones({4}).pin_memory(); }, {"pin"});
    MESSAGE("skipped the pinned round trip: no CUDA GPU");
    return;
  }
  Tensor p = arange(0, 100).pin_memory();
  CHECK(p.is_pinned());
  CHECK_FALSE(arange(0, 3).is_pinned());
  Tensor g = p.to(Device::cuda(0));
  check_close(g.to(Device::cpu()), arange(0, 100), 0, 0);
  Tensor back = zeros({100}).pin_memory();
  copy_(back, g);
  check_close(back, arange(0, 100), 0, 0);
}

TEST_CASE("kernel calls ask the runtime for the device and its SM count once, not per call") {
  if (!gpu_or_skip()) return;
#ifdef NABLA_CUDA_EMU
  // GEMM (split-K sizing), conv2d (reduction splits) and batch norm (slices) read sm_count().
  const Device g = Device::cuda(0);
  Tensor a = uniform({64, 3136}, -1, 1, 1).to(DType::Float32).to(g);
  Tensor b = uniform({3136, 128}, -1, 1, 2).to(DType::Float32).to(g);
  Tensor x = uniform({2, 3, 8, 8}, -1, 1, 3).to(DType::Float32).to(g);
  Tensor w = uniform({4, 3, 3, 3}, -1, 1, 4).to(DType::Float32).to(g);
  nn::BatchNorm2d bn(4);
  bn.to(g);
  auto work = [&] {
    Tensor y = bn(conv2d(x, w, Tensor(), Conv2dArgs{}));
    return add(sum(matmul(a, b)), sum(y));
  };
  (void)work().item<float>();  // the first calls may ask
  const int64_t attrs = cuda_emu::api_calls("cudaDeviceGetAttribute");
  const int64_t devices = cuda_emu::api_calls("cudaGetDevice");
  for (int i = 0; i < 5; ++i) (void)work();
  (void)work().item<float>();
  CHECK(cuda_emu::api_calls("cudaDeviceGetAttribute") == attrs);
  CHECK(cuda_emu::api_calls("cudaGetDevice") == devices);
#else
  MESSAGE("skipped: counting runtime calls needs the CUDA emulator's runtime");
#endif
}

TEST_CASE("pinned blocks are not reused while a queued copy may still read them") {
  if (!gpu_or_skip()) return;
  // A data loader's pattern: every step gathers a batch into a fresh pinned tensor, copies it
  // to the device and drops it at once, while that copy may still be queued. Were the freed
  // block handed to the next batch, the queued copy would read the next batch's values (the
  // emulator runs queued copies only when the host waits, so it would every time).
  const Device g = Device::cuda(0);
  std::vector<Tensor> on_device;
  for (int step = 0; step < 4; ++step) {
    Tensor batch = empty_pinned({1000});
    float* p = batch.data<float>();
    for (int i = 0; i < 1000; ++i) p[i] = float(step * 1000 + i);
    on_device.push_back(batch.to(g));
  }
  // A loss without a host read in between (MSE, unlike cross-entropy's checks).
  Tensor total = mse_loss(on_device[0], on_device[1], Reduction::Sum);
  for (int step = 0; step < 4; ++step)
    check_close(on_device[size_t(step)].to(Device::cpu()), arange(step * 1000, step * 1000 + 1000),
                0, 0);
  CHECK(total.item<double>() == doctest::Approx(1000.0 * 1000 * 1000));
}

TEST_CASE("FashionCNN: a training step on the GPU matches the CPU (loss, gradients, SGD step)") {
  if (!gpu_or_skip()) return;
  DebugFillGuard fill;
  Generator g(0);
  nets::FashionCNN on_cpu(&g), on_gpu;
  on_gpu.load_state_dict(on_cpu.state_dict());
  on_gpu.to(Device::cuda(0));
  Tensor x = rand({16, 1, 28, 28}, DType::Float32, Device::cpu(), &g);
  Tensor y = randint(0, 10, {16}, &g);
  optim::SGD sc(on_cpu.parameters(), {.lr = 0.05, .momentum = 0.9});
  optim::SGD sg(on_gpu.parameters(), {.lr = 0.05, .momentum = 0.9});
  for (int step = 0; step < 3; ++step) {
    Tensor lc = cross_entropy(on_cpu(x), y);
    Tensor lg = cross_entropy(on_gpu(x.to(Device::cuda(0))), y.to(Device::cuda(0)));
    CHECK(lg.item<float>() == doctest::Approx(lc.item<float>()).epsilon(1e-4));
    sc.zero_grad();
    sg.zero_grad();
    lc.backward();
    lg.backward();
    auto pc = on_cpu.named_parameters(), pg = on_gpu.named_parameters();
    for (size_t i = 0; i < pc.size(); ++i)
      count_mismatches(pc[i].first + ".grad", pc[i].second.grad(), pg[i].second.grad(), 1e-5, 1e-3);
    sc.step();
    sg.step();
  }
  auto pc = on_cpu.named_parameters(), pg = on_gpu.named_parameters();
  for (size_t i = 0; i < pc.size(); ++i)
    count_mismatches(pc[i].first, pc[i].second, pg[i].second, 1e-5, 1e-3);
}
