// The simulator's launcher: runs a kernel over a grid of blocks, each block's threads as fibers with real
// barrier semantics, blocks spread over the CPU's cores. The checked mode runs the launch twice on guarded
// copies of its buffers (thread order forward, then reversed) to report what compute-sanitizer would.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "needle_sim.h"

namespace needle_sim {

/// A kernel fault (bad barrier, out-of-bounds access, order-dependent result): becomes a Python RuntimeError.
struct KernelError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A buffer argument of a launch: where it lives and how many bytes it has.
struct BufferArg {
  int index;          // position in the kernel's parameter list
  char kind;          // its kind letter (see kind_of)
  char* data;
  size_t bytes;
  size_t itemsize;
  bool writable;
};

struct LaunchConfig {
  dim3 grid, block;
  bool checked = false;  // guarded buffers, two thread orders, compared results (slow; for tests and learners)
  int threads = 0;       // OS threads for the blocks (0: all cores)
};

/// Runs `kernel` with `args` (buffer pointers already in place; `buffers` lists them).
void launch(const KernelInfo& kernel, std::vector<ArgValue> args, const std::vector<BufferArg>& buffers,
            const LaunchConfig& config);

/// "(x, y, z)"
std::string str(const uint3& v);

}  // namespace needle_sim
