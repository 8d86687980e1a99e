// The sidecar's command line: --help's text and its parsing.
#include <stdlib.h>
#include <string.h>

#include "sidecar.h"

namespace sidecar {

namespace {

void Usage(FILE *out) {
  fprintf(out,
          "usage: mapguard-sidecar [options] -- PROGRAM [ARGS...]\n"
          "       mapguard-sidecar [options] --pid PID\n"
          "\n"
          "Watches a program built with -fplugin=mapguard.so: exports the runtime's exact\n"
          "per-map counts as metrics, and cross-checks the map conflicts the kernel saw on\n"
          "the maps it watches (BPF on the runtime's USDT probes) against those the\n"
          "runtime reported. Needs root, or\n"
          "CAP_SYS_ADMIN (CAP_BPF and CAP_PERFMON alone are refused uprobes).\n"
          "\n"
          "  --pid PID             attach to a running process (and the children it starts)\n"
          "  --runtime PATH        the libmapguard_rt.so the target uses (default: the one\n"
          "                        mapped by --pid, else the one installed with the sidecar)\n"
          "  --metrics-port N      serve Prometheus metrics on http://127.0.0.1:N/metrics\n"
          "                        (0: pick a free port; the address is printed)\n"
          "  --metrics-address A   listen on A instead of 127.0.0.1\n"
          "  --json FILE           write the summary as JSON to FILE ('-': stdout, which then\n"
          "                        carries only the JSON: the program's stdout goes to stderr)\n"
          "  --read-sample N       launched program: trace 1 in N read regions (writes all);\n"
          "                        faster, but read conflicts are then not cross-checked\n"
          "  --map-sample N        the kernel-side check watches 1 in N maps (default 8;\n"
          "                        0: none). Counts stay exact for every map (the runtime\n"
          "                        keeps them); a conflict on a watched map is cross-checked\n"
          "  --trace-budget N      at most N watched regions per second per process go to\n"
          "                        the kernel (default 2000; 0: no limit)\n"
          "  --full-trace          the test mode: the kernel follows every region of every\n"
          "                        map (complete cross-check; a trap per access, slow)\n"
          "  --all                 trace every process using the runtime, not only the target\n"
          "  --quiet               no summary on stderr (errors and the verdict still print)\n"
          "  --verbose             show libbpf's messages\n"
          "  --help                this text\n"
          "\n"
          "Exit status: the program's own (launch mode) or 0 (--pid) when the kernel and the\n"
          "runtime agree; 70 when they disagree; 71 when events were lost; 2 on bad usage,\n"
          "a missing privilege, or a target without mapguard probes.\n");
}

int ParseInt(const std::string &flag, const char *value, int lo, int hi) {
  if (!value) Fail("option " + flag + " needs a value");
  char *end = nullptr;
  errno = 0;
  long v = strtol(value, &end, 10);
  if (errno || end == value || *end || v < lo || v > hi)
    Fail("option " + flag + " must be a number from " + std::to_string(lo) + " to " +
         std::to_string(hi) + ", got '" + value + "'");
  return int(v);
}

}  // namespace

Options ParseArgs(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    const char *next = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--") {
      for (int j = i + 1; j < argc; j++) o.command.push_back(argv[j]);
      break;
    } else if (a == "--help" || a == "-h") {
      Usage(stdout);
      exit(0);
    } else if (a == "--pid") {
      o.pid = ParseInt(a, next, 1, 2147483647);
      i++;
    } else if (a == "--runtime") {
      if (!next) Fail("option --runtime needs a path");
      o.runtime = next;
      i++;
    } else if (a == "--metrics-port") {
      o.metrics_port = ParseInt(a, next, 0, 65535);
      i++;
    } else if (a == "--metrics-address") {
      if (!next) Fail("option --metrics-address needs an address");
      o.metrics_address = next;
      i++;
    } else if (a == "--json") {
      if (!next) Fail("option --json needs a file name ('-' for stdout)");
      o.json_path = next;
      i++;
    } else if (a == "--read-sample") {
      o.read_sample = ParseInt(a, next, 1, 1 << 20);
      i++;
    } else if (a == "--map-sample") {
      o.map_sample = ParseInt(a, next, 0, 1 << 30);
      i++;
    } else if (a == "--trace-budget") {
      o.trace_budget = ParseInt(a, next, 0, 1 << 30);
      i++;
    } else if (a == "--full-trace") {
      o.full_trace = true;
    } else if (a == "--all") {
      o.trace_all = true;
    } else if (a == "--quiet") {
      o.quiet = true;
    } else if (a == "--verbose") {
      o.verbose = true;
    } else {
      Fail("unknown option '" + a + "' (--help lists the options)");
    }
  }
  if (o.pid && !o.command.empty()) Fail("give either --pid PID or -- PROGRAM, not both");
  if (!o.pid && o.command.empty()) Fail("nothing to trace: give --pid PID or -- PROGRAM [ARGS...]");
  if (o.pid && o.read_sample) Fail("--read-sample applies to a launched program; for --pid, start it with MAPGUARD_OPTIONS=usdt_read_sample=N");
  return o;
}

}  // namespace sidecar
