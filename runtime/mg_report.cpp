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
#include <errno.h>
#include <fcntl.h>

#include "mg_access.h"
#include "mg_appender.h"
#include "mg_stack.h"
#include "mg_stats.h"
#include "mg_suppressions.h"

#include <initializer_list>
#include "mg_probes.h"

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

// The report's stable identity: the same whether the two accesses happened
// to overlap ("concurrent ...") or were only unordered ("unsynchronized
// ..."), which depends on timing. Printed in the first line and in SUMMARY,
// and the JSON "rule" and the SARIF ruleId.
const char *RuleId(ConflictKind k) {
  switch (k) {
    case ConflictKind::kWrites:
    case ConflictKind::kUnsyncWrites:
      return "map-writes";
    case ConflictKind::kReadWrite:
    case ConflictKind::kUnsyncReadWrite:
      return "map-read-write";
    case ConflictKind::kIterationWrite:
    case ConflictKind::kUnsyncIterationWrite:
      return "map-iteration-write";
  }
  return "map-access";
}
int RuleIndex(ConflictKind k) { return int(k) % 3; }

namespace {

char g_report_buf[1 << 17];
SymbolizedPC g_sym_scratch;

// Waits may be long (a report symbolizes): yield, never a cancellation point.
void LockReports() { g_report_lock.Lock(); }
void UnlockReports() { g_report_lock.Unlock(); }
}  // namespace

SpinLock g_report_lock;  // one report at a time; also taken around fork

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


// ---- The report as plain data ----

struct Frame {
  char function[kSymbolLen];
  char file[kSymbolLen];
  int line, column;
  char module[kSymbolLen];
  uintptr_t offset;
};

constexpr int kKeptFrames = 64;
struct SymStack {
  int size;
  Frame frames[kKeptFrames];
};

struct ThreadInfo {
  bool known;
  uint32_t number, parent;
  int tid;
  char name[32];
  bool has_origin;  // false for T0 and for threads that exited
  SymStack *origin;
};

enum class Role { kCurrent, kInProgress, kPrevious };

struct Access {
  const mg_site *site;  // `located` once LocateAtCaller moved it to the user's frame
  mg_site located;
  Role role;
  ThreadInfo thread;
  SymStack *stack;
  const char *no_stack_reason;  // when stack is null
};

struct ReportData {
  const char *hint;  // a classic mistake this pattern looks like, or null
  ConflictKind kind;
  void *map;
  const mg_site *site;  // the current access: map type and name come from it
  const mg_site *created;
  uint32_t created_by;  // thread number + 1, 0 unknown
  Access current;
  bool have_other;
  Access other;
  // Why there is no other access (have_other false): null for "its thread
  // left before the report was written".
  const char *other_missing;
};

// What the code calls the map: the current access's site knows unless the
// call was made where the map has no name (inside the library's invoke
// machinery); then the other access's, or the construction's.
const char *MapName(const ReportData &d) {
  const mg_site *sites[] = {d.site, d.have_other ? d.other.site : nullptr, d.created};
  for (const mg_site *s : sites)
    if (s && s->map_name && s->map_name[0]) return s->map_name;
  return "";
}

SymStack g_stacks[4];  // current, other, and the two threads' creation stacks
ReportData g_data;

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

// ---- Printing: text ----

const char *StripPrefix(const char *path) {
  const char *prefix = g_flags.strip_path_prefix;
  size_t n = prefix ? strlen(prefix) : 0;
  if (n && strncmp(path, prefix, n) == 0) return path + n;
  return path;
}

void TextSite(Appender &out, const mg_site *site) {
  if (site->file && site->file[0] && site->line)
    out("%s:%u:%u", StripPrefix(site->file), site->line, site->column);
  else
    out("<unknown location>");
  if (site->function && site->function[0]) out(" in %s", site->function);
}

void TextThread(Appender &out, const ThreadInfo &t) {
  out("thread T%u (tid %d", t.number, t.tid);
  if (t.name[0]) out(" \"%s\"", t.name);
  out(")");
}

void TextStack(Appender &out, const SymStack &st) {
  for (int i = 0; i < st.size; i++) {
    const Frame &f = st.frames[i];
    if (!f.function[0] && !f.file[0]) {
      out("    #%d (%s+0x%lx)\n", i, f.module[0] ? f.module : "<unknown module>",
          (unsigned long)f.offset);
      continue;
    }
    out("    #%d %s", i, f.function[0] ? f.function : "??");
    if (f.file[0]) {
      out(" %s:%d", StripPrefix(f.file), f.line);
      if (f.column) out(":%d", f.column);
    } else {
      out(" (%s+0x%lx)", f.module, (unsigned long)f.offset);
    }
    out("\n");
  }
  if (st.size == 0) out("    <no frames in user code>\n");
}

void TextAccess(Appender &out, const Access &a) {
  switch (a.role) {
    case Role::kCurrent:
      out("\n%s (%s) by ", AccessNoun(a.site), a.site->op);
      break;
    case Role::kInProgress:
      out("\n%s (%s) in progress in ", AccessNoun(a.site), a.site->op);
      break;
    case Role::kPrevious:
      out("\nPrevious %s (%s) by ", AccessNoun(a.site), a.site->op);
      break;
  }
  // The previous access's thread may have exited (or its tid been reused):
  // its mapguard number is what identifies it.
  if (a.role == Role::kPrevious)
    out("thread T%u", a.thread.number);
  else
    TextThread(out, a.thread);
  out(" at ");
  TextSite(out, a.site);
  out(":\n");
  if (a.stack)
    TextStack(out, *a.stack);
  else
    out("    <%s>\n", a.no_stack_reason);
}

void TextOrigin(Appender &out, const ThreadInfo &t) {
  if (!t.known) return;
  if (t.number == 0) {
    out("\nThread T0 (tid %d) is the main thread.\n", t.tid);
    return;
  }
  if (!t.has_origin) {
    out("\nThread T%u has exited.\n", t.number);
    return;
  }
  out("\nThread T%u (tid %d) created by thread T%u at:\n", t.number, t.tid, t.parent);
  TextStack(out, *t.origin);
}

void PrintText(const ReportData &d, Appender &out) {
  const char *message = ConflictMessage(d.kind);
  out("==================\n");
  out("fatal error: %s [%s]\n\n", message, RuleId(d.kind));
  out("Map: %s", d.site->map_type && d.site->map_type[0] ? d.site->map_type : "<unknown map type>");
  if (MapName(d)[0]) out(" '%s'", MapName(d));
  out(" at %p\n", d.map);
  if (d.created) {
    out("  created at ");
    TextSite(out, d.created);
    if (d.created_by) out(" by thread T%u", d.created_by - 1);
    out("\n");
  } else {
    out("  created at <not seen: built by uninstrumented code>\n");
  }
  TextAccess(out, d.current);
  if (d.have_other)
    TextAccess(out, d.other);
  else
    out("\n%s\n", d.other_missing ? d.other_missing
                                    : "The other access's thread had already left the map when the "
                                      "report was written.");
  if (d.hint) out("\nHint: %s\n", d.hint);
  if (d.have_other && d.other.role == Role::kPrevious)
    out("\nNo synchronization orders these two accesses (no common lock, join, or atomic\n"
        "release/acquire between them): they race even if they did not overlap in time.\n");
  TextOrigin(out, d.current.thread);
  if (d.have_other) TextOrigin(out, d.other.thread);
  out("\nSUMMARY: mapguard: %s [%s] ", message, RuleId(d.kind));
  TextSite(out, d.current.site);
  out("\n==================\n");
}

// ---- Printing: JSON (one object per line; schema in docs/report-format.md) ----

void JsonString(Appender &out, const char *s) {
  out("\"");
  for (; s && *s; s++) {
    unsigned char c = static_cast<unsigned char>(*s);
    if (c == '"' || c == '\\') out("\\%c", c);
    else if (c == '\n') out("\\n");
    else if (c == '\t') out("\\t");
    else if (c < 0x20) out("\\u%04x", c);
    else out("%c", c);
  }
  out("\"");
}

const char *KindId(ConflictKind k) {
  switch (k) {
    case ConflictKind::kWrites: return "concurrent-map-writes";
    case ConflictKind::kReadWrite: return "concurrent-map-read-write";
    case ConflictKind::kIterationWrite: return "concurrent-map-iteration-write";
    case ConflictKind::kUnsyncWrites: return "unsynchronized-map-writes";
    case ConflictKind::kUnsyncReadWrite: return "unsynchronized-map-read-write";
    case ConflictKind::kUnsyncIterationWrite: return "unsynchronized-map-iteration-write";
  }
  return "unknown";
}


const char *AccessKindId(const mg_site *site) {
  switch (site->kind) {
    case MG_READ: return "read";
    case MG_WRITE: return "write";
    case MG_ITERATE: return "iteration";
    case MG_CONSTRUCT: return "construction";
    case MG_DESTROY: return "destruction";
  }
  return "unknown";
}

void JsonLocation(Appender &out, const mg_site *site) {
  out("{\"file\":");
  JsonString(out, site->file ? StripPrefix(site->file) : "");
  out(",\"line\":%u,\"column\":%u,\"function\":", site->line, site->column);
  JsonString(out, site->function);
  out("}");
}

void JsonStack(Appender &out, const SymStack *st) {
  out("[");
  for (int i = 0; st && i < st->size; i++) {
    const Frame &f = st->frames[i];
    out(i ? ",{\"function\":" : "{\"function\":");
    JsonString(out, f.function);
    out(",\"file\":");
    JsonString(out, StripPrefix(f.file));
    out(",\"line\":%d,\"column\":%d,\"module\":", f.line, f.column);
    JsonString(out, f.module);
    out(",\"offset\":\"0x%lx\"}", (unsigned long)f.offset);
  }
  out("]");
}

void JsonThread(Appender &out, const ThreadInfo &t) {
  out("{\"id\":\"T%u\",\"tid\":%d,\"name\":", t.number, t.tid);
  JsonString(out, t.name);
  if (t.has_origin) {
    out(",\"created_by\":\"T%u\",\"created_at\":", t.parent);
    JsonStack(out, t.origin);
  }
  out("}");
}

void JsonAccess(Appender &out, const Access &a) {
  static const char *const kRoles[] = {"current", "in_progress", "previous"};
  out("{\"role\":\"%s\",\"kind\":\"%s\",\"op\":", kRoles[int(a.role)], AccessKindId(a.site));
  JsonString(out, a.site->op);
  out(",\"location\":");
  JsonLocation(out, a.site);
  out(",\"thread\":");
  JsonThread(out, a.thread);
  out(",\"stack\":");
  JsonStack(out, a.stack);
  out("}");
}

void PrintJson(const ReportData &d, Appender &out) {
  out("{\"mapguard_report\":1,\"rule\":\"%s\",\"kind\":\"%s\",\"message\":", RuleId(d.kind),
      KindId(d.kind));
  JsonString(out, ConflictMessage(d.kind));
  out(",\"pid\":%d,\"map\":{\"type\":", int(getpid()));
  JsonString(out, d.site->map_type);
  out(",\"name\":");
  JsonString(out, MapName(d));
  out(",\"address\":\"%p\",\"created_at\":", d.map);
  if (d.created) JsonLocation(out, d.created); else out("null");
  out("},\"access\":");
  JsonAccess(out, d.current);
  out(",\"other\":");
  if (d.have_other) JsonAccess(out, d.other); else out("null");
  out(",\"hint\":");
  if (d.hint) JsonString(out, d.hint); else out("null");
  out("}\n");
}

// ---- Printing: SARIF 2.1.0 (format=sarif) ----
// Results accumulate in runtime memory; the whole log is written when the
// process stops (at the report with halt_on_error=1, else at exit).

char g_sarif_results[1 << 18];
Appender g_sarif(g_sarif_results, sizeof(g_sarif_results));
int g_sarif_count;

const ConflictKind kAllKinds[] = {ConflictKind::kWrites,         ConflictKind::kReadWrite,
                                  ConflictKind::kIterationWrite, ConflictKind::kUnsyncWrites,
                                  ConflictKind::kUnsyncReadWrite, ConflictKind::kUnsyncIterationWrite};

// Paths relative to the repository: strip_path_prefix if given, else the
// working directory when the path is under it.
// The source root SARIF paths are relative to: srcroot=, else the git
// top-level above the working directory, else the working directory. Ends
// with '/'.
const char *SourceRoot() {
  static char root[1024];
  if (root[0]) return root;
  if (g_flags.srcroot && *g_flags.srcroot) {
    snprintf(root, sizeof(root) - 1, "%s", g_flags.srcroot);
  } else if (getcwd(root, sizeof(root) - 1)) {
    char probe[1100];
    for (size_t len = strlen(root); len > 0;) {
      snprintf(probe, sizeof(probe), "%.*s/.git", int(len), root);
      if (access(probe, F_OK) == 0) {
        root[len] = 0;
        break;
      }
      const char *slash = static_cast<const char *>(memrchr(root, '/', len));
      if (!slash || slash == root) break;  // no repository above: keep the cwd
      len = size_t(slash - root);
    }
    if (access(probe, F_OK) != 0 && !getcwd(root, sizeof(root) - 1)) root[0] = 0;
  }
  size_t n = strlen(root);
  if (n == 0 || root[n - 1] != '/') {
    root[n] = '/';
    root[n + 1] = 0;
  }
  return root;
}

const char *RelativePath(const char *path) {
  if (!path) return "";
  const char *stripped = StripPrefix(path);
  if (stripped != path) return stripped;
  const char *root = SourceRoot();
  size_t n = strlen(root);
  if (n > 1 && strncmp(path, root, n) == 0) return path + n;
  return path;
}

void SarifPhysical(Appender &out, const char *file, int line, int column) {
  out("{\"physicalLocation\":{\"artifactLocation\":{\"uri\":");
  const char *rel = RelativePath(file);
  if (rel[0] == '/') {  // outside the repository: an absolute file URI
    char uri[kSymbolLen + 8];
    snprintf(uri, sizeof(uri), "file://%s", rel);
    JsonString(out, uri);
  } else {
    JsonString(out, rel);
    out(",\"uriBaseId\":\"SRCROOT\"");
  }
  out("},\"region\":{\"startLine\":%d", line > 0 ? line : 1);
  if (column > 0) out(",\"startColumn\":%d", column);
  out("}}}");
}

void SarifSiteLocation(Appender &out, const mg_site *site, const char *message) {
  SarifPhysical(out, site->file, int(site->line), int(site->column));
  out.Unappend(1);  // reopen the location object to add a message
  out(",\"message\":{\"text\":");
  JsonString(out, message);
  out("}}");
}

void SarifThreadFlow(Appender &out, const Access &a, const char *what) {
  out("{\"locations\":[");
  char msg[256];
  snprintf(msg, sizeof(msg), "%s: %s (%s) by thread T%u", what, AccessKindId(a.site), a.site->op,
           a.thread.number);
  out("{\"location\":");
  SarifSiteLocation(out, a.site, msg);
  out("}");
  for (int i = 0; a.stack && i < a.stack->size; i++) {
    const Frame &f = a.stack->frames[i];
    if (!f.file[0]) continue;
    out(",{\"location\":");
    SarifPhysical(out, f.file, f.line, f.column);
    out.Unappend(1);
    out(",\"message\":{\"text\":");
    JsonString(out, f.function);
    out("}}}");
  }
  out("]}");
}

// Stable across runs: the kind and the unordered pair of source locations.
uint64_t Fingerprint(const ReportData &d) {
  auto hash_site = [](const mg_site *site) {
    uint64_t h = 1469598103934665603ull;
    const char *parts[] = {RelativePath(site->file), site->function, site->op};
    for (const char *p : parts)
      for (; p && *p; p++) h = (h ^ static_cast<unsigned char>(*p)) * 1099511628211ull;
    return (h ^ site->line) * 1099511628211ull;
  };
  uint64_t a = hash_site(d.current.site), b = d.have_other ? hash_site(d.other.site) : 0;
  if (a > b) {
    uint64_t t = a;
    a = b;
    b = t;
  }
  // By rule, not kind: the same race fingerprints alike whatever its timing.
  return (a * 31 + b) ^ (uint64_t(RuleIndex(d.kind)) * 0x9e3779b97f4a7c15ull);
}

void AppendSarifResult(const ReportData &d) {
  Appender &out = g_sarif;
  out("%s{\"ruleId\":\"%s\",\"ruleIndex\":%d,\"level\":\"error\",\"message\":{\"text\":",
      g_sarif_count ? "," : "", RuleId(d.kind), RuleIndex(d.kind));
  char msg[1024];
  snprintf(msg, sizeof(msg), "%s on %s%s%s%s: %s (%s) by thread T%u", ConflictMessage(d.kind),
           d.site->map_type, MapName(d)[0] ? " '" : "", MapName(d),
           MapName(d)[0] ? "'" : "", AccessKindId(d.site), d.site->op,
           d.current.thread.number);
  if (d.have_other) {
    size_t n = strlen(msg);
    snprintf(msg + n, sizeof(msg) - n, "; %s %s (%s) by thread T%u",
             d.other.role == Role::kPrevious ? "previous" : "in progress",
             AccessKindId(d.other.site), d.other.site->op, d.other.thread.number);
  }
  if (d.hint) {
    size_t n = strlen(msg);
    snprintf(msg + n, sizeof(msg) - n, ". Hint: %s", d.hint);
  }
  JsonString(out, msg);
  out("},\"locations\":[");
  SarifPhysical(out, d.current.site->file, int(d.current.site->line), int(d.current.site->column));
  out("]");
  if (d.have_other) {
    out(",\"relatedLocations\":[");
    SarifPhysical(out, d.other.site->file, int(d.other.site->line), int(d.other.site->column));
    out.Unappend(1);
    out(",\"id\":1,\"message\":{\"text\":\"the other access\"}}]");
  }
  out(",\"codeFlows\":[{\"threadFlows\":[");
  SarifThreadFlow(out, d.current, "this access");
  if (d.have_other) {
    out(",");
    SarifThreadFlow(out, d.other, "other access");
  }
  out("]}],\"partialFingerprints\":{\"mapguardConflict/v1\":\"%016llx\"}}",
      (unsigned long long)Fingerprint(d));
  g_sarif_count++;
}

// Reports go to stderr, or to log_path: "stderr" and "stdout" name those
// streams, a path under /dev/ is used as it is, anything else gets ".<pid>"
// and is created only when the first report is written (a clean run leaves
// no empty file behind).
int g_log_fd = -1;
char g_log_file[600];

void WriteOut(const char *data, size_t len) {
  if (g_log_fd < 0 && g_log_file[0]) {
    g_log_fd = open(g_log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (g_log_fd < 0) {
      char msg[800];
      int n = snprintf(msg, sizeof(msg), "mapguard: error: cannot open log_path file '%s': %s\n",
                       g_log_file, strerror(errno));
      WriteAll(msg, size_t(n) < sizeof(msg) ? size_t(n) : sizeof(msg) - 1);
      g_log_file[0] = 0;  // the report goes to stderr instead
    }
  }
  if (g_log_fd < 0) {
    WriteAll(data, len);
    return;
  }
  for (size_t off = 0; off < len;) {
    ssize_t n = write(g_log_fd, data + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += size_t(n);
  }
}

// The whole SARIF log: rules for every kind, then the results so far.
void WriteSarifLog() {
  static bool written = false;
  if (written || strcmp(g_flags.format, "sarif") != 0) return;
  written = true;
  static char head[8192];
  Appender out(head, sizeof(head));
  out("{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\",\"version\":\"2.1.0\","
      "\"runs\":[{\"tool\":{\"driver\":{\"name\":\"mapguard\",\"version\":\"0.1.0\","
      "\"semanticVersion\":\"0.1.0\",\"informationUri\":\"https://github.com/mapguard/mapguard\","
      "\"rules\":[");
  static const char *const kRuleNames[] = {"MapWrites", "MapReadWrite", "MapIterationWrite"};
  static const char *const kRuleText[] = {"map writes", "map read and map write",
                                          "map iteration and map write"};
  for (int i = 0; i < 3; i++) {
    out("%s{\"id\":\"%s\",\"name\":\"%s\",", i ? "," : "", RuleId(kAllKinds[i]), kRuleNames[i]);
    out("\"shortDescription\":{\"text\":\"%s\"},", kRuleText[i]);
    out("\"fullDescription\":{\"text\":\"%s: two threads access one map, at least one of them "
        "writing, at the same moment (concurrent) or with no synchronization ordering the "
        "accesses (unsynchronized).\"},", kRuleText[i]);
    out("\"defaultConfiguration\":{\"level\":\"error\"},\"helpUri\":"
        "\"https://github.com/mapguard/mapguard/blob/main/docs/report-format.md\"}");
  }
  out("]}},\"originalUriBaseIds\":{\"SRCROOT\":{\"uri\":");
  {
    char uri[1100];
    snprintf(uri, sizeof(uri), "file://%s", SourceRoot());
    JsonString(out, uri);
  }
  out("}},\"results\":[");
  WriteOut(out.data(), out.size());
  WriteOut(g_sarif.data(), g_sarif.size());
  static const char kTail[] = "]}]}\n";
  WriteOut(kTail, sizeof(kTail) - 1);
}

// ---- Suppressions and de-duplication ----

int MatchStack(SuppressionKind kind, const SymStack *st) {
  for (int i = 0; st && i < st->size; i++) {
    int r = MatchSuppression(kind, kind == SuppressionKind::kFun ? st->frames[i].function
                                                                  : st->frames[i].file);
    if (r >= 0) return r;
  }
  return -1;
}

int MatchAccess(const Access &a) {
  int r = MatchSuppression(SuppressionKind::kFun, a.site->function);
  if (r < 0) r = MatchSuppression(SuppressionKind::kSrc, a.site->file);
  if (r < 0) r = MatchStack(SuppressionKind::kFun, a.stack);
  if (r < 0) r = MatchStack(SuppressionKind::kSrc, a.stack);
  return r;
}

int Suppressed(const ReportData &d) {
  int r = MatchSuppression(SuppressionKind::kMap, d.site->map_type);
  if (r < 0) r = MatchAccess(d.current);
  if (r < 0 && d.have_other) r = MatchAccess(d.other);
  return r;
}

uint64_t g_seen_fingerprints[4096];
int g_seen_count;

// dedup=1: by the pair's fingerprint (rule and both source locations as the
// report prints them), so two user lines that reach a map through the same
// library instantiation (std::bind, std::function) are two reports.
bool SeenBefore(uint64_t fingerprint) {
  if (!g_flags.dedup) return false;
  for (int i = 0; i < g_seen_count; i++)
    if (g_seen_fingerprints[i] == fingerprint) return true;
  if (g_seen_count < 4096) g_seen_fingerprints[g_seen_count++] = fingerprint;
  return false;
}

// Pairs of sites whose report was suppressed or already printed (dedup):
// remembered by the pair, so a later conflict between the same two sites
// costs a lookup, not a stack capture, a symbolization and the report lock.
// Written under the report lock, read without it (a stale miss only means
// the slow path once more). Each entry: the two sites and the suppression
// rule (-1 for a duplicate), for print_suppressions' counts.
struct QuietPair {
  std::atomic<const mg_site *> a, b;
  int rule;
};
constexpr int kQuietPairs = 4096;
QuietPair g_quiet[kQuietPairs];
std::atomic<int> g_quiet_count{0};

void OrderPair(const mg_site *&a, const mg_site *&b) {
  if (a > b) {
    const mg_site *t = a;
    a = b;
    b = t;
  }
}

void RememberQuietPair(const mg_site *a, const mg_site *b, int rule) {
  // A site inside the library's invoke machinery stands for every user line
  // that calls through it: deciding by the pair of sites would silence the
  // others, so such pairs are decided after symbolization, each time.
  for (const mg_site *site : {a, b})
    if (site && (site->flags & MG_SITE_CALLER_LOCATION)) return;
  OrderPair(a, b);
  int n = g_quiet_count.load(std::memory_order_relaxed);
  if (n >= kQuietPairs) return;
  g_quiet[n].rule = rule;
  g_quiet[n].a.store(a, std::memory_order_relaxed);
  g_quiet[n].b.store(b, std::memory_order_relaxed);
  g_quiet_count.store(n + 1, std::memory_order_release);
}

bool HoldsSharedLock(const ThreadState *t) {
  for (const auto &slot : t->shared_locks)
    if (slot.load(std::memory_order_relaxed)) return true;
  return false;
}

// operator[] inserts when the key is missing: under a reader lock it is a
// write that the lock does not exclude.
// `t` is the thread of an access in progress; `held` says it for an earlier
// access (recorded when it was made).
const char *SharedLockHint(const mg_site *site, const ThreadState *t, bool held = false) {
  if (!site || site->kind != MG_WRITE || !(held || (t && HoldsSharedLock(t)))) return nullptr;
  if (!strcmp(site->op, "operator[]"))
    return "operator[] inserts when the key is missing, so it is a write, but this thread holds "
           "only a shared (reader) lock; use find() under the shared lock, or take the exclusive "
           "lock to insert";
  return "this write runs while its thread holds only a shared (reader) lock, which does not "
         "exclude other readers or writers; take the exclusive lock";
}

bool OpIn(const char *op, std::initializer_list<const char *> names) {
  for (const char *n : names)
    if (!strcmp(op, n)) return true;
  return false;
}

// A lookup and then an insert on the same map by the same thread: the
// classic check-then-act. The pair is only atomic if one exclusive lock
// covers both; a lock held for the lookup alone ("partial lock") is not
// enough. Names both call sites, so the hint lives in a runtime buffer.
char g_hint_buf[768];
bool IsLookup(const mg_site *s) {
  return s && s->kind == MG_READ && OpIn(s->op, {"count", "find", "contains"});
}
bool IsInsert(const mg_site *s) {
  return s && s->kind == MG_WRITE &&
         OpIn(s->op, {"insert", "emplace", "try_emplace", "operator[]", "insert_or_assign",
                      "emplace_hint"});
}

// `racing` is the other thread's access: the pattern is only the likely
// cause when that access is itself a lookup or an insert (the other half of
// the same check-then-insert); an iteration or an erase racing with an insert
// is another bug.
const char *CheckThenInsertHint(const mg_site *write_site, const ThreadState *t, void *map,
                                const mg_site *racing) {
  if (!t || !IsInsert(write_site)) return nullptr;
  if (racing && !IsLookup(racing) && !IsInsert(racing)) return nullptr;
  if (t->last_read_map.load(std::memory_order_relaxed) != map) return nullptr;
  const mg_site *lookup = t->last_read_site.load(std::memory_order_relaxed);
  if (!IsLookup(lookup)) return nullptr;
  // One exclusive lock held from the lookup to now (no release in between):
  // the pair was atomic, the race is elsewhere.
  if ((t->last_read_lock_state & 1) && t->last_read_lock_state == t->lock_state) return nullptr;
  snprintf(g_hint_buf, sizeof(g_hint_buf),
           "check-then-insert: thread T%u looked the key up with %s() at %s:%u and then called "
           "%s at %s:%u; unless one exclusive lock covers both calls, another thread can use the "
           "map in between. Hold one std::unique_lock across the lookup and the insert, or drop "
           "the lookup and use what insert()/try_emplace() returns",
           t->number, lookup->op, StripPrefix(lookup->file), lookup->line, write_site->op,
           StripPrefix(write_site->file), write_site->line);
  return g_hint_buf;
}

// Whether a report is printed: not when a suppression matches it or the same
// pair of sites was reported already. Decided before the other thread is
// asked for its stack, so a report that does not stop the program never
// interrupts anyone.
struct Verdict {
  int rule;        // matching suppression, or -1
  bool duplicate;  // dedup=1 saw the pair already
  bool Printed() const { return rule < 0 && !duplicate; }
  bool Halts() const { return Printed() && g_flags.halt_on_error; }
};

Verdict Decide(const ReportData &d) {
  Verdict v;
  v.rule = Suppressed(d);
  v.duplicate = v.rule < 0 && SeenBefore(Fingerprint(d));
  return v;
}

// Prints (unless suppressed or a duplicate), then stops the process or
// unfreezes the map and lets the program go on.
void Emit(const ReportData &d, MapShadow *s, Verdict v) {
  {
    // Tell a tracing sidecar first: with halt_on_error the process ends below.
    int k = int(d.kind);
    uint32_t flags = (k >= 3 ? kProbeHappensBefore : 0) | (v.rule >= 0 ? kProbeSuppressed : 0) |
                     (v.duplicate ? kProbeDuplicate : 0) | (v.Halts() ? kProbeHalting : 0);
    TraceConflict(d.map, uint32_t(k % 3), d.current.thread.tid,
                  d.have_other && d.other.thread.known ? d.other.thread.tid : 0, d.site,
                  d.have_other ? d.other.site : nullptr, flags);
  }
  if (!v.Printed()) RememberQuietPair(d.site, d.have_other ? d.other.site : nullptr, v.rule);
  if (v.rule >= 0) {
    CountSuppressionHit(v.rule);
  } else if (!v.duplicate) {
    if (!strcmp(g_flags.format, "sarif")) {
      AppendSarifResult(d);
    } else {
      Appender out(g_report_buf, sizeof(g_report_buf));
      if (!strcmp(g_flags.format, "json")) PrintJson(d, out); else PrintText(d, out);
      WriteOut(out.data(), out.size());
    }
    g_reports.fetch_add(1, std::memory_order_relaxed);
    if (g_flags.dedup) RememberQuietPair(d.site, d.have_other ? d.other.site : nullptr, -1);
    if (g_flags.halt_on_error) {
      WriteSarifLog();
      if (g_flags.print_suppressions) PrintSuppressionStats();
      _exit(g_flags.exitcode);
    }
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
  g_data.created = s->created_site.load(std::memory_order_relaxed);
  g_data.created_by = s->created_by.load(std::memory_order_relaxed);
}

}  // namespace

void InitReportOutput() {
  if (g_flags.suppressions && *g_flags.suppressions) LoadSuppressions(g_flags.suppressions);
  const char *log = g_flags.log_path;
  if (log && *log) {
    if (!strcmp(log, "stderr")) return;
    if (!strcmp(log, "stdout")) {
      g_log_fd = 1;
      return;
    }
    if (!strncmp(log, "/dev/", 5)) {
      snprintf(g_log_file, sizeof(g_log_file), "%s", log);
      return;
    }
    snprintf(g_log_file, sizeof(g_log_file), "%s.%d", log, int(getpid()));
    // Created lazily, but a directory it cannot be created in is an error now.
    char dir[600];
    snprintf(dir, sizeof(dir), "%s", g_log_file);
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = 0;
    else if (slash) *slash = 0;
    else snprintf(dir, sizeof(dir), ".");
    if (access(dir, W_OK | X_OK) != 0) {
      char msg[800];
      int n = snprintf(msg, sizeof(msg), "mapguard: error: cannot create log_path file '%s': %s\n",
                       g_log_file, strerror(errno));
      WriteAll(msg, size_t(n) < sizeof(msg) ? size_t(n) : sizeof(msg) - 1);
      _exit(kBadOptionsExit);
    }
  }
}

void WriteReportOutput(const char *data, size_t len) { WriteOut(data, len); }
void AppendJsonString(Appender &out, const char *s) { JsonString(out, s); }

void FinishReportOutput() {
  PrintStats();
  WriteSarifLog();
  if (g_flags.print_suppressions) PrintSuppressionStats();
}

namespace {
// A pair already suppressed or reported: counted, nothing else.
bool QuietPair(const mg_site *a, const mg_site *b) {
  OrderPair(a, b);
  int n = g_quiet_count.load(std::memory_order_acquire);
  for (int i = 0; i < n; i++)
    if (g_quiet[i].a.load(std::memory_order_relaxed) == a &&
        g_quiet[i].b.load(std::memory_order_relaxed) == b) {
      if (g_quiet[i].rule >= 0) CountSuppressionHit(g_quiet[i].rule);
      return true;
    }
  return false;
}

// Whether `t`'s access at `site` is inside AnnotateIgnoreReads/Writes
// brackets (dynamic annotations): such an access is not reported.
bool InIgnoredBracket(ThreadState *t, const mg_site *site) {
  if (!site) return false;
  if (site->kind == MG_READ || site->kind == MG_ITERATE) return t->ignore_reads > 0;
  if (site->kind == MG_WRITE || site->kind == MG_DESTROY) return t->ignore_writes > 0;
  return false;
}

// Whether a thread other than `me` has more regions open than its stack
// records: the access a report cannot find may be one of those.
bool AnyThreadNestedPastRecord(ThreadState *me) {
  const uint32_t limit = ThreadSlotLimit();
  for (uint32_t slot = 0; slot < limit; slot++) {
    ThreadState *t = ThreadBySlot(slot);
    if (t && t != me && t->depth.load(std::memory_order_relaxed) > kMaxRegions) return true;
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
  *site_out = s->writer_site.load(std::memory_order_relaxed);
  return ThreadBySlot(writer - 1);
}
}  // namespace

MG_NOINLINE void ReportConflict(ConflictKind kind, ThreadState *thr, void *map, MapShadow *s,
                                const mg_site *site, bool current_is_writer,
                                const mg_site *seen_site, uint32_t seen_number) {
  // The caller froze the map (see Freeze in mg_access.cpp): the other thread
  // cannot leave its region, so its stack is still the racing one.
  const mg_site *other_site = nullptr;
  ThreadState *other = FindOtherAccess(kind, thr, map, s, current_is_writer, &other_site);
  if (!other && seen_site) other_site = seen_site;
  if ((g_quiet_count.load(std::memory_order_relaxed) && QuietPair(site, other_site)) ||
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
    const mg_site *w = s->writer_site.load(std::memory_order_relaxed);
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
          "stack unavailable: the access may be nested more than 32 map regions deep in its "
          "thread, past what mapguard records of a thread's regions";
    else
      g_data.other_missing =
          "The other access may be nested more than 32 map regions deep in its thread, past "
          "what mapguard records of a thread's regions: its site and thread are not known.";
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
                                      const mg_site *site, const AccessInfo &earlier) {
  if (g_quiet_count.load(std::memory_order_relaxed) && QuietPair(site, earlier.site)) return;
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
