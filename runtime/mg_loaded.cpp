#include "mg_loaded.h"

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>

#include "mg_real.h"
#include "mapguard/interface.h"

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

namespace {

// Every link unit with its identity (load address and file) and segments,
// taken at one moment: around a dlclose (the units gone after it are the
// unloaded ones: the handle's library and the dependencies that went with
// it), and for LoadedRanges.
class LinkUnits {
 public:
  struct Unit {
    uintptr_t base;
    char object[232];
    uint32_t segments;
    CodeRange segment[kMaxSegmentsPerUnit];
  };
  ~LinkUnits() {
    if (units_) munmap(units_, capacity_ * sizeof(Unit));
  }
  void Take() {
    size_t n = 0;
    dl_iterate_phdr([](dl_phdr_info *, size_t, void *arg) { return ++*static_cast<size_t *>(arg), 0; }, &n);
    void *mem = n ? mmap(nullptr, n * sizeof(Unit), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                  : MAP_FAILED;
    if (mem == MAP_FAILED) return;
    units_ = static_cast<Unit *>(mem);
    capacity_ = n;
    dl_iterate_phdr(
        [](dl_phdr_info *info, size_t, void *arg) {
          auto *self = static_cast<LinkUnits *>(arg);
          if (self->count_ == self->capacity_) return 1;
          Unit &u = self->units_[self->count_++];
          u.base = info->dlpi_addr;
          snprintf(u.object, sizeof(u.object), "%s", info->dlpi_name ? info->dlpi_name : "");
          u.segments = 0;
          for (int i = 0; i < info->dlpi_phnum && u.segments < kMaxSegmentsPerUnit; i++) {
            const ElfW(Phdr) &ph = info->dlpi_phdr[i];
            if (ph.p_type != PT_LOAD) continue;
            uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
            u.segment[u.segments++] = {lo, lo + ph.p_memsz};
          }
          return 0;
        },
        this);
  }
  bool Has(const Unit &u) const {
    for (size_t i = 0; i < count_; i++)
      if (units_[i].base == u.base && !strcmp(units_[i].object, u.object)) return true;
    return false;
  }
  size_t count() const { return count_; }
  const Unit &operator[](size_t i) const { return units_[i]; }

 private:
  Unit *units_ = nullptr;
  size_t count_ = 0, capacity_ = 0;
};

}  // namespace

LoadedRanges::~LoadedRanges() {
  if (ranges_) munmap(ranges_, capacity_ * sizeof(Range));
}

bool LoadedRanges::Take() {
  LinkUnits units;
  units.Take();
  size_t segments = 0;
  for (size_t i = 0; i < units.count(); i++) segments += units[i].segments;
  if (segments == 0) return false;
  void *mem = mmap(nullptr, segments * sizeof(Range), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return false;
  ranges_ = static_cast<Range *>(mem);
  capacity_ = segments;
  count_ = 0;
  for (size_t i = 0; i < units.count(); i++)
    for (uint32_t k = 0; k < units[i].segments; k++) ranges_[count_++] = {units[i].segment[k].lo, units[i].segment[k].hi};
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

// Link units unloaded so far: while 0, every site pointer the runtime holds
// points into loaded code's data, and SiteIfLoaded costs one load.
std::atomic<uint64_t> g_unloads{0};

}  // namespace

const mg_site kUnloadedSite = {"access by a library unloaded since", "", 0, 0, "", "<unknown: first used by a library unloaded since>", "", 0,
                               MG_ABI_VERSION, 0, 0};

bool AnyUnloaded() { return g_unloads.load(std::memory_order_relaxed) != 0; }

const mg_site *SiteIfLoaded(const LoadedRanges &loaded, const mg_site *s) {
  if (!s) return s;
  auto text = [&](const char *p) { return p && loaded.Contains(p, 1); };
  if (!loaded.Contains(s, sizeof(*s)) || s->abi_version != MG_ABI_VERSION || !text(s->op) ||
      !text(s->file) || !text(s->function) || !text(s->map_type) || !text(s->map_name))
    return &kUnloadedSite;
  return s;
}

const mg_site *SiteIfLoaded(const mg_site *s) {
  if (!s || !AnyUnloaded()) return s;
  LoadedRanges loaded;
  return loaded.Take() ? SiteIfLoaded(loaded, s) : s;
}

}  // namespace mapguard

// A library unloaded by this call (and the dependencies that go with it)
// takes its call sites and inline-copy table along: the runtime's pointers
// into them are dropped first thing after (a library loaded later may take
// the same addresses). Reports and print_stats check the sites they read
// once anything was unloaded (SiteIfLoaded): pointers the runtime keeps in
// the maps' shadow are not rewritten here.
extern "C" int dlclose(void *handle) {
  using namespace mapguard;
  MG_REAL(int, dlclose, (void *));
  LinkUnits before;
  before.Take();
  int rc = real_dlclose(handle);
  if (rc != 0 || before.count() == 0) return rc;
  LinkUnits after;
  after.Take();
  for (size_t i = 0; i < before.count(); i++) {
    const LinkUnits::Unit &u = before[i];
    if (after.count() == 0 || after.Has(u)) continue;
    g_unloads.fetch_add(1, std::memory_order_relaxed);
    ForgetStatsSitesIn(u.segment, u.segments);
    ForgetInlineCopiesIn(u.segment, u.segments);
  }
  return rc;
}
