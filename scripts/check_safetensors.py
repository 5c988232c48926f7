#!/usr/bin/env python3
"""Cross-check nabla's safetensors files against Python.

  python3 scripts/check_safetensors.py FILE          name, dtype, shape and sum of every tensor
  python3 scripts/check_safetensors.py --pure FILE   the same through the pure-Python parser
  python3 scripts/check_safetensors.py --write OUT   write a small file from Python, then list it

Reading uses the `safetensors` package when it imports (torch backend, or numpy without torch)
and falls back to a pure-Python parser (struct + json) otherwise, or for dtypes numpy lacks
(BF16).
Writing uses torch with safetensors.torch.save_file when both import, else a pure-Python writer
that produces the same tensors. Sums are exact for integers and math.fsum (correctly rounded)
for floats, so both sides of a comparison can be checked digit for digit.
The C++ tests never need this script.
"""
import argparse
import json
import math
import os
import struct
import sys

# (struct code, bytes per element) for the dtypes nabla reads.
FORMATS = {"F32": ("f", 4), "F64": ("d", 8), "I64": ("q", 8), "F16": ("e", 2), "BF16": (None, 2)}


def decode(dtype, buf):
    """Values of one tensor's bytes as a flat Python list."""
    code, size = FORMATS[dtype]
    n = len(buf) // size
    if dtype == "BF16":  # the upper half of a float32
        return [struct.unpack("<f", struct.pack("<I", h << 16))[0]
                for h in struct.unpack(f"<{n}H", buf)]
    return list(struct.unpack(f"<{n}{code}", buf))


def read_pure(path):
    """(metadata, [(name, dtype, shape, values)]) parsed with struct and json only."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        sys.exit(f"{path}: {len(blob)} bytes, too short for the header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        sys.exit(f"{path}: header length {n} exceeds the file ({len(blob)} bytes)")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    out = []
    for name, e in header.items():
        if e["dtype"] not in FORMATS:
            sys.exit(f"{path}: tensor {name!r} has unsupported dtype {e['dtype']}")
        begin, end = e["data_offsets"]
        size = FORMATS[e["dtype"]][1]
        if end - begin != math.prod(e["shape"]) * size or end > len(data):
            sys.exit(f"{path}: tensor {name!r}: offsets {e['data_offsets']} do not fit "
                     f"shape {e['shape']} {e['dtype']} in {len(data)} data bytes")
        out.append((name, e["dtype"], e["shape"], decode(e["dtype"], data[begin:end])))
    return metadata, out


def read_package(path):
    """The same listing through the safetensors package: torch backend when torch imports
    (it holds every dtype, BF16 included), numpy backend otherwise."""
    from safetensors import safe_open  # noqa: import only when used
    try:
        import torch  # noqa: F401
        framework = "pt"
    except ImportError:
        framework = "numpy"
    names = {"float32": "F32", "float64": "F64", "int64": "I64", "float16": "F16",
             "bfloat16": "BF16"}
    out = []
    with safe_open(path, framework=framework) as f:
        metadata = f.metadata() or {}
        for name in f.keys():
            a = f.get_tensor(name)
            dtype = str(a.dtype).replace("torch.", "")
            out.append((name, names.get(dtype, dtype), list(a.shape), a.reshape(-1).tolist()))
    return metadata, out, framework


def checksum(dtype, values):
    return sum(values) if dtype == "I64" else math.fsum(values)


def list_file(path, pure):
    if not os.path.isfile(path):
        sys.exit(f"{path}: no such file")
    reader = "pure-Python"
    metadata, tensors = None, None
    if not pure:
        try:
            metadata, tensors, framework = read_package(path)
            reader = f"safetensors package ({framework} backend)"
        except ImportError:
            pass
        except Exception as err:  # e.g. BF16 under numpy, or a file the package rejects
            print(f"# safetensors package could not read it ({err}); using the pure parser")
    if tensors is None:
        metadata, tensors = read_pure(path)
    print(f"# {path} read by the {reader} reader")
    print(f"# metadata {json.dumps(metadata, sort_keys=True)}")
    for name, dtype, shape, values in sorted(tensors):
        print(f"{name} {dtype} {list(shape)} sum={checksum(dtype, values)!r}")


# The tensors --write produces: (name, dtype, shape, flat values). The values are exact in their
# dtype so that every reader must reproduce the sums exactly.
SAMPLE = [
    ("weight", "F32", [2, 3], [i / 4 for i in range(6)]),
    ("bias", "F64", [3], [0.5, -1.25, 3.0]),
    ("step", "I64", [], [12345678901234]),
    ("empty", "F32", [0, 4], []),
    ("half", "F16", [3], [1.0, -2.0, 0.333251953125]),
    ("bf16", "BF16", [2], [1.0, 3.140625]),
    ("transposed", "F32", [4, 3], [float(r + 4 * c) for r in range(4) for c in range(3)]),
]
METADATA = {"format": "pt", "written_by": "check_safetensors.py"}


def write_torch(out):
    import torch
    from safetensors.torch import save_file
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64,
              "F16": torch.float16, "BF16": torch.bfloat16}
    tensors = {name: torch.tensor(values, dtype=dtypes[dt]).reshape(shape)
               for name, dt, shape, values in SAMPLE}
    save_file(tensors, out, metadata=METADATA)


def write_pure(out):
    header, chunks, offset = {"__metadata__": METADATA}, [], 0
    for name, dt, shape, values in SAMPLE:
        if dt == "BF16":
            raw = b"".join(struct.pack("<H", struct.unpack("<I", struct.pack("<f", v))[0] >> 16)
                           for v in values)
        else:
            raw = struct.pack(f"<{len(values)}{FORMATS[dt][0]}", *values)
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", help="safetensors file to list")
    ap.add_argument("--write", metavar="OUT", help="write a small sample file, then list it")
    ap.add_argument("--pure", action="store_true", help="use only the pure-Python code paths")
    args = ap.parse_args()
    if not args.file and not args.write:
        ap.error("give FILE or --write OUT")
    if args.write:
        try:
            if args.pure:
                raise ImportError("--pure")
            write_torch(args.write)
            print(f"# wrote {args.write} with torch + safetensors.torch.save_file")
        except ImportError:
            write_pure(args.write)
            print(f"# wrote {args.write} with the pure-Python writer")
        list_file(args.write, args.pure)
    if args.file:
        list_file(args.file, args.pure)


if __name__ == "__main__":
    main()
