#!/usr/bin/env bash
# DCGAN checkpoints load into PyTorch's modules with the reference's keys (strict=True), and
# PyTorch's generator turns nabla's z.npy into nabla's images.npy within 1e-4; the conditional
# generator too. Registered with CTest only where python3 can import torch.
#   tests/torch_dcgan.sh BUILD_DIR PYTHON
set -euo pipefail
build="$1"
py="$2"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$(mktemp -d /tmp/nabla_torch_dcgan.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
small=(--epochs 1 --train-limit 256 --batch 32 --ngf 8 --ndf 8 --quiet --device cpu)

"$build/nabla" gan train "${small[@]}" --seed 3 --out "$dir/dcgan" > /dev/null
"$build/nabla" gan sample --checkpoint "$dir/dcgan/generator.safetensors" --n 32 --seed 4 \
  --device cpu --out "$dir/dcgan/s" --save-npy "$dir/dcgan/npy" > /dev/null
"$py" "$root/scripts/torch_dcgan.py" check --generator "$dir/dcgan/generator.safetensors" \
  --discriminator "$dir/dcgan/discriminator.safetensors" \
  --z "$dir/dcgan/npy/z.npy" --images "$dir/dcgan/npy/images.npy"

"$build/nabla" gan train "${small[@]}" --model cgan --classes 0,7 --seed 5 --out "$dir/cgan" > /dev/null
"$build/nabla" gan sample --checkpoint "$dir/cgan/generator.safetensors" --n 12 --seed 6 \
  --device cpu --out "$dir/cgan/s" --save-npy "$dir/cgan/npy" > /dev/null
"$py" "$root/scripts/torch_dcgan.py" check --generator "$dir/cgan/generator.safetensors" \
  --z "$dir/cgan/npy/z.npy" --images "$dir/cgan/npy/images.npy" --labels "$dir/cgan/npy/labels.npy"

# The check can fail: other samples' images do not match these codes.
"$build/nabla" gan sample --checkpoint "$dir/dcgan/generator.safetensors" --n 32 --seed 5 \
  --device cpu --out "$dir/dcgan/s2" --save-npy "$dir/dcgan/npy2" > /dev/null
if "$py" "$root/scripts/torch_dcgan.py" check --generator "$dir/dcgan/generator.safetensors" \
  --z "$dir/dcgan/npy/z.npy" --images "$dir/dcgan/npy2/images.npy" > /dev/null; then
  echo "FAILED: the check accepted images of other codes"
  exit 1
fi
echo "3 passed, 0 failed"
