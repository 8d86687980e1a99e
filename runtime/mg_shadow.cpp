// The cold half of ShadowTable: mapping a region's shadow on first use.
#include "mg_shadow.h"

#include <sys/mman.h>

namespace mapguard {

ShadowTable g_shadow;

MG_NOINLINE MapShadow *ShadowTable::MapRegion(uintptr_t index) {
  // The slots, then the used-page bitmap (mg_shadow.h).
  size_t bytes = kRegionShadowBytes + kPagesPerRegion / 8;
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) Die("mapguard: error: cannot map %zu bytes of shadow memory", bytes);
  MapShadow *fresh = static_cast<MapShadow *>(p);
  MapShadow *expected = nullptr;
  // Two threads may map the same region at once; the loser unmaps its copy.
  if (!regions_[index].compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) {
    munmap(p, bytes);
    return expected;
  }
  regions_mapped_.fetch_add(1, std::memory_order_relaxed);
  return fresh;
}

MapShadow *ShadowTable::Find(const void *addr) {
  uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  if (a >> kAddressBits) return nullptr;
  MapShadow *region = regions_[a >> kRegionBits].load(std::memory_order_acquire);
  if (!region) return nullptr;
  return &region[(a & ((uintptr_t(1) << kRegionBits) - 1)) >> kGranuleBits];
}

}  // namespace mapguard
