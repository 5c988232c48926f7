#!/usr/bin/env python3
"""Input-gradient maps from `nabla explain` against PyTorch on the same checkpoint and test images.

    python3 bench/explain_crosscheck.py CHECKPOINT [--n 1000] [--start 0] [--methods M,M,...]
                                        [--build-dir build] [--data DIR] [--json]

For each method, runs `nabla explain --checkpoint CHECKPOINT --method M --indices A:B --save-npy
FILE` once over Fashion-MNIST test images A..B-1 (A = start, B = start + n), computes the same
maps in PyTorch (FashionCNN in eval mode, explaining each image's predicted class, S_c the logit),
and prints per method the Pearson correlation over the 784 pixels of each image: min, mean and
the worst image's test index. Two near-constant maps (std < 1e-12, e.g. an all-zero Grad-CAM)
count as a match (correlation 1, counted in the `const` column); one alone counts as 0.

These bounds gate the exit status (1 when one fails): saliency >= 0.999, gradcam on
conv2 >= 0.99, guided-backprop >= 0.99 per image. integrated-gradients (50 steps, zero baseline),
gradcam++, deconvnet, guided-gradcam and occlusion (patch 4, stride 2, fill 0, softmax
probability) are reported but not gated: their specs leave more room (an eps, float32
differences of near-saturated probabilities) than a strict per-image bound tolerates.
smoothgrad draws random noise, so it is not compared. Needs PyTorch (python3-torch) and numpy.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import torch_fashioncnn  # noqa: E402
from torch_fashioncnn import DEFAULT_DATA, FashionCNN, load_safetensors, load_split  # noqa: E402

GATES = {"saliency": 0.999, "gradcam": 0.99, "guided-backprop": 0.99}
METHODS = ("saliency", "gradcam", "guided-backprop", "integrated-gradients", "gradcam++",
           "deconvnet", "guided-gradcam", "occlusion")
LAYER = "conv2"  # Grad-CAM's layer: its Conv2d output, before the ReLU
LAYER_METHODS = ("gradcam", "gradcam++", "guided-gradcam")
IG_STEPS, PATCH, STRIDE, FILL = 50, 4, 2, 0.0
PP_EPS = 1e-7  # keeps Grad-CAM++'s 2G^2 + sum(A) G^3 away from 0 (A is pre-ReLU: sum(A) can be < 0)
BATCH = 250  # images per torch pass: bounds occlusion's and integrated gradients' memory


class _GuidedReLU(torch.autograd.Function):
    """ReLU whose backward passes only positive gradient through positive inputs (Springenberg)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * (x > 0) * (gy > 0)


class _DeconvReLU(_GuidedReLU):
    """ReLU whose backward is a ReLU of the incoming gradient, ignoring the input (Zeiler-Fergus)."""

    @staticmethod
    def backward(ctx, gy):
        return gy.clamp(min=0)


class _ReluSwap:
    """Stands in for torch.nn.functional while FashionCNN.forward runs, routing its F.relu calls
    through another autograd function, so that forward is not copied here and cannot drift."""

    def __init__(self, relu):
        self.fn, self.calls = relu, 0

    def relu(self, x, inplace=False):
        self.calls += 1
        return self.fn(x)

    def __getattr__(self, name):
        return getattr(F, name)


def logits(net, x, relu=None):
    if relu is None:
        return net(x)
    swap = _ReluSwap(relu)
    torch_fashioncnn.F = swap  # forward looks F up in its module's globals at call time
    try:
        out = net(x)
    finally:
        torch_fashioncnn.F = F
    # A forward that stopped using F.relu (nn.ReLU modules, torch.relu) would silently give
    # plain gradients; catch the first two cases at least.
    if swap.calls == 0 or any(isinstance(m, torch.nn.ReLU) for m in net.modules()):
        sys.exit("explain_crosscheck: FashionCNN.forward no longer applies F.relu; update logits()")
    return out


def _positions(size):
    p = list(range(0, size - PATCH + 1, STRIDE))
    return p if p[-1] == size - PATCH else p + [size - PATCH]  # last placement flush with border


def _gradcam(net, x, score, pp):
    acts = []
    hook = getattr(net, LAYER).register_forward_hook(lambda m, i, o: acts.append(o))
    try:
        s = net(x)
    finally:
        hook.remove()
    (g,) = torch.autograd.grad(score(s), [acts[0]])
    a = acts[0].detach()
    if pp:
        g2, g3 = g * g, g * g * g
        w = g2 / (2 * g2 + a.sum((2, 3), keepdim=True) * g3 + PP_EPS)
        w = torch.where(g != 0, w, torch.zeros_like(w))
        alpha = (g.clamp(min=0) * w).sum((2, 3), keepdim=True)
    else:
        alpha = g.mean((2, 3), keepdim=True)
    cam = (alpha * a).sum(1, keepdim=True).clamp(min=0)
    return F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]


def _occlusion(net, x, c):
    n, _, h, w = x.shape
    total, count = torch.zeros(n, h, w), torch.zeros(h, w)
    with torch.no_grad():
        p0 = F.softmax(net(x), 1).gather(1, c[:, None])[:, 0]
        for i in _positions(h):
            for j in _positions(w):
                xo = x.clone()
                xo[:, :, i:i + PATCH, j:j + PATCH] = FILL
                d = p0 - F.softmax(net(xo), 1).gather(1, c[:, None])[:, 0]
                total[:, i:i + PATCH, j:j + PATCH] += d[:, None, None]
                count[i:i + PATCH, j:j + PATCH] += 1
    return total / count


def maps_batch(net, x, method):
    """[N, H, W] maps of `method` for images x [N, 1, H, W], explaining each predicted class."""
    with torch.no_grad():
        c = net(x).argmax(1)

    # Samples do not interact in eval mode, so one backward of the summed chosen logits gives
    # each image its own gradient.
    def score(s):
        return s.gather(1, c[:, None]).sum()

    if method in ("saliency", "guided-backprop", "deconvnet"):
        relu = {"saliency": None, "guided-backprop": _GuidedReLU.apply,
                "deconvnet": _DeconvReLU.apply}[method]
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(score(logits(net, xg, relu)), [xg])
        return g.abs().amax(1)
    if method == "integrated-gradients":
        total = torch.zeros_like(x)
        for k in range(1, IG_STEPS + 1):  # right Riemann end points, baseline 0
            xk = (k / IG_STEPS * x).requires_grad_(True)
            total += torch.autograd.grad(score(net(xk)), [xk])[0]
        return (x * total / IG_STEPS).sum(1)
    if method in ("gradcam", "gradcam++"):
        return _gradcam(net, x, score, pp=method == "gradcam++")
    if method == "guided-gradcam":
        return maps_batch(net, x, "guided-backprop") * maps_batch(net, x, "gradcam")
    if method == "occlusion":
        return _occlusion(net, x, c)
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def torch_maps(checkpoint, method, lo, hi, data):
    net = FashionCNN()
    net.load_state_dict(load_safetensors(checkpoint), strict=True)
    net.eval()
    x = load_split(data, "test")[0][lo:hi]
    return np.concatenate([maps_batch(net, x[i:i + BATCH], method).detach().numpy()
                           for i in range(0, len(x), BATCH)])


def run_nabla(build_dir, checkpoint, method, lo, hi, data=DEFAULT_DATA):
    with tempfile.TemporaryDirectory(prefix="nabla_explain_crosscheck_") as tmp:
        path = os.path.join(tmp, "maps.npy")
        cmd = [os.path.join(build_dir, "nabla"), "explain", "--checkpoint", checkpoint,
               "--method", method, "--indices", f"{lo}:{hi}", "--save-npy", path,
               "--out", os.path.join(tmp, "out")]
        if method in LAYER_METHODS:
            cmd += ["--layer", LAYER]
        if data != DEFAULT_DATA:
            cmd += ["--data", data]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"explain_crosscheck: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
        maps = np.load(path)
    if maps.dtype != np.float32 or maps.shape != (hi - lo, 28, 28):
        sys.exit(f"explain_crosscheck: nabla {method}: got {maps.dtype} {maps.shape}, "
                 f"expected float32 {(hi - lo, 28, 28)}")
    return maps


def correlation(a, b):
    """Per-image Pearson correlation of maps [N, H, W]; also which images had both constant."""
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    sa, sb = a.std(1), b.std(1)
    ca, cb = sa < 1e-12, sb < 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (a * b).mean(1) / (sa * sb)
    r = np.where(ca & cb, 1.0, np.where(ca | cb, 0.0, r))
    return r, ca & cb


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--start", type=int, default=0, help="first test image index")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    lo, hi = a.start, a.start + a.n
    if a.n < 1 or a.start < 0 or hi > 10000:
        ap.error(f"--start/--n give {lo}:{hi}, outside the 10000 test images")
    methods = a.methods.split(",")
    for method in methods:  # before any work, so a typo at the end does not waste minutes
        if method not in METHODS:
            ap.error(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    if not os.access(os.path.join(a.build_dir, "nabla"), os.X_OK):
        ap.error(f"no nabla binary in {a.build_dir} (build it, or pass --build-dir)")
    rows = []
    for method in methods:
        ours = run_nabla(a.build_dir, a.checkpoint, method, lo, hi, a.data)
        r, both_const = correlation(ours, torch_maps(a.checkpoint, method, lo, hi, a.data))
        gate = GATES.get(method)
        rows.append({"method": method, "n": len(r), "min_corr": float(r.min()),
                     "mean_corr": float(r.mean()), "worst_index": lo + int(r.argmin()),
                     "both_constant": int(both_const.sum()), "gate": gate,
                     "pass": None if gate is None else bool(r.min() >= gate)})
    ok = all(row["pass"] is not False for row in rows)
    if a.json:
        print(json.dumps({"torch_version": torch.__version__, "indices": f"{lo}:{hi}",
                          "layer": LAYER, "results": rows, "pass": ok}))
    else:
        print(f"PyTorch {torch.__version__}, test images {lo}:{hi}, Grad-CAM layer {LAYER}")
        print(f"{'method':22}{'n':>6}{'min corr':>11}{'mean corr':>11}{'worst':>7}{'const':>7}"
              f"  gate")
        for w in rows:
            verdict = "-" if w["gate"] is None else \
                f">= {w['gate']} {'pass' if w['pass'] else 'FAIL'}"
            print(f"{w['method']:22}{w['n']:>6}{w['min_corr']:>11.6f}{w['mean_corr']:>11.6f}"
                  f"{w['worst_index']:>7}{w['both_constant']:>7}  {verdict}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
