// Controls and counters of the CUDA emulator (tests/cuda_emu), for tests that check what the
// CUDA runtime cannot show: how often the host waited for the device, which runtime calls a
// path makes, out-of-memory at a chosen size, the thread order of the race probe.
//
// Environment (read once, at the first CUDA call):
//   NABLA_EMU_ORDER      forward (default), reverse or shuffle: the order in which the fibers
//                        of a block (and the blocks of a grid) run between two barriers
//   NABLA_EMU_SEED       seed of the shuffled order (default 1)
//   NABLA_EMU_MEMORY_MB  device memory (default 81559 MiB, an H100's 80 GB)
//   NABLA_EMU_SMS        multiprocessors the device reports (default 132, an H100's): fewer
//                        make the kernels' grid-stride loops, splits and slices take more turns
//   NABLA_EMU_QUIET      1: do not print kernel faults to stderr (they still fail the call)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace cuda_emu {

enum class Order { kForward, kReverse, kShuffle };
Order order();
void set_order(Order o, uint64_t seed = 1);

// Device memory: the cap every cudaMalloc is checked against, and what is allocated now.
void set_memory_limit(size_t bytes);
size_t memory_limit();
size_t memory_in_use();

// Times the host waited for queued work (stream, event and device synchronizations, and the
// copies that imply one), and calls of one runtime function by name ("cudaDeviceGetAttribute").
int64_t host_syncs();
int64_t api_calls(const std::string& function);

// Under AddressSanitizer, in stream order on `stream`: bytes [valid, size) of the allocation
// block p become inaccessible and [0, valid) accessible (valid = 0: the block was freed). The
// CUDA backend calls it for every block its caching allocator hands out or takes back, so a
// kernel that runs past a tensor or into a freed one is reported. Without ASan it does nothing.
void mark_allocation_async(void* p, size_t valid, size_t size, cudaStream_t stream);

// Work queued on any stream and not run yet.
int64_t pending_operations();

// Kernel launches run so far, and switches into a thread's fiber (each thread once to start,
// once more after every barrier or warp intrinsic).
int64_t kernels_run();
int64_t fiber_switches();

}  // namespace cuda_emu
