// safetensors checkpoints: the format that Python's safetensors and PyTorch read and write.
//
//   bytes [0, 8)       N, the header length, a little-endian u64
//   bytes [8, 8 + N)   a JSON object: {"__metadata__": {str: str},
//                        "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]}, ...}
//                      padded with trailing spaces
//   bytes [8 + N, ..)  the data region: tensor <name> is bytes [b, e) of it, row-major,
//                      little-endian; the entries tile the region without gaps or overlaps
//
// We write F32, F64 and I64 (with the header padded so that the data starts 8-byte aligned) and
// read F32, F64 and I64, plus F16 and BF16, which are widened to float32 on load because the engine
// has no half types (PyTorch checkpoints often hold half weights). Loading checks every field of
// the header against the file size before it allocates anything, so a corrupt or hostile file
// gives a nabla::Error naming the path and the problem, never a crash or a huge allocation.
#pragma once

#include <cstdio>
#include <functional>
#include <map>
#include <string>

#include <nabla/tensor.h>

namespace nabla::io {

using TensorMap = std::map<std::string, Tensor>;

// requires: every tensor defined; no name is "__metadata__". Tensors may live on any device and be
//   non-contiguous views (they are copied to contiguous CPU memory first).
// ensures: `path` holds a safetensors file with every tensor (dtype F32, F64 or I64), `metadata` as
//   "__metadata__" (omitted when empty), entries laid out in name order. Atomic: the bytes go to
//   <path>.tmp.<pid>.<thread>.<counter> (temp_path_for), which is flushed, synced and renamed over
//   `path`; on any error the temp file is removed, an existing file at `path` is untouched, and
//   nabla::Error names the path.
void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  TensorMap tensors;  // contiguous CPU tensors (F16/BF16 entries widened to float32)
  std::map<std::string, std::string> metadata;
};

// ensures: every tensor and the metadata of the file at `path`. Accepts any entry order, aligned
//   or unaligned data, and a space-padded header. Throws nabla::Error naming the path and the
//   problem: missing file, truncation, a header length past the end of the file or over 100 MB,
//   bad JSON, missing or mistyped fields, an unsupported dtype, offsets out of range or
//   disagreeing with shape x dtype size, overlapping entries, or bytes that no entry covers.
SafetensorsFile load_safetensors(const std::string& path);

// Copies a loaded state dict into the tensors of a model, by name.
// requires: dst and src hold the same names, with equal shapes; `what` names the source in errors
//   (e.g. the checkpoint path).
// ensures: each dst tensor holds the values of the src tensor of the same name, converted to the
//   dst dtype and device as copy_ does (an F64 file fills F32 parameters). Outside autograd.
//   Otherwise throws nabla::Error listing every missing name, every unexpected name and every
//   shape mismatch ("conv1.weight: expected [32, 1, 3, 3], file has [16, 1, 3, 3]"), and copies
//   nothing.
void copy_into(const TensorMap& dst, const TensorMap& src, const std::string& what);

// The atomic write behind every file the io module produces (checkpoints, PNGs).
// requires: `fill` writes the whole content through the FILE* it is given.
// ensures: `path` holds exactly what fill wrote: it goes to <path>.tmp.<pid>.<thread>.<counter>
// (temp_path_for), which is flushed,
//   fsync'ed and renamed over `path`. If opening, fill (by throwing or by a stream error), flushing
//   or renaming fails, the temp file is removed, an existing `path` is untouched, and nabla::Error
//   names `op` and the path.
// requires: `text` is JSON read from a file (not yet parsed).
// ensures: returns when no '[' or '{' outside strings opens past `max_depth` levels; otherwise
//   throws nabla::Error "<what>: the JSON nests deeper than <max_depth> levels". Run it before
//   parsing untrusted JSON: nlohmann's dump() recurses once per level, so a value nested 10^6 deep
//   would overflow the stack in an error message.
void check_json_depth(const std::string& what, const std::string& text, int max_depth);

void write_file_atomic(const std::string& path, const std::string& op,
                       const std::function<void(std::FILE*)>& fill);

}  // namespace nabla::io
