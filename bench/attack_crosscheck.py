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

    python BIN/attack_crosscheck.py CHECKPOINT --strong [--eps 0.1] [--steps 100]
                                    [--queries 5000] [--n 1000]

With --strong, the attacks of the robust-evaluation toolbox instead, each against torchattacks
(PyPI) on the same images: APGD-CE, APGD-DLR, APGD-T, Square (L-inf), DeepFool (L2, overshoot
0.02), Carlini-Wagner L2 and AutoAttack without FAB (torchattacks.MultiAttack of APGD-CE,
APGD-T and Square, the sequence `nabla attack --method autoattack` runs). Needs a Python with
torch and torchattacks, e.g. a virtual environment from PyPI (never the engine's build).
The bar: within 1 point for the deterministic attacks (DeepFool) and 2 for the randomised
ones. torchattacks' CW has no binary search over c, so both run at c = 1 (nabla:
--cw-search 1 --cw-c 1).
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


def torchattacks_accuracy(checkpoint, method, a):
    import torchattacks  # only with --strong

    net = FashionCNN()
    net.load_state_dict(load_safetensors(checkpoint), strict=True)
    net.eval()
    x, y = load_split(a.data, "test")
    x, y = x[:a.n], y[:a.n]
    eps = a.eps
    if method == "apgd":
        atk = torchattacks.APGD(net, norm="Linf", eps=eps, steps=a.steps, loss="ce", seed=a.seed)
    elif method == "apgd-dlr":
        atk = torchattacks.APGD(net, norm="Linf", eps=eps, steps=a.steps, loss="dlr", seed=a.seed)
    elif method == "apgd-t":
        atk = torchattacks.APGDT(net, norm="Linf", eps=eps, steps=a.steps, n_classes=10,
                                 seed=a.seed)
    elif method == "square":
        atk = torchattacks.Square(net, norm="Linf", eps=eps, n_queries=a.queries, seed=a.seed)
    elif method == "deepfool":
        atk = torchattacks.DeepFool(net, steps=50, overshoot=0.02)
    elif method == "cw":
        atk = torchattacks.CW(net, c=1, kappa=0, steps=a.steps, lr=0.01)
    elif method == "autoattack":
        atk = torchattacks.MultiAttack([
            torchattacks.APGD(net, norm="Linf", eps=eps, steps=a.steps, loss="ce", seed=a.seed),
            torchattacks.APGDT(net, norm="Linf", eps=eps, steps=a.steps, n_classes=10,
                               seed=a.seed),
            torchattacks.Square(net, norm="Linf", eps=eps, n_queries=a.queries, seed=a.seed)])
    else:
        raise ValueError(method)
    adv = succ = 0
    for i in range(0, len(x), 250):
        xb, yb = x[i:i + 250], y[i:i + 250]
        xa = atk(xb, yb)
        with torch.no_grad():
            pred = net(xa).argmax(1)
        adv += (pred == yb).sum().item()
        succ += (pred != yb).sum().item()
    return adv / len(x), succ / len(x)


def strong(a):
    rows = []
    for method in ("apgd", "apgd-dlr", "apgd-t", "square", "deepfool", "cw", "autoattack"):
        cmd = [os.path.join(a.build_dir, "nabla"), "attack", "--checkpoint", a.checkpoint,
               "--method", method, "--eps", str(a.eps), "--n", str(a.n), "--show", "0",
               "--json", "--seed", str(a.seed), "--target-classes", "9",
               "--out", os.path.join("/tmp", f"nabla_attack_crosscheck_{os.getpid()}")]
        if method in ("apgd", "apgd-dlr", "apgd-t", "autoattack", "cw"):
            cmd += ["--steps", str(a.steps)]
        if method == "deepfool":
            cmd += ["--steps", "50"]
        if method in ("square", "autoattack"):
            cmd += ["--queries", str(a.queries)]
        if method == "cw":
            cmd += ["--cw-search", "1", "--cw-c", "1"]
        if a.data != DEFAULT_DATA:
            cmd += ["--data", a.data]
        ours = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        t_adv, t_succ = torchattacks_accuracy(a.checkpoint, method, a)
        rows.append({"method": method, "eps": a.eps, "n": ours["n"],
                     "nabla_adv": ours["adv_accuracy"], "torchattacks_adv": t_adv,
                     "diff_points": 100 * (ours["adv_accuracy"] - t_adv)})
        r = rows[-1]
        print(f"{r['method']:10s} eps={r['eps']} n={r['n']} adversarial accuracy: "
              f"nabla={r['nabla_adv']:.4f} torchattacks={r['torchattacks_adv']:.4f} "
              f"diff={r['diff_points']:+.2f} points", flush=True)
    if a.json:
        import torchattacks
        print(json.dumps({"torch_version": torch.__version__,
                          "torchattacks_version": torchattacks.__version__, "results": rows}))


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
    ap.add_argument("--strong", action="store_true",
                    help="APGD, APGD-T, Square, DeepFool, CW, AutoAttack (no FAB) against "
                         "torchattacks")
    ap.add_argument("--queries", type=int, default=5000, help="--strong: Square's budget")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.strong:
        strong(a)
        return
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
