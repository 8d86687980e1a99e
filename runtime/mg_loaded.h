// The link units (executable, shared libraries) loaded right now, as the
// dynamic loader lists them. Instrumented code's static data (call sites,
// inline-copy tables) lives in them, and a library can be unloaded
// (dlclose) while the runtime still holds pointers into it. The dlclose
// interceptor (mg_loaded.cpp) is the one place that learns of an unload:
// it tells the holders of such pointers (ForgetCodeIn), and whoever reads
// them late (print_stats at exit) can also check them here.
#ifndef MAPGUARD_LOADED_H
#define MAPGUARD_LOADED_H

#include <stddef.h>
#include <stdint.h>

#include "mapguard/interface.h"

namespace mapguard {

// The load address and file name of the link unit whose segments hold `p`;
// false if none does. Safe in constructors (inside dlopen).
bool LinkUnitOf(const void *p, uintptr_t *base, char *object, size_t object_size);

// Every loaded segment's address range, taken once (Take) and then asked
// without the loader's lock. Memory from mmap, given back on destruction.
class LoadedRanges {
 public:
  LoadedRanges() = default;
  LoadedRanges(const LoadedRanges &) = delete;
  LoadedRanges &operator=(const LoadedRanges &) = delete;
  ~LoadedRanges();
  bool Take();
  // [p, p + size) lies inside one loaded segment.
  bool Contains(const void *p, size_t size) const;

 private:
  struct Range {
    uintptr_t lo, hi;
  };
  Range *ranges_ = nullptr;
  size_t count_ = 0, capacity_ = 0;
};

constexpr size_t kMaxSegmentsPerUnit = 16;

// An unloaded link unit's segments, [lo, hi) each.
struct CodeRange {
  uintptr_t lo, hi;
};
inline bool InRanges(const CodeRange *ranges, size_t n, const void *p) {
  for (size_t i = 0; i < n; i++)
    if (uintptr_t(p) >= ranges[i].lo && uintptr_t(p) < ranges[i].hi) return true;
  return false;
}

// A call site as the runtime may read it: one in memory that is not loaded
// now, or that does not look like a site (another library loaded where an
// unloaded one was), is replaced by kUnloadedSite. Free until something was
// unloaded; then each call takes a snapshot (reports and print_stats only).
extern const mg_site kUnloadedSite;
bool AnyUnloaded();
const mg_site *SiteIfLoaded(const mg_site *site);
const mg_site *SiteIfLoaded(const LoadedRanges &loaded, const mg_site *site);

// What holds pointers into instrumented code's data, told after a dlclose
// unloaded a link unit: map records' sites (mg_stats.cpp) and inline-copy
// tables (mg_inline_copies.cpp).
void ForgetStatsSitesIn(const CodeRange *ranges, size_t n);
void ForgetInlineCopiesIn(const CodeRange *ranges, size_t n);

}  // namespace mapguard

#endif
