// Memory for device buffers: aligned blocks, huge pages for large ones, and a small cache of freed
// large blocks so that a loop allocating same-sized arrays (every training step does) reuses memory
// instead of having the kernel fault in and zero fresh pages on every call.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <new>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace needle {
namespace cpu {

constexpr size_t ALIGNMENT = 256;
constexpr size_t HUGE_PAGE = size_t(1) << 21;
constexpr size_t LARGE_BLOCK = size_t(1) << 22;  // from here on: 2 MiB aligned, huge pages, cached

/// The byte count actually allocated for a request (blocks are whole multiples of their alignment).
inline size_t block_bytes(size_t bytes) {
  const size_t align = bytes >= LARGE_BLOCK ? HUGE_PAGE : ALIGNMENT;
  return (std::max<size_t>(bytes, 1) + align - 1) / align * align;
}

/// Freed large blocks waiting for a request of the same size; the oldest go when the cache is full.
class BlockCache {
 public:
  static constexpr size_t CAPACITY = size_t(256) << 20;

  void* take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = blocks_.begin(); it != blocks_.end(); ++it)
      if (it->first == bytes) {
        void* p = it->second;
        blocks_.erase(it);
        total_ -= bytes;
        return p;
      }
    return nullptr;
  }

  void give(void* p, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    blocks_.emplace_back(bytes, p);
    total_ += bytes;
    while (total_ > CAPACITY) {
      total_ -= blocks_.front().first;
      std::free(blocks_.front().second);
      blocks_.pop_front();
    }
  }

 private:
  std::mutex mu_;
  std::deque<std::pair<size_t, void*>> blocks_;
  size_t total_ = 0;
};

/// The process's cache; never destroyed, so buffers freed during interpreter shutdown still find it.
inline BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache;
  return *cache;
}

/// At least `bytes` of aligned memory; give it back with release_bytes(p, bytes) or std::free.
inline void* aligned_bytes(size_t bytes) {
  const size_t total = block_bytes(bytes);
  const bool large = total >= LARGE_BLOCK;
  if (large) {
    if (void* p = block_cache().take(total)) return p;
  }
  void* p = std::aligned_alloc(large ? HUGE_PAGE : ALIGNMENT, total);
  if (p == nullptr) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (large) madvise(p, total, MADV_HUGEPAGE);  // as numpy does: 32 faults for 64 MiB, not 16384
#endif
  return p;
}

/// Frees memory from aligned_bytes(bytes); large blocks go to the cache for reuse.
inline void release_bytes(void* p, size_t bytes) {
  const size_t total = block_bytes(bytes);
  if (total >= LARGE_BLOCK)
    block_cache().give(p, total);
  else
    std::free(p);
}

}  // namespace cpu
}  // namespace needle
