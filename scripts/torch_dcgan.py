#!/usr/bin/env python3
"""Check that nabla's DCGAN checkpoints load into PyTorch modules with the reference's keys.

  python3 scripts/torch_dcgan.py check --generator G.safetensors --z z.npy --images images.npy
                                 [--labels labels.npy] [--discriminator D.safetensors] [--json]
      Builds pytorch/examples' DCGAN generator at 32x32 (nn.Sequential `main`, one up stage
      fewer than the 64x64 example) with nz, ngf and nc read from the checkpoint's shapes, loads
      G.safetensors with load_state_dict(strict=True), and turns z.npy (float32 [n, nz, 1, 1];
      for a conditional generator with labels.npy, the one-hot of the labels is appended) into
      images in eval mode. Prints the largest difference from images.npy (what `nabla gan sample
      --save-npy` wrote) and fails when it exceeds --tol (1e-4). With --discriminator, also loads
      the discriminator strictly (its Sigmoid, main.9, has no parameters) and runs it on the
      images.

Needs PyTorch (Debian: python3-torch) and numpy.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_fashioncnn import load_safetensors  # noqa: E402  (the same safetensors reader)


class Generator(nn.Module):
    """pytorch/examples dcgan Generator with one stage fewer: 1 -> 4 -> 8 -> 16 -> 32."""

    def __init__(self, nz, ngf, nc):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.main(z)


class Discriminator(nn.Module):
    """pytorch/examples dcgan Discriminator with one stage fewer: 32 -> 16 -> 8 -> 4 -> 1."""

    def __init__(self, nc, ndf):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.main(x)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--generator", required=True)
    c.add_argument("--z", required=True)
    c.add_argument("--images", required=True)
    c.add_argument("--labels")
    c.add_argument("--discriminator")
    c.add_argument("--tol", type=float, default=1e-4)
    c.add_argument("--json", action="store_true")
    a = ap.parse_args()

    torch.set_grad_enabled(False)
    sd = load_safetensors(a.generator)
    w0, w9 = sd["main.0.weight"], sd["main.9.weight"]
    nz_in, ngf, nc = w0.shape[0], w0.shape[1] // 4, w9.shape[1]
    g = Generator(nz_in, ngf, nc)
    g.load_state_dict(sd, strict=True)
    g.eval()
    z = torch.from_numpy(np.load(a.z))
    if a.labels:
        y = torch.from_numpy(np.load(a.labels)).long()
        k = nz_in - z.shape[1]
        z = torch.cat([z, torch.nn.functional.one_hot(y, k).float().reshape(-1, k, 1, 1)], 1)
    ours = torch.from_numpy(np.load(a.images))
    theirs = g(z)
    if theirs.shape != ours.shape:
        sys.exit(f"torch_dcgan: PyTorch's images {list(theirs.shape)} vs {a.images} {list(ours.shape)}")
    diff = (theirs - ours).abs().max().item()
    out = {"n": int(z.shape[0]), "nz_in": int(nz_in), "ngf": int(ngf), "max_abs_diff": diff,
           "tol": a.tol, "strict": True}
    if a.discriminator:
        dsd = load_safetensors(a.discriminator)
        d = Discriminator(dsd["main.0.weight"].shape[1], dsd["main.0.weight"].shape[0])
        d.load_state_dict(dsd, strict=True)
        d.eval()
        if d.main[0].in_channels == nc:
            p = d(theirs)
            out["d_mean_sigmoid"] = p.mean().item()
        out["discriminator_loaded"] = True
    print(json.dumps(out) if a.json else
          f"PyTorch's generator loaded {a.generator} strictly; largest difference from "
          f"{a.images}: {diff:.3g} (tolerance {a.tol:g})")
    sys.exit(0 if diff <= a.tol else 1)


if __name__ == "__main__":
    main()
