// The report as plain data, and the four parts of mapguard's reports that
// share it, each in a file of its own:
//   collect  (mg_report_collect.cpp): what happened, gathered on the
//            reporting thread while the map is frozen (see ReportConflict);
//            no formatting;
//   filter   (mg_report_filter.cpp): whether a report is printed
//            (suppressions, dedup, pairs already decided, ignore brackets)
//            and the hint it carries;
//   print    (mg_report_print.cpp): text, JSON and SARIF from a ReportDesc;
//            no decisions;
//   output   (mg_report_output.cpp): where the bytes go (stderr, log_path,
//            the SARIF log written at the end).
// Everything here runs under the report lock (one report at a time) except
// the quiet-pair lookup, which is lock-free.
#ifndef MAPGUARD_REPORT_DESC_H
#define MAPGUARD_REPORT_DESC_H

#include <stdint.h>

#include "mg_appender.h"
#include "mg_report.h"
#include "mg_stack.h"

namespace mapguard {

// One symbolized frame; function and file empty when unknown (then module
// and offset say where).
struct Frame {
  char function[kSymbolLen];
  char file[kSymbolLen];
  int line, column;
  char module[kSymbolLen];
  uintptr_t offset;
};

// A stack as printed: library and runtime frames already dropped.
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

// The current access (this thread's), one in progress in another thread,
// or a finished one no synchronization orders before the current one.
enum class Role { kCurrent, kInProgress, kPrevious };

struct Access {
  const mg_site *site;  // `located` once LocateAtCaller moved it to the user's frame
  mg_site located;
  Role role;
  ThreadInfo thread;
  SymStack *stack;
  const char *no_stack_reason;  // when stack is null
};

// Everything a report says, gathered before anything is printed.
struct ReportDesc {
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
inline const char *MapName(const ReportDesc &d) {
  const mg_site *sites[] = {d.site, d.have_other ? d.other.site : nullptr, d.created};
  for (const mg_site *s : sites)
    if (s && s->map_name && s->map_name[0]) return s->map_name;
  return "";
}

// ---- filter (mg_report_filter.cpp) ----
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
Verdict Decide(const ReportDesc &d);
// Before anything is captured: a pair of sites already suppressed or
// reported (counted, nothing else), and accesses inside ignore brackets.
bool QuietPair(const mg_site *a, const mg_site *b);
bool InIgnoredBracket(ThreadState *t, const mg_site *site);
// After the report: its pair of sites, for QuietPair (`rule` -1: printed).
void RememberQuietPair(const mg_site *a, const mg_site *b, int rule);
// Stable across runs: the rule and the unordered pair of source locations.
uint64_t Fingerprint(const ReportDesc &d);
// The hints: a classic mistake the pattern looks like, or null. `t` is the
// thread of an access in progress; `held` says it for an earlier access.
const char *SharedLockHint(const mg_site *site, const ThreadState *t, bool held = false);
const char *CheckThenInsertHint(const mg_site *write_site, const ThreadState *t, void *map,
                                const mg_site *racing);

// ---- print (mg_report_print.cpp) ----
const char *RuleId(ConflictKind k);
int RuleIndex(ConflictKind k);
const char *StripPrefix(const char *path);   // strip_path_prefix
const char *RelativePath(const char *path);  // to the SARIF source root
void PrintText(const ReportDesc &d, Appender &out);
void PrintJson(const ReportDesc &d, Appender &out);
// One SARIF result (`first`: no comma before it), and the log's head (the
// tool and its rules, up to the results array) and tail.
void PrintSarifResult(const ReportDesc &d, bool first, Appender &out);
void PrintSarifHead(Appender &out);
extern const char kSarifTail[];

// ---- output (mg_report_output.cpp) ----
// The report in the format asked for: written now (text, JSON), or kept for
// the SARIF log.
void OutputReport(const ReportDesc &d);
// halt_on_error: what the end of the process owes (the SARIF log, the
// suppression counts), then _exit(exitcode).
[[noreturn]] void HaltAfterReport();

}  // namespace mapguard

#endif  // MAPGUARD_REPORT_DESC_H
