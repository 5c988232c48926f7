// One libFuzzer binary per loader: compiled with -DNABLA_FUZZ_TARGET="<name>" (see targets.cpp
// for the names) and -fsanitize=fuzzer,address,undefined by scripts/fuzz.sh.
#include <cstdlib>

#include "targets.h"

#ifndef NABLA_FUZZ_TARGET
#error "define NABLA_FUZZ_TARGET to a target name of tests/fuzz/targets.cpp"
#endif

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Decoded PNGs are capped at 16 MiB here (256 MiB by default) so that every input stays far
  // below libFuzzer's -rss_limit_mb; the cap itself is what the check under test is.
  setenv("NABLA_PNG_MAX_BYTES", "16777216", 0);
  setenv("OMP_NUM_THREADS", "1", 0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nabla::fuzz::Target& t = nabla::fuzz::target(NABLA_FUZZ_TARGET);
  t.run(data, size);
  return 0;
}
