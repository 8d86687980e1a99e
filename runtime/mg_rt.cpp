// Runtime start-up and the low-level output helpers every file uses.
#include "mg_rt.h"
#include "mg_stats.h"
#include "mg_report.h"
#include "mg_probes.h"
#include "mg_access.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// Every instrumented object refers to this symbol first (the plugin's
// addLinkCheck), so an object linked without the runtime fails with a first
// error that names what is missing.
extern "C" __attribute__((visibility("default"))) const char
    __mapguard_needs_libmapguard_rt__link_with_pkg_config_libs_mapguard = 0;

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
// Walks the loaded objects in load order. Those loaded at start-up are the
// executable and the closure of its DT_NEEDED lists, and come first (the
// loader goes breadth-first); anything else came through dlopen. Finds the
// start-up object that needed this runtime, if one did.
struct NeededBy {
  char startup[64][128];  // file names the start-up objects need so far
  int nstartup;
  bool first;             // the next object is the executable
  char needer[256];
};

const char *BaseName(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

int FindNeeder(struct dl_phdr_info *info, size_t, void *data) {
  NeededBy *nb = static_cast<NeededBy *>(data);
  const char *name = info->dlpi_name ? info->dlpi_name : "";
  bool startup = nb->first;
  nb->first = false;
  for (int i = 0; i < nb->nstartup && !startup; i++)
    startup = name[0] && !strcmp(nb->startup[i], BaseName(name));
  if (!startup) return 0;
  const ElfW(Dyn) *dyn = nullptr;
  for (int i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
      dyn = reinterpret_cast<const ElfW(Dyn) *>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
  if (!dyn) return 0;
  const char *strtab = nullptr;
  for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++)
    if (d->d_tag == DT_STRTAB) strtab = reinterpret_cast<const char *>(d->d_un.d_ptr);
  if (!strtab) return 0;
  for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++) {
    if (d->d_tag != DT_NEEDED) continue;
    const char *needed = strtab + d->d_un.d_val;
    if (strstr(needed, "libmapguard_rt") && !nb->needer[0] && name[0]) {
      snprintf(nb->needer, sizeof(nb->needer), "%s", name);
      return 1;
    }
    if (nb->nstartup < 64)
      snprintf(nb->startup[nb->nstartup++], sizeof(nb->startup[0]), "%s", BaseName(needed));
  }
  return 0;
}

// One line: how the runtime came in after libc (a library that needs it, or
// dlopen) and the two fixes, with this library's own path.
void DescribeLateRuntime(char *out, size_t len) {
  Dl_info self;
  const char *path = "libmapguard_rt.so";
  if (dladdr(reinterpret_cast<void *>(&DescribeLateRuntime), &self) && self.dli_fname)
    path = self.dli_fname;
  static NeededBy nb;  // a few KB: not on the stack of a constructor
  nb.nstartup = 0;
  nb.first = true;
  nb.needer[0] = 0;
  dl_iterate_phdr(FindNeeder, &nb);
  if (nb.needer[0])
    snprintf(out, len,
             "mapguard: error: the runtime came in as a dependency of %s, after libc, so it "
             "cannot see the program's locks; link the executable itself with the runtime "
             "(pkg-config --libs mapguard) or run it with LD_PRELOAD=%s\n",
             nb.needer, path);
  else
    snprintf(out, len,
             "mapguard: error: the runtime was loaded after the program's own symbols (dlopen?), "
             "so it cannot see its locks; link the executable with the runtime (pkg-config "
             "--libs mapguard) or run it with LD_PRELOAD=%s\n",
             path);
}

// Runs before the program's own constructors (shared libraries are
// initialized before the executable), so options apply to global maps too.
__attribute__((constructor(101))) void InitRuntime() {
  InitFlags();
  if (!InterceptorsActive()) {
    // The program's calls to pthread_mutex_lock & co. bind to libc, so
    // happens-before would be blind to its locks and correct code would be
    // reported: stop, saying how the runtime came in and the two fixes.
    char msg[1024];
    DescribeLateRuntime(msg, sizeof(msg));
    WriteAll(msg, strlen(msg));
    _exit(kBadOptionsExit);
  }
  InitOwnership();
  InitReportOutput();
  CurrentThread();  // the main thread is T0
  InitStats();
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
  HandOverStats(2000000);
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
