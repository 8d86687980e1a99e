// Where reports go (mg_report_desc.h): stderr, or the log_path file, made
// on the first report; SARIF results are kept until the process stops and
// then written as one log. Each report is one write(2) of a buffer the
// runtime owns, under the report lock: two reports never interleave, and a
// corrupted heap cannot stop one.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mg_report_desc.h"
#include "mg_stats.h"
#include "mg_suppressions.h"

namespace mapguard {

namespace {

char g_report_buf[1 << 17];

// ---- SARIF results, kept until the process stops (at the report with
// halt_on_error=1, else at exit) ----
char g_sarif_results[1 << 18];
Appender g_sarif(g_sarif_results, sizeof(g_sarif_results));
int g_sarif_count;

// Reports go to stderr, or to log_path: "stderr" and "stdout" name those
// streams, a path under /dev/ is used as it is, anything else gets ".<pid>"
// and is created only when the first report is written (a clean run leaves
// no empty file behind).
int g_log_fd = -1;
char g_log_file[600];

}  // namespace

void WriteReportOutput(const char *data, size_t len) {
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

namespace {

// The whole SARIF log: rules for every kind, then the results so far.
void WriteSarifLog() {
  static bool written = false;
  if (written || strcmp(g_flags.format, "sarif") != 0) return;
  written = true;
  static char head[8192];
  Appender out(head, sizeof(head));
  PrintSarifHead(out);
  WriteReportOutput(out.data(), out.size());
  WriteReportOutput(g_sarif.data(), g_sarif.size());
  WriteReportOutput(kSarifTail, strlen(kSarifTail));
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

void FinishReportOutput() {
  PrintStats();
  WriteSarifLog();
  if (g_flags.print_suppressions) PrintSuppressionStats();
}

void OutputReport(const ReportDesc &d) {
  if (!strcmp(g_flags.format, "sarif")) {
    PrintSarifResult(d, g_sarif_count == 0, g_sarif);
    g_sarif_count++;
    return;
  }
  Appender out(g_report_buf, sizeof(g_report_buf));
  if (!strcmp(g_flags.format, "json")) PrintJson(d, out); else PrintText(d, out);
  WriteReportOutput(out.data(), out.size());
}

void HaltAfterReport() {
  WriteSarifLog();
  // The other threads run on meanwhile, on a map that was just raced on:
  // a shorter wait than at a normal exit.
  HandOverStats(300000);
  if (g_flags.print_suppressions) PrintSuppressionStats();
  _exit(g_flags.exitcode);
}

}  // namespace mapguard
