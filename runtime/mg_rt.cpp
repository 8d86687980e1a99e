// Runtime start-up and the low-level output helpers every file uses.
#include "mg_rt.h"
#include "mg_report.h"
#include "mg_probes.h"
#include "mg_access.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace mapguard {

void WriteAll(const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(2, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    buf += n;
    len -= size_t(n);
  }
}

void SleepMicrosNoCancel(long us) {
  // The raw system call: glibc's nanosleep wrapper is a cancellation point.
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  syscall(SYS_nanosleep, &ts, nullptr);
}

uint64_t MonotonicMicros() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000 + uint64_t(ts.tv_nsec) / 1000;
}

void Die(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (size_t(n) > sizeof(msg) - 2) n = int(sizeof(msg) - 2);
  msg[n++] = '\n';
  WriteAll(msg, size_t(n));
  _exit(g_flags.exitcode ? g_flags.exitcode : 66);
}

namespace {
// Runs before the program's own constructors (shared libraries are
// initialized before the executable), so options apply to global maps too.
__attribute__((constructor(101))) void InitRuntime() {
  InitFlags();
  if (!InterceptorsActive()) {
    // Loaded by dlopen into a program that was not linked with it (a plugin,
    // a Python extension): the program's locks bind to libc, happens-before
    // would be blind to them, and correct code would be reported.
    static const char kMsg[] =
        "mapguard: fatal: the runtime was loaded after the program's own symbols (dlopen?), so it "
        "cannot see its locks; link libmapguard_rt into the executable or run with "
        "LD_PRELOAD=libmapguard_rt.so\n";
    WriteAll(kMsg, sizeof(kMsg) - 1);
    _exit(kBadOptionsExit);
  }
  InitOwnership();
  InitReportOutput();
  CurrentThread();  // the main thread is T0
  TraceInit();
  if (g_flags.verbosity >= 1) {
    static const char kMsg[] = "mapguard: runtime initialized\n";
    WriteAll(kMsg, sizeof(kMsg) - 1);
  }
}

// With halt_on_error=0 the program runs on after reports, but its exit status
// must still say that something was found.
__attribute__((destructor)) void FinishRuntime() {
  FinishReportOutput();
  int reports = g_reports.load(std::memory_order_relaxed);
  if (reports == 0) return;
  char msg[160];
  // Every line of a JSON stream is JSON (so jq can read it whole).
  int n = !strcmp(g_flags.format, "json")
              ? snprintf(msg, sizeof(msg), "{\"mapguard_summary\":1,\"reports\":%d,\"exit_status\":%d}\n",
                         reports, g_flags.exitcode)
              : snprintf(msg, sizeof(msg), "mapguard: %d report%s; exiting with status %d\n", reports,
                         reports == 1 ? "" : "s", g_flags.exitcode);
  WriteAll(msg, size_t(n));
  fflush(nullptr);  // _exit skips stdio's own flush, which comes after us
  _exit(g_flags.exitcode);
}
}  // namespace

}  // namespace mapguard
