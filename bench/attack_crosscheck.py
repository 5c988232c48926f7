#!/usr/bin/env python3
"""FGSM in nabla and in PyTorch on the same checkpoint and the same test images.

    python3 bench/attack_crosscheck.py CHECKPOINT [--eps 0.1] [--build-dir build] [--n 10000]

Runs `nabla attack --method fgsm --eps E --json` and the same attack in PyTorch (loss summed
over the batch, x' = clamp(x + eps * sign(dL/dx), 0, 1)), on the first N Fashion-MNIST test
images, and prints both adversarial accuracies and their difference in percentage points.
Issue 5's acceptance: within 1 point at eps = 0.1. Needs PyTorch (python3-torch).
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


def torch_fgsm(checkpoint, eps, n, data):
    net = FashionCNN()
    net.load_state_dict(load_safetensors(checkpoint), strict=True)
    net.eval()
    x, y = load_split(data, "test")
    x, y = x[:n], y[:n]
    clean = adv = 0
    for i in range(0, len(x), 500):
        xb, yb = x[i:i + 500].clone().requires_grad_(True), y[i:i + 500]
        logits = net(xb)
        loss = F.cross_entropy(logits, yb, reduction="sum")
        (g,) = torch.autograd.grad(loss, [xb])
        xa = (xb.detach() + eps * g.sign()).clamp(0, 1)
        with torch.no_grad():
            clean += (logits.argmax(1) == yb).sum().item()
            adv += (net(xa).argmax(1) == yb).sum().item()
    return clean / len(x), adv / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    cmd = [os.path.join(a.build_dir, "nabla"), "attack", "--checkpoint", a.checkpoint,
           "--method", "fgsm", "--eps", str(a.eps), "--n", str(a.n), "--show", "0", "--json",
           "--out", os.path.join("/tmp", f"nabla_attack_crosscheck_{os.getpid()}")]
    if a.data != DEFAULT_DATA:
        cmd += ["--data", a.data]
    ours = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    t_clean, t_adv = torch_fgsm(a.checkpoint, a.eps, a.n, a.data)
    diff = 100 * (ours["adv_accuracy"] - t_adv)
    r = {"eps": a.eps, "n": ours["n"], "nabla_clean": ours["clean_accuracy"],
         "torch_clean": t_clean, "nabla_adv": ours["adv_accuracy"], "torch_adv": t_adv,
         "diff_points": diff, "torch_version": torch.__version__}
    if a.json:
        print(json.dumps(r))
    else:
        print(f"fgsm eps={a.eps} n={r['n']} clean: nabla={r['nabla_clean']:.4f} "
              f"torch={t_clean:.4f}  adversarial: nabla={r['nabla_adv']:.4f} torch={t_adv:.4f} "
              f"diff={diff:+.2f} points")


if __name__ == "__main__":
    main()
