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
--cw-search 1 --cw-c 1). DeepFool is also compared with a PyTorch transcription of the
authors' algorithm (deepfool_authors below), which torchattacks departs from: it drops the
1e-4 that carries each step past the boundary and applies the overshoot to each step.
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


def deepfool_authors(checkpoint, a, steps=50, overshoot=0.02):
    """DeepFool L2 as Moosavi-Dezfooli et al.'s code runs it, with the clip to [0, 1] that nabla
    adds: per image, r_i = (|f'_l| / ||w_l|| + 1e-4) w_l / ||w_l||, r = r + r_i, and the next point
    is clip(x0 + (1 + overshoot) r). The adversarial accuracy nabla's `deepfool` must match."""
    net = FashionCNN()
    net.load_state_dict(load_safetensors(checkpoint), strict=True)
    net.eval()
    x, y = load_split(a.data, "test")
    x, y = x[:a.n], y[:a.n]
    robust = 0
    for i in range(len(x)):
        x0, label = x[i:i + 1].double(), int(y[i])
        r, cur = torch.zeros_like(x0), x0.clone()
        for _ in range(steps):
            xi = cur.float().requires_grad_(True)
            f = net(xi)[0]
            if int(f.argmax()) != label:
                break
            jac = torch.stack([torch.autograd.grad(f[k], xi, retain_graph=True)[0][0]
                               for k in range(f.numel())]).double()
            w = (jac - jac[label]).flatten(1)
            fd = (f.detach().double() - f[label].detach().double()).abs()
            dist = fd / w.norm(dim=1)
            dist[label] = float("inf")
            k = int(dist.argmin())
            r = r + ((dist[k] + 1e-4) * w[k] / w[k].norm()).view_as(x0)
            cur = (x0 + (1 + overshoot) * r).clamp(0, 1)
        with torch.no_grad():
            robust += int(int(net(cur.float()).argmax(1)) == label)
    return robust / len(x)


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
    adv = succ = adv_batched = 0
    for i in range(0, len(x), 250):
        xb, yb = x[i:i + 250], y[i:i + 250]
        xa = atk(xb, yb)
        with torch.no_grad():
            batched = net(xa).argmax(1)
            # torchattacks' DeepFool decides each image alone (a forward pass of one image) and
            # applies the overshoot to each step, not to the total, so it stops within float
            # rounding of the decision boundary; a batch of 250 rounds the logits differently and
            # flips many of those points back. Judge each image as the attack did.
            pred = (torch.cat([net(xa[j:j + 1]) for j in range(len(xa))]).argmax(1)
                    if method == "deepfool" else batched)
        adv += (pred == yb).sum().item()
        succ += (pred != yb).sum().item()
        adv_batched += (batched == yb).sum().item()
    return adv / len(x), succ / len(x), adv_batched / len(x)


STRONG = ("apgd", "apgd-dlr", "apgd-t", "square", "deepfool", "cw", "autoattack")


def strong(a):
    bad = [m for m in a.methods.split(",") if m not in STRONG]
    if bad:
        sys.exit(f"attack_crosscheck.py: unknown --methods {','.join(bad)} (choose from "
                 f"{','.join(STRONG)})")
    rows = []
    for method in a.methods.split(","):
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
        t_adv, t_succ, t_adv_batched = torchattacks_accuracy(a.checkpoint, method, a)
        rows.append({"method": method, "eps": a.eps, "n": ours["n"],
                     "nabla_adv": ours["adv_accuracy"], "torchattacks_adv": t_adv,
                     "torchattacks_adv_batched": t_adv_batched,
                     "diff_points": 100 * (ours["adv_accuracy"] - t_adv)})
        r = rows[-1]
        extra = (f" (torchattacks judged in batches of 250: {t_adv_batched:.4f})"
                 if t_adv_batched != t_adv else "")
        if method == "deepfool":
            r["authors_adv"] = deepfool_authors(a.checkpoint, a)
            extra += (f"; the authors' algorithm in PyTorch: {r['authors_adv']:.4f}, "
                      f"nabla - it = {100 * (r['nabla_adv'] - r['authors_adv']):+.2f} points")
        print(f"{r['method']:10s} eps={r['eps']} n={r['n']} adversarial accuracy: "
              f"nabla={r['nabla_adv']:.4f} torchattacks={r['torchattacks_adv']:.4f} "
              f"diff={r['diff_points']:+.2f} points{extra}", flush=True)
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
    ap.add_argument("--methods", default=",".join(STRONG),
                    help="--strong: comma-separated subset of " + ",".join(STRONG))
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
