// The region stack's overflow array (mg_region_stack.h, S6): mmap, so a
// signal handler's push may map it and the program's heap is never used.
#include "mg_region_stack.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace mapguard {

Region *MapRegionOverflow(size_t entries) {
  void *p = mmap(nullptr, entries * sizeof(Region), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<Region *>(p);
}

// The system call itself: the runtime's munmap interceptor has nothing to
// reset here.
void UnmapRegionOverflow(Region *entries, size_t count) {
  syscall(SYS_munmap, entries, count * sizeof(Region));
}

void DiscardRegionOverflow(Region *entries, size_t count) {
  // Zero-filled on the next touch: free entries (S2).
  madvise(entries, count * sizeof(Region), MADV_DONTNEED);
}

}  // namespace mapguard
