// Fibers: each simulated CUDA thread runs on its own small stack, and `__syncthreads()` switches back to the
// block's scheduler. A switch saves the callee-saved registers on the current stack and swaps stack pointers
// (x86-64 and ARM64 in a few lines of assembly, ~10 ns); elsewhere ucontext does the same, more slowly.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <new>

#if !defined(__x86_64__) && !defined(__aarch64__)
#include <ucontext.h>
#define NEEDLE_SIM_UCONTEXT 1
#endif

namespace needle_sim {

using FiberEntry = void (*)(void* arg);

/// A stack of `size` bytes over mmap'd memory (pages are committed only when touched), with an
/// inaccessible guard page below it so that a runaway recursion faults instead of corrupting memory.
class Stack {
 public:
  explicit Stack(size_t size) : size_(size) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    base_ = mmap(nullptr, size_ + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base_ == MAP_FAILED) throw std::bad_alloc();
    mprotect(base_, page, PROT_NONE);
    top_ = static_cast<char*>(base_) + page + size_;
    total_ = size_ + page;
  }
  ~Stack() { munmap(base_, total_); }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;
  char* top() const { return top_; }
  char* bottom() const { return top_ - size_; }
  size_t size() const { return size_; }

 private:
  size_t size_, total_;
  void* base_;
  char* top_;
};

#ifndef NEEDLE_SIM_UCONTEXT
extern "C" void needle_sim_switch(void** save_sp, void* load_sp);
extern "C" void needle_sim_fiber_start();

/// A suspended execution context: a saved stack pointer.
struct Context {
  void* sp = nullptr;
};

/// Prepares `ctx` so that switching to it calls entry(arg) on `stack` (entry must never return).
inline void make_context(Context& ctx, const Stack& stack, FiberEntry entry, void* arg) {
  auto* top = reinterpret_cast<uintptr_t*>(reinterpret_cast<uintptr_t>(stack.top()) & ~uintptr_t(15));
#if defined(__x86_64__)
  // frame popped by needle_sim_switch: mxcsr/x87 word, r15, r14, r13, r12, rbx, rbp, return address
  uintptr_t* sp = top - 10;
  sp[0] = 0x037F00001F80ull;  // mxcsr 0x1F80 (low 4 bytes), x87 control word 0x037F (next 2)
  sp[1] = 0;                  // r15
  sp[2] = 0;                  // r14
  sp[3] = 0;                  // r13
  sp[4] = reinterpret_cast<uintptr_t>(arg);    // r12: the entry's argument
  sp[5] = reinterpret_cast<uintptr_t>(entry);  // rbx: the entry
  sp[6] = 0;                                   // rbp
  sp[7] = reinterpret_cast<uintptr_t>(&needle_sim_fiber_start);
#else  // aarch64: x19..x30 then d8..d15, 176 bytes
  uintptr_t* sp = top - 22;
  for (int i = 0; i < 22; ++i) sp[i] = 0;
  sp[0] = reinterpret_cast<uintptr_t>(entry);   // x19
  sp[1] = reinterpret_cast<uintptr_t>(arg);     // x20
  sp[11] = reinterpret_cast<uintptr_t>(&needle_sim_fiber_start);  // x30 (return address)
#endif
  ctx.sp = sp;
}

/// Saves the running context into `from` and resumes `to`.
inline void switch_context(Context& from, Context& to) { needle_sim_switch(&from.sp, to.sp); }

#else  // portable fallback

struct Context {
  ucontext_t uc;
};

inline void make_context(Context& ctx, const Stack& stack, FiberEntry entry, void* arg) {
  getcontext(&ctx.uc);
  ctx.uc.uc_stack.ss_sp = stack.bottom();
  ctx.uc.uc_stack.ss_size = stack.size();
  ctx.uc.uc_link = nullptr;
  // makecontext passes ints: split the pointers into halves
  auto e = reinterpret_cast<uintptr_t>(entry), a = reinterpret_cast<uintptr_t>(arg);
  makecontext(&ctx.uc, reinterpret_cast<void (*)()>(+[](unsigned e0, unsigned e1, unsigned a0, unsigned a1) {
                auto fn = reinterpret_cast<FiberEntry>((uintptr_t(e1) << 32) | e0);
                fn(reinterpret_cast<void*>((uintptr_t(a1) << 32) | a0));
              }),
              4, unsigned(e), unsigned(e >> 32), unsigned(a), unsigned(a >> 32));
}

inline void switch_context(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif

}  // namespace needle_sim
