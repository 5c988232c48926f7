#!/usr/bin/env bash
# U-Net checkpoints move between nabla and PyTorch with the same predictions, and the mIoU that
# `nabla segment eval --json` prints is the one recomputed from the arrays it saves.
# Registered with CTest only where python3 can import torch.
#   tests/torch_unet.sh BUILD_DIR PYTHON
set -euo pipefail
build="$1"
py="$2"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$(mktemp -d /tmp/nabla_torch_unet.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
field() { "$py" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# nabla trains and evaluates; PyTorch's UNet (scripts/torch_unet.py) loads the checkpoint with
# load_state_dict(strict=True) and predicts on the saved test images.
"$build/nabla" segment train --json --epochs 2 --n-train 256 --n-val 16 --n-test 48 --base 8 \
  --threads 1 --seed 3 --out "$dir/run" > /dev/null
"$build/nabla" segment eval --json --threads 1 --checkpoint "$dir/run/model.safetensors" \
  --save-npy "$dir/npy" > "$dir/eval.json"
"$py" "$root/scripts/torch_unet.py" eval-dir "$dir/run/model.safetensors" "$dir/npy" --json \
  > "$dir/torch.json"

# PyTorch writes a checkpoint (random weights and batch-norm statistics), nabla evaluates it.
"$py" "$root/scripts/torch_unet.py" init "$dir/theirs.safetensors" --base 8 --classes 6 --seed 5
"$build/nabla" segment eval --json --threads 1 --checkpoint "$dir/theirs.safetensors" \
  --n-test 48 --seed 3 --save-npy "$dir/npy2" > /dev/null
"$py" "$root/scripts/torch_unet.py" eval-dir "$dir/theirs.safetensors" "$dir/npy2" --json \
  > "$dir/torch2.json"

"$py" - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
ours = json.load(open(d + "/eval.json"))
theirs = json.load(open(d + "/torch.json"))
theirs2 = json.load(open(d + "/torch2.json"))
print(f"nabla checkpoint: PyTorch predicts nabla's class on {100 * theirs['agreement']:.4f}% of "
      f"pixels; mIoU {ours['miou']:.6f} printed, {theirs['miou']:.6f} recomputed from pred.npy")
print(f"PyTorch checkpoint: nabla predicts PyTorch's class on {100 * theirs2['agreement']:.4f}% "
      "of pixels")
checks = [theirs["agreement"] >= 0.999,
          abs(ours["miou"] - theirs["miou"]) <= 1e-12,
          abs(ours["miou_all"] - theirs["miou_all"]) <= 1e-12,
          ours["n"] == theirs["n"] == 48,
          theirs2["agreement"] >= 0.999]
print(f"{sum(checks)} passed, {len(checks) - sum(checks)} failed")
sys.exit(0 if all(checks) else 1)
PY
