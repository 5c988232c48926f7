#!/usr/bin/env python3
"""Model-randomisation sanity check of the explanation maps (Adebayo et al., "Sanity checks for
saliency maps", 2018): does a map depend on what the network learned, or only on the image?

    python3 bench/explain_sanity.py TRAINED UNTRAINED [--n 200] [--class 0]
                                    [--methods M,M,...] [--build-dir build] [--data DIR] [--json]

Runs `nabla explain --method M --indices 0:N --class C --save-npy` on both checkpoints (the
same images, the same class explained everywhere, so only the weights differ) and prints, per
method, the mean Pearson correlation over each image's pixels of
  - the trained map with the untrained map, and
  - each map with the input image itself.
A method whose untrained maps already correlate strongly with the image draws the image's edges
whatever the weights: such a picture says little about the model. Maps that are constant (an
all-zero Grad-CAM) are left out of the means and counted. Needs numpy; reads the test images
with scripts/torch_fashioncnn.py (which needs PyTorch).

An untrained checkpoint: `nabla classify train --epochs 1 --train-limit 64 --out DIR` (one SGD
step on 64 images from PyTorch's default initialisation).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from torch_fashioncnn import DEFAULT_DATA, load_split  # noqa: E402

METHODS = ("saliency", "smoothgrad", "integrated-gradients", "guided-backprop", "gradcam",
           "occlusion")


def maps(build_dir, checkpoint, method, n, cls, data, tmp):
    path = os.path.join(tmp, f"{os.getpid()}-{abs(hash(checkpoint))}-{method}.npy")
    cmd = [os.path.join(build_dir, "nabla"), "explain", "--checkpoint", checkpoint, "--method",
           method, "--indices", f"0:{n}", "--class", str(cls), "--save-npy", path, "--show", "0",
           "--out", tmp, "--json"]
    if data != DEFAULT_DATA:
        cmd += ["--data", data]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return np.load(path).reshape(n, -1).astype(np.float64)


def mean_corr(a, b):
    """Mean per-row Pearson correlation over rows where neither is constant, and how many were."""
    keep = (a.std(1) > 1e-12) & (b.std(1) > 1e-12)
    if not keep.any():
        return float("nan"), int((~keep).sum())
    cs = [np.corrcoef(a[i], b[i])[0, 1] for i in np.flatnonzero(keep)]
    return float(np.mean(cs)), int((~keep).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trained")
    ap.add_argument("untrained")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--class", dest="cls", type=int, default=0)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    x, _ = load_split(a.data, "test")
    images = x[:a.n].numpy().reshape(a.n, -1).astype(np.float64)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for m in a.methods.split(","):
            t = maps(a.build_dir, a.trained, m, a.n, a.cls, a.data, tmp)
            u = maps(a.build_dir, a.untrained, m, a.n, a.cls, a.data, tmp)
            tu, _ = mean_corr(t, u)
            ti, c2 = mean_corr(t, images)
            ui, c3 = mean_corr(u, images)
            rows.append({"method": m, "trained_vs_untrained": tu, "trained_vs_image": ti,
                         "untrained_vs_image": ui, "constant_maps": c2 + c3})
    if a.json:
        print(json.dumps({"n": a.n, "class": a.cls, "rows": rows}))
        return
    print(f"{a.n} test images, class {a.cls} explained; mean per-image correlation")
    print(f"{'method':22s} {'trained~untrained':>18s} {'trained~image':>14s} "
          f"{'untrained~image':>16s} {'const':>6s}")
    for r in rows:
        print(f"{r['method']:22s} {r['trained_vs_untrained']:18.3f} {r['trained_vs_image']:14.3f} "
              f"{r['untrained_vs_image']:16.3f} {r['constant_maps']:6d}")


if __name__ == "__main__":
    main()
