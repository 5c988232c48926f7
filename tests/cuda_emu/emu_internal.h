// Internal interface between the emulated runtime (runtime.cpp) and the block scheduler
// (scheduler.cpp). Not seen by kernels or tests.
#pragma once

#include <cuda_emu.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

namespace cuda_emu::detail {

// One queued launch, as enqueue_launch received it.
struct LaunchDesc {
  std::string name;  // the kernel expression of the source, "sgemm_warptile_kernel<Cfg, ...>"
  const char* file = "";
  int line = 0;
  LaunchConfig cfg;
  std::unique_ptr<KernelBody> body;
};

// Runs every block of the launch on fibers; returns "" or what went wrong (a barrier after a
// return, a divergent barrier, a deadlock, a bad shuffle), naming the kernel and the block.
std::string run_launch(const LaunchDesc& launch);

// The race probe's order, read from NABLA_EMU_ORDER / NABLA_EMU_SEED at first use.
Order current_order();
uint64_t current_seed();

// Kernels run, and switches from the scheduler into a fiber.
int64_t launches_run();
int64_t fiber_switches();

}  // namespace cuda_emu::detail
