// GPU timing for the bench_cuda_* programs: CUDA events around `reps` launches on the legacy
// default stream, after one warm-up launch (module load, allocator, library heuristics).
// Each benchmark iteration reports the time of one launch through SetIterationTime, so the
// benchmarks are registered with ->UseManualTime(). Errors become SkipWithError, never aborts.
#pragma once
#ifdef NABLA_HAVE_CUDA

#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <string>

namespace nabla::bench {

inline bool cuda_ok(benchmark::State& state, cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  state.SkipWithError((std::string(what) + ": " + cudaGetErrorString(e)).c_str());
  return false;
}

// Launches per timed interval so that one interval does about `work_per_interval` units of
// work (FLOPs or bytes): at least 1, at most max_reps.
inline int reps_for(double work, double work_per_interval, int max_reps) {
  if (work >= work_per_interval) return 1;
  if (work * max_reps <= work_per_interval) return max_reps;
  return int(work_per_interval / work);
}

// Returns false (with the state marked skipped) when a CUDA call failed.
template <typename Launch>
bool time_with_events(benchmark::State& state, int reps, Launch&& launch) {
  cudaEvent_t start = nullptr, stop = nullptr;
  if (!cuda_ok(state, cudaEventCreate(&start), "cudaEventCreate") ||
      !cuda_ok(state, cudaEventCreate(&stop), "cudaEventCreate"))
    return false;
  bool ok = true;
  launch();
  if (!cuda_ok(state, cudaDeviceSynchronize(), "warm-up")) ok = false;
  if (ok) {
    for (auto _ : state) {
      cudaEventRecord(start, nullptr);
      for (int r = 0; r < reps; ++r) launch();
      cudaEventRecord(stop, nullptr);
      if (!cuda_ok(state, cudaEventSynchronize(stop), "cudaEventSynchronize")) {
        ok = false;
        break;
      }
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      state.SetIterationTime(double(ms) * 1e-3 / reps);
    }
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ok;
}

}  // namespace nabla::bench

#endif  // NABLA_HAVE_CUDA
