#!/usr/bin/env python3
"""PyTorch twins of nabla's CycleGAN and pix2pix networks (nets/image2image.h), for interop checks.

The modules below are written from the architecture that nets/image2image.h describes, with the
class names, constructor arguments and state_dict keys of junyanz/pytorch-CycleGAN-and-pix2pix
(models/networks.py): ResnetGenerator(input_nc, output_nc, ngf, norm_layer, use_dropout,
n_blocks, padding_type) with ResnetBlock, UnetGenerator(input_nc, output_nc, num_downs, ngf,
norm_layer, use_dropout) with UnetSkipConnectionBlock, NLayerDiscriminator(input_nc, ndf,
n_layers, norm_layer). norm "instance" is InstanceNorm2d(affine=False, no running statistics),
"batch" is BatchNorm2d; the network's kind and arguments are read from the checkpoint's keys and
shapes (padding_type and, for the U-Net, use_dropout are not visible in the keys: flags).

  python3 scripts/torch_image2image.py forward CHECKPOINT INPUT.npy OUT.npy [--padding_type P]
      Loads CHECKPOINT into the matching module with load_state_dict(strict=True) and writes its
      eval-mode output on INPUT.npy (float32 [N, C, H, W]) to OUT.npy.

  python3 scripts/torch_image2image.py check CHECKPOINT --inputs inputs.npy --outputs outputs.npy
                                       [--tol 1e-4] [--json]
      The same forward on inputs.npy, compared with outputs.npy (what `nabla cyclegan|pix2pix
      translate --save-npy` writes); exits 1 when the largest difference exceeds --tol.

  python3 scripts/torch_image2image.py init OUT.safetensors --net resnet|unet|nlayer
        [--input_nc 1] [--output_nc 1] [--ngf 8] [--ndf 8] [--norm instance|batch] [--n_blocks 2]
        [--num_downs 5] [--n_layers 3] [--use_dropout] [--seed 0]
      Saves a freshly built module, its weights N(0, 0.02) as the reference's init_weights draws
      them, with random biases and batch-norm statistics (so that no term is trivially zero).

  python3 scripts/torch_image2image.py batch JOBS.json
      Runs many of the above in one process (importing torch once): JOBS.json holds
      {"init": [[OUT, ARG, ...], ...], "forward": [[CHECKPOINT, INPUT, OUTPUT, ARG, ...], ...]},
      each list the arguments of one init or forward command; every init runs before the first
      forward.

Needs PyTorch (Debian: python3-torch) and numpy.
"""
import argparse
import functools
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_fashioncnn import load_safetensors, save_safetensors  # noqa: E402


def norm_factory(norm):
    if norm == "batch":
        return nn.BatchNorm2d
    return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)


def convs_have_bias(norm_layer):
    """Convolutions followed by InstanceNorm keep their bias; before BatchNorm they drop it."""
    base = norm_layer.func if isinstance(norm_layer, functools.partial) else norm_layer
    return base is nn.InstanceNorm2d


def pad_layers(padding_type):
    """(layers before a 3x3 convolution, the padding inside it) for one padding_type."""
    if padding_type == "reflect":
        return [nn.ReflectionPad2d(1)], 0
    if padding_type == "replicate":
        return [nn.ReplicationPad2d(1)], 0
    if padding_type == "zero":
        return [], 1
    raise ValueError(f"padding_type {padding_type!r}")


class ResnetBlock(nn.Module):
    def __init__(self, dim, padding_type, norm_layer, use_dropout, use_bias):
        super().__init__()
        before, p = pad_layers(padding_type)
        layers = before + [nn.Conv2d(dim, dim, 3, padding=p, bias=use_bias), norm_layer(dim),
                           nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        before, p = pad_layers(padding_type)
        layers += before + [nn.Conv2d(dim, dim, 3, padding=p, bias=use_bias), norm_layer(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False,
                 n_blocks=6, padding_type="reflect"):
        super().__init__()
        bias = convs_have_bias(norm_layer)
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), norm_layer(ngf),
                  nn.ReLU(True)]
        width = ngf
        for _ in range(2):
            layers += [nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=bias),
                       norm_layer(2 * width), nn.ReLU(True)]
            width *= 2
        layers += [ResnetBlock(width, padding_type, norm_layer, use_dropout, bias)
                   for _ in range(n_blocks)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1,
                                          output_padding=1, bias=bias),
                       norm_layer(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class UnetSkipConnectionBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False,
                 innermost=False, norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        bias = convs_have_bias(norm_layer)
        down = nn.Conv2d(outer_nc if input_nc is None else input_nc, inner_nc, 4, stride=2,
                         padding=1, bias=bias)
        if outermost:
            layers = [down, submodule, nn.ReLU(True),
                      nn.ConvTranspose2d(2 * inner_nc, outer_nc, 4, stride=2, padding=1),
                      nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias),
                      norm_layer(outer_nc)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, norm_layer(inner_nc), submodule,
                      nn.ReLU(True),
                      nn.ConvTranspose2d(2 * inner_nc, outer_nc, 4, stride=2, padding=1,
                                         bias=bias),
                      norm_layer(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm_layer=nn.BatchNorm2d,
                 use_dropout=False):
        super().__init__()
        block = UnetSkipConnectionBlock(8 * ngf, 8 * ngf, norm_layer=norm_layer, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(8 * ngf, 8 * ngf, submodule=block,
                                            norm_layer=norm_layer, use_dropout=use_dropout)
        for outer in (4, 2, 1):
            block = UnetSkipConnectionBlock(outer * ngf, 2 * outer * ngf, submodule=block,
                                            norm_layer=norm_layer)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block,
                                             outermost=True, norm_layer=norm_layer)

    def forward(self, x):
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf=64, n_layers=3, norm_layer=nn.BatchNorm2d):
        super().__init__()
        bias = convs_have_bias(norm_layer)
        layers = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for n in range(1, n_layers + 1):
            nxt = ndf * min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(width, nxt, 4, stride=stride, padding=1, bias=bias),
                       norm_layer(nxt), nn.LeakyReLU(0.2, True)]
            width = nxt
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def build_from_state(sd, padding_type="reflect", use_dropout=False):
    """The module whose keys and shapes sd holds: (kind, module, its constructor arguments)."""
    norm = "batch" if any(k.endswith("running_mean") for k in sd) else "instance"
    nl = norm_factory(norm)
    if "model.model.0.weight" in sd:
        w0 = sd["model.model.0.weight"]
        blocks, prefix = 1, "model.model.1"
        while f"{prefix}.model.1.weight" in sd:
            blocks += 1
            prefix += ".model.3"
        args = dict(input_nc=w0.shape[1], output_nc=sd["model.model.3.weight"].shape[1],
                    num_downs=blocks, ngf=w0.shape[0], norm=norm, use_dropout=use_dropout)
        return "unet", UnetGenerator(args["input_nc"], args["output_nc"], blocks, args["ngf"], nl,
                                     use_dropout), args
    if any(".conv_block." in k for k in sd):
        w1 = sd["model.1.weight"]
        idx = sorted({int(k.split(".")[1]) for k in sd if ".conv_block." in k})
        first = idx[0]
        inner = {int(k.split(".")[3]) for k in sd if k.startswith(f"model.{first}.conv_block.")
                 and sd[k].dim() == 4}
        offset = 0 if padding_type == "zero" else 1
        # The second 3x3 convolution follows [pad,] conv, norm, relu, [dropout,] [pad].
        dropout = max(inner) == 4 + 2 * offset
        last = max(int(k.split(".")[1]) for k in sd if sd[k].dim() == 4)
        args = dict(input_nc=w1.shape[1], output_nc=sd[f"model.{last}.weight"].shape[0],
                    ngf=w1.shape[0], norm=norm, use_dropout=dropout, n_blocks=len(idx),
                    padding_type=padding_type)
        return "resnet", ResnetGenerator(args["input_nc"], args["output_nc"], args["ngf"], nl,
                                         dropout, len(idx), padding_type), args
    w0 = sd["model.0.weight"]
    n_convs = sum(1 for k in sd if k.endswith(".weight") and sd[k].dim() == 4)
    args = dict(input_nc=w0.shape[1], ndf=w0.shape[0], n_layers=n_convs - 2, norm=norm)
    return "nlayer", NLayerDiscriminator(w0.shape[1], w0.shape[0], n_convs - 2, nl), args


def load(path, padding_type, use_dropout):
    sd = load_safetensors(path)
    kind, net, args = build_from_state(sd, padding_type, use_dropout)
    net.load_state_dict(sd, strict=True)
    net.eval()
    return kind, net, args


def run(argv):
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("forward")
    f.add_argument("checkpoint")
    f.add_argument("input")
    f.add_argument("output")
    c = sub.add_parser("check")
    c.add_argument("checkpoint")
    c.add_argument("--inputs", required=True)
    c.add_argument("--outputs", required=True)
    c.add_argument("--tol", type=float, default=1e-4)
    c.add_argument("--json", action="store_true")
    for p in (f, c):
        p.add_argument("--padding_type", default="reflect")
        p.add_argument("--use_dropout", action="store_true")
    i = sub.add_parser("init")
    i.add_argument("output")
    i.add_argument("--net", choices=["resnet", "unet", "nlayer"], required=True)
    i.add_argument("--input_nc", type=int, default=1)
    i.add_argument("--output_nc", type=int, default=1)
    i.add_argument("--ngf", type=int, default=8)
    i.add_argument("--ndf", type=int, default=8)
    i.add_argument("--norm", choices=["instance", "batch"], default="instance")
    i.add_argument("--n_blocks", type=int, default=2)
    i.add_argument("--num_downs", type=int, default=5)
    i.add_argument("--n_layers", type=int, default=3)
    i.add_argument("--padding_type", default="reflect")
    i.add_argument("--use_dropout", action="store_true")
    i.add_argument("--seed", type=int, default=0)
    b = sub.add_parser("batch")
    b.add_argument("jobs")
    a = ap.parse_args(argv)
    torch.set_grad_enabled(False)

    if a.cmd == "batch":
        with open(a.jobs) as f:
            jobs = json.load(f)
        for args in jobs.get("init", []):
            run(["init"] + [str(x) for x in args])
        for args in jobs.get("forward", []):
            run(["forward"] + [str(x) for x in args])
        return 0

    if a.cmd == "init":
        torch.manual_seed(a.seed)
        nl = norm_factory(a.norm)
        if a.net == "resnet":
            net = ResnetGenerator(a.input_nc, a.output_nc, a.ngf, nl, a.use_dropout, a.n_blocks,
                                  a.padding_type)
        elif a.net == "unet":
            net = UnetGenerator(a.input_nc, a.output_nc, a.num_downs, a.ngf, nl, a.use_dropout)
        else:
            net = NLayerDiscriminator(a.input_nc, a.ndf, a.n_layers, nl)
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.normal_(m.bias, 0.0, 0.05)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.normal_(m.bias, 0.0, 0.05)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(7)
        save_safetensors({k: v.contiguous() for k, v in net.state_dict().items()}, a.output)
        return 0

    kind, net, args = load(a.checkpoint, a.padding_type, a.use_dropout)
    x = torch.from_numpy(np.load(a.input if a.cmd == "forward" else a.inputs))
    y = net(x)
    if a.cmd == "forward":
        np.save(a.output, y.numpy().astype(np.float32))
        return 0
    ours = torch.from_numpy(np.load(a.outputs))
    if tuple(ours.shape) != tuple(y.shape):
        sys.exit(f"torch_image2image: PyTorch's {type(net).__name__} gives {list(y.shape)}, "
                 f"{a.outputs} holds {list(ours.shape)}")
    diff = (y - ours).abs().max().item()
    out = {"net": type(net).__name__, "args": args, "n": int(x.shape[0]), "max_abs_diff": diff,
           "tol": a.tol, "strict": True}
    print(json.dumps(out) if a.json else
          f"PyTorch's {type(net).__name__}({', '.join(f'{k}={v}' for k, v in args.items())}) "
          f"loaded {a.checkpoint} strictly; largest difference from {a.outputs}: {diff:.3g} "
          f"(tolerance {a.tol:g})")
    return 0 if diff <= a.tol else 1


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
