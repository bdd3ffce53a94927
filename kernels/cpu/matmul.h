// Packed, register-blocked matrix multiply (BLIS-style) for strided operands.
//
// C (M x N, compact) = A (M x K) @ B (K x N), where A and B are arbitrary strided 2-D views, so transposed
// and broadcast operands cost nothing extra: both are copied ("packed") block by block into buffers laid
// out for the micro-kernel, padded with zeros at the edges so every shape runs the same full-speed code.
// The micro-kernel keeps an MR x NR tile of C in vector registers: per step of k it loads NR values of B
// and broadcasts MR values of A. Blocking: a KC x MR sliver of A stays in L1, a KC x NB block of B in
// L2, the packed A panel in L3. Products up to about 512^3 with row-major B skip the packing: the same
// register tile reads A and B where they are, column panel by column panel of B. Threads take whole
// matrices of a batch when there are enough of them, else panels of C, each packing its own operands (no
// barrier inside a product).
#pragma once

#include <cstring>
#include <memory>
#include <vector>

#include "common.h"

namespace needle {
namespace cpu {
namespace gemm {

/// A strided 2-D view: element (i, j) is at ptr[i * rs + j * cs].
template <typename T>
struct View {
  const T* ptr;
  int64_t rs, cs;
  NEEDLE_INLINE T at(size_t i, size_t j) const {
    return ptr[static_cast<int64_t>(i) * rs + static_cast<int64_t>(j) * cs];
  }
};

/// Packs rows [i0, i0+mc) x cols [k0, k0+kc) of A into slivers of MR rows: sliver s holds, for each k,
/// its MR values contiguously (rows past mc are zero).
template <typename T, int MR>
NEEDLE_INLINE void pack_a_impl(View<T> a, size_t i0, size_t mc, size_t k0, size_t kc, T* dst) {
  constexpr size_t KB = 16;  // row-major A: copy KB-wide strips of each row, then interleave them in L1
  for (size_t s = 0; s * MR < mc; ++s) {
    T* d = dst + s * kc * MR;
    const size_t rows = std::min<size_t>(MR, mc - s * MR);
    if (rows < MR) std::fill(d, d + kc * MR, T(0));
    const T* first = a.ptr + static_cast<int64_t>(i0 + s * MR) * a.rs + static_cast<int64_t>(k0) * a.cs;
    if (a.cs == 1) {
      T strip[MR][KB] = {};  // rows past `rows` stay zero
      for (size_t k = 0; k < kc; k += KB) {
        const size_t w = std::min(KB, kc - k);
        for (size_t r = 0; r < rows; ++r) {
          const T* src = first + static_cast<int64_t>(r) * a.rs + k;
          if (w == KB)
            std::memcpy(strip[r], src, KB * sizeof(T));  // fixed size: one or two vector moves
          else
            for (size_t kk = 0; kk < w; ++kk) strip[r][kk] = src[kk];
        }
        for (size_t kk = 0; kk < w; ++kk)
          for (size_t r = 0; r < MR; ++r) d[(k + kk) * MR + r] = strip[r][kk];
      }
    } else {
      for (size_t k = 0; k < kc; ++k)
        for (size_t r = 0; r < rows; ++r) d[k * MR + r] = first[static_cast<int64_t>(r) * a.rs + static_cast<int64_t>(k) * a.cs];
    }
  }
}

/// Packs rows [k0, k0+kc) x cols [j0, j0+nc) of B into slivers of NR columns: sliver s holds, for each
/// k, its NR values contiguously (columns past nc are zero).
template <typename T, int NR>
NEEDLE_INLINE void pack_b_impl(View<T> b, size_t k0, size_t kc, size_t j0, size_t nc, T* dst) {
  if (b.rs == 1 && b.cs != 1) {
    // a transposed B (x @ W.T in a backward pass): its columns run along k, as the rows of a row-major A
    // do, and the packed layouts agree, so A's strip-wise packing does it (2x faster than element-wise)
    pack_a_impl<T, NR>(View<T>{b.ptr, b.cs, b.rs}, j0, nc, k0, kc, dst);
    return;
  }
  for (size_t s = 0; s * NR < nc; ++s) {
    T* d = dst + s * kc * NR;
    const size_t cols = std::min<size_t>(NR, nc - s * NR);
    if (b.cs == 1 && cols == NR) {
      for (size_t k = 0; k < kc; ++k) std::memcpy(d + k * NR, &b.ptr[(k0 + k) * b.rs + j0 + s * NR], NR * sizeof(T));
      continue;
    }
    if (cols < NR) std::fill(d, d + kc * NR, T(0));
    if (std::abs(b.cs) <= std::abs(b.rs)) {
      for (size_t k = 0; k < kc; ++k)
        for (size_t c = 0; c < cols; ++c) d[k * NR + c] = b.at(k0 + k, j0 + s * NR + c);
    } else {
      for (size_t c = 0; c < cols; ++c)
        for (size_t k = 0; k < kc; ++k) d[k * NR + c] = b.at(k0 + k, j0 + s * NR + c);
    }
  }
}

/// C[0:mr, 0:nc] (+)= A's rows [0, mr) @ B's first nc <= NV * VL columns, over the depth K. A is a strided
/// view (a packed sliver is the view {pa, 1, MR}); B's rows are brs apart and hold NV whole vectors each (a
/// packed sliver's are NR apart). The MR x NV-vector tile of C stays in registers: per step of k it loads NV
/// vectors of B and broadcasts MR values of A. Rows past mr repeat row mr - 1, so every tile runs the same
/// code; only C's valid part is written.
template <typename T, int VB, int MR, int NV>
NEEDLE_INLINE void tile_impl(size_t K, View<T> a, size_t mr, const T* __restrict b, int64_t brs, T* __restrict c,
                             size_t ldc, size_t nc, bool accumulate) {
  typedef T V __attribute__((vector_size(VB)));
  constexpr int VL = VB / sizeof(T);
  const T* row[MR];
  for (int i = 0; i < MR; ++i) row[i] = a.ptr + static_cast<int64_t>(std::min<size_t>(i, mr - 1)) * a.rs;
  V acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = V{};
#pragma GCC unroll 4
  for (size_t k = 0; k < K; ++k) {
    V bv[NV];
    for (int v = 0; v < NV; ++v) std::memcpy(&bv[v], b + static_cast<int64_t>(k) * brs + v * VL, sizeof(V));
    const int64_t ak = static_cast<int64_t>(k) * a.cs;
    for (int i = 0; i < MR; ++i) {
      const T x = row[i][ak];
      for (int v = 0; v < NV; ++v) acc[i][v] += bv[v] * x;
    }
  }
  for (size_t i = 0; i < std::min<size_t>(mr, MR); ++i)
    for (int v = 0; v < NV; ++v) {
      T* out = c + i * ldc + v * VL;
      const size_t left = nc - std::min<size_t>(nc, v * VL);  // C's columns from this vector on
      if (left >= size_t(VL)) {
        V old = V{};
        if (accumulate) std::memcpy(&old, out, sizeof(V));
        old += acc[i][v];
        std::memcpy(out, &old, sizeof(V));
      } else if (left > 0) {
        T lanes[VL];
        std::memcpy(lanes, &acc[i][v], sizeof(V));
        for (size_t j = 0; j < left; ++j) out[j] = accumulate ? out[j] + lanes[j] : lanes[j];
      }
    }
}

// One kernel per instruction set: VB-byte vectors, an MR x (NV vectors) register tile for packed operands,
// and a DMR x (2 vectors) tile for operands read in place.
#define NEEDLE_GEMM_KERNEL(NAME, TARGET, VB, MR_, NV, DMR_)                                                 \
  template <typename T>                                                                                     \
  struct NAME {                                                                                             \
    static constexpr int MR = MR_, NR = NV * VB / int(sizeof(T)), VL = VB / int(sizeof(T)), DMR = DMR_;     \
    /* C's rows [0, mr <= DMR) and columns [0, nc <= 2 VL) from A and B in place, with the smallest */      \
    /* of the tiles of 1, 2, 4 and DMR rows and 1 or 2 vectors that covers them */                          \
    TARGET static void direct(size_t K, View<T> a, size_t mr, const T* b, int64_t brs, T* c, size_t ldc,    \
                              size_t nc) {                                                                  \
      if (nc > size_t(VL))                                                                                  \
        direct_rows<2>(K, a, mr, b, brs, c, ldc, nc);                                                       \
      else                                                                                                  \
        direct_rows<1>(K, a, mr, b, brs, c, ldc, nc);                                                       \
    }                                                                                                       \
    template <int NV_>                                                                                      \
    TARGET static void direct_rows(size_t K, View<T> a, size_t mr, const T* b, int64_t brs, T* c,           \
                                   size_t ldc, size_t nc) {                                                 \
      if (mr > 4)                                                                                           \
        tile_impl<T, VB, DMR, NV_>(K, a, mr, b, brs, c, ldc, nc, false);                                    \
      else if (mr > 2)                                                                                      \
        tile_impl<T, VB, 4, NV_>(K, a, mr, b, brs, c, ldc, nc, false);                                      \
      else if (mr == 2)                                                                                     \
        tile_impl<T, VB, 2, NV_>(K, a, mr, b, brs, c, ldc, nc, false);                                      \
      else                                                                                                  \
        tile_impl<T, VB, 1, NV_>(K, a, mr, b, brs, c, ldc, nc, false);                                      \
    }                                                                                                       \
    TARGET static void micro(size_t kc, const T* pa, const T* pb, T* c, size_t ldc, bool acc, size_t mr,    \
                             size_t nr) {                                                                   \
      tile_impl<T, VB, MR, NV>(kc, View<T>{pa, 1, MR}, mr, pb, NR, c, ldc, nr, acc);                        \
    }                                                                                                       \
    TARGET static void pack_a(View<T> a, size_t i0, size_t mc, size_t k0, size_t kc, T* dst) {              \
      pack_a_impl<T, MR>(a, i0, mc, k0, kc, dst);                                                           \
    }                                                                                                       \
    TARGET static void pack_b(View<T> b, size_t k0, size_t kc, size_t j0, size_t nc, T* dst) {              \
      pack_b_impl<T, NR>(b, k0, kc, j0, nc, dst);                                                           \
    }                                                                                                       \
    /* B's columns [j0, j0 + nc <= 2 VL) as a K x 2 VL panel for direct() */                                \
    TARGET static void pack_panel(View<T> b, size_t K, size_t j0, size_t nc, T* dst) {                      \
      pack_b_impl<T, 2 * VB / int(sizeof(T))>(b, 0, K, j0, nc, dst);                                        \
    }                                                                                                       \
  };

#ifdef NEEDLE_X86_DISPATCH
NEEDLE_GEMM_KERNEL(Avx512, __attribute__((target("avx512f,avx2,fma"))), 64, 12, 2, 8)
NEEDLE_GEMM_KERNEL(Avx512Narrow, __attribute__((target("avx512f,avx2,fma"))), 64, 16, 1, 8)  // for narrow C
NEEDLE_GEMM_KERNEL(Avx2, __attribute__((target("avx2,fma"))), 32, 6, 2, 6)
NEEDLE_GEMM_KERNEL(Avx2Narrow, __attribute__((target("avx2,fma"))), 32, 8, 1, 6)
#endif
// Generic: 16-byte vectors, SSE2 on x86-64 and NEON on ARM64. ARM64 has 32 vector registers, room for an
// 8 x 3-vector tile (24 accumulators, as BLIS's ARMv8 kernel); SSE2 has 16, room for 4 x 2.
#if defined(__aarch64__)
NEEDLE_GEMM_KERNEL(Generic, , 16, 8, 3, 8)
NEEDLE_GEMM_KERNEL(GenericNarrow, , 16, 12, 1, 8)
#else
NEEDLE_GEMM_KERNEL(Generic, , 16, 4, 2, 4)
NEEDLE_GEMM_KERNEL(GenericNarrow, , 16, 6, 1, 4)
#endif
#undef NEEDLE_GEMM_KERNEL

/// Packing memory kept between calls (buffers are reused, never re-faulted): one pair per thread.
template <typename T>
struct Scratch {
  std::unique_ptr<T, decltype(&std::free)> buf{nullptr, &std::free};
  size_t cap = 0;
  T* get(size_t n) {
    if (n > cap) {
      buf.reset(static_cast<T*>(aligned_bytes(n * sizeof(T))));
      cap = n;
    }
    return buf.get();
  }
};

/// The scratch pairs of threads 0..n-1. Not thread_local: GCC skips the dynamic initialisation of
/// function-scope thread_local objects used inside OpenMP regions. Calls come one at a time (the GIL).
template <typename T>
std::vector<Scratch<T>>& scratch_pool(size_t n) {
  static std::vector<Scratch<T>> pool;
  if (pool.size() < 2 * n) pool.resize(2 * n);
  return pool;
}

inline size_t round_up(size_t x, size_t r) { return (x + r - 1) / r * r; }
inline size_t ceil_div(size_t x, size_t r) { return (x + r - 1) / r; }

/// One product C = A @ B with M x K x N sizes, C's rows ldc apart, computed by one thread.
template <typename T, typename Kn>
struct Gemm {
  static constexpr size_t KC = 1536 / sizeof(T);                                   // A sliver KC x MR in L1
  static constexpr size_t NB = (786432 / (KC * sizeof(T))) / Kn::NR * Kn::NR;      // B block KC x NB in L2
  static constexpr size_t MP = 3072 / Kn::MR * Kn::MR;                             // A panel MP x KC in L3
  static constexpr size_t NP = 8192 / Kn::NR * Kn::NR;                             // B panel KC x NP in L3

  View<T> a, b;
  T* c;
  size_t M, K, N, ldc;
  bool in_place;  // read the operands where they are (run_in_place), decided once for the whole product

  static constexpr size_t DNR = 2 * Kn::VL;  // columns of the in-place tile

  /// Whether to read a product's operands in place rather than pack them: when B's rows are contiguous (a
  /// transposed B costs as much to pack as a 16-row product takes), its column panels (K x DNR) fit in L2 and
  /// C has at most 2^20 elements. Packing pays off for deep products and large C, whose rows the in-place
  /// loop writes a vector or two at a time (measured on Zen 4: in place is 10-40% faster from 64^3 to 512^3,
  /// 10-30% slower for 320 x 512 x 4096 and 2048 x 64 x 1024).
  static bool reads_in_place(View<T> b, size_t M, size_t K, size_t N) {
    return b.cs == 1 && K <= 512 && M * N <= (size_t(1) << 20);
  }

  size_t a_buffer() const { return in_place ? 0 : round_up(std::min(M, MP), Kn::MR) * KC; }
  size_t b_buffer() const { return in_place ? K * DNR : round_up(std::min(N, NP), Kn::NR) * KC; }

  /// The columns [j0, j0 + n) of C, or its rows [i0, i0 + m): a product of their own.
  Gemm columns(size_t j0, size_t n) const {
    return {a, {b.ptr + static_cast<int64_t>(j0) * b.cs, b.rs, b.cs}, c + j0, M, K, n, ldc, in_place};
  }
  Gemm rows(size_t i0, size_t m) const {
    return {{a.ptr + static_cast<int64_t>(i0) * a.rs, a.rs, a.cs}, b, c + i0 * ldc, m, K, N, ldc, in_place};
  }
  /// The depth [k0, k0 + k) of the product, written to c (ldc = N).
  Gemm depth(size_t k0, size_t k, T* out) const {
    return {{a.ptr + static_cast<int64_t>(k0) * a.cs, a.rs, a.cs}, {b.ptr + static_cast<int64_t>(k0) * b.rs, b.rs, b.cs},
            out, M, k, N, N, in_place};
  }

  /// Each column panel of B (K x DNR, in L2) against every tile of A's rows, both read where they are; a last
  /// panel without whole vectors is first copied into pb, padded with zeros.
  void run_in_place(T* pb) const {
    for (size_t j0 = 0; j0 < N; j0 += DNR) {
      const size_t nc = std::min(DNR, N - j0);
      const T* panel = b.ptr + j0;
      int64_t panel_rs = b.rs;
      if (nc % Kn::VL != 0) {
        Kn::pack_panel(b, K, j0, nc, pb);
        panel = pb;
        panel_rs = DNR;
      }
      for (size_t i0 = 0; i0 < M; i0 += Kn::DMR)
        Kn::direct(K, {a.ptr + static_cast<int64_t>(i0) * a.rs, a.rs, a.cs}, std::min<size_t>(Kn::DMR, M - i0), panel,
                   panel_rs, c + i0 * ldc + j0, ldc, nc);
    }
  }

  /// Runs the product with packing buffers pa and pb of a_buffer() and b_buffer() elements.
  void run(T* pa, T* pb) const {
    if (in_place) return run_in_place(pb);
    for (size_t j0 = 0; j0 < N; j0 += NP) {
      const size_t nc = std::min(NP, N - j0);
      for (size_t i0 = 0; i0 < M; i0 += MP) {
        const size_t mc = std::min(MP, M - i0);
        for (size_t k0 = 0; k0 < K; k0 += KC) {
          const size_t kc = std::min(KC, K - k0);
          for (size_t row = 0; row < mc; row += Kn::MR)
            Kn::pack_a(a, i0 + row, std::min<size_t>(Kn::MR, mc - row), k0, kc, pa + row * kc);
          for (size_t col = 0; col < nc; col += Kn::NR)
            Kn::pack_b(b, k0, kc, j0 + col, std::min<size_t>(Kn::NR, nc - col), pb + col * kc);
          for (size_t block = 0; block < nc; block += NB)  // one B block in L2, against every A sliver
            for (size_t row = 0; row < mc; row += Kn::MR)
              for (size_t col = block; col < std::min(nc, block + NB); col += Kn::NR)
                Kn::micro(kc, pa + row * kc, pb + col * kc, c + (i0 + row) * ldc + j0 + col, ldc, k0 > 0,
                          std::min<size_t>(Kn::MR, mc - row), std::min<size_t>(Kn::NR, nc - col));
        }
      }
    }
  }
};

/// out[q] = A[q] @ B[q] for q < batch; A[q] starts at a + q * a_bs, B[q] at b + q * b_bs.
///
/// Threads never share a product's packing buffers (a team that did met at two barriers per KC-deep step,
/// and ran at 60% of one core's speed per thread on 512^3): each takes whole pieces of work, a product of
/// the batch or a block of one product's C (its column panels, or row panels when C is narrow), and packs
/// its own operands. Packing an operand twice costs far less than the product it feeds.
template <typename T, typename Kn>
void batched(View<T> a, int64_t a_bs, View<T> b, int64_t b_bs, T* out, size_t batch, size_t M, size_t K, size_t N) {
  auto product = [&](size_t q) {
    return Gemm<T, Kn>{{a.ptr + static_cast<int64_t>(q) * a_bs, a.rs, a.cs},
                       {b.ptr + static_cast<int64_t>(q) * b_bs, b.rs, b.cs},
                       out + q * M * N, M, K, N, N, Gemm<T, Kn>::reads_in_place(b, M, K, N)};
  };
  const double flops = 2.0 * M * K * N;
  // 0.3 MFLOP: ~3 us on one core, six times what starting a team of spinning threads costs
  const int nth = flops * batch < 3e5 ? 1 : threads_for(PARALLEL_MIN);
  auto& pool = scratch_pool<T>(nth);
  const auto g0 = product(0);
  // every piece is at most a whole product: buffers for one fit them all (allocated before any parallel
  // region, which an exception must not escape)
  for (int t = 0; t < nth; ++t) {
    pool[2 * t].get(g0.a_buffer());
    pool[2 * t + 1].get(g0.b_buffer());
  }
  auto run_alone = [&](const Gemm<T, Kn>& g) {
    const int t = thread_id();
    g.run(pool[2 * t].get(g0.a_buffer()), pool[2 * t + 1].get(g0.b_buffer()));
  };
  if (nth == 1) {
    for (size_t q = 0; q < batch; ++q) run_alone(product(q));
    return;
  }
  constexpr size_t KC = Gemm<T, Kn>::KC;
  const size_t ksteps = ceil_div(K, KC), col_slivers = ceil_div(N, Kn::NR), row_slivers = ceil_div(M, Kn::MR);
  if (batch == 1 && ksteps >= 2 * size_t(nth) && (M * N <= 16384 || std::max(col_slivers, row_slivers) < size_t(nth))) {
    // a deep product with a small C (a conv's weight gradient im2col^T @ dY, 147 x 8192 x 16) is cut along
    // k: each thread multiplies its slice of the depth, reading only its part of the operands (panels of C
    // would each read all of A's strided columns), and the partial products are added once at the end
    std::vector<T> partial((nth - 1) * M * N);  // slice s > 0 writes here; slice 0 writes out
#pragma omp parallel for num_threads(nth) schedule(static, 1)
    for (int s = 0; s < nth; ++s) {
      const size_t k0 = ksteps * s / nth * KC, k1 = std::min(K, ksteps * (s + 1) / nth * KC);
      run_alone(g0.depth(k0, k1 - k0, s == 0 ? out : partial.data() + (s - 1) * M * N));
    }
    for (int s = 1; s < nth; ++s) {
      const T* c = partial.data() + (s - 1) * M * N;
      for (size_t i = 0; i < M * N; ++i) out[i] += c[i];
    }
    return;
  }
  // pieces per product: one when the batch shares out evenly, else one per thread (so 3 products on 2
  // threads make 6 even pieces), cut across the longer side of C, so that the operand each piece packs
  // again is the smaller one (A for column panels)
  const bool by_cols = col_slivers >= size_t(nth) && (N >= M || row_slivers < size_t(nth));
  const size_t slivers = by_cols ? col_slivers : row_slivers, step = by_cols ? Kn::NR : Kn::MR;
  const size_t pieces = batch % nth == 0 ? 1 : std::min(size_t(nth), slivers);
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1)
  for (size_t w = 0; w < batch * pieces; ++w) {
    const auto g = product(w / pieces);
    const size_t p = w % pieces, s0 = slivers * p / pieces, s1 = slivers * (p + 1) / pieces;
    const size_t from = s0 * step, size = std::min(s1 * step, by_cols ? N : M) - from;
    run_alone(by_cols ? g.columns(from, size) : g.rows(from, size));
  }
}

enum class Isa { generic, avx2, avx512 };

inline const char* isa_name(Isa isa) {
  return isa == Isa::avx512 ? "avx512" : isa == Isa::avx2 ? "avx2" : "generic";
}

/// The best kernel set this CPU supports; NEEDLE_CPU_ISA=avx2|generic asks for a lesser one (to test
/// and time the portable kernels on a machine that has AVX-512).
inline Isa detect_isa() {
  Isa best = Isa::generic;
#ifdef NEEDLE_X86_DISPATCH
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::avx2;
  if (__builtin_cpu_supports("avx512f")) best = Isa::avx512;
#endif
  const char* want = std::getenv("NEEDLE_CPU_ISA");
  for (Isa isa : {Isa::generic, Isa::avx2})
    if (want != nullptr && std::string(want) == isa_name(isa) && isa < best) return isa;
  return best;
}

/// The kernel set in use, chosen once per process.
inline Isa current_isa() {
  static const Isa isa = detect_isa();
  return isa;
}

/// The wide kernel set, or the narrow one (one vector per row of the tile) when the wide tile would compute
/// much more padding: C with few columns (N = 10 against a 32-wide tile), or M = 16 rows against 12-row tiles
/// (an LSTM's batch). The narrow tile does ~10% fewer FMAs per load, hence the margin.
template <typename T, typename Wide, typename Narrow>
void pick_width(View<T> a, int64_t a_bs, View<T> b, int64_t b_bs, T* out, size_t batch, size_t M, size_t K, size_t N) {
  const double wide = double(round_up(M, Wide::MR)) * round_up(N, Wide::NR);
  const double narrow = double(round_up(M, Narrow::MR)) * round_up(N, Narrow::NR);
  if (narrow * 1.15 < wide)
    batched<T, Narrow>(a, a_bs, b, b_bs, out, batch, M, K, N);
  else
    batched<T, Wide>(a, a_bs, b, b_bs, out, batch, M, K, N);
}

/// Runs the batched product with the best kernel set of this CPU.
template <typename T>
void run(View<T> a, int64_t a_bs, View<T> b, int64_t b_bs, T* out, size_t batch, size_t M, size_t K, size_t N) {
  const Isa isa = current_isa();
#ifdef NEEDLE_X86_DISPATCH
  if (isa == Isa::avx512) return pick_width<T, Avx512<T>, Avx512Narrow<T>>(a, a_bs, b, b_bs, out, batch, M, K, N);
  if (isa == Isa::avx2) return pick_width<T, Avx2<T>, Avx2Narrow<T>>(a, a_bs, b, b_bs, out, batch, M, K, N);
#endif
  (void)isa;
  pick_width<T, Generic<T>, GenericNarrow<T>>(a, a_bs, b, b_bs, out, batch, M, K, N);
}

}  // namespace gemm

/// out[q] = A[q] @ B[q] for strided A (batch, m, n) and B (batch, n, p); out is compact (batch, m, p).
inline void MatmulStrided(const AlignedArray& a, const AlignedArray& b, AlignedArray* out, size_t batch, size_t m,
                   size_t n, size_t p, int64_t a_off, Shape a_str, int64_t b_off, Shape b_str) {
  same_dtype("matmul", a, b);
  same_dtype("matmul", a, *out);
  NEEDLE_REQUIRE(a_str.size() == 3 && b_str.size() == 3, "matmul: strides must have 3 entries (batch, row, col)");
  NEEDLE_REQUIRE(out != &a && out != &b, "matmul: out must not be one of the inputs");
  const Shape a_shape{int64_t(batch), int64_t(m), int64_t(n)}, b_shape{int64_t(batch), int64_t(n), int64_t(p)};
  NEEDLE_REQUIRE(a_shape[0] >= 0 && a_shape[1] >= 0 && a_shape[2] >= 0 && b_shape[2] >= 0, "matmul: sizes too large");
  check_view("matmul", a, a_shape, a_str, a_off);
  check_view("matmul", b, b_shape, b_str, b_off);
  size_at_least("matmul", "out", *out, prod({a_shape[0], a_shape[1], b_shape[2]}));
  if (batch == 0 || m == 0 || p == 0) return;
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    T* c = out->data<T>();
    if (n == 0) {
      std::fill(c, c + batch * m * p, T(0));
      return;
    }
    gemm::View<T> va{a.data<T>() + a_off, a_str[1], a_str[2]}, vb{b.data<T>() + b_off, b_str[1], b_str[2]};
    if (batch > 1 && b_str[0] == 0 && a_str[0] == static_cast<int64_t>(m) * a_str[1]) {
      // a stack of A's against one shared B is a single tall product
      gemm::run(va, 0, vb, 0, c, 1, batch * m, n, p);
    } else {
      gemm::run(va, a_str[0], vb, b_str[0], c, batch, m, n, p);
    }
  });
}

inline void Matmul(const AlignedArray& a, const AlignedArray& b, AlignedArray* out, size_t m, size_t n, size_t p) {
  MatmulStrided(a, b, out, 1, m, n, p, 0, {0, int64_t(n), 1}, 0, {0, int64_t(p), 1});
}

}  // namespace cpu
}  // namespace needle
