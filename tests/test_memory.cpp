// The caching allocator: size classes, reuse, statistics, the cache limit, failure and misuse
// errors, and the steady state of a training loop on the host allocator.
#include <algorithm>
#include <cstdlib>
#include <set>

#include <nabla/memory.h>
#include <nabla/nabla.h>
#include <nets/classifier.h>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;

namespace {

// A system allocator that counts and can be told to refuse.
struct FakeSystem {
  int64_t allocs = 0, frees = 0;
  bool refuse = false;
  size_t refuse_above = SIZE_MAX;
  std::set<void*> live;
  CachingAllocator make(size_t max_cached = SIZE_MAX) {
    return CachingAllocator(
        "fake memory",
        [this](size_t n) -> void* {
          if (refuse || n > refuse_above) return nullptr;
          ++allocs;
          void* p = std::malloc(n);
          live.insert(p);
          return p;
        },
        [this](void* p) {
          ++frees;
          live.erase(p);
          std::free(p);
        },
        max_cached);
  }
};

}  // namespace

TEST_CASE("size classes: 512-byte steps below 1 MiB, four per octave above") {
  CHECK(CachingAllocator::round_size(0) == 512);
  CHECK(CachingAllocator::round_size(1) == 512);
  CHECK(CachingAllocator::round_size(513) == 1024);
  CHECK(CachingAllocator::round_size(1000000) == 1000448);
  CHECK(CachingAllocator::round_size(1 << 20) == 1 << 20);
  CHECK(CachingAllocator::round_size((1 << 20) + 1) == (1 << 20) + (1 << 18));
  CHECK(CachingAllocator::round_size(3 << 20) == 3 << 20);
  CHECK(CachingAllocator::round_size((3 << 20) + 1) == (7 << 19));
  for (size_t n : {size_t(1) << 21, size_t(5000000), size_t(123456789)}) {
    const size_t r = CachingAllocator::round_size(n);
    CHECK(r >= n);
    CHECK(double(r) <= 1.25 * double(n));
    CHECK(r % 512 == 0);
  }
}

TEST_CASE("freed blocks are reused within their class, statistics follow") {
  FakeSystem sys;
  {
    CachingAllocator a = sys.make();
    void* p = a.allocate(1000);
    CHECK(a.stats().in_use == 1024);
    a.deallocate(p);
    CHECK(a.stats().in_use == 0);
    CHECK(a.stats().reserved == 1024);
    CHECK(a.allocate(1024) == p);  // same class: the cached block
    CHECK(sys.allocs == 1);
    void* q = a.allocate(2000);  // another class: a new block
    CHECK(q != p);
    CHECK(sys.allocs == 2);
    MemoryStats s = a.stats();
    CHECK(s.in_use == 1024 + 2048);
    CHECK(s.peak_in_use == 1024 + 2048);
    CHECK(s.allocations == 3);
    CHECK(s.system_allocs == 2);
    a.deallocate(p);
    a.deallocate(q);
    CHECK(a.stats().peak_in_use == 3072);
    a.reset_peak();
    CHECK(a.stats().peak_in_use == 0);
    a.empty_cache();
    CHECK(sys.frees == 2);
    CHECK(a.stats().reserved == 0);
    a.allocate(10);  // live at destruction: released by the destructor
  }
  CHECK(sys.live.empty());
}

TEST_CASE("fences: a freed block comes back only after its fence has passed") {
  FakeSystem sys;
  // Fences are counters: fence k has passed once `done` reaches k.
  int64_t recorded = 0, done = 0, waits = 0, released = 0;
  CachingAllocator a = sys.make();
  a.set_fences({[&] { return reinterpret_cast<void*>(++recorded); },
                [&](void* f) { return done >= reinterpret_cast<int64_t>(f); },
                [&](void* f) {
                  ++waits;
                  done = std::max(done, reinterpret_cast<int64_t>(f));
                },
                [&](void*) { ++released; }});
  void* p = a.allocate(1000);
  a.deallocate(p);
  CHECK(a.pending_blocks() == 1);
  CHECK(a.stats().in_use == 0);
  CHECK(a.stats().reserved == 1024);
  // The fence has not passed: a request of the same class gets another block.
  void* q = a.allocate(1000);
  CHECK(q != p);
  CHECK(sys.allocs == 2);
  done = 1;  // the device has read p
  void* r = a.allocate(1000);
  CHECK(r == p);
  CHECK(a.pending_blocks() == 0);
  CHECK(released == 1);
  CHECK(waits == 0);
  // When the system refuses, the allocator waits for the fences instead of failing.
  a.deallocate(q);
  sys.refuse = true;
  CHECK(a.allocate(1000) == q);
  CHECK(waits == 1);
  CHECK(a.stats().system_allocs == 2);
  sys.refuse = false;
  a.deallocate(r);
  a.empty_cache();  // waits for r's fence, then returns every cached block
  CHECK(waits == 2);
  CHECK(a.pending_blocks() == 0);
  CHECK(a.stats().reserved == a.stats().in_use);
}

TEST_CASE("the cache limit sends blocks back to the system beyond it") {
  FakeSystem sys;
  CachingAllocator a = sys.make(/*max_cached=*/1536);
  void* p = a.allocate(1024);
  void* q = a.allocate(1024);
  a.deallocate(p);  // 1024 cached
  CHECK(sys.frees == 0);
  a.deallocate(q);  // 2048 would exceed 1536: released
  CHECK(sys.frees == 1);
  CHECK(a.stats().reserved == 1024);
}

TEST_CASE("out of memory: the cache is released, then a clear error, misuse is an error") {
  FakeSystem sys;
  CachingAllocator a = sys.make();
  a.deallocate(a.allocate(4096));  // one cached block
  sys.refuse_above = 1 << 20;
  check_error([&] { a.allocate(size_t(3) << 30); },
              {"out of fake memory", "3.00 GiB", "3221225472 bytes", "in use 0 B"});
  CHECK(sys.frees == 1);  // the cached block went back before giving up
  CHECK(a.stats().reserved == 0);
  void* p = a.allocate(100);
  a.deallocate(p);
  check_error([&] { a.deallocate(p); }, {"already free"});
  int x = 0;
  check_error([&] { a.deallocate(&x); }, {"not allocated here"});
}

TEST_CASE("host allocator: a training loop stops asking the system after its first steps") {
  Generator g(0);
  nets::FashionCNN net(&g);
  Tensor x = rand({16, 1, 28, 28}, DType::Float32, Device::cpu(), &g);
  Tensor y = randint(0, 10, {16}, &g);
  auto step = [&] {
    Tensor loss = cross_entropy(net(x), y);
    net.zero_grad();
    loss.backward();
  };
  for (int i = 0; i < 3; ++i) step();
  const MemoryStats before = host_allocator().stats();
  for (int i = 0; i < 5; ++i) step();
  const MemoryStats after = host_allocator().stats();
  CHECK(after.allocations > before.allocations + 5 * 20);  // every op allocates...
  CHECK(after.system_allocs == before.system_allocs);      // ...from the cache
  CHECK(after.in_use == before.in_use);                    // and nothing leaks
}
