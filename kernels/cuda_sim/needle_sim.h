// The CUDA built-ins for kernels compiled as C++ by the simulator (cuda_sim): included before a .cu file.
//
// Every CUDA thread of a block is a fiber on one OS thread; `__syncthreads()` and the warp built-ins hand
// control back to the block's scheduler (scheduler.cc) through a callback in BlockState, so this header
// has no link-time dependency on it: a learner's kernels compiled in a notebook cell load on their own.
// `__shared__` variables are `static thread_local`: the fibers of a block share them, and blocks running
// at once on other OS threads have their own.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <type_traits>
#include <utility>

struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace needle_sim {

enum Wait : int { NONE = 0, BLOCK_BARRIER = 1, WARP_BARRIER = 2 };

struct BlockState;

/// One simulated CUDA thread.
struct ThreadState {
  uint3 idx;
  unsigned int linear;  // x + y * dim.x + z * dim.x * dim.y
  BlockState* block;
};

/// One block being run; `wait` suspends the calling fiber until its barrier is released.
struct BlockState {
  uint3 idx;
  dim3 dim, grid;
  void (*wait)(ThreadState* t, int kind, int line);
  uint64_t* lanes;  // one exchange slot per thread, for the warp shuffles
  int float_atomics;  // set when float atomics ran: their rounding depends on thread order
};

// Per shared object (inline variables), so a cell's kernels loaded with RTLD_LOCAL have their own copy.
inline thread_local ThreadState* current = nullptr;

inline void wait(int kind, int line) {
  ThreadState* me = current;
  me->block->wait(me, kind, line);
  current = me;  // another fiber ran on this OS thread meanwhile
}

/// A warp shuffle: every lane posts `v`, then reads the value of lane f(own lane) in its segment of `width`
/// lanes (its own value when f gives a lane outside the segment), as __shfl_*_sync do.
template <typename T, typename F>
inline T shuffle(T v, int width, F f) {
  static_assert(sizeof(T) <= 8, "warp shuffles move values of at most 8 bytes");
  ThreadState* me = current;
  BlockState* b = me->block;
  const int lane = int(me->linear % 32), seg = lane - lane % width, src_lane = f(lane % width);
  uint64_t slot = 0;
  memcpy(&slot, &v, sizeof(T));
  b->lanes[me->linear] = slot;
  wait(WARP_BARRIER, 0);
  const unsigned src = me->linear - unsigned(lane) + unsigned(seg + src_lane);
  T out = v;
  if (src_lane >= 0 && src_lane < width && src < b->dim.x * b->dim.y * b->dim.z) memcpy(&out, &b->lanes[src], sizeof(T));
  wait(WARP_BARRIER, 0);  // nobody overwrites a slot before every lane has read it
  return out;
}

// ---- atomics: blocks run on several OS threads at once, so these are real atomic operations ----
/// *addr = f(*addr) atomically (a compare-and-swap loop, for any 4- or 8-byte type); returns the old value.
template <typename T, typename F>
inline T atomic_update(T* addr, F f) {
  T old, desired;
  __atomic_load(addr, &old, __ATOMIC_RELAXED);
  do {
    desired = f(old);
  } while (!__atomic_compare_exchange(addr, &old, &desired, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return old;
}

template <typename T>
inline T atomic_add(T* addr, T v) {
  if constexpr (std::is_integral<T>::value) {
    return __atomic_fetch_add(addr, v, __ATOMIC_RELAXED);
  } else {
    current->block->float_atomics = 1;  // the sum's rounding now depends on the order of the threads
    return atomic_update(addr, [v](T o) { return T(o + v); });
  }
}

// ---- kernel table: how the simulator calls a kernel with arguments that came from Python ----

/// One argument: a buffer pointer or a number (the kind says which, see kind_of).
union ArgValue {
  void* ptr;
  long long i;
  unsigned long long u;
  double d;
};

/// A parameter's kind as one letter. Pointers: f/d/q/i to const float/double/long long/int, F/D/Q/I to
/// writable ones; numbers: s float, t double, l long long, n int, u unsigned, v unsigned long long, b bool.
template <typename T>
constexpr char kind_of() {
  if constexpr (std::is_pointer<T>::value) {
    using E = std::remove_pointer_t<T>;
    using B = std::remove_cv_t<E>;
    constexpr char c = std::is_same<B, float>::value ? 'f' : std::is_same<B, double>::value ? 'd'
                     : std::is_same<B, long long>::value || std::is_same<B, long>::value ? 'q'
                     : std::is_same<B, int>::value ? 'i' : 0;
    static_assert(c != 0, "kernel pointer parameters must point to float, double, long long or int");
    return std::is_const<E>::value ? c : char(c - 'a' + 'A');
  } else {
    using B = std::remove_cv_t<T>;
    constexpr char c = std::is_same<B, float>::value ? 's' : std::is_same<B, double>::value ? 't'
                     : std::is_same<B, long long>::value || std::is_same<B, long>::value ? 'l'
                     : std::is_same<B, int>::value ? 'n' : std::is_same<B, unsigned>::value ? 'u'
                     : std::is_same<B, unsigned long long>::value || std::is_same<B, unsigned long>::value ? 'v'
                     : std::is_same<B, bool>::value ? 'b' : 0;
    static_assert(c != 0, "kernel parameters must be numbers or pointers to numbers");
    return c;
  }
}

template <typename T>
inline T arg_as(const ArgValue& a) {
  if constexpr (std::is_pointer<T>::value) return static_cast<T>(a.ptr);
  else if constexpr (std::is_floating_point<T>::value) return static_cast<T>(a.d);
  else if constexpr (std::is_unsigned<T>::value) return static_cast<T>(a.u);
  else return static_cast<T>(a.i);
}

/// A kernel as the simulator sees it: its name, parameter kinds, and a call with unpacked arguments.
struct KernelInfo {
  const char* name;
  const char* kinds;
  void* fn;
  void (*invoke)(void* fn, const ArgValue* args, ThreadState* t);
};

template <typename... A, size_t... I>
inline void invoke_with(void (*fn)(A...), const ArgValue* args, std::index_sequence<I...>) {
  fn(arg_as<A>(args[I])...);
}

template <typename... A>
inline KernelInfo kernel_info(const char* name, void (*fn)(A...)) {
  static const char kinds[] = {kind_of<A>()..., 0};
  return KernelInfo{name, kinds, reinterpret_cast<void*>(fn), [](void* f, const ArgValue* args, ThreadState* t) {
                      current = t;
                      invoke_with(reinterpret_cast<void (*)(A...)>(f), args, std::index_sequence_for<A...>{});
                    }};
}

}  // namespace needle_sim

// ---- what kernels see ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __shared__ static thread_local
#define __constant__ static const

#define threadIdx (needle_sim::current->idx)
#define blockIdx (needle_sim::current->block->idx)
#define blockDim (needle_sim::current->block->dim)
#define gridDim (needle_sim::current->block->grid)
#define warpSize 32

#define __syncthreads() needle_sim::wait(needle_sim::BLOCK_BARRIER, __LINE__)
#define __syncwarp(...) needle_sim::wait(needle_sim::WARP_BARRIER, __LINE__)

template <typename T>
inline T __shfl_sync(unsigned, T v, int src, int width = 32) {
  return needle_sim::shuffle(v, width, [&](int) { return ((src % width) + width) % width; });
}
template <typename T>
inline T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32) {
  return needle_sim::shuffle(v, width, [&](int l) { return l + int(delta); });
}
template <typename T>
inline T __shfl_up_sync(unsigned, T v, unsigned delta, int width = 32) {
  return needle_sim::shuffle(v, width, [&](int l) { return l - int(delta); });
}
template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int mask, int width = 32) {
  return needle_sim::shuffle(v, width, [&](int l) { return l ^ mask; });
}

template <typename T>
inline T atomicAdd(T* addr, T v) { return needle_sim::atomic_add(addr, v); }
template <typename T>
inline T atomicMax(T* addr, T v) { return needle_sim::atomic_update(addr, [v](T o) { return o > v ? o : v; }); }
template <typename T>
inline T atomicMin(T* addr, T v) { return needle_sim::atomic_update(addr, [v](T o) { return o < v ? o : v; }); }
template <typename T>
inline T atomicExch(T* addr, T v) { return __atomic_exchange_n(addr, v, __ATOMIC_RELAXED); }
template <typename T>
inline T atomicCAS(T* addr, T expected, T desired) {
  __atomic_compare_exchange_n(addr, &expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return expected;
}

// CUDA's math that C++ lacks
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float x, float y) { return x / y; }
template <typename T>
inline T __ldg(const T* p) { return *p; }
inline float __int_as_float(int x) { float f; memcpy(&f, &x, 4); return f; }
inline int __float_as_int(float f) { int x; memcpy(&x, &f, 4); return x; }
inline double __longlong_as_double(long long x) { double d; memcpy(&d, &x, 8); return d; }
inline long long __double_as_longlong(double d) { long long x; memcpy(&x, &d, 8); return x; }
using std::max;
using std::min;
inline float max(float a, float b) { return fmaxf(a, b); }
inline float min(float a, float b) { return fminf(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline long long max(long long a, int b) { return a > b ? a : b; }
inline long long min(long long a, int b) { return a < b ? a : b; }
