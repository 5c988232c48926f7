// The block scheduler of the CUDA emulator: one fiber per CUDA thread, blocks one after another.
//
// A block runs in rounds. In a round every runnable fiber runs, in the race probe's order
// (forward, reverse or shuffled), until it reaches __syncthreads, a warp intrinsic, or the end
// of the kernel. Then:
//   1. warp intrinsics whose lanes have all arrived complete: their values are exchanged
//      through the warp's slots and the lanes become runnable (next round);
//   2. otherwise, if every thread that has not returned waits at one __syncthreads, the barrier
//      opens;
//   3. anything else is a fault, reported with the kernel, the block and the source lines:
//      lanes waiting at a shuffle for a lane that exited or that waits at a barrier, a barrier
//      reached after some threads returned, threads waiting at different barriers.
// A thread's value of a shuffle is read only after the round in which all its lanes arrived,
// and a lane cannot arrive at its next warp intrinsic before it has read, so one slot per lane
// is enough.
//
// Context switches: a few instructions of x86-64 assembly that push the callee-saved registers
// and swap stack pointers (swapcontext also saves the signal mask, a system call per switch).
// The floating-point control state (MXCSR, x87 control word) is not switched: device code never
// changes it, so every fiber runs with the host thread's. Under AddressSanitizer every switch is
// announced with __sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber.
#include "emu_internal.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define CUDA_EMU_ASAN 1
#else
#define CUDA_EMU_ASAN 0
#endif

#if !defined(__x86_64__)
#error "the CUDA emulator's fiber switch is written for x86-64"
#endif

uint3 threadIdx{0, 0, 0};
uint3 blockIdx{0, 0, 0};
dim3 blockDim;
dim3 gridDim;

extern "C" {
// Saves the callee-saved state on the current stack, stores the stack pointer in *save, and
// continues on the stack `load` (a pointer saved by an earlier switch, or a new fiber's frame).
void cuda_emu_switch(void** save, void* load);
// First code of a new fiber: calls r13(r12).
void cuda_emu_fiber_start();
}

__asm__(R"(
  .text
  .globl cuda_emu_switch
  .type cuda_emu_switch, @function
cuda_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cuda_emu_switch, .-cuda_emu_switch

  .globl cuda_emu_fiber_start
  .type cuda_emu_fiber_start, @function
cuda_emu_fiber_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size cuda_emu_fiber_start, .-cuda_emu_fiber_start
  .section .note.GNU-stack,"",@progbits
  .text
)");

namespace cuda_emu::detail {

namespace {

// ---------------------------------------------------------------- stacks

// A fiber stack with a guard page below it: an overflow faults instead of corrupting the
// neighbour. ASan builds need more room (redzones around every local array).
constexpr size_t kStackBytes = CUDA_EMU_ASAN ? 256 << 10 : 64 << 10;

struct Stack {
  char* base = nullptr;  // lowest usable byte
  size_t size = 0;
  // Offset of the first frame below the top. Stacks lie a multiple of the page size apart, so
  // their tops would all fall into the same L1 cache sets: the offsets spread them.
  size_t color = 0;
  bool dirty = false;  // a fiber was abandoned on it: ASan may still mark its frames poisoned
};

class StackPool {
 public:
  Stack* get() {
    if (free_.empty()) {
      const size_t page = size_t(sysconf(_SC_PAGESIZE));
      void* m = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (m == MAP_FAILED) {
        std::fprintf(stderr, "cuda emulator: cannot map a fiber stack\n");
        std::abort();
      }
      mprotect(m, page, PROT_NONE);
      all_.push_back(std::make_unique<Stack>());
      Stack* s = all_.back().get();
      s->base = static_cast<char*>(m) + page;
      s->size = kStackBytes;
      s->color = (all_.size() % 64) * 64;
      return s;
    }
    Stack* s = free_.back();
    free_.pop_back();
#if CUDA_EMU_ASAN
    if (s->dirty) ASAN_UNPOISON_MEMORY_REGION(s->base, s->size);
#endif
    s->dirty = false;
    return s;
  }
  void put(Stack* s) {
    free_.push_back(s);
  }

 private:
  std::vector<std::unique_ptr<Stack>> all_;
  std::vector<Stack*> free_;
};

// ---------------------------------------------------------------- fibers and blocks

enum class State : uint8_t { kNew, kReady, kBarrier, kWarp, kDone };

struct Where {
  const char* file = "";
  unsigned line = 0, column = 0;
  bool operator==(const Where& o) const {
    return line == o.line && column == o.column &&
           (file == o.file || std::strcmp(file, o.file) == 0);
  }
};

Where where(const Site& s) {
  return {s.file_name(), unsigned(s.line()), unsigned(s.column())};
}

std::string str(const Where& w) {
  const char* slash = std::strrchr(w.file, '/');
  return std::string(slash ? slash + 1 : w.file) + ":" + std::to_string(w.line);
}

struct Fiber {
  void* sp = nullptr;
  Stack* stack = nullptr;
  State state = State::kNew;
  uint3 tid{0, 0, 0};
  int linear = 0;
  // At a barrier or warp intrinsic: where, and for the latter which one, its mask and value.
  Where site;
  const char* what = "";
  unsigned mask = 0;
  uint64_t slot = 0;
#if CUDA_EMU_ASAN
  void* fake_stack = nullptr;
#endif
};

// Everything about the launch and block being run. One at a time: the runtime runs queued
// work under its lock.
struct Run {
  const LaunchDesc* launch = nullptr;
  std::vector<Fiber> fibers;
  int threads = 0, warps = 0;
  std::vector<uint64_t> exchange;  // [warps][32]: the values of the last completed intrinsic
  Fiber* current = nullptr;
  void* scheduler_sp = nullptr;
  int at_barrier = 0, at_warp = 0, done = 0;  // threads of the block in each state
  bool abort = false;
  std::string error;
  // A fault raised by a thread (device_fault); the scheduler turns it into `error`.
  const Fiber* fault_fiber = nullptr;
  std::string fault_text;
  Where fault_site;
  std::vector<unsigned char> dynamic_shared;  // resized per launch; exact size for ASan
  unsigned char* dynamic_shared_ptr = nullptr;
#if CUDA_EMU_ASAN
  void* scheduler_fake_stack = nullptr;
  const void* scheduler_bottom = nullptr;
  size_t scheduler_size = 0;
#endif
};

Run g_run;
StackPool g_stacks;
int64_t g_launches = 0;

// ---------------------------------------------------------------- switching

extern "C" [[noreturn]] void cuda_emu_fiber_main(Fiber* f);

int64_t g_switches = 0;

void resume(Fiber& f) {
  ++g_switches;
  threadIdx = f.tid;
  g_run.current = &f;
#if CUDA_EMU_ASAN
  __sanitizer_start_switch_fiber(&g_run.scheduler_fake_stack, f.stack->base, f.stack->size);
#endif
  cuda_emu_switch(&g_run.scheduler_sp, f.sp);
#if CUDA_EMU_ASAN
  __sanitizer_finish_switch_fiber(g_run.scheduler_fake_stack, nullptr, nullptr);
#endif
  g_run.current = nullptr;
}

// From a fiber back to the scheduler; returns when the scheduler resumes this fiber.
void yield(Fiber& f) {
#if CUDA_EMU_ASAN
  __sanitizer_start_switch_fiber(&f.fake_stack, g_run.scheduler_bottom, g_run.scheduler_size);
#endif
  cuda_emu_switch(&f.sp, g_run.scheduler_sp);
#if CUDA_EMU_ASAN
  __sanitizer_finish_switch_fiber(f.fake_stack, &g_run.scheduler_bottom, &g_run.scheduler_size);
#endif
}

// Leaves a fiber for good (finished or abandoned after a fault).
[[noreturn]] void leave(Fiber& f) {
#if CUDA_EMU_ASAN
  __sanitizer_start_switch_fiber(nullptr, g_run.scheduler_bottom, g_run.scheduler_size);
#endif
  cuda_emu_switch(&f.sp, g_run.scheduler_sp);
  __builtin_unreachable();
}

extern "C" [[noreturn]] void cuda_emu_fiber_main(Fiber* f) {
#if CUDA_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &g_run.scheduler_bottom, &g_run.scheduler_size);
#endif
  g_run.launch->body->run();
  f->state = State::kDone;
  ++g_run.done;
  leave(*f);
}

void start(Fiber& f) {
  f.stack = g_stacks.get();
  // The frame cuda_emu_switch pops: r15 ... rbp, then the return address. After the return
  // the stack pointer is `top`, 16-byte aligned, as the call in cuda_emu_fiber_start needs.
  auto top = (reinterpret_cast<uintptr_t>(f.stack->base + f.stack->size - f.stack->color) - 64) &
             ~uintptr_t(15);
  uint64_t* sp = reinterpret_cast<uint64_t*>(top);
  sp[-1] = reinterpret_cast<uint64_t>(&cuda_emu_fiber_start);
  sp[-2] = 0;                                                 // rbp
  sp[-3] = 0;                                                 // rbx
  sp[-4] = reinterpret_cast<uint64_t>(&f);                    // r12: the argument
  sp[-5] = reinterpret_cast<uint64_t>(&cuda_emu_fiber_main);  // r13: the function
  sp[-6] = 0;                                                 // r14
  sp[-7] = 0;                                                 // r15
  f.sp = &sp[-7];
  f.state = State::kReady;
}

// ---------------------------------------------------------------- faults

std::string block_str() {
  std::ostringstream os;
  os << "kernel " << g_run.launch->name << " (launched at "
     << str(Where{g_run.launch->file, unsigned(g_run.launch->line), 0}) << "), grid (" << gridDim.x
     << "," << gridDim.y << "," << gridDim.z << "), block (" << blockDim.x << "," << blockDim.y
     << "," << blockDim.z << "), in block (" << blockIdx.x << "," << blockIdx.y << "," << blockIdx.z
     << ")";
  return os.str();
}

std::string thread_str(const Fiber& f) {
  std::ostringstream os;
  os << "thread (" << f.tid.x << "," << f.tid.y << "," << f.tid.z << ") [warp " << f.linear / 32
     << " lane " << f.linear % 32 << "]";
  return os.str();
}

void fail(const std::string& what) {
  if (!g_run.abort) g_run.error = block_str() + ": " + what;
  g_run.abort = true;
}

// A summary of where the threads of the block stand, for deadlock reports.
std::string census() {
  std::map<std::string, int> groups;
  for (const Fiber& f : g_run.fibers) {
    std::string k;
    switch (f.state) {
      case State::kDone:
        k = "returned";
        break;
      case State::kBarrier:
        k = "wait at __syncthreads (" + str(f.site) + ")";
        break;
      case State::kWarp:
        k = "wait at " + std::string(f.what) + " (" + str(f.site) + ")";
        break;
      default:
        k = "runnable";
        break;
    }
    ++groups[k];
  }
  std::string s;
  for (const auto& [k, n] : groups) s += (s.empty() ? "" : ", ") + std::to_string(n) + " " + k;
  return s;
}

// ---------------------------------------------------------------- order of the race probe

struct Rng {
  uint64_t s;
  uint64_t next() {  // splitmix64
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

Order g_order = Order::kForward;
uint64_t g_seed = 1;
bool g_order_read = false;

void read_order() {
  if (g_order_read) return;
  g_order_read = true;
  if (const char* e = std::getenv("NABLA_EMU_ORDER")) {
    const std::string v = e;
    if (v == "reverse")
      g_order = Order::kReverse;
    else if (v == "shuffle")
      g_order = Order::kShuffle;
    else if (v == "forward" || v.empty())
      g_order = Order::kForward;
    else {
      std::fprintf(stderr, "NABLA_EMU_ORDER=%s: expected forward, reverse or shuffle\n", e);
      std::exit(2);
    }
  }
  if (const char* e = std::getenv("NABLA_EMU_SEED")) g_seed = std::strtoull(e, nullptr, 10);
}

void fill_order(std::vector<int>& order, int n, Rng& rng) {
  order.resize(size_t(n));
  for (int i = 0; i < n; ++i) order[size_t(i)] = g_order == Order::kReverse ? n - 1 - i : i;
  if (g_order == Order::kShuffle)
    for (int i = n - 1; i > 0; --i)
      std::swap(order[size_t(i)], order[rng.next() % uint64_t(i + 1)]);
}

// ---------------------------------------------------------------- one block

// Completes the warp intrinsics whose lanes have all arrived; returns whether any did.
bool release_warps() {
  bool released = false;
  for (int w = 0; w < g_run.warps && !g_run.abort; ++w) {
    Fiber* lanes = &g_run.fibers[size_t(w) * 32];
    const int nl = std::min(32, g_run.threads - w * 32);
    for (int l = 0; l < nl; ++l) {
      const Fiber& f = lanes[l];
      if (f.state != State::kWarp) continue;
      const unsigned m = f.mask;
      bool ready = true;
      for (int k = 0; k < nl && ready; ++k) {
        if (!(m >> k & 1u)) continue;
        const Fiber& g = lanes[k];
        if (g.state == State::kDone) {
          fail(thread_str(f) + " waits at " + f.what + " (" + str(f.site) + ") with mask 0x" +
               [&] {
                 char b[16];
                 std::snprintf(b, sizeof b, "%08x", m);
                 return std::string(b);
               }() +
               ", but lane " + std::to_string(k) + " of the mask has exited");
          return false;
        }
        if (g.state != State::kWarp) {
          ready = false;  // still running elsewhere, or at a barrier (a deadlock if it stays)
        } else if (g.mask != m || !(g.site == f.site) || std::strcmp(g.what, f.what) != 0) {
          fail("divergent warp intrinsics: " + thread_str(f) + " is at " + f.what + " (" +
               str(f.site) + ") and " + thread_str(g) + " at " + g.what + " (" + str(g.site) +
               ") with masks that overlap");
          return false;
        }
      }
      if (!ready) continue;
      uint64_t* ex = &g_run.exchange[size_t(w) * 32];
      for (int k = 0; k < nl; ++k)
        if (m >> k & 1u) {
          ex[k] = lanes[k].slot;
          lanes[k].state = State::kReady;
          --g_run.at_warp;
        }
      released = true;
    }
  }
  return released;
}

// Runs the block blockIdx; returns false after a fault (g_run.error says which).
bool run_block(Rng& rng, std::vector<int>& order) {
  for (Fiber& f : g_run.fibers) f.state = State::kNew;
  g_run.at_barrier = g_run.at_warp = g_run.done = 0;
  if (!g_run.dynamic_shared.empty())  // garbage, as on the GPU: 0xFF bytes read as NaN
    std::memset(g_run.dynamic_shared.data(), 0xFF, g_run.dynamic_shared.size());
  auto abandon = [&] {
    for (Fiber& f : g_run.fibers)
      if (f.stack) {
        f.stack->dirty = true;
        g_stacks.put(f.stack);
        f.stack = nullptr;
      }
    return false;
  };
  for (;;) {
    if (g_order == Order::kShuffle) fill_order(order, g_run.threads, rng);
    for (int i : order) {
      Fiber& f = g_run.fibers[size_t(i)];
      if (f.state == State::kNew)
        start(f);
      else if (f.state != State::kReady)
        continue;
      resume(f);
      if (g_run.fault_fiber) {
        g_run.error = block_str() + ": " + thread_str(*g_run.fault_fiber) + " at " +
                      str(g_run.fault_site) + ": " + g_run.fault_text;
        g_run.fault_fiber = nullptr;
      }
      if (g_run.abort) return abandon();
      if (f.state == State::kDone) {
        g_stacks.put(f.stack);
        f.stack = nullptr;
      }
    }
    // Nobody is runnable now.
    if (g_run.at_warp > 0) {
      if (release_warps()) continue;
      if (!g_run.abort)
        fail("deadlock: lanes wait at a warp intrinsic for lanes that never arrive (" + census() +
             ")");
      return abandon();
    }
    if (g_run.at_barrier == 0) return true;  // every thread returned
    const Fiber* first = nullptr;
    for (const Fiber& f : g_run.fibers)
      if (f.state == State::kBarrier) {
        first = &f;
        break;
      }
    if (g_run.done > 0) {
      fail("__syncthreads (" + str(first->site) + ") reached by " +
           std::to_string(g_run.at_barrier) + " threads after " + std::to_string(g_run.done) +
           " threads of the block returned: a barrier must be reached by every thread (" +
           census() + ")");
      return abandon();
    }
    for (Fiber& f : g_run.fibers) {
      if (!(f.site == first->site)) {
        fail("divergent __syncthreads: " + thread_str(*first) + " waits at " + str(first->site) +
             ", " + thread_str(f) + " at " + str(f.site) + " (" + census() + ")");
        return abandon();
      }
      f.state = State::kReady;
    }
    g_run.at_barrier = 0;
  }
}

}  // namespace

// ---------------------------------------------------------------- device side

void block_barrier(const Site& site) {
  Fiber& f = *g_run.current;
  f.state = State::kBarrier;
  f.site = where(site);
  ++g_run.at_barrier;
  yield(f);
}

int lane_id() {
  return g_run.current->linear & 31;
}

// The fiber never resumes, so nothing it holds is destroyed: messages are built in a static
// buffer, not in strings a leak checker would report.
[[noreturn]] void device_fault(const char* what, const Site& site) {
  Fiber& f = *g_run.current;
  g_run.fault_fiber = &f;
  g_run.fault_text = what;  // g_run's string, not one on this stack
  g_run.fault_site = where(site);
  g_run.abort = true;
  leave(f);
}

const uint64_t* warp_exchange(unsigned mask, uint64_t value, const char* what, const Site& site) {
  Fiber& f = *g_run.current;
  const int lane = f.linear & 31, warp = f.linear >> 5;
  const int lanes = std::min(32, g_run.threads - warp * 32);
  static char msg[256];
  if (!(mask >> lane & 1u)) {
    std::snprintf(msg, sizeof msg, "%s with mask 0x%08x, which leaves out the calling lane", what,
                  mask);
    device_fault(msg, site);
  }
  if (lanes < 32 && (mask >> lanes) != 0) {
    std::snprintf(msg, sizeof msg,
                  "%s with mask 0x%08x names lanes %d..31, which this block (%d threads) does "
                  "not have",
                  what, mask, lanes, g_run.threads);
    device_fault(msg, site);
  }
  f.state = State::kWarp;
  f.mask = mask;
  f.slot = value;
  f.what = what;
  f.site = where(site);
  ++g_run.at_warp;
  yield(f);
  return &g_run.exchange[size_t(warp) * 32];
}

void* dynamic_shared() {
  return g_run.dynamic_shared_ptr;
}

// ---------------------------------------------------------------- launches

Order current_order() {
  read_order();
  return g_order;
}
uint64_t current_seed() {
  read_order();
  return g_seed;
}
int64_t launches_run() {
  return g_launches;
}
int64_t fiber_switches() {
  return g_switches;
}

std::string run_launch(const LaunchDesc& launch) {
  read_order();
  ++g_launches;
  const LaunchConfig& c = launch.cfg;
  g_run.launch = &launch;
  g_run.abort = false;
  g_run.error.clear();
  blockDim = c.block;
  gridDim = c.grid;
  g_run.threads = int(c.block.x * c.block.y * c.block.z);
  g_run.warps = (g_run.threads + 31) / 32;
  g_run.fibers.assign(size_t(g_run.threads), Fiber{});
  for (int i = 0; i < g_run.threads; ++i) {
    Fiber& f = g_run.fibers[size_t(i)];
    f.linear = i;
    f.tid = {unsigned(i) % c.block.x, unsigned(i) / c.block.x % c.block.y,
             unsigned(i) / (c.block.x * c.block.y)};
  }
  g_run.exchange.assign(size_t(g_run.warps) * 32, 0);
  // A separate vector of exactly the requested size, so that ASan reports an overrun.
  g_run.dynamic_shared = std::vector<unsigned char>(c.smem);
  g_run.dynamic_shared_ptr = c.smem ? g_run.dynamic_shared.data() : nullptr;

  const uint64_t gx = c.grid.x, gy = c.grid.y, gz = c.grid.z, total = gx * gy * gz;
  Rng rng{g_seed * 0x2545F4914F6CDD1Dull + uint64_t(g_launches)};
  // Shuffled block order: i -> (a i + b) mod total with a coprime to total, a bijection.
  uint64_t a = 1, b = 0;
  if (g_order == Order::kShuffle && total > 1) {
    b = rng.next() % total;
    a = rng.next() % total | 1;
    while (std::gcd(a, total) != 1) a = a + 2 < total ? a + 2 : 1;  // 1 ends it
  }
  std::vector<int> order;
  fill_order(order, g_run.threads, rng);  // forward and reverse: the same for every round
  for (uint64_t i = 0; i < total; ++i) {
    uint64_t k = i;
    if (g_order == Order::kReverse)
      k = total - 1 - i;
    else if (g_order == Order::kShuffle)
      k = uint64_t((unsigned __int128)(a)*i % total + b) % total;
    blockIdx = {unsigned(k % gx), unsigned(k / gx % gy), unsigned(k / (gx * gy))};
    if (!run_block(rng, order)) break;
  }
  g_run.launch = nullptr;
  g_run.fibers.clear();
  return g_run.abort ? g_run.error : std::string();
}

}  // namespace cuda_emu::detail

namespace cuda_emu {
void set_order(Order o, uint64_t seed) {
  detail::read_order();
  detail::g_order = o;
  detail::g_seed = seed;
}
}  // namespace cuda_emu
