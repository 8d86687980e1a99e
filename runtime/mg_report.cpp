// Conflict reports. ReportConflict collects the facts (both threads, both
// access sites, both stacks, the map), then formats them into a buffer the
// runtime owns and writes it with one write(2) under the report lock, so two
// reports never interleave and a corrupted heap cannot stop the report.
#include "mg_report.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "mg_access.h"
#include "mg_stack.h"

namespace mapguard {

std::atomic<int> g_reports{0};

const char *ConflictMessage(ConflictKind kind) {
  switch (kind) {
    case ConflictKind::kWrites:
      return "concurrent map writes";
    case ConflictKind::kReadWrite:
      return "concurrent map read and map write";
    case ConflictKind::kIterationWrite:
      return "concurrent map iteration and map write";
    case ConflictKind::kUnsyncWrites:
      return "unsynchronized map writes";
    case ConflictKind::kUnsyncReadWrite:
      return "unsynchronized map read and map write";
    case ConflictKind::kUnsyncIterationWrite:
      return "unsynchronized map iteration and map write";
  }
  return "concurrent map access";
}

namespace {

// Text buffer owned by the runtime (rule 3): appends silently truncate.
class Appender {
 public:
  Appender(char *buf, size_t cap) : buf_(buf), cap_(cap) { buf_[0] = 0; }
  void operator()(const char *fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (len_ + 1 >= cap_) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf_ + len_, cap_ - len_, fmt, ap);
    va_end(ap);
    if (n > 0) len_ += size_t(n) < cap_ - len_ ? size_t(n) : cap_ - len_ - 1;
  }
  const char *data() const { return buf_; }
  size_t size() const { return len_; }

 private:
  char *buf_;
  size_t cap_;
  size_t len_ = 0;
};

char g_report_buf[1 << 17];
std::atomic<int> g_report_lock{0};
SymbolizedPC g_sym_scratch;

void LockReports() {
  int expected = 0;
  while (!g_report_lock.compare_exchange_weak(expected, 1, std::memory_order_acquire)) {
    expected = 0;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, nullptr);
  }
}
void UnlockReports() { g_report_lock.store(0, std::memory_order_release); }
}  // namespace

void ResetReportLockAfterFork() { g_report_lock.store(0, std::memory_order_relaxed); }

namespace {

const char *AccessNoun(const mg_site *site) {
  switch (site->kind) {
    case MG_READ:
      return "Read";
    case MG_WRITE:
      return "Write";
    case MG_ITERATE:
      return "Iteration";
    case MG_CONSTRUCT:
      return "Construction";
    case MG_DESTROY:
      return "Destruction";
  }
  return "Access";
}

void AppendSite(Appender &out, const mg_site *site) {
  if (site->file && site->file[0] && site->line)
    out("%s:%u:%u", site->file, site->line, site->column);
  else
    out("<unknown location>");
  if (site->function && site->function[0]) out(" in %s", site->function);
}

void AppendThreadName(Appender &out, const ThreadState *thr) {
  char path[64], name[32];
  snprintf(path, sizeof(path), "/proc/self/task/%d/comm", int(thr->os_tid));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, name, sizeof(name) - 1);
  close(fd);
  if (n <= 0) return;
  name[n] = 0;
  if (char *nl = strchr(name, '\n')) *nl = 0;
  out(" \"%s\"", name);
}

void AppendThread(Appender &out, const ThreadState *thr) {
  out("thread T%u (tid %d", thr->number, int(thr->os_tid));
  AppendThreadName(out, thr);
  out(")");
}

// Spells library types the way people write them, in place:
// "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char>>"
// becomes "std::string".
void PrettifyName(char *s) {
  static const char *const kFrom[] = {
      "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char>>",
      "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >",
      "std::__1::basic_string<char, std::__1::char_traits<char>, std::__1::allocator<char>>",
      "std::__cxx11::", "std::__1::"};
  static const char *const kTo[] = {"std::string", "std::string", "std::string", "std::", "std::"};
  for (size_t k = 0; k < sizeof(kFrom) / sizeof(kFrom[0]); k++) {
    size_t from = strlen(kFrom[k]), to = strlen(kTo[k]);
    for (char *p = strstr(s, kFrom[k]); p; p = strstr(p + to, kFrom[k])) {
      memmove(p + to, p + from, strlen(p + from) + 1);
      memcpy(p, kTo[k], to);
    }
  }
  // Default template arguments nobody writes: ", std::allocator<...>" etc.
  static const char *const kDefaults[] = {", std::allocator<", ", std::equal_to<", ", std::less<",
                                          ", std::hash<", ", std::char_traits<"};
  for (const char *d : kDefaults) {
    for (char *p = strstr(s, d); p; p = strstr(p, d)) {
      char *q = p + strlen(d);
      int depth = 1;
      while (*q && depth > 0) {
        if (*q == '<') depth++;
        else if (*q == '>') depth--;
        q++;
      }
      if (depth != 0) break;
      memmove(p, q, strlen(q) + 1);
    }
  }
}

// Prints a stack innermost first. Unless show_library_frames=1, frames of the
// runtime, of system libraries and of the standard library's container code
// are left out, so the first frame is the user's own code.
void AppendStack(Appender &out, const StackTrace &st) {
  int printed = 0, hidden = 0;
  for (int i = 0; i < st.size && printed < g_flags.stack_depth; i++) {
    SymbolizedPC &s = g_sym_scratch;
    SymbolizePC(st.pc[i], &s);
    bool show_all = g_flags.show_library_frames;
    if (!show_all && (s.in_runtime || s.in_system_library)) {
      hidden++;
      continue;
    }
    if (!show_all && s.nframes > 0 && (!strcmp(s.frames[0].function, "_start") ||
                                       !strncmp(s.frames[0].function, "__libc_start", 12))) {
      hidden++;
      continue;
    }
    if (s.nframes == 0) {
      out("    #%d 0x%lx (%s+0x%lx)\n", printed++, (unsigned long)s.pc,
          s.module[0] ? s.module : "<unknown module>", (unsigned long)s.offset);
      continue;
    }
    for (int k = 0; k < s.nframes && printed < g_flags.stack_depth; k++) {
      const SourceFrame &f = s.frames[k];
      if (!show_all && IsLibraryImplementationFrame(f)) {
        hidden++;
        continue;
      }
      char name[kSymbolLen];
      snprintf(name, sizeof(name), "%s", f.function);
      PrettifyName(name);
      out("    #%d %s", printed++, name);
      if (f.file[0]) {
        out(" %s:%d", f.file, f.line);
        if (f.column) out(":%d", f.column);
      } else {
        out(" (%s+0x%lx)", s.module, (unsigned long)s.offset);
      }
      out("\n");
    }
  }
  if (printed == 0) out("    <no frames in user code>\n");
  (void)hidden;
}

// The thread (other than `me`) with an active region on `map` whose kind is
// in `kinds`, and that region's site.
ThreadState *FindThreadInRegion(ThreadState *me, void *map, unsigned kinds,
                                const mg_site **site_out) {
  uint32_t limit = ThreadSlotLimit();
  for (uint32_t slot = 0; slot < limit; slot++) {
    ThreadState *t = ThreadBySlot(slot);
    if (!t || t == me) continue;
    int d = t->depth.load(std::memory_order_relaxed);
    if (d > kMaxRegions) d = kMaxRegions;
    for (int i = d - 1; i >= 0; i--) {
      if (t->regions[i].map.load(std::memory_order_relaxed) != map) continue;
      const mg_site *site = t->regions[i].site.load(std::memory_order_relaxed);
      if (site && (kinds & (1u << site->kind))) {
        *site_out = site;
        return t;
      }
    }
  }
  return nullptr;
}

StackTrace g_current_stack, g_other_stack;

void AppendMapHeader(Appender &out, const char *message, void *map, MapShadow *s,
                     const mg_site *site) {
  out("==================\n");
  out("fatal error: %s\n\n", message);
  out("Map: %s", site->map_type && site->map_type[0] ? site->map_type : "<unknown map type>");
  if (site->map_name && site->map_name[0]) out(" '%s'", site->map_name);
  out(" at %p\n", map);
  const mg_site *created = s->created_site.load(std::memory_order_relaxed);
  uint32_t created_by = s->created_by.load(std::memory_order_relaxed);
  if (created) {
    out("  created at ");
    AppendSite(out, created);
    if (created_by) out(" by thread T%u", created_by - 1);
    out("\n");
  } else {
    out("  created at <not seen: built by uninstrumented code>\n");
  }
}

void AppendCurrentAccess(Appender &out, ThreadState *thr, const mg_site *site,
                         const StackTrace &stack) {
  out("\n%s (%s) by ", AccessNoun(site), site->op);
  AppendThread(out, thr);
  out(" at ");
  AppendSite(out, site);
  out(":\n");
  AppendStack(out, stack);
}

void AppendThreadOrigin(Appender &out, const ThreadState *t) {
  if (t->number == 0) {
    out("\nThread T0 (tid %d) is the main thread.\n", int(t->os_tid));
    return;
  }
  out("\nThread T%u (tid %d) created by thread T%u at:\n", t->number, int(t->os_tid),
      t->parent_number);
  AppendStack(out, t->creation);
}

void AppendSummary(Appender &out, const char *message, const mg_site *site) {
  out("\nSUMMARY: mapguard: %s ", message);
  AppendSite(out, site);
  out("\n==================\n");
}

// The live thread with mapguard number `number`, if it has not exited.
ThreadState *ThreadByNumber(uint32_t number) {
  uint32_t limit = ThreadSlotLimit();
  for (uint32_t slot = 0; slot < limit; slot++) {
    ThreadState *t = ThreadBySlot(slot);
    if (t && t->number == number) return t;
  }
  return nullptr;
}

void FinishReport(Appender &out, MapShadow *s) {
  WriteAll(out.data(), out.size());
  g_reports.fetch_add(1, std::memory_order_relaxed);
  if (g_flags.halt_on_error) _exit(g_flags.exitcode);
  s->state.fetch_and(~state::kFrozen, std::memory_order_acq_rel);
  UnlockReports();
}

}  // namespace

MG_NOINLINE void ReportConflict(ConflictKind kind, ThreadState *thr, void *map, MapShadow *s,
                                const mg_site *site, bool current_is_writer) {
  CaptureStack(&g_current_stack, 0);  // before the lock: cheap, and ours
  StackTrace current = g_current_stack;
  LockReports();
  static bool handler_installed = false;
  if (!handler_installed) {
    InstallStackSignalHandler();
    handler_installed = true;
  }
  // The caller froze the map (see Freeze in mg_access.cpp): the other thread
  // cannot leave its region, so its stack is still the racing one.
  uint64_t st = s->state.load(std::memory_order_relaxed);

  const mg_site *other_site = nullptr;
  ThreadState *other = nullptr;
  unsigned write_kinds = (1u << MG_WRITE) | (1u << MG_DESTROY);
  switch (kind) {
    case ConflictKind::kWrites:
      other = FindThreadInRegion(thr, map, write_kinds, &other_site);
      break;
    case ConflictKind::kReadWrite:
      other = FindThreadInRegion(thr, map, current_is_writer ? 1u << MG_READ : write_kinds,
                                 &other_site);
      break;
    case ConflictKind::kIterationWrite:
      other = FindThreadInRegion(thr, map, current_is_writer ? 1u << MG_ITERATE : write_kinds,
                                 &other_site);
      break;
  }
  if (!other && state::Writer(st) && !current_is_writer) {
    other = ThreadBySlot(state::Writer(st) - 1);
    other_site = s->writer_site.load(std::memory_order_relaxed);
  }
  bool have_other_stack = other && RequestStackOf(other, &g_other_stack);

  Appender out(g_report_buf, sizeof(g_report_buf));
  const char *message = ConflictMessage(kind);
  AppendMapHeader(out, message, map, s, site);
  AppendCurrentAccess(out, thr, site, current);

  if (other) {
    out("\n%s (%s) in progress in ", other_site ? AccessNoun(other_site) : "Access",
        other_site ? other_site->op : "?");
    AppendThread(out, other);
    if (other_site) {
      out(" at ");
      AppendSite(out, other_site);
    }
    out(":\n");
    if (have_other_stack)
      AppendStack(out, g_other_stack);
    else
      out("    <stack unavailable: the thread did not answer within %d ms>\n",
          g_flags.report_wait_ms);
  } else {
    out("\nThe other access's thread had already left the map when the report was written.\n");
  }

  AppendThreadOrigin(out, thr);
  if (other) AppendThreadOrigin(out, other);
  AppendSummary(out, message, site);
  FinishReport(out, s);
}

MG_NOINLINE void ReportUnsynchronized(ConflictKind kind, ThreadState *thr, void *map, MapShadow *s,
                                      const mg_site *site, const AccessInfo &earlier) {
  CaptureStack(&g_current_stack, 0);
  StackTrace current = g_current_stack;
  LockReports();
  Appender out(g_report_buf, sizeof(g_report_buf));
  const char *message = ConflictMessage(kind);
  AppendMapHeader(out, message, map, s, site);
  AppendCurrentAccess(out, thr, site, current);

  out("\nPrevious %s (%s) by thread T%u at ", AccessNoun(earlier.site), earlier.site->op,
      earlier.thread_number);
  AppendSite(out, earlier.site);
  out(":\n");
  StackTrace previous;
  if (StackDepotGet(earlier.stack_id, &previous))
    AppendStack(out, previous);
  else
    out("    <stack not recorded: MAPGUARD_OPTIONS=history_stacks=1 records it>\n");
  out("\nNo synchronization orders these two accesses (no common lock, join, or atomic\n"
      "release/acquire between them): they race even if they did not overlap in time.\n");

  AppendThreadOrigin(out, thr);
  if (ThreadState *prev = ThreadByNumber(earlier.thread_number))
    AppendThreadOrigin(out, prev);
  else
    out("\nThread T%u has exited.\n", earlier.thread_number);
  AppendSummary(out, message, site);
  FinishReport(out, s);
}

}  // namespace mapguard
