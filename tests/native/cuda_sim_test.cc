// The CUDA simulator without Python: its launcher (kernels/cuda_sim/scheduler.cc) and the fiber switch
// (fiber.h and the assembly in scheduler.cc, x86-64 or ARM64) running kernels with __syncthreads() and warp
// shuffles, plus the checked mode's reports. CI builds it natively and for aarch64 under qemu-user
// (tests/native/run.sh); the kernel table comes from sim_kernels.cu through cuda_sources.py.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "scheduler.h"

extern "C" const needle_sim::KernelInfo* needle_test_table(int* n);

using namespace needle_sim;

static int failures = 0, checks = 0;

static void expect(bool ok, const std::string& what) {
  ++checks;
  if (!ok) {
    ++failures;
    std::printf("FAIL: %s\n", what.c_str());
  }
}

static const KernelInfo& kernel(const char* name) {
  int n = 0;
  const KernelInfo* table = needle_test_table(&n);
  for (int i = 0; i < n; ++i)
    if (std::strcmp(table[i].name, name) == 0) return table[i];
  std::printf("no kernel %s in the table\n", name);
  std::exit(2);
}

template <typename T>
static BufferArg buf(int index, std::vector<T>& v, bool writable) {
  const char kind = sizeof(T) == 4 ? 'f' : 'd';
  return BufferArg{index, char(writable ? kind - 'a' + 'A' : kind), reinterpret_cast<char*>(v.data()),
                   v.size() * sizeof(T), sizeof(T), writable};
}

static ArgValue ptr(void* p) {
  ArgValue a;
  a.ptr = p;
  return a;
}

static ArgValue num(long long i) {
  ArgValue a;
  a.i = i;
  return a;
}

/// Launches and returns the error message ("" when the launch succeeded).
static std::string run(const char* name, std::vector<ArgValue> args, const std::vector<BufferArg>& buffers,
                       unsigned grid, unsigned block, bool checked) {
  LaunchConfig c;
  c.grid = dim3(grid);
  c.block = dim3(block);
  c.checked = checked;
  try {
    launch(kernel(name), std::move(args), buffers, c);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

static bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

int main() {
  for (bool checked : {false, true}) {
    const std::string mode = checked ? " (checked)" : "";
    // 64 blocks of 256 threads: enough blocks for the OS threads to share them out (unchecked)
    const unsigned grid = 64, block = 256, n = grid * block;
    std::vector<float> a(n), out(n, -1.0f);
    for (unsigned i = 0; i < n; ++i) a[i] = float(i);
    std::string err = run("reverse_blocks", {ptr(a.data()), ptr(out.data())}, {buf(0, a, false), buf(1, out, true)}, grid,
                          block, checked);
    bool ok = err.empty();
    for (unsigned i = 0; i < n && ok; ++i) ok = out[i] == float((i / block) * block + block - 1 - i % block);
    expect(ok, "reverse_blocks" + mode + " " + err);

    std::vector<double> d(n), sums(grid, 0.0);
    for (unsigned i = 0; i < n; ++i) d[i] = 0.5 * double(i % 97);
    err = run("block_sums", {ptr(d.data()), ptr(sums.data())}, {buf(0, d, false), buf(1, sums, true)}, grid, block, checked);
    ok = err.empty();
    for (unsigned b = 0; b < grid && ok; ++b) {
      double want = 0;
      for (unsigned t = 0; t < block; ++t) want += d[b * block + t];
      ok = sums[b] == want;
    }
    expect(ok, "block_sums" + mode + " " + err);

    std::vector<float> w(n / 32, 0.0f);
    err = run("warp_sums", {ptr(a.data()), ptr(w.data())}, {buf(0, a, false), buf(1, w, true)}, grid, block, checked);
    ok = err.empty();
    for (unsigned k = 0; k < n / 32 && ok; ++k) ok = w[k] == float(32 * 32 * k + 31 * 16);
    expect(ok, "warp_sums" + mode + " " + err);

    std::vector<float> small(64, 0.0f);
    err = run("early_return", {ptr(small.data()), num(40)}, {buf(0, small, true)}, 1, 64, checked);
    expect(has(err, "divergent barrier"), "early_return reported as a divergent barrier" + mode + ": " + err);
  }
  // what only the checked mode sees
  std::vector<float> a(512, 1.0f), out(512, 0.0f);
  for (unsigned i = 0; i < 512; ++i) a[i] = float(i);
  std::string err = run("reverse_blocks_no_barrier", {ptr(a.data()), ptr(out.data())}, {buf(0, a, false), buf(1, out, true)},
                        2, 256, true);
  expect(has(err, "depends on the order"), "missing barrier reported: " + err);
  std::vector<float> b(100, 1.0f), c(100, 0.0f);
  err = run("off_by_one", {ptr(b.data()), ptr(c.data()), num(100)}, {buf(0, b, false), buf(1, c, true)}, 1, 128, true);
  expect(has(err, "out-of-bounds") && has(err, "element 100"), "out-of-bounds access reported: " + err);
  std::printf("%d checks, %d failed\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
