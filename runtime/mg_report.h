// Conflict reports: what was detected, collected as plain data, then printed
// (the four parts and their files: mg_report_desc.h).
#ifndef MAPGUARD_REPORT_H
#define MAPGUARD_REPORT_H

#include "mg_appender.h"
#include "mg_rt.h"
#include "mg_shadow.h"

namespace mapguard {

// The Go messages; stable text users and tests grep for.
enum class ConflictKind {
  kWrites,          // "concurrent map writes"
  kReadWrite,       // "concurrent map read and map write"
  kIterationWrite,  // "concurrent map iteration and map write"
  // Happens-before (detect=hb): no synchronization orders the two accesses,
  // whether or not they overlapped in time.
  kUnsyncWrites,          // "unsynchronized map writes"
  kUnsyncReadWrite,       // "unsynchronized map read and map write"
  kUnsyncIterationWrite,  // "unsynchronized map iteration and map write"
};
const char *ConflictMessage(ConflictKind kind);

// Called by the thread whose region begin found the conflict. Prints the
// report; with halt_on_error, exits the process with `exitcode`. `seen_site`
// and `seen_number` (optional): the other access as the caller found it, for
// when that thread has left the map by the time the report is written.
MG_NOINLINE void ReportConflict(ConflictKind kind, ThreadState *thr, void *map, MapShadow *s,
                                const mg_site *site, bool current_is_writer,
                                const mg_site *seen_site = nullptr, uint32_t seen_number = 0);

// The current access is not ordered after `earlier` (a finished access by
// another thread, recorded when it happened).
MG_NOINLINE void ReportUnsynchronized(ConflictKind kind, ThreadState *thr, void *map, MapShadow *s,
                                      const mg_site *site, const AccessInfo &earlier);

// Opens log_path and loads suppressions (start-up); prints what
// print_suppressions asks for (exit).
// Where reports go: the log_path file (created on first use) or stderr.
void WriteReportOutput(const char *data, size_t len);
// A JSON string literal, escaped, for other JSON lines (print_stats).
void AppendJsonString(Appender &out, const char *s);
void InitReportOutput();
void FinishReportOutput();

// Number of reports printed so far (halt_on_error=0 keeps going).
extern std::atomic<int> g_reports;

}  // namespace mapguard

#endif  // MAPGUARD_REPORT_H
