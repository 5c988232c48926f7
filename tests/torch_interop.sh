#!/usr/bin/env bash
# Checkpoints move between nabla and PyTorch, both ways, with the same test accuracy.
# Registered with CTest only where python3 can import torch (scripts/install_deps.sh --bench).
#   tests/torch_interop.sh BUILD_DIR PYTHON
set -euo pipefail
build="$1"
py="$2"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$(mktemp -d /tmp/nabla_torch_interop.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
acc() { "$py" -c 'import json, sys; print(json.load(sys.stdin)["accuracy"])'; }

# nabla writes, PyTorch reads (load_state_dict strict=True) and evaluates.
"$build/nabla" classify train --json --epochs 1 --train-limit 3000 --seed 2 --out "$dir/a" > /dev/null
ours=$("$build/nabla" classify eval --json --checkpoint "$dir/a/model.safetensors" | acc)
theirs=$("$py" "$root/scripts/torch_fashioncnn.py" eval --json "$dir/a/model.safetensors" | acc)
echo "nabla checkpoint: nabla $ours, PyTorch $theirs"

# PyTorch writes, nabla reads and evaluates.
theirs2=$("$py" "$root/scripts/torch_fashioncnn.py" train --json --epochs 1 --train-limit 5000 \
  "$dir/torch.safetensors" | acc)
ours2=$("$build/nabla" classify eval --json --checkpoint "$dir/torch.safetensors" | acc)
echo "PyTorch checkpoint: PyTorch $theirs2, nabla $ours2"

# Within 0.1 percentage point (10 of 10000 images).
"$py" - "$ours" "$theirs" "$theirs2" "$ours2" <<'PY'
import sys
a, b, c, d = map(float, sys.argv[1:])
ok = abs(a - b) <= 0.001 and abs(c - d) <= 0.001
print("2 passed, 0 failed" if ok else "FAILED: accuracies differ by more than 0.1 point")
sys.exit(0 if ok else 1)
PY
