// Memory the program gives back: the shadow of what lived in it is reset.
//
// A map destroyed by code built without the plugin (a factory in a plain
// translation unit, a prebuilt library) leaves its history in its shadow
// slot; so does a freed atomic its clock. The next map or atomic at that
// address would inherit them: a correct program reported, or a race missed
// through an edge the old object carried. So every way memory goes back
// resets the slots of the granules in it (ResetFreedShadow, mg_access.cpp;
// ResetSyncsInRange, mg_hb.cpp, for the sync table),
// before the memory can be handed out again:
//   - free() (and so operator delete, which calls it), realloc() when the
//     block moves, munmap();
//   - a thread's stack below its last frame, when the thread exits (glibc
//     gives the stack to a later thread).
// A freed block whose shadow pages were never marked used (mg_shadow.h) costs
// one look at the region table, or at a bitmap word: most frees.
#include <malloc.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "mg_access.h"
#include "mg_hb.h"
#include "mg_real.h"
#include "mg_rt.h"
#include "mg_shadow.h"

extern "C" void __libc_free(void *);

namespace mapguard {

void ResetFreedRange(const void *begin, size_t bytes) {
  const uintptr_t b = reinterpret_cast<uintptr_t>(begin);
  if (g_shadow.MaybeUsed(b, b + bytes)) g_shadow.ForEachUsed(b, b + bytes, ResetFreedShadow);
  ResetSyncsInRange(b, b + bytes);
}

}  // namespace mapguard

using namespace mapguard;

namespace {

// Whether a freed block may have shadow, decided without asking the
// allocator its size (which would double the cost of a small free): only
// 4 MiB regions that ever held a map or a sync object have any (in either table). glibc's
// heap blocks are below its largest mmap threshold (32 MiB), so the regions
// from the block's start to 32 MiB past it are looked at (nine adjacent
// words); larger blocks are mmap'd, a page boundary + 16 (or page-aligned,
// from memalign), and those are always asked. With another allocator, a
// block larger than 32 MiB that starts neither way and reaches into a region
// with shadow is missed.
constexpr uintptr_t kLargestHeapBlock = uintptr_t(32) << 20;
MG_ALWAYS_INLINE bool MayHaveShadow(const void *p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return g_shadow.AnyMapped(a, a + kLargestHeapBlock) ||
         SyncTableMapped(a, a + kLargestHeapBlock) || (a & 4095) == 16 || (a & 4095) == 0;
}

bool AnyUsed(const void *p, size_t bytes) {
  bool used = false;
  const uintptr_t b = reinterpret_cast<uintptr_t>(p);
  g_shadow.ForEachUsed(b, b + bytes, [&](MapShadow *) {
    used = true;
    return false;  // a look only: leave the page marked
  });
  return used || AnySyncsInRange(b, b + bytes);
}

#ifndef MG_STATIC_RUNTIME
// dlsym may allocate and free while looking up free itself.
MG_TLS __thread bool t_resolving_free;
#endif

}  // namespace

extern "C" {

void free(void *p) {
  if (p && MayHaveShadow(p)) ResetFreedRange(p, malloc_usable_size(p));
#ifdef MG_STATIC_RUNTIME
  MG_REAL(void, free, (void *));
  real_free(p);
#else
  if (MG_UNLIKELY(t_resolving_free)) return __libc_free(p);
  t_resolving_free = true;
  MG_REAL(void, free, (void *));
  t_resolving_free = false;
  real_free(p);
#endif
}

// A block that moves is freed inside realloc, where another thread may be
// handed it before this one could reset its shadow. So a block with used
// shadow is moved here instead: new block, copy, reset, free.
void *realloc(void *p, size_t size) {
  MG_REAL(void *, realloc, (void *, size_t));
  if (!p || !MayHaveShadow(p)) return real_realloc(p, size);
  if (size == 0) {
    free(p);
    return nullptr;
  }
  const size_t old_size = malloc_usable_size(p);
  if (!AnyUsed(p, old_size)) return real_realloc(p, size);
  if (size <= old_size) {  // shrinks in place: the tail goes back
    ResetFreedRange(static_cast<char *>(p) + size, old_size - size);
    return real_realloc(p, size);
  }
  void *fresh = malloc(size);
  if (!fresh) return nullptr;
  __builtin_memcpy(fresh, p, old_size);
  free(p);
  return fresh;
}

int munmap(void *addr, size_t len) {
  MG_REAL(int, munmap, (void *, size_t));
  if (addr && len) ResetFreedRange(addr, len);  // skips regions without shadow
  return real_munmap(addr, len);
}

}  // extern "C"
