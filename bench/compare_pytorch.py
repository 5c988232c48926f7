#!/usr/bin/env python3
"""End-to-end throughput of nabla against PyTorch, measured in the same run.

For each workload, nabla's Google Benchmark program (build/bench_train_step) and the same
computation in PyTorch run with the same number of CPU threads, and one line is printed:

    <name> nabla=<img/s> torch=<img/s> ratio=<nabla/torch>

Workloads:
  fashioncnn_train_step      FashionCNN, batch 64, random data, cross-entropy, backward,
                             SGD momentum 0.9 step
  fashioncnn_forward         forward + loss, no autograd
  fashioncnn_forward_backward  forward + loss + backward, no optimizer step
  fashioncnn_pgd10           PGD-10 on a batch of 256 (L-inf, eps 0.1, alpha 0.01, no random
                             start): ten input gradients (no weight gradients) and projected
                             sign steps; items = attacked images
  fashioncnn_apgd100         APGD-CE (L-inf, eps 0.1, 100 steps, one restart) on a batch of 256
                             labelled with the model's own predictions, against torchattacks.APGD
                             (every image is attacked for every step on both sides); items =
                             attacked images
  fashioncnn_square1000      Square (L-inf, eps 0.1, p_init 0.8, 1000 queries) on a batch of 256,
                             against torchattacks.Square; fc2's bias for class 0 is raised by 100
                             and every label is 0, so no image is fooled and each spends the whole
                             budget (torchattacks: 1 + 1000 forward passes, nabla: 1000)
                             These two need torchattacks (PyPI); without it they are skipped.
  unet_train_step            U-Net (milesial/Pytorch-UNet's UNet, base 16, 6 classes), batch 8 of
                             64x64 random tiles: per-pixel cross-entropy, backward, Adam step
  unet_pgd10                 PGD-10 on the summed per-pixel CE (eps 0.01, alpha 0.0025) of a
                             batch of 8 tiles; items = attacked tiles
  unet_candidates            forward passes only over batches of 243 tiles with the mean CE per
                             tile, as the sign-choice search evaluates its candidates
  dcgan_step                 DCGAN at 32x32 (ngf = ndf = 64, nz 100), batch 64: one D step (real
                             and detached fake batches, non-saturating BCE, Adam 2e-4, beta1 0.5)
                             and one G step with D's parameters frozen (requires_grad False in
                             PyTorch, so neither side computes D's weight gradients there)
  aae_step                   the adversarial autoencoder of nets/aae.h (784-1000-1000-2 encoder
                             and decoder, 2-1000-1000-1 discriminator, scripts/torch_autoencoders.py
                             in PyTorch), batch 100: one reconstruction step (BCE, Adam 1e-3 on
                             encoder and decoder), one D step (N(0, I) samples against detached
                             codes, non-saturating BCE, Adam 2e-4, beta1 0.5) and one encoder step
                             through the frozen D (Adam 2e-4, beta1 0.5)
  cyclegan_iteration         one CycleGAN iteration (the reference's optimize_parameters) at
                             64x64, 1 channel, batch 1: ResnetGenerator ngf 32 with 6 blocks and
                             NLayerDiscriminator ndf 32 (scripts/torch_image2image.py), instance
                             norm, LSGAN, cycle and identity L1, pools of 50; the G step with
                             both D frozen, then the halved D step; items = iterations
  pix2pix_iteration          one pix2pix iteration at 64x64, 1 channel, batch 1: unet_64
                             (UnetGenerator ngf 32, num_downs 6, batch norm, dropout), D ndf 32
                             on cat(A, B), BCE with logits; D step, then G step (D frozen) with
                             100 L1; items = iterations

With --device cuda both run on the GPU (nabla's *_cuda benchmarks; PyTorch with TF32 off for
matmul and cuDNN, so that both compute in FP32).

Usage: python3 bench/compare_pytorch.py [--build-dir build] [--threads N] [--device cpu|cuda]
                                        [--json] [--only WORKLOAD,...]
Needs PyTorch (Debian: python3-torch, installed by scripts/install_deps.sh --bench).
"""
import argparse
import json
import os
import subprocess
import sys
import time

WORKLOADS = ["fashioncnn_train_step", "fashioncnn_forward", "fashioncnn_forward_backward",
             "fashioncnn_pgd10", "fashioncnn_apgd100", "fashioncnn_square1000", "unet_train_step",
             "unet_pgd10", "unet_candidates", "dcgan_step", "aae_step", "cyclegan_iteration",
             "pix2pix_iteration"]


def nabla_rates(build_dir, threads, min_time, device, only=None):
    exe = os.path.join(build_dir, "bench_train_step")
    if not os.path.exists(exe):
        sys.exit(f"compare_pytorch: {exe} not found: build with -DNABLA_BUILD_BENCH=ON "
                 "(needs libbenchmark-dev) first")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    suffix = "_cuda" if device == "cuda" else ""
    out = subprocess.run([exe, "--benchmark_format=json", f"--benchmark_min_time={min_time}",
                          "--benchmark_repetitions=3",
                          "--benchmark_filter=" + (
                              f"BM_({'|'.join(only)}){suffix}(/|$)" if only
                              else ("_cuda" if suffix else "-_cuda"))],
                         env=env, check=True, capture_output=True, text=True).stdout
    rates = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name = b["run_name"].split("/")[0].removeprefix("BM_")
        if suffix:
            if not name.endswith(suffix):
                continue
            name = name.removesuffix(suffix)
        elif name.endswith("_cuda"):
            continue
        rates[name] = b["items_per_second"]
    if not rates:
        sys.exit(f"compare_pytorch: {exe} ran no {device} workload (no GPU seen by nabla?)")
    return rates


def torch_rates(threads, min_time, device, only=None):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    # The same module that scripts/torch_fashioncnn.py loads our checkpoints into.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
    from torch_fashioncnn import FashionCNN

    net = FashionCNN().to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(64, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (64,), device=device)

    def train_step():
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    def forward():
        with torch.no_grad():
            return F.cross_entropy(net(x), y).item()

    def forward_backward():
        loss = F.cross_entropy(net(x), y)
        net.zero_grad()
        loss.backward()
        return loss.item()

    xp = torch.rand(256, 1, 28, 28, device=device)
    yp = torch.randint(0, 10, (256,), device=device)

    def pgd10():
        net.eval()
        xa = xp.clone()
        for _ in range(10):
            xa.requires_grad_(True)
            loss = F.cross_entropy(net(xa), yp, reduction="sum")
            (g,) = torch.autograd.grad(loss, [xa])
            with torch.no_grad():
                xa = torch.min(torch.max(xa + 0.01 * g.sign(), xp - 0.1), xp + 0.1).clamp(0, 1)
        net.train()
        return xa[0, 0, 0, 0].item()

    try:
        import torchattacks
    except ImportError:
        torchattacks = None
    attack_workloads = {}
    if torchattacks is not None:
        anet = FashionCNN().to(device).eval()
        xa0 = torch.rand(256, 1, 28, 28, device=device)
        with torch.no_grad():
            ya0 = anet(xa0).argmax(1)
        apgd = torchattacks.APGD(anet, norm="Linf", eps=0.1, steps=100, n_restarts=1,
                                 loss="ce", seed=0)

        snet = FashionCNN().to(device).eval()
        with torch.no_grad():
            snet.fc2.bias[0] += 100.0
        ys0 = torch.zeros(256, dtype=torch.long, device=device)
        square = torchattacks.Square(snet, norm="Linf", eps=0.1, n_queries=1000, n_restarts=1,
                                     p_init=0.8, seed=0)

        def apgd100():
            return apgd(xa0, ya0)[0, 0, 0, 0].item()

        def square1000():
            return square(xa0, ys0)[0, 0, 0, 0].item()

        attack_workloads = {"fashioncnn_apgd100": apgd100, "fashioncnn_square1000": square1000}

    from torch_unet import UNet

    unet = UNet(3, 6, bilinear=False, base=16).to(device)
    uopt = torch.optim.Adam(unet.parameters(), lr=1e-3)
    ux = torch.rand(8, 3, 64, 64, device=device)
    uy = torch.randint(0, 6, (8, 64, 64), device=device)

    def unet_train_step():
        unet.train()
        loss = F.cross_entropy(unet(ux), uy)
        uopt.zero_grad()
        loss.backward()
        uopt.step()
        return loss.item()

    def unet_pgd10():
        unet.eval()
        xa = ux.clone()
        for _ in range(10):
            xa.requires_grad_(True)
            loss = F.cross_entropy(unet(xa), uy, reduction="sum")
            (g,) = torch.autograd.grad(loss, [xa])
            with torch.no_grad():
                xa = torch.min(torch.max(xa + 0.0025 * g.sign(), ux - 0.01), ux + 0.01).clamp(0, 1)
        return xa[0, 0, 0, 0].item()

    cx = torch.rand(243, 3, 64, 64, device=device)
    cy = torch.randint(0, 6, (243, 64, 64), device=device)

    def unet_candidates():
        unet.eval()
        with torch.no_grad():
            return F.cross_entropy(unet(cx), cy, reduction="none").mean((1, 2))[0].item()

    # The DCGAN of scripts/torch_dcgan.py (the reference's modules at 32x32), without D's final
    # Sigmoid: the loss takes logits, as nabla's does.
    from torch_dcgan import Discriminator, Generator

    g_net = Generator(100, 64, 1).to(device)
    d_net = Discriminator(1, 64).to(device)
    d_net.main = d_net.main[:-1]
    opt_g = torch.optim.Adam(g_net.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d_net.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(64, 1, 32, 32, device=device) * 2 - 1

    def dcgan_step():
        bce = F.binary_cross_entropy_with_logits
        fake = g_net(torch.randn(64, 100, 1, 1, device=device))
        opt_d.zero_grad()
        lr, lf = d_net(real), d_net(fake.detach())
        (bce(lr, torch.ones_like(lr)) + bce(lf, torch.zeros_like(lf))).backward()
        opt_d.step()
        opt_g.zero_grad()
        for p in d_net.parameters():
            p.requires_grad_(False)
        lg = d_net(fake)
        loss = bce(lg, torch.ones_like(lg))
        loss.backward()
        for p in d_net.parameters():
            p.requires_grad_(True)
        opt_g.step()
        return loss.item()

    # The adversarial autoencoder of scripts/torch_autoencoders.py (nets/aae.h's modules).
    from torch_autoencoders import Decoder, Discriminator as LatentDiscriminator, Encoder

    aae_e, aae_dec = Encoder(1000, 2).to(device), Decoder(1000, 2).to(device)
    aae_d = LatentDiscriminator(2, 1000).to(device)
    opt_ae = torch.optim.Adam(list(aae_e.parameters()) + list(aae_dec.parameters()), lr=1e-3)
    opt_ad = torch.optim.Adam(aae_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_ae_g = torch.optim.Adam(aae_e.parameters(), lr=2e-4, betas=(0.5, 0.999))
    aae_x = torch.rand(100, 784, device=device)

    def aae_step():
        bce = F.binary_cross_entropy_with_logits
        opt_ae.zero_grad()
        bce(aae_dec.main(aae_e(aae_x)), aae_x).backward()
        opt_ae.step()
        zp = torch.randn(100, 2, device=device)
        zq = aae_e(aae_x)
        opt_ad.zero_grad()
        lr, lf = aae_d(zp), aae_d(zq.detach())
        (bce(lr, torch.ones_like(lr)) + bce(lf, torch.zeros_like(lf))).backward()
        opt_ad.step()
        opt_ae_g.zero_grad()
        for p in aae_d.parameters():
            p.requires_grad_(False)
        lg = aae_d(zq)
        loss = bce(lg, torch.ones_like(lg))
        loss.backward()
        for p in aae_d.parameters():
            p.requires_grad_(True)
        opt_ae_g.step()
        return loss.item()
    cyclegan_iteration, pix2pix_iteration = image2image_workloads(device)

    fns = {"fashioncnn_train_step": train_step, "fashioncnn_forward": forward,
           "fashioncnn_forward_backward": forward_backward, "fashioncnn_pgd10": pgd10,
           "unet_train_step": unet_train_step, "unet_pgd10": unet_pgd10,
           "unet_candidates": unet_candidates, "dcgan_step": dcgan_step,
           "aae_step": aae_step, "cyclegan_iteration": cyclegan_iteration,
           "pix2pix_iteration": pix2pix_iteration, **attack_workloads}
    batch_of = {"fashioncnn_pgd10": 256, "fashioncnn_apgd100": 256, "fashioncnn_square1000": 256,
                "unet_train_step": 8, "unet_pgd10": 8, "unet_candidates": 243, "aae_step": 100,
                "cyclegan_iteration": 1, "pix2pix_iteration": 1}
    rates = {}
    for name, fn in fns.items():
        if only and name not in only:
            continue
        for _ in range(3):
            fn()
        runs = []
        for _ in range(3):  # median of 3, like the C++ side
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < min_time:
                fn()
                n += 1
            runs.append(batch_of.get(name, 64) * n / (time.perf_counter() - t0))
        rates[name] = sorted(runs)[1]
    return rates, torch.__version__


def image2image_workloads(device):
    """CycleGAN's and pix2pix's iterations with the networks of scripts/torch_image2image.py."""
    import random

    import torch
    import torch.nn.functional as F
    from torch_image2image import (NLayerDiscriminator, ResnetGenerator, UnetGenerator,
                                   norm_factory)

    def init(*nets):
        for net in nets:
            for m in net.modules():
                if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                    torch.nn.init.normal_(m.weight, 0.0, 0.02)
                    if m.bias is not None:
                        torch.nn.init.zeros_(m.bias)
            net.to(device).train()

    def frozen(nets, on):
        for net in nets:
            for p in net.parameters():
                p.requires_grad_(not on)

    class Pool:
        def __init__(self, size=50):
            self.size, self.images = size, []

        def query(self, x):
            if len(self.images) < self.size:
                self.images.append(x.clone())
                return x
            if random.random() < 0.5:
                i = random.randrange(self.size)
                old, self.images[i] = self.images[i], x.clone()
                return old
            return x

    inst = norm_factory("instance")
    g_a, g_b = ResnetGenerator(1, 1, 32, inst, False, 6), ResnetGenerator(1, 1, 32, inst, False, 6)
    d_a, d_b = NLayerDiscriminator(1, 32, 3, inst), NLayerDiscriminator(1, 32, 3, inst)
    init(g_a, g_b, d_a, d_b)
    opt_g = torch.optim.Adam(list(g_a.parameters()) + list(g_b.parameters()), 2e-4, (0.5, 0.999))
    opt_d = torch.optim.Adam(list(d_a.parameters()) + list(d_b.parameters()), 2e-4, (0.5, 0.999))
    pool_a, pool_b = Pool(), Pool()
    a = torch.rand(1, 1, 64, 64, device=device) * 2 - 1
    b = torch.rand(1, 1, 64, 64, device=device) * 2 - 1

    def lsgan(pred, real):
        return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))

    def cyclegan_iteration():
        fake_b, fake_a = g_a(a), g_b(b)
        rec_a, rec_b = g_b(fake_b), g_a(fake_a)
        frozen([d_a, d_b], True)
        opt_g.zero_grad()
        loss_g = (lsgan(d_a(fake_b), True) + lsgan(d_b(fake_a), True)
                  + 10 * F.l1_loss(rec_a, a) + 10 * F.l1_loss(rec_b, b)
                  + 5 * F.l1_loss(g_a(b), b) + 5 * F.l1_loss(g_b(a), a))
        loss_g.backward()
        opt_g.step()
        frozen([d_a, d_b], False)
        opt_d.zero_grad()
        pb, pa = pool_b.query(fake_b.detach()), pool_a.query(fake_a.detach())
        loss_d = 0.5 * (lsgan(d_a(b), True) + lsgan(d_a(pb), False)) + \
            0.5 * (lsgan(d_b(a), True) + lsgan(d_b(pa), False))
        loss_d.backward()
        opt_d.step()
        return loss_d.item()

    g = UnetGenerator(1, 1, 6, 32, norm_factory("batch"), True)
    d = NLayerDiscriminator(2, 32, 3, norm_factory("batch"))
    init(g, d)
    p_opt_g = torch.optim.Adam(g.parameters(), 2e-4, (0.5, 0.999))
    p_opt_d = torch.optim.Adam(d.parameters(), 2e-4, (0.5, 0.999))
    bce = F.binary_cross_entropy_with_logits

    def pix2pix_iteration():
        fake = g(a)
        p_opt_d.zero_grad()
        pf, pr = d(torch.cat([a, fake.detach()], 1)), d(torch.cat([a, b], 1))
        loss_d = 0.5 * (bce(pf, torch.zeros_like(pf)) + bce(pr, torch.ones_like(pr)))
        loss_d.backward()
        p_opt_d.step()
        frozen([d], True)
        p_opt_g.zero_grad()
        pf = d(torch.cat([a, fake], 1))
        loss_g = bce(pf, torch.ones_like(pf)) + 100 * F.l1_loss(fake, b)
        loss_g.backward()
        p_opt_g.step()
        frozen([d], False)
        return loss_g.item()

    return cyclegan_iteration, pix2pix_iteration


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default="build", help="where bench_train_step was built")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="CPU threads for both (default: all cores)")
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds per measurement")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="where both run (cuda: nabla's *_cuda workloads, PyTorch on cuda:0)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    ap.add_argument("--only", default="",
                    help="comma-separated workloads to run (default: all), e.g. dcgan_step,aae_step")
    a = ap.parse_args()
    only = [w for w in a.only.split(",") if w]
    for w in only:
        if w not in WORKLOADS:
            sys.exit(f"compare_pytorch: --only {w}: not one of {', '.join(WORKLOADS)}")
    attacks = {"fashioncnn_apgd100", "fashioncnn_square1000"}
    try:
        import torchattacks  # noqa: F401
    except ImportError:
        if attacks & set(only):
            sys.exit("compare_pytorch: fashioncnn_apgd100 and fashioncnn_square1000 compare "
                     "against torchattacks, which this Python lacks (pip install torchattacks "
                     "in a virtual environment)")
        print("compare_pytorch: no torchattacks here, skipping fashioncnn_apgd100 and "
              "fashioncnn_square1000", file=sys.stderr)
        only = only or [w for w in WORKLOADS if w not in attacks]
    ours = nabla_rates(a.build_dir, a.threads, a.min_time, a.device, only)
    theirs, version = torch_rates(a.threads, a.min_time, a.device, only)
    rows = []
    for w in only or WORKLOADS:
        rows.append({"name": w, "nabla": ours[w], "torch": theirs[w], "ratio": ours[w] / theirs[w]})
    if a.json:
        print(json.dumps({"device": a.device, "threads": a.threads, "torch_version": version,
                          "unit": "img/s",
                          "workloads": rows}))
    else:
        where = "CUDA" if a.device == "cuda" else f"CPU, {a.threads} threads"
        print(f"# {where}, torch {version}, img/s (median of 3)")
        for r in rows:
            print(f"{r['name']} nabla={r['nabla']:.1f} torch={r['torch']:.1f} ratio={r['ratio']:.2f}")


if __name__ == "__main__":
    main()
