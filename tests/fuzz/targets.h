// The loaders that tests/fuzz exercises, each behind one entry point that takes raw bytes.
//
// Every loader reads from a path, so an entry point writes the bytes to a scratch file (or
// folder) of this process and calls the loader on it. The contract under test: a loader either
// succeeds or throws nabla::Error. Any other exception aborts the process (a libFuzzer finding);
// signals and sanitizer reports are findings by themselves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace nabla::fuzz {

struct Target {
  const char* name;  // the folder name under tests/fuzz/regressions/ and the libFuzzer target
  // Loads the bytes; returns "" when the loader accepted them, else the nabla::Error message.
  std::string (*run)(const uint8_t* data, size_t size);
  // Valid inputs made by the project's own writers: the seed corpus.
  std::vector<std::string> (*seeds)();
};

// The marker that starts run()'s result when the loader threw something other than nabla::Error
// and abort_on_finding is off.
constexpr const char* kFinding = "FINDING: ";
// On (the default, for libFuzzer): such an exception aborts. Off (the replay): run() returns
// kFinding + the exception's message.
void set_abort_on_finding(bool on);

const std::vector<Target>& targets();
const Target& target(const std::string& name);  // throws std::invalid_argument when unknown

// The scratch folder of this process (created on first use, removed at exit).
const std::string& scratch_dir();

}  // namespace nabla::fuzz
