// End-to-end training steps of the nets, the workloads of bench/compare_pytorch.py.
//
//   fashioncnn_train_step          FashionCNN, batch 64, random data: forward, cross-entropy,
//                                  backward, SGD (momentum 0.9) step; items = images
//   fashioncnn_forward             the forward and the loss only (no autograd recording)
//   fashioncnn_forward_backward    forward, loss and backward, no optimizer step
//   fashioncnn_pgd10               PGD-10 (L-inf, eps 0.1, alpha 0.01, no random start, no early
//                                  stop) on a batch of 256: ten input gradients and fused steps
//   fashioncnn_apgd100             APGD-CE (L-inf, eps 0.1, 100 steps, one restart, no early
//                                  stop) on a batch of 256 labelled with the model's own
//                                  predictions, so that every image is attacked for every step,
//                                  as torchattacks' APGD does within a run
//   fashioncnn_square1000          Square (L-inf, eps 0.1, p_init 0.8, 1000 queries) on a
//                                  batch of 256, forward passes only; fc2's bias for class 0 is
//                                  raised by 100 and every label is 0, so that no image is
//                                  fooled and every image spends all 1000 queries on both sides
//   unet_train_step                U-Net (base 16, 6 classes), batch 8 of 64x64 random tiles:
//                                  forward, per-pixel cross-entropy, backward, Adam step
//   unet_pgd10                     PGD-10 through the segmentation objective (the summed
//                                  per-pixel CE; eps 0.01, alpha 0.0025) on a batch of 8 tiles
//   unet_candidates                forward passes only, as the sign-choice search evaluates its
//                                  candidates: 243 tiles per batch, the mean CE per tile
//   dcgan_step                     DCGAN at 32x32 (ngf = ndf = 64, nz 100), batch 64, random
//                                  real images: one D step (real and detached fake batches,
//                                  non-saturating loss, Adam) and one G step through the frozen
//                                  D (Adam); items = real images
//   aae_step                       the adversarial autoencoder (784-1000-1000-2 encoder and
//                                  decoder, 2-1000-1000-1 D), batch 100, random images: one
//                                  reconstruction step (BCE, Adam on E and Dec), one D step
//                                  (N(0, I) samples against detached codes, non-saturating,
//                                  Adam) and one encoder step through the frozen D (Adam);
//                                  items = images
//   cyclegan_iteration             one CycleGAN iteration at 64x64, 1 channel, batch 1
//                                  (ResnetGenerator ngf 32 with 6 blocks, NLayerDiscriminator
//                                  ndf 32, instance norm, LSGAN, pools of 50): the four
//                                  generator passes, the G step through both frozen D (with the
//                                  identity terms), the D step; items = iterations
//   pix2pix_iteration              one pix2pix iteration at 64x64, 1 channel, batch 1
//                                  (unet_64: UnetGenerator ngf 32, num_downs 6, batch norm,
//                                  dropout; D ndf 32 on cat(A, B)): D step, G step through the
//                                  frozen D; items = iterations
// Each is registered for the CPU (threads: OMP_NUM_THREADS) and, when a GPU is present, for
// cuda:0 with the suffix _cuda. Every iteration ends with loss.item(), which waits for the
// device, so wall time is the step time on either device.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include <nabla/attack/attack.h>
#include <nabla/gan/losses.h>
#include <nabla/nabla.h>
#include <nabla/optim/optimizer.h>
#include <nets/aae.h>
#include <nets/classifier.h>
#include <nets/dcgan.h>
#include <nets/image2image_train.h>
#include <nets/unet.h>

using namespace nabla;

namespace {

constexpr int64_t kBatch = 64;

struct Setup {
  explicit Setup(Device d) : dev(d) {
    net.to(d);
    x = rand({kBatch, 1, 28, 28}, DType::Float32, Device::cpu(), &gen).to(d);
    y = randint(0, 10, {kBatch}, &gen).to(d);
  }
  Device dev;
  Generator gen{0};
  nets::FashionCNN net{&gen};
  Tensor x, y;
};

void train_step(benchmark::State& state, Device d) {
  Setup s(d);
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

void forward(benchmark::State& state, Device d) {
  Setup s(d);
  NoGradGuard ng;
  for (auto _ : state) {
    Tensor loss = cross_entropy(s.net(s.x), s.y);
    benchmark::DoNotOptimize(loss.item<float>());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void forward_backward(benchmark::State& state, Device d) {
  Setup s(d);
  for (auto _ : state) {
    Tensor loss = cross_entropy(s.net(s.x), s.y);
    s.net.zero_grad();
    loss.backward();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

constexpr int64_t kAttackBatch = 256;  // the attack workloads' batch

void pgd10(benchmark::State& state, Device d) {
  Setup s(d);
  s.net.eval();
  Tensor x = rand({kAttackBatch, 1, 28, 28}, DType::Float32, Device::cpu(), &s.gen).to(d);
  Tensor y = randint(0, 10, {kAttackBatch}, &s.gen).to(d);
  attack::Options opt;
  opt.eps = 0.1;
  opt.alpha = 0.01;
  opt.steps = 10;
  opt.early_stop = false;
  const attack::Model model = [&](const Tensor& xb) { return s.net(xb); };
  for (auto _ : state) {
    attack::Result r = attack::pgd_linf(model, x, y, opt);
    benchmark::DoNotOptimize(r.x_adv.to(Device::cpu()).data<float>()[0]);
  }
  state.SetItemsProcessed(state.iterations() * kAttackBatch);
}

void apgd100(benchmark::State& state, Device d) {
  Setup s(d);
  s.net.eval();
  Tensor x = rand({kAttackBatch, 1, 28, 28}, DType::Float32, Device::cpu(), &s.gen).to(d);
  Tensor y;
  {
    NoGradGuard ng;
    y = argmax(s.net(x), 1);
  }
  attack::Options opt;
  opt.eps = 0.1;
  opt.steps = 100;
  opt.early_stop = false;
  opt.apgd_loss = attack::ApgdLoss::CE;
  const attack::Model model = [&](const Tensor& xb) { return s.net(xb); };
  for (auto _ : state) {
    attack::Result r = attack::apgd(model, x, y, opt);
    benchmark::DoNotOptimize(r.x_adv.to(Device::cpu()).data<float>()[0]);
  }
  state.SetItemsProcessed(state.iterations() * kAttackBatch);
}

void square1000(benchmark::State& state, Device d) {
  Setup s(d);
  s.net.eval();
  {
    Tensor b = s.net.fc2->bias.to(Device::cpu()).clone();
    b.data<float>()[0] += 100.0f;
    copy_(s.net.fc2->bias, b);
  }
  Tensor x = rand({kAttackBatch, 1, 28, 28}, DType::Float32, Device::cpu(), &s.gen).to(d);
  Tensor y = zeros({kAttackBatch}, DType::Int64).to(d);
  attack::Options opt;
  opt.eps = 0.1;
  opt.queries = 1000;
  opt.p_init = 0.8;
  const attack::Model model = [&](const Tensor& xb) { return s.net(xb); };
  double queries = 0;
  for (auto _ : state) {
    attack::Result r = attack::square(model, x, y, opt);
    queries = 0;
    for (int64_t q : r.queries) queries += double(q);
    benchmark::DoNotOptimize(r.x_adv.to(Device::cpu()).data<float>()[0]);
  }
  if (queries != double(kAttackBatch) * opt.queries)
    state.SkipWithError("square1000: an image was fooled, so not every query was spent");
  state.counters["queries_per_image"] = queries / double(kAttackBatch);
  state.SetItemsProcessed(state.iterations() * kAttackBatch);
}

struct UNetSetup {
  UNetSetup(Device d, int64_t batch) : dev(d), net(nets::UNetConfig{3, 6, 16, false}, &gen) {
    net.to(d);
    x = rand({batch, 3, 64, 64}, DType::Float32, Device::cpu(), &gen).to(d);
    y = randint(0, 6, {batch, 64, 64}, &gen).to(d);
  }
  Device dev;
  Generator gen{0};
  nets::UNet net;
  Tensor x, y;
};

void unet_train_step(benchmark::State& state, Device d) {
  UNetSetup s(d, 8);
  optim::Adam opt(s.net.parameters(), {.lr = 1e-3});
  for (auto _ : state) {
    Tensor loss = cross_entropy(s.net(s.x), s.y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  state.SetItemsProcessed(state.iterations() * 8);
}

void unet_pgd10(benchmark::State& state, Device d) {
  UNetSetup s(d, 8);
  s.net.eval();
  attack::Options opt;
  opt.eps = 0.01;
  opt.alpha = 0.0025;
  opt.steps = 10;
  opt.early_stop = false;
  opt.objective = attack::Objective::segmentation();
  const attack::Model model = [&](const Tensor& xb) { return s.net(xb); };
  for (auto _ : state) {
    attack::Result r = attack::pgd_linf(model, s.x, s.y, opt);
    benchmark::DoNotOptimize(r.x_adv.to(Device::cpu()).data<float>()[0]);
  }
  state.SetItemsProcessed(state.iterations() * 8);
}

void unet_candidates(benchmark::State& state, Device d) {
  constexpr int64_t kCandidates = 243;
  UNetSetup s(d, kCandidates);
  s.net.eval();
  NoGradGuard ng;
  for (auto _ : state) {
    Tensor l = mean(cross_entropy(s.net(s.x), s.y, Tensor(), Reduction::None), {1, 2});
    benchmark::DoNotOptimize(l.to(Device::cpu()).data<float>()[0]);
  }
  state.SetItemsProcessed(state.iterations() * kCandidates);
}

void dcgan_step(benchmark::State& state, Device d) {
  Generator gen(0);
  nets::DCGANGenerator G(100, 64, 1, &gen);
  nets::DCGANDiscriminator D(1, 64, &gen);
  G.to(d);
  D.to(d);
  optim::Adam opt_g(G.parameters(), {.lr = 2e-4, .beta1 = 0.5});
  optim::Adam opt_d(D.parameters(), {.lr = 2e-4, .beta1 = 0.5});
  Tensor real = rand({kBatch, 1, 32, 32}, DType::Float32, Device::cpu(), &gen, -1, 1).to(d);
  for (auto _ : state) {
    Tensor z = randn({kBatch, 100, 1, 1}, DType::Float32, d, &gen);
    Tensor fake = G(z);
    opt_d.zero_grad();
    gan::Losses ld = gan::gan_losses(gan::Loss::NonSaturating, D(real), D(fake.detach()));
    ld.d.backward();
    opt_d.step();
    opt_g.zero_grad();
    Tensor lg;
    {
      nn::FreezeGuard frozen(D);
      Tensor fake_logits = D(fake);
      lg = gan::gan_losses(gan::Loss::NonSaturating, fake_logits.detach(), fake_logits).g;
      lg.backward();
    }
    opt_g.step();
    benchmark::DoNotOptimize(lg.item<float>());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void aae_step(benchmark::State& state, Device d) {
  constexpr int64_t kAaeBatch = 100;
  Generator gen(0);
  nets::AAEEncoder E(1000, 2, &gen);
  nets::AAEDecoder Dec(1000, 2, &gen);
  nets::AAEDiscriminator D(2, 1000, &gen);
  E.to(d);
  Dec.to(d);
  D.to(d);
  std::vector<Tensor> ae = E.parameters();
  for (const Tensor& p : Dec.parameters()) ae.push_back(p);
  optim::Adam opt_ae(ae, {.lr = 1e-3});
  optim::Adam opt_d(D.parameters(), {.lr = 2e-4, .beta1 = 0.5});
  optim::Adam opt_e(E.parameters(), {.lr = 2e-4, .beta1 = 0.5});
  const Tensor x = rand({kAaeBatch, 784}, DType::Float32, Device::cpu(), &gen).to(d);
  for (auto _ : state) {
    opt_ae.zero_grad();
    binary_cross_entropy_with_logits(Dec.logits(E(x)), x).backward();
    opt_ae.step();
    const Tensor zp = randn({kAaeBatch, 2}, DType::Float32, d, &gen);
    Tensor zq = E(x);
    opt_d.zero_grad();
    gan::gan_losses(gan::Loss::NonSaturating, D(zp), D(zq.detach())).d.backward();
    opt_d.step();
    opt_e.zero_grad();
    Tensor lg;
    {
      nn::FreezeGuard frozen(D);
      Tensor fake_logits = D(zq);
      lg = gan::gan_losses(gan::Loss::NonSaturating, fake_logits.detach(), fake_logits).g;
      lg.backward();
    }
    opt_e.step();
    benchmark::DoNotOptimize(lg.item<float>());
  }
  state.SetItemsProcessed(state.iterations() * kAaeBatch);
}

// The options of both image-to-image workloads: 64x64, one channel, ngf = ndf = 32.
nets::Image2ImageTraining i2i_options(const std::string& model) {
  nets::Image2ImageTraining c;
  c.model = model;
  c.task = model == "cyclegan" ? "sneaker2boot" : "edges2fashion";
  c = nets::resolve_defaults(c);
  c.input_nc = c.output_nc = 1;
  c.ngf = c.ndf = 32;
  c.netG = model == "cyclegan" ? "resnet_6blocks" : "unet_64";
  return c;
}

void cyclegan_iteration(benchmark::State& state, Device d) {
  Generator gen(0);
  nets::CycleGANModel m(i2i_options("cyclegan"), d, &gen);
  Tensor a = rand({1, 1, 64, 64}, DType::Float32, Device::cpu(), &gen, -1, 1).to(d);
  Tensor b = rand({1, 1, 64, 64}, DType::Float32, Device::cpu(), &gen, -1, 1).to(d);
  for (auto _ : state) {
    auto o = m.forward(a, b);
    m.step_G(a, b, o);
    benchmark::DoNotOptimize(m.step_D(a, b, o).back().second);
  }
  state.SetItemsProcessed(state.iterations());
}

void pix2pix_iteration(benchmark::State& state, Device d) {
  Generator gen(0);
  nets::Pix2PixModel m(i2i_options("pix2pix"), d, &gen);
  Tensor a = rand({1, 1, 64, 64}, DType::Float32, Device::cpu(), &gen, -1, 1).to(d);
  Tensor b = rand({1, 1, 64, 64}, DType::Float32, Device::cpu(), &gen, -1, 1).to(d);
  for (auto _ : state) benchmark::DoNotOptimize(m.step(a, b).back().second);
  state.SetItemsProcessed(state.iterations());
}

void register_all(Device d, const std::string& suffix) {
  benchmark::RegisterBenchmark(("BM_fashioncnn_train_step" + suffix).c_str(), train_step, d)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("BM_fashioncnn_forward" + suffix).c_str(), forward, d)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("BM_fashioncnn_forward_backward" + suffix).c_str(),
                               forward_backward, d)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("BM_fashioncnn_pgd10" + suffix).c_str(), pgd10, d)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("BM_fashioncnn_apgd100" + suffix).c_str(), apgd100, d)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("BM_fashioncnn_square1000" + suffix).c_str(), square1000, d)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("BM_unet_train_step" + suffix).c_str(), unet_train_step, d)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("BM_unet_pgd10" + suffix).c_str(), unet_pgd10, d)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("BM_unet_candidates" + suffix).c_str(), unet_candidates, d)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("BM_dcgan_step" + suffix).c_str(), dcgan_step, d)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("BM_aae_step" + suffix).c_str(), aae_step, d)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("BM_cyclegan_iteration" + suffix).c_str(), cyclegan_iteration, d)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("BM_pix2pix_iteration" + suffix).c_str(), pix2pix_iteration, d)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  register_all(Device::cpu(), "");
  if (cuda_available())
    register_all(Device::cuda(0), "_cuda");
  else
    std::fprintf(stderr, "bench_train_step: no CUDA GPU, CPU workloads only\n");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
