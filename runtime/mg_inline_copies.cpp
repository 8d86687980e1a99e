#include "mg_inline_copies.h"

#include <stdint.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>

#include "mg_appender.h"
#include "mg_loaded.h"
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
// object of a link unit registers the same one, kept once. No lock:
// constructors run inside dlopen on any thread, in a fork child, or in a
// signal handler's dlopen. A slot's state:
//   kFree (begin null) --CAS of begin from null--> filling (begin set,
//     still kFree) --filled, release--> kReady (kGone if the loader does not
//     list the link unit)
//   kReady --dlclose unloaded its link unit (ForgetInlineCopiesIn)--> kGone
//   kGone, or kReady whose link unit is no longer loaded --the same begin
//     registered again (a library loaded there)--> filling
// Each slot also keeps the link unit's load address and file name: a
// section whose library was replaced without the runtime seeing the
// dlclose (a loader path it does not intercept) is not read either.
constexpr int kMaxSections = 256;
enum SectionState { kFree = 0, kReady = 1, kGone = 2 };
struct Section {
  std::atomic<const InlineCopy *> begin;
  const InlineCopy *end;
  uintptr_t base;
  char object[256];
  std::atomic<int> state;
};
Section g_sections[kMaxSections];
std::atomic<bool> g_overflow{false};

// Still the link unit that registered it.
bool StillLoaded(const Section &sec) {
  uintptr_t base;
  char object[sizeof(sec.object)];
  return LinkUnitOf(sec.begin.load(std::memory_order_relaxed), &base, object, sizeof(object)) &&
         base == sec.base && !strcmp(object, sec.object);
}

bool IsLibraryName(const char *name) {
  // Demangled names of function templates start with their return type
  // ("void std::__sort<...>(...)"): look at what comes before the parameters.
  const char *paren = strchr(name, '(');
  size_t len = paren ? size_t(paren - name) : strlen(name);
  for (const char *ns : {"std::", "__gnu_cxx::"}) {
    if (!strncmp(name, ns, strlen(ns))) return true;
    for (size_t i = 0; i + 1 + strlen(ns) <= len; i++)
      if (name[i] == ' ' && !strncmp(name + i + 1, ns, strlen(ns))) return true;
  }
  return false;
}

// A name on one output line, cut (kept readable) past kNameWidth bytes.
constexpr size_t kNameWidth = 300;

}  // namespace

void PrintInlineCopies(bool json, void (*emit)(const char *, size_t)) {
  size_t total = 0;
  bool live[kMaxSections] = {};
  for (int i = 0; i < kMaxSections; i++) {
    Section &sec = g_sections[i];
    if (sec.state.load(std::memory_order_acquire) != kReady || !StillLoaded(sec)) continue;
    live[i] = true;
    total += size_t(sec.end - sec.begin.load(std::memory_order_relaxed));
  }
  if (total == 0) return;
  // Every link unit's instrumented copies, sorted by address: a name
  // resolved to any of them (another library's instrumented copy won) is
  // instrumented. Then the entries sorted by name: a function is counted
  // once however many link units hold a copy of it (hidden inline copies
  // in an executable and its libraries).
  size_t bytes = total * (sizeof(const void *) + 2 * sizeof(const InlineCopy *));
  void *mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;
  const void **instrumented = static_cast<const void **>(mem);
  const InlineCopy **all = reinterpret_cast<const InlineCopy **>(instrumented + total);
  const InlineCopy **plain = all + total;
  size_t n = 0;
  for (int i = 0; i < kMaxSections; i++)
    if (live[i])
      for (const InlineCopy *e = g_sections[i].begin.load(std::memory_order_relaxed); e < g_sections[i].end; e++) {
        instrumented[n] = e->instrumented;
        all[n++] = e;
      }
  std::sort(instrumented, instrumented + n);
  const size_t copies = size_t(std::unique(instrumented, instrumented + n) - instrumented);
  auto by_name = [](const InlineCopy *a, const InlineCopy *b) { return strcmp(a->name, b->name) < 0; };
  auto same_name = [](const InlineCopy *a, const InlineCopy *b) { return !strcmp(a->name, b->name); };
  std::sort(all, all + n, by_name);
  size_t plain_count = 0;
  for (size_t k = 0; k < n; k++)
    if (!std::binary_search(instrumented, instrumented + copies, all[k]->by_name)) plain[plain_count++] = all[k];
  const size_t functions = size_t(std::unique(all, all + n, same_name) - all);
  plain_count = size_t(std::unique(plain, plain + plain_count, same_name) - plain);
  // The program's own functions first (the standard library's are many and
  // rarely called through an address), then by name.
  std::sort(plain, plain + plain_count, [](const InlineCopy *a, const InlineCopy *b) {
    bool lib_a = IsLibraryName(a->name), lib_b = IsLibraryName(b->name);
    return lib_a != lib_b ? lib_b : strcmp(a->name, b->name) < 0;
  });
  const size_t kNamed = 12;
  static char line[8192];
  auto cut_name = [](Appender &out, const char *name) {
    size_t len = strlen(name);
    if (len <= kNameWidth) out("%s", name);
    else out("%.*s...", int(kNameWidth), name);
  };
  if (json) {
    // One object: each name cut to kNameWidth, so it always fits.
    static_assert(kNamed * (2 * kNameWidth + 16) + 200 < sizeof(line), "the JSON line fits");
    Appender out(line, sizeof(line));
    out("{\"mapguard_inline_copies\":{\"instrumented\":%llu,\"plain_by_address\":%llu,\"names\":[",
        (unsigned long long)functions, (unsigned long long)plain_count);
    char name[kNameWidth + 4];
    for (size_t k = 0; k < plain_count && k < kNamed; k++) {
      snprintf(name, sizeof(name), "%s", plain[k]->name);
      if (strlen(plain[k]->name) > kNameWidth) strcpy(name + kNameWidth, "...");
      if (k) out(",");
      AppendJsonString(out, name);
    }
    out("]}}\n");
    emit(out.data(), out.size());
  } else {
    Appender out(line, sizeof(line));
    out("\ninline functions with an instrumented copy: %llu; %llu of them reached through their "
        "address in a plain object's copy%s\n",
        (unsigned long long)functions, (unsigned long long)plain_count,
        plain_count ? " (calls through a function pointer or vtable run it unchecked; "
                      "docs/usage.md, \"Partial instrumentation\"):"
                    : "");
    emit(out.data(), out.size());
    for (size_t k = 0; k < plain_count && k < kNamed; k++) {
      Appender name(line, sizeof(line));
      name("  ");
      cut_name(name, plain[k]->name);
      name("\n");
      emit(name.data(), name.size());
    }
    Appender tail(line, sizeof(line));
    if (plain_count > kNamed) tail("  and %llu more\n", (unsigned long long)(plain_count - kNamed));
    if (g_overflow.load(std::memory_order_relaxed))
      tail("  (more than %d link units registered copies: the rest are not counted)\n", kMaxSections);
    if (tail.size()) emit(tail.data(), tail.size());
  }
  munmap(mem, bytes);
}

void ForgetInlineCopiesIn(const CodeRange *ranges, size_t n) {
  for (Section &sec : g_sections) {
    int ready = kReady;
    if (InRanges(ranges, n, sec.begin.load(std::memory_order_acquire)))
      sec.state.compare_exchange_strong(ready, kGone, std::memory_order_acq_rel);
  }
}

}  // namespace mapguard

extern "C" void __mapguard_register_inline_copies(const void *begin, const void *end) {
  using namespace mapguard;
  if (!begin || !end || begin >= end) return;
  auto *first = static_cast<const InlineCopy *>(begin);
  for (int i = 0; i < kMaxSections; i++) {
    Section &sec = g_sections[i];
    const InlineCopy *expected = nullptr;
    if (!sec.begin.compare_exchange_strong(expected, first, std::memory_order_acq_rel)) {
      // Another link unit's, or this one's (registered by another of its
      // objects: done, or being filled). A slot whose library was unloaded
      // is taken over by the one loaded at its address.
      if (expected != first) continue;
      int gone = kGone;
      if (!sec.state.compare_exchange_strong(gone, kFree, std::memory_order_acq_rel)) {
        // Ready: this link unit's (done), unless its library went away
        // without the dlclose interceptor seeing it.
        int ready = kReady;
        if (StillLoaded(sec) || !sec.state.compare_exchange_strong(ready, kFree, std::memory_order_acq_rel))
          return;
      }
    }
    sec.end = static_cast<const InlineCopy *>(end);
    // A link unit the loader does not list (never seen): the slot is left
    // for a later registration of the same table rather than filled.
    bool listed = LinkUnitOf(begin, &sec.base, sec.object, sizeof(sec.object));
    sec.state.store(listed ? kReady : kGone, std::memory_order_release);
    return;
  }
  g_overflow.store(true, std::memory_order_relaxed);
}
