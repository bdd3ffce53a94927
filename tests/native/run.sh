#!/usr/bin/env bash
# Builds and runs the C++ tests of tests/native/ with one compiler for one target: cpu_kernels_test.cc (the
# CPU kernels against naive loops; linked with one_definition.cc, a second unit including every header) and
# cuda_sim_test.cc (the CUDA simulator's launcher and fiber switch),
# then disassembles the kernels' loops and fails if they did not compile to vector (SIMD) instructions.
#
#   tests/native/run.sh g++                                          this machine, GCC, OpenMP
#   tests/native/run.sh clang++ --no-openmp                          this machine, clang, one thread
#   tests/native/run.sh aarch64-linux-gnu-g++                        ARM64 build, run under qemu-aarch64
#   tests/native/run.sh clang++ --target=aarch64-linux-gnu --no-openmp   ARM64 with clang (as on a Mac)
#
# Other architectures run through qemu-user (Debian: qemu-user, g++-aarch64-linux-gnu); PYTHON (default
# python3) runs needle/backend_ndarray/cuda_sources.py, which writes the simulator's kernel table.
set -euo pipefail
cd "$(dirname "$0")/../.."

CXX=$1
shift
OPENMP=-fopenmp
FLAGS=()
for arg in "$@"; do
  if [ "$arg" = --no-openmp ]; then OPENMP=""; else FLAGS+=("$arg"); fi
done
ARCH=$($CXX "${FLAGS[@]}" -dumpmachine | cut -d- -f1)
NAME="$(basename "$CXX")-$ARCH${OPENMP:+-openmp}"
OUT=build/native/$NAME
mkdir -p "$OUT"

RUN=()
OBJDUMP=objdump
if [ "$ARCH" != "$(uname -m)" ]; then
  RUN=("qemu-$ARCH" -L "/usr/$ARCH-linux-gnu")
  OBJDUMP=$ARCH-linux-gnu-objdump
fi

# the CMakeLists.txt flags of the CPU kernels (no -march: the same portable build a learner gets)
KFLAGS=(-std=c++17 -O3 -fno-math-errno -fno-trapping-math -ffp-contract=fast -Wno-psabi -Wno-unknown-warning-option)
start=$(date +%s)
"${PYTHON:-python3}" needle/backend_ndarray/cuda_sources.py "$OUT/sim_table.cc" needle_test_table tests/native/sim_kernels.cu
$CXX "${FLAGS[@]}" "${KFLAGS[@]}" $OPENMP -Ikernels/cpu tests/native/cpu_kernels_test.cc tests/native/one_definition.cc -o "$OUT/cpu_kernels_test" &
$CXX "${FLAGS[@]}" -std=c++17 -O2 -Wno-psabi -Wno-unknown-warning-option $OPENMP -Ikernels/cuda_sim \
  tests/native/cuda_sim_test.cc kernels/cuda_sim/scheduler.cc "$OUT/sim_table.cc" -o "$OUT/cuda_sim_test" &
for _ in 1 2; do wait -n || { echo "[$NAME] build failed"; exit 1; }; done
echo "[$NAME] built in $(($(date +%s) - start)) s"

"${RUN[@]}" "$OUT/cpu_kernels_test"
"${RUN[@]}" "$OUT/cuda_sim_test"

# The loops must be vector code: on ARM64, NEON instructions on v registers (.4s: four floats); on x86-64,
# packed single-precision SSE/AVX instructions. On x86-64 GCC multi-versions the loops (target_clones: the
# check_* function only calls an ifunc), so there the AVX2 copies must exist instead; clang's exp is cloned.
if [ "$ARCH" = aarch64 ]; then
  VEC='\sv[0-9]+\.4s'
  FUNCS="check_micro_f32 check_add_f32 check_sum_f32 check_max_f32 check_exp_f32"
else
  VEC='\sv?(add|mul|max|min|sub|and|andn|or|cmp[a-z]*|fmadd[0-9]*|blendv)ps\s'
  FUNCS="check_micro_f32"
  if echo | $CXX "${FLAGS[@]}" -dM -E -x c++ - | grep -q __clang__; then
    FUNCS="$FUNCS check_add_f32 check_sum_f32 check_max_f32"
  fi
  if [ "$ARCH" = x86_64 ]; then
    n=$(nm -C "$OUT/cpu_kernels_test" | grep -cE '(binary_loop|reduce_block|exp_f32).*\.avx2' || true)
    if [ "$n" -eq 0 ]; then
      echo "[$NAME] FAIL: no AVX2 copies of the elementwise, reduction and exp loops"
      exit 1
    fi
    echo "[$NAME] $n AVX2 copies of the elementwise, reduction and exp loops"
  fi
fi
for f in $FUNCS; do
  n=$($OBJDUMP -d --no-show-raw-insn --disassemble="$f" "$OUT/cpu_kernels_test" | grep -cE "$VEC" || true)
  if [ "$n" -eq 0 ]; then
    echo "[$NAME] FAIL: $f has no vector instructions (the $ARCH build lost its SIMD path)"
    exit 1
  fi
  printf '[%s] %s: %d vector instructions\n' "$NAME" "$f" "$n"
done
echo "[$NAME] ok in $(($(date +%s) - start)) s"
