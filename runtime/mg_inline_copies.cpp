#include "mg_inline_copies.h"

#include <link.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>

#include "mg_appender.h"
#include "mg_report.h"
#include "mapguard/interface.h"

namespace mapguard {
namespace {

// One entry per instrumented inline function of a link unit, as the plugin
// lays it out: the address its original name resolved to (the instrumented
// copy's alias, or a plain object's copy that the linker kept under that
// name), the instrumented copy, and the function's readable name.
struct InlineCopy {
  const void *by_name;
  const void *instrumented;
  const char *name;
};

// Sections registered by link units' constructors: every instrumented
// object of a link unit registers the same one (kept once). Appended
// without a lock (dlopen may run constructors on any thread); a slot is
// claimed, then filled, then counted as filled.
constexpr int kMaxSections = 256;
struct Section {
  const InlineCopy *begin, *end;
};
Section g_sections[kMaxSections];
std::atomic<int> g_claimed{0}, g_filled{0};
std::atomic<bool> g_overflow{false};

// A section whose link unit was unloaded (dlclose) is not read.
bool StillLoaded(const void *p) {
  struct Probe {
    uintptr_t addr;
    bool found;
  } probe{uintptr_t(p), false};
  dl_iterate_phdr(
      [](dl_phdr_info *info, size_t, void *arg) {
        auto *pr = static_cast<Probe *>(arg);
        for (int i = 0; i < info->dlpi_phnum; i++) {
          const ElfW(Phdr) &ph = info->dlpi_phdr[i];
          uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
          if (ph.p_type == PT_LOAD && pr->addr >= lo && pr->addr < lo + ph.p_memsz) pr->found = true;
        }
        return pr->found ? 1 : 0;
      },
      &probe);
  return probe.found;
}

}  // namespace

void PrintInlineCopies(bool json, void (*emit)(const char *, size_t)) {
  const int sections = std::min(g_filled.load(std::memory_order_acquire), kMaxSections);
  if (sections == 0) return;
  size_t total = 0;
  for (int i = 0; i < sections; i++) {
    bool seen = false;
    for (int j = 0; j < i; j++) seen |= g_sections[j].begin == g_sections[i].begin;
    if (!seen && StillLoaded(g_sections[i].begin)) total += size_t(g_sections[i].end - g_sections[i].begin);
    else g_sections[i].end = g_sections[i].begin;  // not read below
  }
  if (total == 0) return;
  // The instrumented copies of every link unit, sorted: a name resolved to
  // any of them (another library's instrumented copy won) is instrumented.
  size_t bytes = total * (sizeof(const void *) + sizeof(const InlineCopy *));
  void *mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;
  const void **instrumented = static_cast<const void **>(mem);
  const InlineCopy **plain = reinterpret_cast<const InlineCopy **>(instrumented + total);
  size_t n = 0;
  for (int i = 0; i < sections; i++)
    for (const InlineCopy *e = g_sections[i].begin; e < g_sections[i].end; e++) instrumented[n++] = e->instrumented;
  std::sort(instrumented, instrumented + n);
  const size_t functions = size_t(std::unique(instrumented, instrumented + n) - instrumented);
  // Functions whose original name reaches a plain copy, once each.
  size_t plain_count = 0;
  for (int i = 0; i < sections; i++)
    for (const InlineCopy *e = g_sections[i].begin; e < g_sections[i].end; e++)
      if (!std::binary_search(instrumented, instrumented + functions, e->by_name)) plain[plain_count++] = e;
  auto by_copy = [](const InlineCopy *a, const InlineCopy *b) { return a->instrumented < b->instrumented; };
  std::sort(plain, plain + plain_count, by_copy);
  plain_count = size_t(std::unique(plain, plain + plain_count,
                                   [](const InlineCopy *a, const InlineCopy *b) {
                                     return a->instrumented == b->instrumented;
                                   }) -
                       plain);
  // The program's own functions first (the standard library's are many and
  // rarely called through an address), then by name.
  std::sort(plain, plain + plain_count, [](const InlineCopy *a, const InlineCopy *b) {
    bool lib_a = !strncmp(a->name, "std::", 5) || !strncmp(a->name, "__gnu_cxx::", 11);
    bool lib_b = !strncmp(b->name, "std::", 5) || !strncmp(b->name, "__gnu_cxx::", 11);
    if (lib_a != lib_b) return lib_b;
    return strcmp(a->name, b->name) < 0;
  });
  static char line[4096];
  Appender out(line, sizeof(line));
  const size_t kNamed = 12;
  if (json) {
    out("{\"mapguard_inline_copies\":{\"instrumented\":%llu,\"plain_by_address\":%llu,\"names\":[",
        (unsigned long long)functions, (unsigned long long)plain_count);
    for (size_t k = 0; k < plain_count && k < kNamed; k++) {
      if (k) out(",");
      AppendJsonString(out, plain[k]->name);
    }
    out("]}}\n");
    if (out.size() + 1 < sizeof(line)) emit(out.data(), out.size());
  } else {
    out("\ninline functions with an instrumented copy: %llu; %llu of them reached through their "
        "address in a plain object's copy%s\n",
        (unsigned long long)functions, (unsigned long long)plain_count,
        plain_count ? " (calls through a function pointer or vtable run it unchecked; "
                      "docs/usage.md, \"Partial instrumentation\"):"
                    : "");
    for (size_t k = 0; k < plain_count && k < kNamed; k++) out("  %s\n", plain[k]->name);
    if (plain_count > kNamed) out("  and %llu more\n", (unsigned long long)(plain_count - kNamed));
    if (g_overflow.load(std::memory_order_relaxed))
      out("  (more than %d link units registered copies: the rest are not counted)\n", kMaxSections);
    if (out.size() + 1 >= sizeof(line)) line[sizeof(line) - 2] = '\n';
    emit(out.data(), out.size());
  }
  munmap(mem, bytes);
}

}  // namespace mapguard

extern "C" void __mapguard_register_inline_copies(const void *begin, const void *end) {
  using namespace mapguard;
  if (!begin || !end || begin >= end) return;
  int slot = g_claimed.fetch_add(1, std::memory_order_relaxed);
  if (slot >= kMaxSections) {
    g_overflow.store(true, std::memory_order_relaxed);
    return;
  }
  g_sections[slot] = {static_cast<const InlineCopy *>(begin), static_cast<const InlineCopy *>(end)};
  // Slots are filled in claim order for the reader's count to cover them:
  // wait for earlier claimers (constructors run one at a time per dlopen;
  // this spins only when two threads dlopen at once).
  while (g_filled.load(std::memory_order_acquire) != slot) {
  }
  g_filled.store(slot + 1, std::memory_order_release);
}
