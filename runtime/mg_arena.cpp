#include "mg_arena.h"

#include <string.h>
#include <sys/mman.h>

#include "mg_rt.h"

namespace mapguard {

std::atomic<uint32_t> g_fork_generation{0};

namespace {

constexpr int kClasses = 32;
struct FreeNode {
  FreeNode *next;
};
FreeNode *g_free[kClasses];
char *g_chunk;
size_t g_chunk_left;
}  // namespace
SpinLock g_arena_lock;  // also taken around fork (mg_thread.cpp)
namespace {

int ClassOf(size_t bytes) {
  int c = 4;  // 16 bytes minimum
  while ((size_t(1) << c) < bytes) c++;
  return c;
}

}  // namespace

void *ArenaAlloc(size_t bytes) {
  int c = ClassOf(bytes);
  size_t size = size_t(1) << c;
  g_arena_lock.Lock();
  void *p = nullptr;
  if (g_free[c]) {
    p = g_free[c];
    g_free[c] = g_free[c]->next;
  } else if (size >= (1u << 20)) {
    g_arena_lock.Unlock();
    p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) Die("mapguard: error: out of memory (%zu bytes)", size);
    return p;
  } else {
    // Naturally aligned up to a cache line: a block of 64 bytes or more
    // starts a line (read-set entries and sync clocks rely on it).
    size_t align = size < 64 ? size : 64;
    size_t pad = (align - (reinterpret_cast<uintptr_t>(g_chunk) & (align - 1))) & (align - 1);
    if (g_chunk_left >= pad) {
      g_chunk += pad;
      g_chunk_left -= pad;
    }
    if (g_chunk_left < size) {
      size_t chunk = 4u << 20;
      void *m = mmap(nullptr, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) {
        g_arena_lock.Unlock();
        Die("mapguard: error: out of memory (%zu bytes)", chunk);
      }
      g_chunk = static_cast<char *>(m);
      g_chunk_left = chunk;
    }
    p = g_chunk;
    g_chunk += size;
    g_chunk_left -= size;
    g_arena_lock.Unlock();
    return p;  // fresh mmap memory is zero
  }
  g_arena_lock.Unlock();
  memset(p, 0, size);
  return p;
}

void ArenaFree(void *p, size_t bytes) {
  if (!p) return;
  int c = ClassOf(bytes);
  if ((size_t(1) << c) >= (1u << 20)) {
    munmap(p, size_t(1) << c);
    return;
  }
  g_arena_lock.Lock();
  FreeNode *n = static_cast<FreeNode *>(p);
  n->next = g_free[c];
  g_free[c] = n;
  g_arena_lock.Unlock();
}

}  // namespace mapguard
