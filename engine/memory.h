// A caching allocator: size classes, reuse of freed blocks, statistics.
//
// Every tensor allocation goes through one of these (host memory now; the CUDA backend wraps
// cudaMalloc in another). Freed blocks are kept in per-class free lists and handed out again,
// so a training loop that allocates the same shapes every step stops asking the system for
// memory after the first step: no page faults on fresh host pages, no cudaMalloc per op.
//
//   size classes  requests round up to a multiple of 512 bytes below 1 MiB; above, to one of
//                 four steps per power of two (1, 1.25, 1.5, 1.75 x 2^k), so at most 25% waste
//   reuse         a block serves only requests of its own class (no splitting)
//   statistics    in use (bytes handed out), reserved (in use + cached), peak in use,
//                 allocation and system-call counts
//   failure       when the system refuses, the cache is released and the request retried;
//                 if that fails too, nabla::Error names the request and the statistics
//   fences        optional, for memory a device reads asynchronously (pinned host blocks):
//                 deallocate() records a fence (a CUDA event after the work queued so far) and
//                 the block is handed out again only once the fence has passed, as PyTorch's
//                 CachingHostAllocator does; until then a request of its class gets another
//                 block, and only when the system refuses are the fences waited for
// Thread-safe (one mutex): data loaders may free tensors on other threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace nabla {

struct MemoryStats {
  size_t in_use = 0;    // bytes of live blocks (rounded sizes)
  size_t reserved = 0;  // bytes obtained from the system: in use + cached
  size_t peak_in_use = 0;
  int64_t allocations = 0;    // allocate() calls
  int64_t system_allocs = 0;  // calls that had to ask the system (cache misses)
  int64_t system_frees = 0;
};

class CachingAllocator {
 public:
  // raw_alloc returns nullptr on failure (never throws); raw_free releases what it returned.
  // `what` names the memory in errors ("host memory", "cuda:0 memory"). At most max_cached
  // bytes are kept in free lists; a block freed beyond that goes back to the system at once.
  // host_memory: the blocks are host memory that only the host (or, through fences, a device)
  // touches. Under AddressSanitizer the part of a block past the bytes asked for, and every
  // cached block, are then poisoned: an access past a tensor's end or into a freed one is
  // reported although the block is larger or still cached.
  CachingAllocator(std::string what, std::function<void*(size_t)> raw_alloc,
                   std::function<void(void*)> raw_free, size_t max_cached = SIZE_MAX,
                   bool host_memory = false);
  ~CachingAllocator();  // releases every block, cached or not
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // ensures: a block of at least nbytes (nbytes == 0 gives a valid minimal block), from the
  //          cache when a block of the same class is free; throws nabla::Error on failure.
  void* allocate(size_t nbytes);
  // requires: p returned by allocate() of this allocator and not yet freed (else Error).
  void deallocate(void* p);
  // Returns every cached (free) block to the system; live blocks are untouched.
  void empty_cache();
  MemoryStats stats() const;
  void reset_peak();
  // The size class of a request: what a block for nbytes really occupies.
  static size_t round_size(size_t nbytes);

  // A fence marks the point in a device's queue after which a freed block is no longer read.
  // record() returns one (nullptr: nothing pending, the block is free at once); passed() polls
  // it without blocking, wait() blocks until it has passed, release() gives it back. None of
  // them may throw or call back into this allocator.
  struct Fences {
    std::function<void*()> record;
    std::function<bool(void*)> passed;
    std::function<void(void*)> wait;
    std::function<void(void*)> release;
  };
  // Installs fences for every later deallocate().
  void set_fences(Fences f);
  // Freed blocks whose fences have not passed yet (counted in reserved, not in use).
  size_t pending_blocks() const;

 private:
  std::string what_;
  std::function<void*(size_t)> raw_alloc_;
  std::function<void(void*)> raw_free_;
  size_t max_cached_;
  bool host_memory_;
  mutable std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // class size -> free blocks
  std::unordered_map<void*, size_t> live_;               // block -> class size
  struct Pending {
    void* block;
    size_t size;
    void* fence;
  };
  Fences fences_;
  std::vector<Pending> pending_;  // freed, in the order freed, fences not yet passed
  MemoryStats stats_;
  void release_cached_locked();
  // Moves the blocks whose fences have passed (all of them, waiting, when wait is true) into
  // the free lists.
  void collect_pending_locked(bool wait);
};

// The allocator behind CPU tensors (64-byte aligned blocks). It caches at most 2 GiB of free
// blocks, or $NABLA_HOST_CACHE_MB MiB when set (0 turns caching off).
CachingAllocator& host_allocator();

// "1.5 MiB", "312 B": for messages and reports.
std::string format_bytes(size_t n);

}  // namespace nabla
