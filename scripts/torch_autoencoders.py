#!/usr/bin/env python3
"""The autoencoders of nets/aae.h and nets/vae.h as PyTorch modules, for interop checks.

  python3 scripts/torch_autoencoders.py run KIND CKPT IN.npy OUT.npy
      Builds the module KIND with its sizes read from the checkpoint's shapes, loads CKPT (a
      safetensors file) with load_state_dict(strict=True) and writes its output on IN.npy:
        aae-encoder        x [n, 784] or [n, 1, 28, 28] -> z [n, d]
        aae-decoder        z [n, d] -> sigmoid(logits) [n, 1, 28, 28]
        aae-discriminator  z [n, d + K] -> logit [n, 1]
        vae-encode         x -> concat(mu, logvar) [n, 2 d]
        vae-decode         z [n, d] -> sigmoid(logits) [n, 1, 28, 28]
  python3 scripts/torch_autoencoders.py init KIND OUT.safetensors --hidden H --latent D
                                        [--in-features F] [--seed S]
      Writes a freshly initialized module's state_dict (PyTorch's default initialization),
      for the other direction (nabla loads PyTorch's file).

The AAE's networks are nn.Sequential `main` of Linear-ReLU-Linear-ReLU-Linear (Makhzani et al.
2015); the VAE is pytorch/examples' vae/main.py with the hidden width and latent size as
arguments (fc1, fc21, fc22, fc3, fc4). Needs PyTorch (Debian: python3-torch) and numpy.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_fashioncnn import load_safetensors, save_safetensors  # noqa: E402


def mlp(n_in, h, n_out):
    return nn.Sequential(nn.Linear(n_in, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                         nn.Linear(h, n_out))


class Encoder(nn.Module):
    def __init__(self, h, d):
        super().__init__()
        self.main = mlp(784, h, d)

    def forward(self, x):
        return self.main(x.reshape(-1, 784))


class Decoder(nn.Module):
    def __init__(self, h, d):
        super().__init__()
        self.main = mlp(d, h, 784)

    def forward(self, z):
        return torch.sigmoid(self.main(z)).reshape(-1, 1, 28, 28)


class Discriminator(nn.Module):
    def __init__(self, n_in, h):
        super().__init__()
        self.main = mlp(n_in, h, 1)

    def forward(self, z):
        return self.main(z)


class VAE(nn.Module):
    """pytorch/examples' VAE, hidden 400 and latent 20 there."""

    def __init__(self, h=400, d=20):
        super().__init__()
        self.fc1 = nn.Linear(784, h)
        self.fc21 = nn.Linear(h, d)
        self.fc22 = nn.Linear(h, d)
        self.fc3 = nn.Linear(d, h)
        self.fc4 = nn.Linear(h, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x.reshape(-1, 784)))
        return self.fc21(h1), self.fc22(h1)

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))).reshape(-1, 1, 28, 28)


def build(kind, h, d, n_in):
    if kind == "aae-encoder":
        return Encoder(h, d)
    if kind == "aae-decoder":
        return Decoder(h, d)
    if kind == "aae-discriminator":
        return Discriminator(n_in, h)
    if kind in ("vae-encode", "vae-decode", "vae"):
        return VAE(h, d)
    sys.exit(f"torch_autoencoders: unknown kind {kind}")


def sizes(kind, sd):
    """(hidden, latent, in_features) from a state dict's shapes."""
    if kind.startswith("vae"):
        return sd["fc1.weight"].shape[0], sd["fc21.weight"].shape[0], 784
    w0, w4 = sd["main.0.weight"], sd["main.4.weight"]
    if kind == "aae-encoder":
        return w0.shape[0], w4.shape[0], 784
    if kind == "aae-decoder":
        return w0.shape[0], w0.shape[1], w0.shape[1]
    return w0.shape[0], 0, w0.shape[1]


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("kind")
    r.add_argument("checkpoint")
    r.add_argument("input")
    r.add_argument("out")
    i = sub.add_parser("init")
    i.add_argument("kind")
    i.add_argument("out")
    i.add_argument("--hidden", type=int, required=True)
    i.add_argument("--latent", type=int, default=2)
    i.add_argument("--in-features", type=int, default=0)
    i.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    torch.set_grad_enabled(False)
    if a.cmd == "init":
        torch.manual_seed(a.seed)
        m = build(a.kind, a.hidden, a.latent, a.in_features)
        save_safetensors({k: v.contiguous() for k, v in m.state_dict().items()}, a.out)
        return
    sd = load_safetensors(a.checkpoint)
    h, d, n_in = sizes(a.kind, sd)
    m = build(a.kind, h, d, n_in)
    m.load_state_dict(sd, strict=True)
    m.eval()
    x = torch.from_numpy(np.load(a.input))
    if a.kind == "vae-encode":
        y = torch.cat(m.encode(x), 1)
    elif a.kind == "vae-decode":
        y = m.decode(x)
    else:
        y = m(x)
    np.save(a.out, y.numpy())


if __name__ == "__main__":
    main()
