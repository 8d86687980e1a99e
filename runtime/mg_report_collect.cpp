// Collecting a report (mg_report_desc.h): on the thread whose access found
// the conflict, with the map frozen (its state's kFrozen bit, set by the
// caller in mg_access.cpp: the other thread cannot leave its region, so its
// stack is still the racing one). The collector fills a ReportDesc (both
// threads, both sites, both stacks, the map), asks the filter, and hands a
// printed report to the output; then it unfreezes the map, or halts.
//
// The order keeps the cost of what is not printed low: pairs already decided
// and ignore brackets are checked before any stack is captured; the current
// thread's stack is symbolized before the verdict (suppressions match its
// frames); the other thread is interrupted for its stack only when the
// report will stop the process.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mg_access.h"
#include "mg_loaded.h"
#include "mg_probes.h"
#include "mg_report_desc.h"
#include "mg_stats.h"
#include "mg_suppressions.h"

namespace mapguard {

std::atomic<int> g_reports{0};
SpinLock g_report_lock;  // one report at a time; also taken around fork

namespace {

SymbolizedPC g_sym_scratch;

// Waits may be long (a report symbolizes): yield, never a cancellation point.
void LockReports() { g_report_lock.Lock(); }
void UnlockReports() { g_report_lock.Unlock(); }

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

// The live thread with mapguard number `number`, if it has not exited.
ThreadState *ThreadByNumber(uint32_t number) {
  uint32_t limit = ThreadSlotLimit();
  for (uint32_t slot = 0; slot < limit; slot++) {
    ThreadState *t = ThreadBySlot(slot);
    if (t && t->number == number) return t;
  }
  return nullptr;
}

SymStack g_stacks[4];  // current, other, and the two threads' creation stacks
ReportDesc g_data;

// Symbolizes `st` into `out`, dropping frames nobody needs to read unless
// show_library_frames=1: the runtime's own, system libraries', and the
// standard library's container internals. The first frame left is user code.
// Where a process or a thread starts: nobody's code, and in a static binary
// not recognizable by module.
bool IsEntryFrame(const char *fn) {
  static const char *const kNames[] = {"_start", "start_thread", "clone", "clone3",
                                       "execute_native_thread_routine"};
  for (const char *name : kNames)
    if (!strcmp(fn, name)) return true;
  return !strncmp(fn, "__libc_start", 12);
}

void SymbolizeStack(const StackTrace &st, SymStack *out) {
  out->size = 0;
  int limit = g_flags.stack_depth < kKeptFrames ? g_flags.stack_depth : kKeptFrames;
  bool all = g_flags.show_library_frames;
  // A stack taken inside the runtime (a signal landing in its sleep) starts
  // with what the runtime called (syscall); with a static runtime that is not
  // a system library's frame. The frames up to the end of the runtime's
  // block go. Only a couple of such callee frames are possible.
  int first = 0;
  if (!all) {
    int leading = -1;
    for (int i = 0; i < st.size; i++) {
      if (PcInRuntime(st.pc[i])) leading = i;
      else if (leading >= 0 || i >= 2) break;
    }
    first = leading + 1;
  }
  for (int i = first; i < st.size && out->size < limit; i++) {
    SymbolizedPC &s = g_sym_scratch;
    SymbolizePC(st.pc[i], &s);
    if (!all && (s.in_runtime || s.in_system_library)) continue;
    if (!all && s.nframes > 0 && IsEntryFrame(s.frames[0].function)) continue;
    if (s.nframes == 0) {
      Frame &f = out->frames[out->size++];
      f.function[0] = f.file[0] = 0;
      f.line = f.column = 0;
      snprintf(f.module, sizeof(f.module), "%s", s.module);
      f.offset = s.offset;
      continue;
    }
    for (int k = 0; k < s.nframes && out->size < limit; k++) {
      if (!all && IsLibraryImplementationFrame(s.frames[k])) continue;
      Frame &f = out->frames[out->size++];
      snprintf(f.function, sizeof(f.function), "%s", s.frames[k].function);
      PrettifyName(f.function);
      // "file.cpp:0" says nothing: without a line, show module+offset.
      snprintf(f.file, sizeof(f.file), "%s", s.frames[k].line ? s.frames[k].file : "");
      f.line = s.frames[k].line;
      f.column = s.frames[k].column;
      snprintf(f.module, sizeof(f.module), "%s", s.module);
      f.offset = s.offset;
    }
  }
}

void ReadThreadName(const ThreadState *thr, char *name, size_t len) {
  name[0] = 0;
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/task/%d/comm", int(thr->os_tid));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, name, len - 1);
  close(fd);
  name[n > 0 ? n : 0] = 0;
  if (char *nl = strchr(name, '\n')) *nl = 0;
}

void DescribeThread(const ThreadState *t, ThreadInfo *out, SymStack *origin) {
  out->known = true;
  out->number = t->number;
  out->parent = t->parent_number;
  out->tid = int(t->os_tid);
  ReadThreadName(t, out->name, sizeof(out->name));
  out->has_origin = t->number != 0;
  out->origin = origin;
  if (out->has_origin) SymbolizeStack(t->creation, origin);
}

// Prints (unless suppressed or a duplicate), then stops the process or
// unfreezes the map and lets the program go on.
void Emit(const ReportDesc &d, MapShadow *s, Verdict v) {
  {
    // Tell a tracing sidecar first: with halt_on_error the process ends below.
    int k = int(d.kind);
    uint32_t flags = (k >= 3 ? kProbeHappensBefore : 0) | (v.rule >= 0 ? kProbeSuppressed : 0) |
                     (v.duplicate ? kProbeDuplicate : 0) | (v.Halts() ? kProbeHalting : 0);
    TraceConflict(d.map, uint32_t(k % 3), d.current.thread.tid,
                  d.have_other && d.other.thread.known ? d.other.thread.tid : 0, d.site,
                  d.have_other ? d.other.site : nullptr, flags);
  }
  if (Counting() && s) CountConflict(s);
  if (!v.Printed()) RememberQuietPair(d.site, d.have_other ? d.other.site : nullptr, v.rule);
  if (v.rule >= 0) {
    CountSuppressionHit(v.rule);
  } else if (!v.duplicate) {
    OutputReport(d);
    g_reports.fetch_add(1, std::memory_order_relaxed);
    if (g_flags.dedup) RememberQuietPair(d.site, d.have_other ? d.other.site : nullptr, -1);
    if (g_flags.halt_on_error) HaltAfterReport();
  }
  s->state.fetch_and(~state::kFrozen, std::memory_order_acq_rel);
  UnlockReports();
}

StackTrace g_other_stack;  // under the report lock

// A site inside the library's invoke machinery (MG_SITE_CALLER_LOCATION)
// says where the library called the member, which nobody needs: the access
// is located at the first frame left after library frames were dropped, the
// user's call of std::invoke, the std::function, the bound object.
void LocateAtCaller(Access *a) {
  if (!(a->site->flags & MG_SITE_CALLER_LOCATION) || !a->stack || a->stack->size == 0) return;
  const Frame &f = a->stack->frames[0];
  if (!f.file[0] || f.line <= 0) return;
  a->located = *a->site;
  a->located.file = f.file;
  a->located.line = uint32_t(f.line);
  a->located.column = uint32_t(f.column);
  a->located.function = f.function;
  a->site = &a->located;
}

void SetAccess(Access *a, const mg_site *site, Role role, ThreadState *t, SymStack *stack,
               SymStack *origin) {
  a->site = site;
  a->role = role;
  a->stack = stack;
  a->no_stack_reason = "stack unavailable";
  LocateAtCaller(a);
  if (t) DescribeThread(t, &a->thread, origin);
}

// An access whose thread is known by its mapguard number only (it may have
// exited, or its tid been reused).
void SetAccessByNumber(Access *a, const mg_site *site, Role role, uint32_t number,
                       SymStack *stack, SymStack *origin) {
  ThreadState *t = ThreadByNumber(number);
  SetAccess(a, site, role, t, stack, origin);
  if (!t) {
    a->thread.known = true;
    a->thread.number = number;
    a->thread.tid = 0;
    a->thread.has_origin = false;
  }
}

void BeginData(ConflictKind kind, void *map, MapShadow *s, const mg_site *site) {
  memset(&g_data, 0, sizeof(g_data));
  g_data.kind = kind;
  g_data.map = map;
  g_data.site = site;
  g_data.created = SiteIfLoaded(s->created_site.load(std::memory_order_relaxed));
  g_data.created_by = s->created_by.load(std::memory_order_relaxed);
}

// Whether a thread other than `me` has more regions open than its stack
// records: the access a report cannot find may be one of those.
bool AnyThreadNestedPastRecord(ThreadState *me) {
  const uint32_t limit = ThreadSlotLimit();
  for (uint32_t slot = 0; slot < limit; slot++) {
    ThreadState *t = ThreadBySlot(slot);
    if (t && t != me && t->regions.HasUnrecorded()) return true;
  }
  return false;
}

// The thread in the region this access conflicts with, and that region's
// site: found through the region stacks, else (for a reader) the writer the
// state word names.
ThreadState *FindOtherAccess(ConflictKind kind, ThreadState *thr, void *map, MapShadow *s,
                             bool current_is_writer, const mg_site **site_out) {
  *site_out = nullptr;
  unsigned kinds = (1u << MG_WRITE) | (1u << MG_DESTROY);
  if (current_is_writer && (kind == ConflictKind::kReadWrite || kind == ConflictKind::kUnsyncReadWrite))
    kinds = 1u << MG_READ;
  if (current_is_writer &&
      (kind == ConflictKind::kIterationWrite || kind == ConflictKind::kUnsyncIterationWrite))
    kinds = 1u << MG_ITERATE;
  if (ThreadState *other = FindThreadInRegion(thr, map, kinds, site_out)) return other;
  uint32_t writer = state::Writer(s->state.load(std::memory_order_relaxed));
  if (!writer || current_is_writer) return nullptr;
  *site_out = SiteIfLoaded(s->writer_site.load(std::memory_order_relaxed));
  return ThreadBySlot(writer - 1);
}
}  // namespace

MG_NOINLINE void ReportConflict(ConflictKind kind, ThreadState *thr, void *map, MapShadow *s,
                                const mg_site *site, bool current_is_writer,
                                const mg_site *seen_site, uint32_t seen_number) {
  seen_site = SiteIfLoaded(seen_site);  // the map's memory: maybe a library unloaded since
  // The caller froze the map (see Freeze in mg_access.cpp): the other thread
  // cannot leave its region, so its stack is still the racing one.
  const mg_site *other_site = nullptr;
  ThreadState *other = FindOtherAccess(kind, thr, map, s, current_is_writer, &other_site);
  if (!other && seen_site) other_site = seen_site;
  if (QuietPair(site, other_site) ||
      InIgnoredBracket(thr, site) || (other && InIgnoredBracket(other, other_site))) {
    s->state.fetch_and(~state::kFrozen, std::memory_order_acq_rel);
    return;
  }
  StackTrace current;  // this thread's own: captured before the lock
  CaptureStack(&current, 0);
  LockReports();
  // The other thread left the map between the conflict and this report: name
  // its access from what the map remembers (the last writer, or with
  // detect=hb the last recorded read), without a live stack.
  uint32_t left_number = 0;
  const mg_site *left_site = nullptr;
  if (!other && seen_site) {
    left_site = seen_site;
    left_number = seen_number;
  } else if (!other) {
    const mg_site *w = SiteIfLoaded(s->writer_site.load(std::memory_order_relaxed));
    uint32_t wn = s->writer_number.load(std::memory_order_relaxed);
    bool want_writer = !current_is_writer || kind == ConflictKind::kWrites;
    if (want_writer && w && wn && wn - 1 != thr->number) {
      left_site = w;
      left_number = wn - 1;
    } else if (current_is_writer && g_detect_hb) {
      s->hb_lock.Lock();
      uint64_t r = s->hb_read.load(std::memory_order_relaxed);
      if (r && !(r >> 63) && s->read_info.site && s->read_info.thread_number != thr->number) {
        left_site = s->read_info.site;
        left_number = s->read_info.thread_number;
      }
      s->hb_lock.Unlock();
    }
  }

  BeginData(kind, map, s, site);
  SymbolizeStack(current, &g_stacks[0]);
  SetAccess(&g_data.current, site, Role::kCurrent, thr, &g_stacks[0], &g_stacks[2]);
  if (other && other_site) {
    g_data.have_other = true;
    SetAccess(&g_data.other, other_site, Role::kInProgress, other, nullptr, &g_stacks[3]);
    g_data.other.no_stack_reason = g_flags.halt_on_error
                                       ? "stack unavailable: the thread did not answer in time"
                                       : "live stack not taken: with halt_on_error=0 mapguard "
                                         "never interrupts a running thread";
  } else if (left_site) {
    g_data.have_other = true;
    SetAccessByNumber(&g_data.other, left_site, Role::kInProgress, left_number, nullptr,
                      &g_stacks[3]);
    g_data.other.no_stack_reason =
        "stack unavailable: the thread had left the map by the time the report was written";
  }
  // A region nested past what a thread's stack records is counted in the
  // map's state but cannot be found: say so rather than "left".
  if (!other && AnyThreadNestedPastRecord(thr)) {
    if (g_data.have_other)
      g_data.other.no_stack_reason =
          "stack unavailable: the access may be nested more than 65536 map regions deep in "
          "its thread, past what mapguard records of a thread's regions";
    else
      g_data.other_missing =
          "The other access may be nested more than 65536 map regions deep in its thread, "
          "past what mapguard records of a thread's regions: its site and thread are not known.";
  }
  g_data.hint = SharedLockHint(site, thr);
  if (!g_data.hint && other) g_data.hint = SharedLockHint(other_site, other);
  if (!g_data.hint) g_data.hint = CheckThenInsertHint(site, thr, map, other_site);
  if (!g_data.hint && other) g_data.hint = CheckThenInsertHint(other_site, other, map, site);
  Verdict v = Decide(g_data);
  // Only a report that stops the process interrupts the other thread.
  // `other` is null when the other access was named from what the map
  // remembers (its thread left, or its region was nested too deep to be
  // recorded): there is no thread to ask.
  if (other && g_data.have_other && v.Halts() && RequestStackOf(other, &g_other_stack)) {
    SymbolizeStack(g_other_stack, &g_stacks[1]);
    g_data.other.stack = &g_stacks[1];
    LocateAtCaller(&g_data.other);
  }
  Emit(g_data, s, v);
}

MG_NOINLINE void ReportUnsynchronized(ConflictKind kind, ThreadState *thr, void *map, MapShadow *s,
                                      const mg_site *site, const AccessInfo &recorded) {
  AccessInfo earlier = recorded;
  earlier.site = SiteIfLoaded(earlier.site);  // maybe a library unloaded since
  if (QuietPair(site, earlier.site)) return;
  if (InIgnoredBracket(thr, site)) return;
  StackTrace current;
  CaptureStack(&current, 0);
  LockReports();
  BeginData(kind, map, s, site);
  SymbolizeStack(current, &g_stacks[0]);
  SetAccess(&g_data.current, site, Role::kCurrent, thr, &g_stacks[0], &g_stacks[2]);
  g_data.have_other = true;
  StackTrace previous;
  bool have_previous = StackDepotGet(earlier.stack_id, &previous);
  if (have_previous) SymbolizeStack(previous, &g_stacks[1]);
  SetAccessByNumber(&g_data.other, earlier.site, Role::kPrevious, earlier.thread_number,
                    have_previous ? &g_stacks[1] : nullptr, &g_stacks[3]);
  g_data.other.no_stack_reason = "stack not recorded: MAPGUARD_OPTIONS=history_stacks=1 records it";
  g_data.hint = SharedLockHint(site, thr);
  if (!g_data.hint) g_data.hint = SharedLockHint(earlier.site, nullptr, earlier.under_shared_lock);
  if (!g_data.hint) g_data.hint = CheckThenInsertHint(site, thr, map, earlier.site);
  Emit(g_data, s, Decide(g_data));
}

}  // namespace mapguard
