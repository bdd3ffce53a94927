// Shared pieces of the CPU backend: the buffer type, dtype dispatch, argument checks, threading.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "memory.h"

// Portable speed. Every hot loop is plain C++ or GCC/Clang vector extensions (`vector_size`), which GCC
// and clang compile to SSE/AVX on x86-64 and to NEON on ARM64 (where NEON is always there). On x86-64,
// where the baseline is only SSE2, the best code is also picked at run time:
//  - NEEDLE_X86_DISPATCH: GCC and clang both have `target` attributes and __builtin_cpu_supports, so
//    the GEMM micro-kernels (matmul.h) exist in AVX-512 and AVX2+FMA versions chosen at load time;
//  - NEEDLE_CLONES (template loops): GCC's target_clones builds AVX-512, AVX2 and SSE2 copies of a loop.
//    Clang (14-18) refuses target_clones on templates, so under clang these loops are SSE2 (they are
//    memory-bound: the wider copies gain little);
//  - NEEDLE_CLONES_FN (plain functions: the float32 exp/log/tanh, which are compute-bound): target_clones
//    under GCC, and under clang where the platform has ifuncs (ELF, i.e. Linux).
#if defined(__x86_64__) && defined(__GNUC__)
#define NEEDLE_X86_DISPATCH 1
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NEEDLE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NEEDLE_CLONES
#endif
#if defined(__x86_64__) && defined(__GNUC__) && (!defined(__clang__) || (defined(__ELF__) && __clang_major__ >= 14))
#define NEEDLE_CLONES_FN __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NEEDLE_CLONES_FN
#endif
#define NEEDLE_INLINE inline __attribute__((always_inline))

namespace needle {
namespace cpu {

/// Below this many elements a kernel runs on one thread: waking the team (idle workers sleep, see
/// OMP_WAIT_POLICY in ndarray.py) costs ~30 us, more than two threads save on smaller arrays.
constexpr size_t PARALLEL_MIN = size_t(1) << 19;

enum class DType { f32, f64 };

inline DType parse_dtype(const std::string& s) {
  if (s == "float32") return DType::f32;
  if (s == "float64") return DType::f64;
  throw std::invalid_argument("Array: unsupported dtype '" + s + "' (expected 'float32' or 'float64')");
}

inline size_t itemsize(DType d) { return d == DType::f32 ? 4 : 8; }
inline const char* dtype_name(DType d) { return d == DType::f32 ? "float32" : "float64"; }

/// Bytes held by live Arrays (the NDArray buffers: kernels' scratch is never an Array), the most held at
/// once since the last reset, and how many there are; Python's ndl.memory_stats(cpu()) reads them.
struct MemoryCounters {
  size_t current = 0, peak = 0, live = 0;
  void add(size_t bytes) {
    current += bytes;
    peak = std::max(peak, current);
    ++live;
  }
  void remove(size_t bytes) {
    current -= bytes;
    --live;
  }
};
inline MemoryCounters memory_counters;  // Arrays are made and freed by Python, one at a time (the GIL)

/// A flat, 256-byte aligned buffer of float32 or float64 elements.
struct AlignedArray {
  AlignedArray(size_t size, DType dtype) : ptr(aligned_bytes(size * itemsize(dtype))), size(size), dtype(dtype) {
    memory_counters.add(size * itemsize(dtype));
  }
  ~AlignedArray() {
    release_bytes(ptr, size * itemsize(dtype));
    memory_counters.remove(size * itemsize(dtype));
  }
  AlignedArray(const AlignedArray&) = delete;
  AlignedArray& operator=(const AlignedArray&) = delete;
  size_t ptr_as_int() const { return reinterpret_cast<size_t>(ptr); }
  template <typename T>
  T* data() const { return static_cast<T*>(ptr); }

  void* ptr;
  size_t size;
  DType dtype;
};

using Shape = std::vector<int64_t>;

/// Calls fn(float{}) or fn(double{}) for the buffer's dtype, so one generic lambda serves both.
template <typename Fn>
inline void dispatch(DType d, Fn fn) {
  if (d == DType::f32)
    fn(float{});
  else
    fn(double{});
}

// ---- argument checks: a bad call from Python raises ValueError, it never crashes ----

/// Throws std::invalid_argument(message) unless ok. A macro so that the message is built only on failure:
/// kernels check their arguments on every call, and building the strings took longer than a small product.
#define NEEDLE_REQUIRE(ok, message)                                         \
  do {                                                                      \
    if (__builtin_expect(!(ok), 0)) throw std::invalid_argument(message);   \
  } while (0)

inline void same_dtype(const char* op, const AlignedArray& a, const AlignedArray& b) {
  NEEDLE_REQUIRE(a.dtype == b.dtype, std::string(op) + ": dtype mismatch (" + dtype_name(a.dtype) + " vs " +
                                         dtype_name(b.dtype) + ")");
}

inline void size_at_least(const char* op, const char* what, const AlignedArray& a, size_t n) {
  NEEDLE_REQUIRE(a.size >= n, std::string(op) + ": " + what + " holds " + std::to_string(a.size) +
                                  " elements, needs " + std::to_string(n));
}

/// Number of elements of a shape; saturates at SIZE_MAX on overflow so size checks still fail.
inline size_t prod(const Shape& shape) {
  size_t n = 1;
  for (auto s : shape) {
    if (s <= 0) return 0;
    if (__builtin_mul_overflow(n, static_cast<size_t>(s), &n)) return SIZE_MAX;
  }
  return n;
}

/// Checks that every element a strided view (shape, strides, offset) touches lies inside `a`.
inline void check_view(const char* op, const AlignedArray& a, const Shape& shape, const Shape& strides,
                       int64_t offset) {
  NEEDLE_REQUIRE(shape.size() == strides.size(), std::string(op) + ": shape and strides differ in length");
  for (size_t i = 0; i < shape.size(); ++i) {
    NEEDLE_REQUIRE(shape[i] >= 0, std::string(op) + ": negative dimension in shape");
    if (shape[i] == 0) return;  // an empty view touches nothing
  }
  __int128 lo = offset, hi = offset;  // 128-bit: absurd strides from Python must not overflow
  for (size_t i = 0; i < shape.size(); ++i) {
    const __int128 span = static_cast<__int128>(shape[i] - 1) * strides[i];
    (span < 0 ? lo : hi) += span;
  }
  NEEDLE_REQUIRE(lo >= 0 && hi < static_cast<__int128>(a.size),
                 std::string(op) + ": strided view reaches outside its buffer (offset " + std::to_string(offset) +
                     ", buffer of " + std::to_string(a.size) + " elements)");
}

/// Set in a child process forked from this one. GNU OpenMP's worker threads do not survive fork(): a parallel
/// region in the child of a parent that used OpenMP waits for them forever (multiprocessing's default start
/// method on Linux). As PyTorch does, a forked child computes on one thread.
inline bool forked_child = false;
inline void on_fork_child() { forked_child = true; }
inline const bool atfork_registered = pthread_atfork(nullptr, nullptr, on_fork_child) == 0;

/// The team size: OpenMP's (OMP_NUM_THREADS), capped at the processors (a huge OMP_NUM_THREADS made libgomp
/// crash creating the team); 1 in a forked child. The processors are counted once: a count is a system call
/// (0.3 us, the time of a 32^3 product).
inline int max_threads() {
#ifdef _OPENMP
  if (forked_child) return 1;
  static const int procs = omp_get_num_procs();
  return std::max(1, std::min(omp_get_max_threads(), procs));
#else
  return 1;
#endif
}

/// Threads to use for `work` elements of streaming work: 1 below PARALLEL_MIN, else the team size.
inline int threads_for(size_t work) { return work < PARALLEL_MIN ? 1 : max_threads(); }

/// Whether this build runs kernels on several threads (OpenMP found at build time).
#ifdef _OPENMP
constexpr bool HAVE_OPENMP = true;
#else
constexpr bool HAVE_OPENMP = false;
#endif

/// How this module was built, e.g. "clang 14.0.6, aarch64, OpenMP" (Python: ndarray_backend_cpu.__build__).
inline std::string build_info() {
#if defined(__clang__)
  std::string s = "clang " + std::to_string(__clang_major__) + "." + std::to_string(__clang_minor__) + "." +
                  std::to_string(__clang_patchlevel__);
#elif defined(__GNUC__)
  std::string s = "gcc " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." +
                  std::to_string(__GNUC_PATCHLEVEL__);
#else
  std::string s = "unknown compiler";
#endif
#if defined(__x86_64__)
  s += ", x86-64";
#elif defined(__aarch64__)
  s += ", aarch64";
#endif
  return s + (HAVE_OPENMP ? ", OpenMP" : ", no OpenMP (one thread)");
}

/// This thread's number in the current OpenMP team (0 outside one).
inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/// fn(begin, end) over [0, n), split across threads when the total work (n * cost elements) is large.
/// The range is cut into pieces handed out dynamically (up to 16 per thread, none below a quarter of
/// PARALLEL_MIN), so a thread that the OS schedules late on a busy machine does not hold up the others.
template <typename Fn>
inline void parallel_for(size_t n, size_t cost, Fn fn) {
  const size_t work = n * std::max<size_t>(cost, 1);
  const int t = threads_for(work);
  if (t <= 1 || n < 2) {
    fn(size_t(0), n);
    return;
  }
  const size_t pieces = std::min({size_t(t) * 16, std::max<size_t>(t, work / (PARALLEL_MIN / 4)), n});
#pragma omp parallel for num_threads(t) schedule(dynamic, 1)
  for (size_t i = 0; i < pieces; ++i) fn(n * i / pieces, n * (i + 1) / pieces);
}


// ---- bindings: pybind11 passes None as a null `AlignedArray*`; `nonnull` wraps a kernel so that every
// AlignedArray* argument is checked first (a TypeError naming the kernel, never a null dereference) ----

inline void not_none(const std::string&, const AlignedArray&) {}
inline void not_none(const std::string& op, const AlignedArray* p) {
  if (!p) throw std::invalid_argument(op + ": a buffer argument is None (expected an Array)");
}
inline void not_none(const std::string& op, AlignedArray* p) { not_none(op, static_cast<const AlignedArray*>(p)); }
template <typename T>
inline void not_none(const std::string&, const T&) {}

template <typename F, typename R, typename... Args>
inline auto nonnull_impl(std::string op, F f, R (*)(Args...)) {
  return [op, f](Args... args) -> R {
    (not_none(op, args), ...);
    return f(std::forward<Args>(args)...);
  };
}
template <typename F, typename R, typename C, typename... Args>
inline auto nonnull_impl(std::string op, F f, R (C::*)(Args...) const) {
  return [op, f](Args... args) -> R {
    (not_none(op, args), ...);
    return f(std::forward<Args>(args)...);
  };
}
/// `m.def(name, nonnull(name, fn))`: fn a function pointer or a non-generic lambda.
template <typename R, typename... Args>
inline auto nonnull(std::string op, R (*f)(Args...)) { return nonnull_impl(std::move(op), f, f); }
template <typename F>
inline auto nonnull(std::string op, F f) { return nonnull_impl(std::move(op), f, &F::operator()); }

}  // namespace cpu
}  // namespace needle
