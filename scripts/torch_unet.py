#!/usr/bin/env python3
"""Check that nabla's U-Net checkpoints and PyTorch's are interchangeable.

The reference module below has the structure and state_dict keys of milesial/Pytorch-UNet's
UNet(n_channels, n_classes, bilinear) (DoubleConv / Down / Up / OutConv with the attribute names
double_conv, maxpool_conv, up, conv), its widths 64..1024 scaled to base * (1, 2, 4, 8, 16).

  python3 scripts/torch_unet.py logits CHECKPOINT INPUT.npy OUT.npy
      Builds the reference UNet whose widths CHECKPOINT holds, loads it with
      load_state_dict(strict=True), and writes its eval-mode logits on INPUT.npy ([N, C, H, W]
      float32) to OUT.npy.

  python3 scripts/torch_unet.py init OUT.safetensors --base B --classes K [--channels 3]
                                [--bilinear] [--seed S]
      Saves a freshly initialised reference UNet with random batch-norm statistics (so that eval
      mode is not the identity), for nabla to load.

  python3 scripts/torch_unet.py eval-dir CHECKPOINT DIR [--json]
      DIR holds images.npy, masks.npy and pred.npy as `nabla segment eval --save-npy DIR` writes
      them. Loads CHECKPOINT strictly, predicts on images.npy, and reports the share of pixels
      where its class equals pred.npy, and the mIoU recomputed from pred.npy and masks.npy (over
      classes 1..K-1, and over all classes; classes absent from both the truth and the prediction
      are left out of the mean).

  python3 scripts/torch_unet.py predict CHECKPOINT DIR OUT.npy
      Writes the reference module's predicted classes on DIR/images.npy (int64 [N, H, W]).

Needs PyTorch (Debian: python3-torch) and numpy.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_fashioncnn import load_safetensors, save_safetensors  # noqa: E402


class DoubleConv(nn.Module):
    def __init__(self, cin, cout, cmid=None):
        super().__init__()
        cmid = cmid or cout
        self.double_conv = nn.Sequential(
            nn.Conv2d(cin, cmid, 3, padding=1, bias=False), nn.BatchNorm2d(cmid), nn.ReLU(),
            nn.Conv2d(cmid, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, cin, cout, bilinear):
        super().__init__()
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(cin, cout, cin // 2)
        else:
            self.up = nn.ConvTranspose2d(cin, cin // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(cin, cout)

    def forward(self, low, skip):
        low = self.up(low)
        dy = skip.shape[2] - low.shape[2]
        dx = skip.shape[3] - low.shape[3]
        low = F.pad(low, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, low], dim=1))


class OutConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=1)

    def forward(self, x):
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, n_channels, n_classes, bilinear=False, base=64):
        super().__init__()
        b, f = base, (2 if bilinear else 1)
        self.inc = DoubleConv(n_channels, b)
        self.down1 = Down(b, 2 * b)
        self.down2 = Down(2 * b, 4 * b)
        self.down3 = Down(4 * b, 8 * b)
        self.down4 = Down(8 * b, 16 * b // f)
        self.up1 = Up(16 * b, 8 * b // f, bilinear)
        self.up2 = Up(8 * b, 4 * b // f, bilinear)
        self.up3 = Up(4 * b, 2 * b // f, bilinear)
        self.up4 = Up(2 * b, b, bilinear)
        self.outc = OutConv(b, n_classes)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        y = self.up1(x5, x4)
        y = self.up2(y, x3)
        y = self.up3(y, x2)
        y = self.up4(y, x1)
        return self.outc(y)


def load(path):
    sd = load_safetensors(path)
    w_in, w_out = sd["inc.double_conv.0.weight"], sd["outc.conv.weight"]
    net = UNet(w_in.shape[1], w_out.shape[0], bilinear="up1.up.weight" not in sd,
               base=w_in.shape[0])
    net.load_state_dict(sd, strict=True)
    return net.eval()


def predict(net, images, batch=32):
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            out.append(net(torch.from_numpy(images[i:i + batch])).argmax(1).numpy())
    return np.concatenate(out).astype(np.int64)


def miou(pred, masks, k, skip_background):
    ious = []
    for c in range(1 if skip_background else 0, k):
        p, t = pred == c, masks == c
        union = np.logical_or(p, t).sum()
        if union > 0:
            ious.append(np.logical_and(p, t).sum() / union)
    return float(np.mean(ious)) if ious else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    lg = sub.add_parser("logits")
    lg.add_argument("checkpoint")
    lg.add_argument("input")
    lg.add_argument("out")
    ini = sub.add_parser("init")
    ini.add_argument("out")
    ini.add_argument("--base", type=int, default=16)
    ini.add_argument("--classes", type=int, default=6)
    ini.add_argument("--channels", type=int, default=3)
    ini.add_argument("--bilinear", action="store_true")
    ini.add_argument("--seed", type=int, default=0)
    ev = sub.add_parser("eval-dir")
    ev.add_argument("checkpoint")
    ev.add_argument("dir")
    ev.add_argument("--json", action="store_true")
    pr = sub.add_parser("predict")
    pr.add_argument("checkpoint")
    pr.add_argument("dir")
    pr.add_argument("out")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))

    if a.cmd == "logits":
        net = load(a.checkpoint)
        with torch.no_grad():
            y = net(torch.from_numpy(np.load(a.input).astype(np.float32)))
        np.save(a.out, y.numpy())
    elif a.cmd == "init":
        torch.manual_seed(a.seed)
        net = UNet(a.channels, a.classes, a.bilinear, a.base)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
                m.num_batches_tracked.fill_(7)
        save_safetensors({k: v.detach().contiguous() for k, v in net.state_dict().items()}, a.out)
    elif a.cmd == "predict":
        np.save(a.out, predict(load(a.checkpoint), np.load(os.path.join(a.dir, "images.npy"))))
    else:
        net = load(a.checkpoint)
        images = np.load(os.path.join(a.dir, "images.npy"))
        masks = np.load(os.path.join(a.dir, "masks.npy"))
        pred = np.load(os.path.join(a.dir, "pred.npy"))
        theirs = predict(net, images)
        k = net.outc.conv.out_channels
        r = {"n": int(len(images)), "agreement": float((theirs == pred).mean()),
             "miou": miou(pred, masks, k, True), "miou_all": miou(pred, masks, k, False),
             "torch_version": torch.__version__}
        print(json.dumps(r) if a.json else
              f"PyTorch {torch.__version__}: same class on {100 * r['agreement']:.3f}% of pixels; "
              f"mIoU from pred.npy {r['miou']:.4f} (nuclei), {r['miou_all']:.4f} (all classes)")


if __name__ == "__main__":
    main()
