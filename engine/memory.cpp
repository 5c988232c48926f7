// CachingAllocator (see memory.h) and the host allocator.
#include <nabla/memory.h>

#include <bit>
#include <cstdio>
#include <cstdlib>

#include <nabla/error.h>

namespace nabla {

// AddressSanitizer's manual poisoning: defined when the program is linked with ASan (the
// emulated CUDA build with NABLA_CUDA_EMU_SANITIZE), null otherwise.
extern "C" void __asan_poison_memory_region(void const volatile* p, size_t n) __attribute__((weak));
extern "C" void __asan_unpoison_memory_region(void const volatile* p, size_t n)
    __attribute__((weak));

namespace {
constexpr size_t kSmallStep = 512;          // granularity below kLarge
constexpr size_t kLarge = size_t(1) << 20;  // 1 MiB

void poison(void* p, size_t n) {
  if (__asan_poison_memory_region && n) __asan_poison_memory_region(p, n);
}
void unpoison(void* p, size_t n) {
  if (__asan_unpoison_memory_region && n) __asan_unpoison_memory_region(p, n);
}
}  // namespace

std::string format_bytes(size_t n) {
  char buf[32];
  const double v = double(n);
  if (n < 1024)
    std::snprintf(buf, sizeof buf, "%zu B", n);
  else if (n < (size_t(1) << 20))
    std::snprintf(buf, sizeof buf, "%.1f KiB", v / 1024);
  else if (n < (size_t(1) << 30))
    std::snprintf(buf, sizeof buf, "%.1f MiB", v / (1 << 20));
  else
    std::snprintf(buf, sizeof buf, "%.2f GiB", v / (1 << 30));
  return buf;
}

size_t CachingAllocator::round_size(size_t n) {
  if (n <= kSmallStep) return kSmallStep;
  if (n < kLarge) return (n + kSmallStep - 1) / kSmallStep * kSmallStep;
  NABLA_CHECK(n <= (size_t(1) << 62), "allocate: absurd request of ", n, " bytes");
  // Four classes per octave: 2^k * {1, 1.25, 1.5, 1.75}; quarter = 2^(k-2).
  const size_t k = size_t(std::bit_width(n - 1)) - 1;  // 2^k < n <= 2^(k+1)
  const size_t quarter = size_t(1) << (k - 2);
  return (n + quarter - 1) / quarter * quarter;
}

CachingAllocator::CachingAllocator(std::string what, std::function<void*(size_t)> raw_alloc,
                                   std::function<void(void*)> raw_free, size_t max_cached,
                                   bool host_memory)
    : what_(std::move(what)),
      raw_alloc_(std::move(raw_alloc)),
      raw_free_(std::move(raw_free)),
      max_cached_(max_cached),
      host_memory_(host_memory) {}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mu_);
  collect_pending_locked(true);
  release_cached_locked();
  for (auto& [p, size] : live_) {
    if (host_memory_) unpoison(p, size);
    raw_free_(p);
  }
}

void* CachingAllocator::allocate(size_t nbytes) {
  const size_t size = round_size(nbytes);
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.allocations;
  void* p = nullptr;
  auto take_free = [&] {
    auto it = free_.find(size);
    if (it == free_.end() || it->second.empty()) return false;
    p = it->second.back();
    it->second.pop_back();
    return true;
  };
  collect_pending_locked(false);
  bool reused = take_free();
  if (!reused) {
    p = raw_alloc_(size);
    if (!p && !pending_.empty()) {
      // Blocks the device may still read: wait for their fences rather than fail.
      collect_pending_locked(true);
      reused = take_free();
      if (!reused) p = raw_alloc_(size);
    }
    if (!p) {
      // Cached blocks of other classes may be what the system lacks: give them back, retry.
      release_cached_locked();
      p = raw_alloc_(size);
    }
    if (!p) {
      throw Error("out of " + what_ + ": cannot allocate " + format_bytes(nbytes) + " (" +
                  std::to_string(nbytes) + " bytes); in use " + format_bytes(stats_.in_use) +
                  ", peak " + format_bytes(stats_.peak_in_use) +
                  " (cached blocks were released before this error)");
    }
    if (!reused) {
      ++stats_.system_allocs;
      stats_.reserved += size;
    }
  }
  if (host_memory_) {
    unpoison(p, nbytes);
    poison(static_cast<char*>(p) + nbytes, size - nbytes);
  }
  live_.emplace(p, size);
  stats_.in_use += size;
  if (stats_.in_use > stats_.peak_in_use) stats_.peak_in_use = stats_.in_use;
  return p;
}

void CachingAllocator::deallocate(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  NABLA_CHECK(it != live_.end(), "deallocate: ", what_, " block ", p,
              " was not allocated here or is already free");
  const size_t size = it->second;
  live_.erase(it);
  stats_.in_use -= size;
  void* fence = fences_.record ? fences_.record() : nullptr;
  if (fence) {
    // Not reusable (nor returnable to the system) before the device is done with it; poisoned
    // only then, as the device may still read it.
    pending_.push_back({p, size, fence});
    return;
  }
  if (host_memory_) poison(p, size);
  if (stats_.reserved - stats_.in_use > max_cached_) {
    if (host_memory_) unpoison(p, size);
    raw_free_(p);
    stats_.reserved -= size;
    ++stats_.system_frees;
    return;
  }
  free_[size].push_back(p);
}

void CachingAllocator::collect_pending_locked(bool wait) {
  size_t kept = 0;
  for (Pending& b : pending_) {
    if (wait)
      fences_.wait(b.fence);
    else if (!fences_.passed(b.fence)) {
      pending_[kept++] = b;
      continue;
    }
    fences_.release(b.fence);
    if (host_memory_) poison(b.block, b.size);
    free_[b.size].push_back(b.block);
  }
  pending_.resize(kept);
}

void CachingAllocator::set_fences(Fences f) {
  std::lock_guard<std::mutex> lock(mu_);
  collect_pending_locked(true);
  fences_ = std::move(f);
}

size_t CachingAllocator::pending_blocks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size();
}

void CachingAllocator::release_cached_locked() {
  for (auto& [size, blocks] : free_) {
    for (void* p : blocks) {
      if (host_memory_) unpoison(p, size);
      raw_free_(p);
      stats_.reserved -= size;
      ++stats_.system_frees;
    }
    blocks.clear();
  }
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  collect_pending_locked(true);
  release_cached_locked();
}

MemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_in_use = stats_.in_use;
}

CachingAllocator& host_allocator() {
  // Never destroyed: tensors with static storage duration may outlive any other static.
  static CachingAllocator* a = [] {
    size_t max_cached = size_t(2) << 30;
    if (const char* env = std::getenv("NABLA_HOST_CACHE_MB"))
      max_cached = size_t(std::atoll(env)) << 20;
    return new CachingAllocator(
        "host memory",
        // 64-byte alignment lets kernels use aligned vector loads on the first element; every
        // class size is a multiple of 512, as aligned_alloc requires of the size.
        [](size_t n) { return std::aligned_alloc(64, n); }, [](void* p) { std::free(p); },
        max_cached, /*host_memory=*/true);
  }();
  return *a;
}

}  // namespace nabla
