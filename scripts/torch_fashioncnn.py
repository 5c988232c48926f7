#!/usr/bin/env python3
"""Check that nabla's FashionCNN checkpoints and PyTorch's are interchangeable.

  python3 scripts/torch_fashioncnn.py eval CHECKPOINT [--data DIR] [--json]
      Loads CHECKPOINT (safetensors, as `nabla classify train` writes it) into a torch.nn.Module
      with attributes conv1, conv2, fc1, fc2 via load_state_dict(strict=True), and prints its
      test accuracy on the Fashion-MNIST test split. `nabla classify eval --checkpoint CHECKPOINT`
      must print the same accuracy (within 0.1 percentage point).

  python3 scripts/torch_fashioncnn.py train OUT.safetensors [--epochs 1] [--seed 0] [--train-limit N]
      Trains the same module in PyTorch (SGD, momentum 0.9) and saves its state_dict as
      safetensors, so that `nabla classify eval --checkpoint OUT.safetensors` can read it; prints
      PyTorch's own test accuracy for comparison.

Needs PyTorch (Debian: python3-torch). Uses the `safetensors` package when it is installed,
and otherwise reads and writes the format itself (8-byte little-endian header length, JSON
header, raw little-endian data).
"""
import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_DATA = os.environ.get("NABLA_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")


class FashionCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(3136, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(d, name):
    for cand in (name + ".gz", name):
        if os.path.exists(os.path.join(d, cand)):
            return os.path.join(d, cand)
    sys.exit(f"torch_fashioncnn: {name}[.gz] not found in {d}")


def load_split(d, split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(find(d, f"{prefix}-images-idx3-ubyte")).astype(np.float32) / 255.0
    y = read_idx(find(d, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def load_safetensors(path):
    try:
        from safetensors.torch import load_file
        return load_file(path)
    except ImportError:
        pass
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(raw[base + b:base + end]), dtype=_DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"])
    return out


def save_safetensors(tensors, path):
    try:
        from safetensors.torch import save_file
        save_file(tensors, path, metadata={"format": "pt"})
        return
    except ImportError:
        pass
    names = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for k in sorted(tensors):
        b = tensors[k].contiguous().numpy().tobytes()
        header[k] = {"dtype": names[tensors[k].dtype], "shape": list(tensors[k].shape),
                     "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(path + ".tmp", path)


def accuracy(net, x, y):
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            correct += (net(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item()
    return correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("eval", help="evaluate a nabla checkpoint in PyTorch")
    e.add_argument("checkpoint")
    t = sub.add_parser("train", help="train in PyTorch, save safetensors for nabla")
    t.add_argument("out")
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--train-limit", type=int, default=0, help="first N training images (0: all)")
    for p in (e, t):
        p.add_argument("--data", default=DEFAULT_DATA)
        p.add_argument("--json", action="store_true")
    a = ap.parse_args()
    xt, yt = load_split(a.data, "test")
    net = FashionCNN()
    if a.cmd == "eval":
        net.load_state_dict(load_safetensors(a.checkpoint), strict=True)
    else:
        torch.manual_seed(a.seed)
        x, y = load_split(a.data, "train")
        if a.train_limit > 0:
            x, y = x[:a.train_limit], y[:a.train_limit]
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        net.train()
        for _ in range(a.epochs):
            perm = torch.randperm(len(x))
            for i in range(0, len(x), 64):
                idx = perm[i:i + 64]
                loss = F.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        save_safetensors({k: v.detach() for k, v in net.state_dict().items()}, a.out)
    acc = accuracy(net, xt, yt)
    if a.json:
        print(json.dumps({"accuracy": acc, "n": len(xt), "torch_version": torch.__version__}))
    else:
        print(f"PyTorch {torch.__version__}: test accuracy {acc:.4f} on {len(xt)} images")


if __name__ == "__main__":
    main()
