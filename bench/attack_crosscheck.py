#!/usr/bin/env python3
"""FGSM and PGD-10 in nabla and in PyTorch on the same checkpoint and the same test images.

    python3 bench/attack_crosscheck.py CHECKPOINT [--eps 0.1] [--alpha 0.01] [--steps 10]
                                       [--build-dir build] [--n 10000] [--json]

Runs `nabla attack --method fgsm|pgd ... --no-early-stop --json` and the same attacks written
in PyTorch (loss summed over the batch; FGSM x' = clamp(x + eps sign(dL/dx), 0, 1); PGD: steps
of alpha sign(dL/dx) from x, projected on the eps-box and [0, 1], no random start) on the first
N Fashion-MNIST test images, and prints the adversarial accuracies and their difference in
percentage points. The bar: within 1 point for FGSM at eps 0.1 and PGD-10 at eps 0.1, alpha
0.01. Needs PyTorch (python3-torch).
"""
import argparse
import json
import os
import subprocess
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from torch_fashioncnn import DEFAULT_DATA, FashionCNN, load_safetensors, load_split  # noqa: E402


def torch_attack(checkpoint, method, eps, alpha, steps, n, data):
    net = FashionCNN()
    net.load_state_dict(load_safetensors(checkpoint), strict=True)
    net.eval()
    x, y = load_split(data, "test")
    x, y = x[:n], y[:n]
    clean = adv = 0
    for i in range(0, len(x), 500):
        x0, yb = x[i:i + 500], y[i:i + 500]
        xa = x0.clone()
        for _ in range(1 if method == "fgsm" else steps):
            xa.requires_grad_(True)
            loss = F.cross_entropy(net(xa), yb, reduction="sum")
            (g,) = torch.autograd.grad(loss, [xa])
            with torch.no_grad():
                step = eps if method == "fgsm" else alpha
                xa = torch.min(torch.max(xa + step * g.sign(), x0 - eps), x0 + eps).clamp(0, 1)
        with torch.no_grad():
            clean += (net(x0).argmax(1) == yb).sum().item()
            adv += (net(xa).argmax(1) == yb).sum().item()
    return clean / len(x), adv / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    for method in ("fgsm", "pgd"):
        cmd = [os.path.join(a.build_dir, "nabla"), "attack", "--checkpoint", a.checkpoint,
               "--method", method, "--eps", str(a.eps), "--alpha", str(a.alpha), "--steps",
               str(a.steps), "--n", str(a.n), "--no-early-stop", "--show", "0", "--json",
               "--out", os.path.join("/tmp", f"nabla_attack_crosscheck_{os.getpid()}")]
        if a.data != DEFAULT_DATA:
            cmd += ["--data", a.data]
        ours = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        t_clean, t_adv = torch_attack(a.checkpoint, method, a.eps, a.alpha, a.steps, a.n, a.data)
        rows.append({"method": method if method == "fgsm" else f"pgd-{a.steps}", "eps": a.eps,
                     "alpha": a.alpha if method == "pgd" else a.eps, "n": ours["n"],
                     "nabla_clean": ours["clean_accuracy"], "torch_clean": t_clean,
                     "nabla_adv": ours["adv_accuracy"], "torch_adv": t_adv,
                     "diff_points": 100 * (ours["adv_accuracy"] - t_adv)})
    if a.json:
        print(json.dumps({"torch_version": torch.__version__, "results": rows}))
        return
    for r in rows:
        print(f"{r['method']} eps={r['eps']} alpha={r['alpha']} n={r['n']} clean: "
              f"nabla={r['nabla_clean']:.4f} torch={r['torch_clean']:.4f}  adversarial: "
              f"nabla={r['nabla_adv']:.4f} torch={r['torch_adv']:.4f} "
              f"diff={r['diff_points']:+.2f} points")


if __name__ == "__main__":
    main()
