#include "mg_loaded.h"

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <algorithm>

#include "mg_real.h"

namespace mapguard {

bool LinkUnitOf(const void *p, uintptr_t *base, char *object, size_t object_size) {
  struct Probe {
    uintptr_t addr, base;
    const char *name;
    bool found;
  } probe{uintptr_t(p), 0, nullptr, false};
  dl_iterate_phdr(
      [](dl_phdr_info *info, size_t, void *arg) {
        auto *pr = static_cast<Probe *>(arg);
        for (int i = 0; i < info->dlpi_phnum; i++) {
          const ElfW(Phdr) &ph = info->dlpi_phdr[i];
          uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
          if (ph.p_type == PT_LOAD && pr->addr >= lo && pr->addr < lo + ph.p_memsz) {
            pr->found = true;
            pr->base = info->dlpi_addr;
            pr->name = info->dlpi_name ? info->dlpi_name : "";
          }
        }
        return pr->found ? 1 : 0;
      },
      &probe);
  if (!probe.found) return false;
  *base = probe.base;
  snprintf(object, object_size, "%s", probe.name);
  return true;
}

LoadedRanges::~LoadedRanges() {
  if (ranges_) munmap(ranges_, capacity_ * sizeof(Range));
}

bool LoadedRanges::Take() {
  // Count, then fill: a library loaded in between is left out (its data is
  // then not read), never written past the end.
  size_t segments = 0;
  dl_iterate_phdr(
      [](dl_phdr_info *info, size_t, void *arg) {
        for (int i = 0; i < info->dlpi_phnum; i++) *static_cast<size_t *>(arg) += info->dlpi_phdr[i].p_type == PT_LOAD;
        return 0;
      },
      &segments);
  if (segments == 0) return false;
  void *mem = mmap(nullptr, segments * sizeof(Range), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return false;
  ranges_ = static_cast<Range *>(mem);
  capacity_ = segments;
  count_ = 0;
  dl_iterate_phdr(
      [](dl_phdr_info *info, size_t, void *arg) {
        auto *self = static_cast<LoadedRanges *>(arg);
        for (int i = 0; i < info->dlpi_phnum && self->count_ < self->capacity_; i++) {
          const ElfW(Phdr) &ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_LOAD) continue;
          uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
          self->ranges_[self->count_++] = {lo, lo + ph.p_memsz};
        }
        return 0;
      },
      this);
  std::sort(ranges_, ranges_ + count_, [](const Range &a, const Range &b) { return a.lo < b.lo; });
  return true;
}

bool LoadedRanges::Contains(const void *p, size_t size) const {
  uintptr_t a = uintptr_t(p);
  // The last range starting at or below a.
  size_t lo = 0, hi = count_;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (ranges_[mid].lo <= a) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && a + size <= ranges_[lo - 1].hi && a + size >= a;
}

namespace {

constexpr size_t kMaxSegments = 16;

// The segments of the link unit loaded at `base` from `object`; 0 if none
// is (any more).
size_t SegmentsOf(uintptr_t base, const char *object, CodeRange *out) {
  struct Probe {
    uintptr_t base;
    const char *object;
    CodeRange *out;
    size_t n;
  } probe{base, object, out, 0};
  dl_iterate_phdr(
      [](dl_phdr_info *info, size_t, void *arg) {
        auto *pr = static_cast<Probe *>(arg);
        if (info->dlpi_addr != pr->base || strcmp(info->dlpi_name ? info->dlpi_name : "", pr->object)) return 0;
        for (int i = 0; i < info->dlpi_phnum && pr->n < kMaxSegments; i++) {
          const ElfW(Phdr) &ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_LOAD) continue;
          uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
          pr->out[pr->n++] = {lo, lo + ph.p_memsz};
        }
        return 1;
      },
      &probe);
  return probe.n;
}

}  // namespace

}  // namespace mapguard

// A library unloaded by this call takes its call sites and inline-copy
// table with it: the runtime's pointers into them are dropped first thing
// after (a library loaded later may take the same addresses).
extern "C" int dlclose(void *handle) {
  using namespace mapguard;
  MG_REAL(int, dlclose, (void *));
  link_map *lm = nullptr;
  uintptr_t base = 0;
  char object[4096] = "";
  CodeRange segments[kMaxSegments];
  size_t n = 0;
  // dlfcn.h declares the handle nonnull; a program may still pass null
  // (dlclose says so with an error): hide it from the optimizer's belief.
  void *checked = handle;
  __asm__("" : "+r"(checked));
  if (checked && dlinfo(checked, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_addr) {
    base = lm->l_addr;
    snprintf(object, sizeof(object), "%s", lm->l_name ? lm->l_name : "");
    n = SegmentsOf(base, object, segments);
  }
  int rc = real_dlclose(handle);
  if (rc == 0 && n > 0) {
    CodeRange still[kMaxSegments];
    if (SegmentsOf(base, object, still) == 0) {
      ForgetStatsSitesIn(segments, n);
      ForgetInlineCopiesIn(segments, n);
    }
  }
  return rc;
}
