#!/usr/bin/env bash
# CycleGAN's and pix2pix's generators between nabla and PyTorch, through the command line:
# `translate --save-npy` writes inputs.npy and outputs.npy, and scripts/torch_image2image.py
# builds the reference's class (ResnetGenerator, UnetGenerator) with the arguments the
# checkpoint's keys imply, loads it with strict=True and maps inputs.npy to outputs.npy within
# 1e-4 (eval mode). The other way, a state dict saved by PyTorch goes through `translate` and
# must match PyTorch's own outputs. Registered with CTest only where python3 can import torch.
#   tests/torch_image2image.sh BUILD_DIR PYTHON
set -euo pipefail
build="$1"
py="$2"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$(mktemp -d /tmp/nabla_torch_i2i.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
nabla="$build/nabla"
tiny=(--train-limit 8 --n_epochs 1 --n_epochs_decay 0 --ngf 4 --ndf 4 --device cpu --quiet)
check() { "$py" "$root/scripts/torch_image2image.py" check "$@"; }

# Ours -> PyTorch: CycleGAN's ResnetGenerator (instance norm), both directions of the cycle.
"$nabla" cyclegan train --task sneaker2boot "${tiny[@]}" --netG resnet_2blocks --out "$dir/cg" > /dev/null
for g in G_A G_B; do
  domain=$([ "$g" = G_A ] && echo A || echo B)
  "$nabla" cyclegan translate --checkpoint "$dir/cg/$g.safetensors" --task sneaker2boot \
    --domain "$domain" --limit 6 --out "$dir/cg_$g" --save-npy "$dir/cg_$g/npy" > /dev/null
  check "$dir/cg/$g.safetensors" --inputs "$dir/cg_$g/npy/inputs.npy" --outputs "$dir/cg_$g/npy/outputs.npy"
done

# pix2pix's UnetGenerator (batch norm, dropout) in eval mode.
"$nabla" pix2pix train --task edges2fashion "${tiny[@]}" --batch 2 --out "$dir/pp" > /dev/null
"$nabla" pix2pix translate --checkpoint "$dir/pp/G.safetensors" --task edges2fashion --limit 6 \
  --out "$dir/pp_t" --save-npy "$dir/pp_t/npy" > /dev/null
check "$dir/pp/G.safetensors" --inputs "$dir/pp_t/npy/inputs.npy" --outputs "$dir/pp_t/npy/outputs.npy"

# PyTorch -> ours: state dicts saved by the reference's classes, translated by nabla.
"$py" "$root/scripts/torch_image2image.py" init "$dir/theirs_resnet.safetensors" --net resnet \
  --ngf 4 --n_blocks 2 --norm instance --seed 1
"$nabla" cyclegan translate --checkpoint "$dir/theirs_resnet.safetensors" --task sneaker2boot \
  --limit 6 --out "$dir/tr" --save-npy "$dir/tr/npy" > /dev/null
check "$dir/theirs_resnet.safetensors" --inputs "$dir/tr/npy/inputs.npy" --outputs "$dir/tr/npy/outputs.npy"
"$py" "$root/scripts/torch_image2image.py" init "$dir/theirs_unet.safetensors" --net unet \
  --ngf 4 --num_downs 5 --norm batch --use_dropout --seed 2
"$nabla" pix2pix translate --checkpoint "$dir/theirs_unet.safetensors" --task edges2fashion \
  --limit 6 --out "$dir/tu" --save-npy "$dir/tu/npy" > /dev/null
check "$dir/theirs_unet.safetensors" --inputs "$dir/tu/npy/inputs.npy" --outputs "$dir/tu/npy/outputs.npy"

# The check can fail: another generator's outputs do not match.
if check "$dir/theirs_unet.safetensors" --inputs "$dir/pp_t/npy/inputs.npy" \
  --outputs "$dir/pp_t/npy/outputs.npy" > /dev/null; then
  echo "FAILED: the check accepted another generator's outputs"
  exit 1
fi
echo "5 passed, 0 failed"
