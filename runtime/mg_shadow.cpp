// The cold half of the shadow tables: their memory.
#include "mg_shadow.h"

#include <sys/mman.h>

namespace mapguard {

ShadowTable g_shadow;

void *MapShadowMemory(size_t bytes) {
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) Die("mapguard: error: cannot map %zu bytes of shadow memory", bytes);
  return p;
}

void UnmapShadowMemory(void *p, size_t bytes) { munmap(p, bytes); }

}  // namespace mapguard
