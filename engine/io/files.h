// Output paths: folder creation with errors that name the path and the purpose, and the unique
// temporary names of atomic writes.
#pragma once

#include <string>

namespace nabla::io {

// requires: `purpose` says what the folder is for, e.g. "the output folder (--out)".
// ensures: `dir` exists as a folder (created with its parents when missing). Otherwise throws
//   nabla::Error "cannot create <purpose> <dir>: <reason>", e.g. when a file of that name exists,
//   a parent is not writable, or the file system refuses (/proc). Never a filesystem_error.
void create_dirs(const std::string& dir, const std::string& purpose);

// A temporary file name beside `path` that no other thread or process of this machine uses at the
// same time: <path>.tmp.<pid>.<thread>.<counter>. Atomic writers (save_npy, write_file_atomic)
// write there, then rename over `path`.
std::string temp_path_for(const std::string& path);

}  // namespace nabla::io
