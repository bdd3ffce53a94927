// The simulator's launcher (see scheduler.h): fibers per block, barrier release rules, checked mode.
#include "scheduler.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "fiber.h"

// ---- the context switch (see fiber.h): save callee-saved registers, swap stacks, restore, return ----
#if defined(__APPLE__)
#define NEEDLE_SYM(name) "_" #name
#define NEEDLE_HIDDEN(name) ".private_extern _" #name "\n"
#else
#define NEEDLE_SYM(name) #name
#define NEEDLE_HIDDEN(name) ".hidden " #name "\n"
#endif

#if defined(__x86_64__)
asm(".text\n" NEEDLE_HIDDEN(needle_sim_switch) ".globl " NEEDLE_SYM(needle_sim_switch) "\n"
    NEEDLE_SYM(needle_sim_switch) ":\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  subq $8, %rsp\n  stmxcsr (%rsp)\n  fnstcw 4(%rsp)\n"
    "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
    "  ldmxcsr (%rsp)\n  fldcw 4(%rsp)\n  addq $8, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n  ret\n"
    NEEDLE_HIDDEN(needle_sim_fiber_start) ".globl " NEEDLE_SYM(needle_sim_fiber_start) "\n"
    NEEDLE_SYM(needle_sim_fiber_start) ":\n"
    "  movq %r12, %rdi\n  andq $-16, %rsp\n  callq *%rbx\n  ud2\n");
#elif defined(__aarch64__)
asm(".text\n" NEEDLE_HIDDEN(needle_sim_switch) ".globl " NEEDLE_SYM(needle_sim_switch) "\n"
    NEEDLE_SYM(needle_sim_switch) ":\n"
    "  sub sp, sp, #176\n"
    "  stp x19, x20, [sp, #0]\n  stp x21, x22, [sp, #16]\n  stp x23, x24, [sp, #32]\n"
    "  stp x25, x26, [sp, #48]\n  stp x27, x28, [sp, #64]\n  stp x29, x30, [sp, #80]\n"
    "  stp d8, d9, [sp, #96]\n  stp d10, d11, [sp, #112]\n  stp d12, d13, [sp, #128]\n  stp d14, d15, [sp, #144]\n"
    "  mov x9, sp\n  str x9, [x0]\n  mov sp, x1\n"
    "  ldp x19, x20, [sp, #0]\n  ldp x21, x22, [sp, #16]\n  ldp x23, x24, [sp, #32]\n"
    "  ldp x25, x26, [sp, #48]\n  ldp x27, x28, [sp, #64]\n  ldp x29, x30, [sp, #80]\n"
    "  ldp d8, d9, [sp, #96]\n  ldp d10, d11, [sp, #112]\n  ldp d12, d13, [sp, #128]\n  ldp d14, d15, [sp, #144]\n"
    "  add sp, sp, #176\n  ret\n"
    NEEDLE_HIDDEN(needle_sim_fiber_start) ".globl " NEEDLE_SYM(needle_sim_fiber_start) "\n"
    NEEDLE_SYM(needle_sim_fiber_start) ":\n"
    "  mov x0, x20\n  blr x19\n  brk #0\n");
#endif

namespace needle_sim {

std::string str(const uint3& v) {
  return "(" + std::to_string(v.x) + ", " + std::to_string(v.y) + ", " + std::to_string(v.z) + ")";
}

namespace {

constexpr size_t STACK_BYTES = 64 * 1024;
constexpr unsigned MAX_BLOCK_THREADS = 1024;
enum State { READY, WAITING, DONE };

struct Fiber {
  ThreadState t;  // first member: the kernel-facing ThreadState* is also the Fiber*
  Context ctx;
  State state;
  int wait_kind, wait_line;
};

/// One OS thread's block runner: fiber stacks (reused from block to block) and the scheduler's context.
struct Worker {
  std::vector<std::unique_ptr<Stack>> stacks;
  std::vector<Fiber> fibers;
  std::vector<uint64_t> lanes;
  Context sched;
  const KernelInfo* kernel = nullptr;
  const ArgValue* args = nullptr;
  Fiber* running = nullptr;
  std::string fault;
};

Worker& worker() {
  static thread_local Worker w;
  return w;
}

void wait_callback(ThreadState* t, int kind, int line) {
  auto* f = reinterpret_cast<Fiber*>(t);
  f->state = WAITING;
  f->wait_kind = kind;
  f->wait_line = line;
  switch_context(f->ctx, worker().sched);
}

void fiber_main(void* arg) {
  auto* f = static_cast<Fiber*>(arg);
  Worker& w = worker();
  try {
    w.kernel->invoke(w.kernel->fn, w.args, &f->t);
  } catch (const std::exception& e) {
    w.fault = e.what();
  } catch (...) {
    w.fault = "unknown C++ exception";
  }
  f->state = DONE;
  switch_context(f->ctx, w.sched);
  abort();  // a finished fiber is never resumed
}

std::string where(const KernelInfo& k, const Fiber& f) {
  return std::string(k.name) + ": thread " + str(f.t.idx) + " of block " + str(f.t.block->idx);
}

/// After every runnable fiber has stopped: release a warp whose live lanes all wait in a warp operation, or
/// the whole block when every live thread waits at the same __syncthreads(); anything else is an error.
/// Returns false when every thread has finished.
bool release(const KernelInfo& k, std::vector<Fiber>& fibers, size_t n) {
  size_t done = 0, at_block = 0;
  const Fiber *first_done = nullptr, *first_block = nullptr, *first_warp = nullptr;
  for (size_t i = 0; i < n; ++i) {
    const Fiber& f = fibers[i];
    if (f.state == DONE) {
      ++done;
      if (!first_done) first_done = &f;
    } else if (f.wait_kind == BLOCK_BARRIER) {
      ++at_block;
      if (!first_block) first_block = &f;
    } else if (!first_warp) {
      first_warp = &f;
    }
  }
  if (done == n) return false;
  bool released = false;
  for (size_t w0 = 0; w0 < n; w0 += 32) {
    const size_t w1 = std::min(n, w0 + 32);
    size_t live = 0, waiting = 0;
    for (size_t i = w0; i < w1; ++i) {
      live += fibers[i].state != DONE;
      waiting += fibers[i].state == WAITING && fibers[i].wait_kind == WARP_BARRIER;
    }
    if (waiting == 0 || waiting != live) continue;
    if (live != w1 - w0)
      throw KernelError(where(k, fibers[w0]) + ": a lane of this warp returned while the others wait in a warp "
                        "shuffle or __syncwarp(); every lane named in the mask must take part");
    for (size_t i = w0; i < w1; ++i) fibers[i].state = READY;
    released = true;
  }
  if (released) return true;
  if (at_block == n - done) {
    if (first_done)
      throw KernelError(where(k, *first_done) + " returned while " + std::to_string(at_block) +
                        " threads of its block wait at __syncthreads() (line " + std::to_string(first_block->wait_line) +
                        "): every thread of a block must reach each __syncthreads() (divergent barrier)");
    for (size_t i = 0; i < n; ++i)
      if (fibers[i].wait_line != first_block->wait_line)
        throw KernelError(std::string(k.name) + ": divergent __syncthreads(): thread " + str(first_block->t.idx) +
                          " of block " + str(first_block->t.block->idx) + " waits at line " +
                          std::to_string(first_block->wait_line) + ", thread " + str(fibers[i].t.idx) + " at line " +
                          std::to_string(fibers[i].wait_line));
    for (size_t i = 0; i < n; ++i) fibers[i].state = READY;
    return true;
  }
  throw KernelError(where(k, *first_warp) + " waits in a warp operation while thread " + str(first_block->t.idx) +
                    " waits at __syncthreads() (line " + std::to_string(first_block->wait_line) +
                    "): the block can never go on (divergent barrier)");
}

/// Runs one block to completion; returns whether float atomics ran in it.
bool run_block(const KernelInfo& k, const ArgValue* args, dim3 grid, dim3 dim, uint3 bidx, bool reversed) {
  Worker& w = worker();
  const size_t n = size_t(dim.x) * dim.y * dim.z;
  while (w.stacks.size() < n) w.stacks.push_back(std::make_unique<Stack>(STACK_BYTES));
  if (w.fibers.size() < n) w.fibers.resize(n);
  if (w.lanes.size() < n) w.lanes.resize(n);
  BlockState b{bidx, dim, grid, &wait_callback, w.lanes.data(), 0};
  for (size_t i = 0; i < n; ++i) {
    Fiber& f = w.fibers[i];
    f.t.idx = uint3{unsigned(i % dim.x), unsigned(i / dim.x % dim.y), unsigned(i / (size_t(dim.x) * dim.y))};
    f.t.linear = unsigned(i);
    f.t.block = &b;
    f.state = READY;
    f.wait_kind = NONE;
    make_context(f.ctx, *w.stacks[i], &fiber_main, &f);
  }
  w.kernel = &k;
  w.args = args;
  w.fault.clear();
  do {
    for (size_t j = 0; j < n; ++j) {
      Fiber& f = w.fibers[reversed ? n - 1 - j : j];
      if (f.state != READY) continue;
      w.running = &f;
      switch_context(w.sched, f.ctx);
      w.running = nullptr;
      if (!w.fault.empty()) throw KernelError(where(k, f) + ": " + w.fault);
    }
  } while (release(k, w.fibers, n));
  return b.float_atomics != 0;
}

uint3 block_index(size_t i, dim3 grid) {
  return uint3{unsigned(i % grid.x), unsigned(i / grid.x % grid.y), unsigned(i / (size_t(grid.x) * grid.y))};
}

/// Every block of the grid, spread over OS threads when there is enough work; the first error is rethrown.
bool run_grid(const KernelInfo& k, const ArgValue* args, const LaunchConfig& c, bool reversed, bool parallel) {
  const size_t blocks = size_t(c.grid.x) * c.grid.y * c.grid.z;
  const size_t per_block = size_t(c.block.x) * c.block.y * c.block.z;
  bool atomics = false;
#ifdef _OPENMP
  int threads = c.threads > 0 ? c.threads : omp_get_max_threads();
  if (parallel && blocks > 1 && threads > 1 && blocks * per_block >= 2048) {
    threads = int(std::min<size_t>(size_t(threads), blocks));
    std::string error;
    std::mutex mu;
    bool failed = false;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(|| : atomics)
    for (long long i = 0; i < (long long)blocks; ++i) {
      if (__atomic_load_n(&failed, __ATOMIC_RELAXED)) continue;
      try {
        atomics = run_block(k, args, c.grid, c.block, block_index(size_t(i), c.grid), reversed) || atomics;
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed) error = e.what();
        __atomic_store_n(&failed, true, __ATOMIC_RELAXED);
      }
    }
    if (failed) throw KernelError(error);
    return atomics;
  }
#endif
  (void)parallel;
  (void)per_block;
  for (size_t j = 0; j < blocks; ++j)
    atomics = run_block(k, args, c.grid, c.block, block_index(reversed ? blocks - 1 - j : j, c.grid), reversed) || atomics;
  return atomics;
}

// ---- checked mode: guarded copies of the buffers, a SIGSEGV handler that names the thread ----

/// A copy of a buffer between two inaccessible pages, flush against the page after it (`at_end`) or the
/// page before it, so that reading or writing one element past that edge faults.
struct GuardedCopy {
  GuardedCopy(const BufferArg& b, bool at_end) : arg(b) {
    page = size_t(sysconf(_SC_PAGESIZE));
    span = (b.bytes + page - 1) / page * page;
    total = span + 2 * page;
    base = static_cast<char*>(mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base == MAP_FAILED) throw std::bad_alloc();
    mprotect(base, page, PROT_NONE);
    mprotect(base + page + span, page, PROT_NONE);
    data = base + page + (at_end ? span - b.bytes : 0);
    memcpy(data, b.data, b.bytes);
  }
  ~GuardedCopy() { munmap(base, total); }
  GuardedCopy(const GuardedCopy&) = delete;
  GuardedCopy& operator=(const GuardedCopy&) = delete;
  bool guards(const char* p) const { return (p >= base && p < base + page) || (p >= base + page + span && p < base + total); }

  BufferArg arg;
  size_t page, span, total;
  char* base;
  char* data;
};

std::mutex checked_mutex;  // one checked launch at a time: the handler reads the globals below
sigjmp_buf checked_jump;
const std::vector<std::unique_ptr<GuardedCopy>>* checked_copies = nullptr;
struct {
  const char* addr;
  bool write;
  Fiber* fiber;
} checked_fault;
struct sigaction previous_segv, previous_bus;

void on_fault(int sig, siginfo_t* info, void* ctx) {
  const char* addr = static_cast<const char*>(info->si_addr);
  bool ours = false;
  for (const auto& c : *checked_copies) ours = ours || c->guards(addr);
  if (!ours) {  // not a guard page: let the previous handler (or the default action) deal with it
    sigaction(SIGSEGV, &previous_segv, nullptr);
    sigaction(SIGBUS, &previous_bus, nullptr);
    return;
  }
  checked_fault.addr = addr;
#if defined(__x86_64__) && defined(__linux__)
  checked_fault.write = (static_cast<ucontext_t*>(ctx)->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#else
  (void)ctx;
  checked_fault.write = false;
#endif
  checked_fault.fiber = worker().running;
  (void)sig;
  siglongjmp(checked_jump, 1);
}

std::string describe_fault(const KernelInfo& k, const std::vector<std::unique_ptr<GuardedCopy>>& copies) {
  std::string who = checked_fault.fiber ? where(k, *checked_fault.fiber) : std::string(k.name);
  for (const auto& c : copies) {
    if (!c->guards(checked_fault.addr)) continue;
    const long long index = (checked_fault.addr - c->data) >= 0
                                ? (long long)((checked_fault.addr - c->data) / (long long)c->arg.itemsize)
                                : -(long long)((c->data - checked_fault.addr + c->arg.itemsize - 1) / c->arg.itemsize);
    return who + ": out-of-bounds " + (checked_fault.write ? "write" : "access") + " of argument " +
           std::to_string(c->arg.index) + " at element " + std::to_string(index) + " (it has " +
           std::to_string(c->arg.bytes / c->arg.itemsize) + " elements)";
  }
  return who + ": out-of-bounds access";
}

/// Runs the grid once on guarded copies (thread and block order forward or reversed); returns the copies.
std::vector<std::unique_ptr<GuardedCopy>> checked_run(const KernelInfo& k, std::vector<ArgValue> args,
                                                      const std::vector<BufferArg>& buffers, const LaunchConfig& c,
                                                      bool reversed, bool* atomics) {
  std::vector<std::unique_ptr<GuardedCopy>> copies;
  for (const BufferArg& b : buffers) {
    // one copy per distinct buffer, so arguments that alias stay aliased
    GuardedCopy* same = nullptr;
    for (auto& cp : copies)
      if (cp->arg.data == b.data) same = cp.get();
    if (!same) {
      copies.push_back(std::make_unique<GuardedCopy>(b, !reversed));
      same = copies.back().get();
    }
    args[b.index].ptr = same->data;
  }
  checked_copies = &copies;
  stack_t alt{}, old_alt{};
  std::vector<char> alt_stack(1 << 16);
  alt.ss_sp = alt_stack.data();
  alt.ss_size = alt_stack.size();
  sigaltstack(&alt, &old_alt);
  struct sigaction sa {};
  sa.sa_sigaction = &on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &previous_segv);
  sigaction(SIGBUS, &sa, &previous_bus);
  auto restore = [&] {
    sigaction(SIGSEGV, &previous_segv, nullptr);
    sigaction(SIGBUS, &previous_bus, nullptr);
    sigaltstack(&old_alt, nullptr);
    checked_copies = nullptr;
  };
  if (sigsetjmp(checked_jump, 1) != 0) {
    worker().running = nullptr;
    std::string msg = describe_fault(k, copies);
    restore();
    throw KernelError(msg);
  }
  try {
    *atomics = run_grid(k, args.data(), c, reversed, false);
  } catch (...) {
    restore();
    throw;
  }
  restore();
  return copies;
}

/// Element i of a buffer copy as a double (its kind says how it is stored).
double value(const GuardedCopy& c, size_t i) {
  switch (c.arg.kind | 0x20) {  // lower case
    case 'f': return reinterpret_cast<const float*>(c.data)[i];
    case 'd': return reinterpret_cast<const double*>(c.data)[i];
    case 'q': return double(reinterpret_cast<const long long*>(c.data)[i]);
    default: return reinterpret_cast<const int*>(c.data)[i];
  }
}

/// The first element where the two runs' copies of a written buffer differ, or -1. With float atomics
/// (`loose`) the order of additions changes the rounding, so only differences beyond 1e-4 count.
long long first_difference(const GuardedCopy& x, const GuardedCopy& y, bool loose) {
  const size_t n = x.arg.bytes / x.arg.itemsize;
  const bool floats = (x.arg.kind | 0x20) == 'f' || (x.arg.kind | 0x20) == 'd';
  for (size_t i = 0; i < n; ++i) {
    if (memcmp(x.data + i * x.arg.itemsize, y.data + i * x.arg.itemsize, x.arg.itemsize) == 0) continue;
    const double a = value(x, i), b = value(y, i);
    if (floats && a != a && b != b) continue;
    if (floats && loose && std::abs(a - b) <= 1e-4 * std::max({1.0, std::abs(a), std::abs(b)})) continue;
    return (long long)i;
  }
  return -1;
}

std::string element(const GuardedCopy& c, long long i) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.9g", value(c, size_t(i)));
  return buf;
}

void launch_checked(const KernelInfo& k, std::vector<ArgValue> args, const std::vector<BufferArg>& buffers,
                    const LaunchConfig& c) {
  std::lock_guard<std::mutex> lock(checked_mutex);
  bool atomics0 = false, atomics1 = false;
  auto forward = checked_run(k, args, buffers, c, false, &atomics0);
  auto backward = checked_run(k, args, buffers, c, true, &atomics1);
  for (size_t i = 0; i < forward.size(); ++i) {
    if (!forward[i]->arg.writable) continue;
    const long long at = first_difference(*forward[i], *backward[i], atomics0 || atomics1);
    if (at >= 0)
      throw KernelError(std::string(k.name) + ": the result depends on the order in which threads run (a missing "
                        "__syncthreads() or a race on shared or global memory?): argument " +
                        std::to_string(forward[i]->arg.index) + " element " + std::to_string(at) + " is " +
                        element(*forward[i], at) + " with threads run in order and " + element(*backward[i], at) +
                        " with threads run in reverse");
  }
  for (const auto& cp : forward)
    if (cp->arg.writable) memcpy(cp->arg.data, cp->data, cp->arg.bytes);
}

}  // namespace

void launch(const KernelInfo& kernel, std::vector<ArgValue> args, const std::vector<BufferArg>& buffers,
            const LaunchConfig& config) {
  const size_t per_block = size_t(config.block.x) * config.block.y * config.block.z;
  if (per_block == 0 || per_block > MAX_BLOCK_THREADS)
    throw std::invalid_argument(std::string(kernel.name) + ": a block has 1 to 1024 threads, got " + str(uint3{config.block.x, config.block.y, config.block.z}));
  if (size_t(config.grid.x) * config.grid.y * config.grid.z == 0) return;
  if (config.checked)
    launch_checked(kernel, std::move(args), buffers, config);
  else
    run_grid(kernel, args.data(), config, false, true);
}

}  // namespace needle_sim
