// mapguard-sidecar: watches a mapguard-instrumented program from the kernel.
//
// The BPF program (mapguard.bpf.c) follows the runtime's USDT probes and
// detects overlapping conflicting map accesses with its own state; this
// daemon launches or attaches to the target, collects the kernel's conflicts
// and the runtime's reports from the ring buffer, serves metrics, and at the
// end cross-checks the two views. See docs/sidecar.md.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <nlohmann/json.hpp>

#include "mg_lock_hint.h"
#include "sidecar_bpf.h"

#ifndef MAPGUARD_SIDECAR_RUNTIME_RELPATH
#define MAPGUARD_SIDECAR_RUNTIME_RELPATH "../lib/libmapguard_rt.so"
#endif

namespace {

// Exit statuses besides the target's own (documented in docs/sidecar.md).
constexpr int kExitUsage = 2;         // bad command line, missing privilege, no probes
constexpr int kExitDisagree = 70;     // the kernel's and the runtime's conflicts differ
constexpr int kExitEventsLost = 71;   // the cross-check is incomplete: events were dropped

const char *g_prog = "mapguard-sidecar";

[[noreturn]] void Fail(const std::string &msg) {
  fprintf(stderr, "%s: error: %s\n", g_prog, msg.c_str());
  exit(kExitUsage);
}

// A setup step that failed once the session holds something: thrown so
// that ~Session releases it (Fail() is for the command line, before that).
struct SetupError {
  std::string message;
};

void Info(const std::string &msg) { fprintf(stderr, "%s: %s\n", g_prog, msg.c_str()); }

struct Options {
  int pid = 0;                      // --pid: attach to a running process
  std::vector<std::string> command; // -- prog args: launch and trace
  std::string runtime;              // --runtime: the libmapguard_rt.so to probe
  int metrics_port = -1;            // --metrics-port (0: any free port)
  std::string metrics_address = "127.0.0.1";
  std::string json_path;            // --json FILE ('-' = stdout)
  bool trace_all = false;           // --all
  int read_sample = 0;              // --read-sample N (passed to the launched program)
  bool quiet = false;
  bool verbose = false;
};

void Usage(FILE *out) {
  fprintf(out,
          "usage: mapguard-sidecar [options] -- PROGRAM [ARGS...]\n"
          "       mapguard-sidecar [options] --pid PID\n"
          "\n"
          "Traces a program built with -fplugin=mapguard.so from the kernel (BPF on the\n"
          "runtime's USDT probes), cross-checks the map conflicts the kernel saw against\n"
          "those the runtime reported, and exports per-map metrics. Needs root, or\n"
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

// What attaching really needs, measured (tests/e2e/sidecar/errors.test drops
// to each set with setpriv): loading the BPF programs works with CAP_BPF +
// CAP_PERFMON, but the kernel refuses the uprobe perf events libbpf opens for
// USDT probes with semaphores (perf_event_open on the uprobe PMU with a
// reference-counter offset: EACCES) unless the process has CAP_SYS_ADMIN.
// Checked up front so the message names exactly that.
void CheckPrivileges() {
  __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return;  // cannot tell: let the kernel decide
  auto has = [&](int cap) { return (data[cap / 32].effective >> (cap % 32)) & 1; };
  constexpr int kCapSysAdmin = 21;
  if (!has(kCapSysAdmin))
    Fail("this process lacks CAP_SYS_ADMIN, which attaching to the runtime's USDT probes needs "
         "(the kernel refuses uprobes with semaphores to CAP_BPF and CAP_PERFMON alone); run as "
         "root (sudo) or grant it (setcap cap_sys_admin+ep mapguard-sidecar)");
}

std::string Dirname(const std::string &p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

std::string RealPath(const std::string &p) {
  char buf[PATH_MAX];
  if (!realpath(p.c_str(), buf)) return "";
  return buf;
}

// The runtime library mapped into `pid`, or "" if it has none.
std::string RuntimeOfProcess(int pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) Fail("no process with pid " + std::to_string(pid));
  std::string path = "/proc/" + std::to_string(pid) + "/maps";
  std::ifstream maps(path);
  if (!maps) Fail("cannot read " + path + ": " + strerror(errno));
  std::string line;
  while (std::getline(maps, line)) {
    size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    if (path.find("libmapguard_rt") != std::string::npos) return path;
  }
  return "";
}

// Installed: the runtime sits where the install put it relative to bin/. In
// the build tree: build/bin/mapguard-sidecar next to build/lib/.
std::string DefaultRuntime() {
  std::string dir = Dirname(RealPath("/proc/self/exe"));
  std::string installed = RealPath(dir + "/" MAPGUARD_SIDECAR_RUNTIME_RELPATH);
  return installed.empty() ? RealPath(dir + "/../lib/libmapguard_rt.so") : installed;
}

const char *KindName(uint32_t kind) {
  switch (kind) {
    case MGS_CONFLICT_WRITES: return "concurrent map writes";
    case MGS_CONFLICT_READ_WRITE: return "concurrent map read and map write";
    case MGS_CONFLICT_ITERATION_WRITE: return "concurrent map iteration and map write";
  }
  return "unknown";
}

const char *KindKey(uint32_t kind) {
  switch (kind) {
    case MGS_CONFLICT_WRITES: return "writes";
    case MGS_CONFLICT_READ_WRITE: return "read_write";
    case MGS_CONFLICT_ITERATION_WRITE: return "iteration_write";
  }
  return "unknown";
}

std::string Hex(uint64_t v) {
  char b[32];
  snprintf(b, sizeof(b), "0x%" PRIx64, v);
  return b;
}

std::string Basename(const std::string &p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string SiteText(const mgs_site_text &s) {
  if (!s.line && !s.file[0]) return "(unknown site)";
  std::string out = Basename(s.file) + ":" + std::to_string(s.line);
  if (s.op[0]) out += std::string(" ") + s.op;
  return out;
}

// One conflict, as either side saw it.
struct Conflict {
  uint32_t tgid, tid, other_tid, kind, flags;
  uint64_t map;
  std::string site, other_site, type, name;
  bool after_halt = false;  // kernel-side, after the runtime stopped this process
};

// The cross-check compares distinct (process, map, kind, pair of threads).
using ConflictKey = std::tuple<uint32_t, uint64_t, uint32_t, uint32_t, uint32_t>;
ConflictKey KeyOf(const Conflict &c) {
  uint32_t a = std::min(c.tid, c.other_tid), b = std::max(c.tid, c.other_tid);
  return {c.tgid, c.map, c.kind, a, b};
}

struct State {
  std::mutex mu;
  std::vector<Conflict> kernel, runtime;
  std::set<uint32_t> halted;        // processes whose runtime stopped them
  std::map<uint32_t, uint32_t> inits;  // pid -> read sample rate, from mapguard:init
};

State g_state;
std::atomic<int> g_signal{0};
mgs_bpf *g_bpf;

int OnEvent(void *, void *data, size_t size) {
  if (size < sizeof(mgs_event)) return 0;
  const mgs_event *e = static_cast<const mgs_event *>(data);
  std::lock_guard<std::mutex> lock(g_state.mu);
  if (e->type == MGS_EV_INIT) {
    g_state.inits[e->tgid] = e->kind;
    return 0;
  }
  Conflict c;
  c.tgid = e->tgid;
  c.tid = e->tid;
  c.other_tid = e->other_tid;
  c.kind = e->kind;
  c.flags = e->flags;
  c.map = e->map;
  c.site = SiteText(e->site);
  c.other_site = SiteText(e->other_site);
  c.type = e->type_name;
  c.name = e->map_name;
  if (e->type == MGS_EV_KERNEL_CONFLICT) {
    c.after_halt = g_state.halted.count(e->tgid) != 0;
    g_state.kernel.push_back(c);
  } else if (e->type == MGS_EV_RUNTIME_CONFLICT) {
    if (c.flags & MGS_RT_HALTING) g_state.halted.insert(e->tgid);
    g_state.runtime.push_back(c);
  }
  return 0;
}

void OnSignal(int sig) { g_signal.store(sig); }

// ---- Per-map metrics, read straight from the BPF map ----
struct MapRow {
  mgs_map_key key;
  mgs_map_stats stats;
};

std::vector<MapRow> ReadMapStats() {
  std::vector<MapRow> rows;
  int fd = mgs_bpf_stats_fd(g_bpf);
  mgs_map_key key, next;
  mgs_map_key *prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    MapRow r;
    r.key = next;
    if (bpf_map_lookup_elem(fd, &next, &r.stats) == 0) rows.push_back(r);
    key = next;
    prev = &key;
  }
  std::sort(rows.begin(), rows.end(), [](const MapRow &a, const MapRow &b) {
    uint64_t ta = a.stats.reads + a.stats.writes + a.stats.iterations;
    uint64_t tb = b.stats.reads + b.stats.writes + b.stats.iterations;
    return ta != tb ? ta > tb : std::tie(a.key.tgid, a.key.map) < std::tie(b.key.tgid, b.key.map);
  });
  return rows;
}

std::string PromEscape(const std::string &s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string RenderMetrics() {
  const volatile mgs_counters *c = mgs_bpf_counters(g_bpf);
  std::ostringstream o;
  auto header = [&](const char *name, const char *type, const char *help) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  header("mapguard_sidecar_probe_hits_total", "counter", "USDT probes fired by traced processes.");
  o << "mapguard_sidecar_probe_hits_total " << c->probe_hits << "\n";
  header("mapguard_sidecar_events_lost_total", "counter", "Ring-buffer events dropped because the buffer was full.");
  o << "mapguard_sidecar_events_lost_total " << c->events_lost << "\n";
  header("mapguard_sidecar_untracked_maps_total", "counter", "Maps whose state or statistics did not fit the BPF maps.");
  o << "mapguard_sidecar_untracked_maps_total " << c->maps_untracked << "\n";
  header("mapguard_sidecar_unmatched_region_ends_total", "counter", "Region ends whose begin the sidecar did not see (attached mid-region).");
  o << "mapguard_sidecar_unmatched_region_ends_total " << c->unmatched_ends << "\n";
  {
    std::lock_guard<std::mutex> lock(g_state.mu);
    header("mapguard_conflicts_total", "counter", "Map conflicts, as seen by the kernel and as reported by the runtime.");
    o << "mapguard_conflicts_total{source=\"kernel\"} " << g_state.kernel.size() << "\n";
    o << "mapguard_conflicts_total{source=\"runtime\"} " << g_state.runtime.size() << "\n";
  }
  std::vector<MapRow> rows = ReadMapStats();
  auto labels = [](const MapRow &r) {
    return "pid=\"" + std::to_string(r.key.tgid) + "\",map=\"" + Hex(r.key.map) + "\",type=\"" +
           PromEscape(r.stats.type) + "\",name=\"" + PromEscape(r.stats.name) + "\"";
  };
  header("mapguard_map_accesses_total", "counter", "Accesses to one map by kind (reads scaled up when sampled).");
  for (const MapRow &r : rows) {
    o << "mapguard_map_accesses_total{" << labels(r) << ",kind=\"read\"} " << r.stats.reads << "\n";
    o << "mapguard_map_accesses_total{" << labels(r) << ",kind=\"write\"} " << r.stats.writes << "\n";
    o << "mapguard_map_accesses_total{" << labels(r) << ",kind=\"iteration\"} " << r.stats.iterations << "\n";
  }
  header("mapguard_map_conflicts_total", "counter", "Overlapping conflicting accesses the kernel saw on one map.");
  for (const MapRow &r : rows) o << "mapguard_map_conflicts_total{" << labels(r) << "} " << r.stats.conflicts << "\n";
  header("mapguard_map_rehashes_total", "counter", "Bucket-count changes of one unordered map.");
  for (const MapRow &r : rows) o << "mapguard_map_rehashes_total{" << labels(r) << "} " << r.stats.rehashes << "\n";
  header("mapguard_map_threads", "gauge", "Distinct threads that accessed one map.");
  for (const MapRow &r : rows) o << "mapguard_map_threads{" << labels(r) << "} " << r.stats.threads << "\n";
  header("mapguard_map_read_write_ratio", "gauge", "Reads and iterations per write on one map (reads if no write).");
  for (const MapRow &r : rows) {
    double reads = double(r.stats.reads + r.stats.iterations);
    o << "mapguard_map_read_write_ratio{" << labels(r) << "} "
      << (r.stats.writes ? reads / double(r.stats.writes) : reads) << "\n";
  }
  return o.str();
}

// ---- A minimal HTTP/1.0 server for /metrics ----
class MetricsServer {
 public:
  // Returns the bound port; throws SetupError with a clear message on failure.
  int Start(const std::string &address, int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw SetupError{std::string("cannot create the metrics socket: ") + strerror(errno)};
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in sa = {};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(uint16_t(port));
    if (inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1)
      throw SetupError{"--metrics-address '" + address + "' is not an IPv4 address"};
    if (bind(fd_, reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) != 0)
      throw SetupError{"cannot listen on " + address + ":" + std::to_string(port) + ": " +
                       strerror(errno)};
    listen(fd_, 16);
    socklen_t len = sizeof(sa);
    getsockname(fd_, reinterpret_cast<sockaddr *>(&sa), &len);
    thread_ = std::thread([this] { Serve(); });
    return ntohs(sa.sin_port);
  }
  void Stop() {
    if (fd_ < 0) return;
    stopping_ = true;
    shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();  // not started when Start threw
    close(fd_);
    fd_ = -1;
  }

 private:
  void Serve() {
    while (!stopping_) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EINTR) continue;
        return;
      }
      timeval tv = {2, 0};
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      char req[2048];
      ssize_t n = recv(c, req, sizeof(req) - 1, 0);
      std::string first = n > 0 ? std::string(req, size_t(n)) : "";
      first = first.substr(0, first.find('\r'));
      std::string status = "200 OK", type = "text/plain; version=0.0.4; charset=utf-8", body;
      if (first.rfind("GET /metrics ", 0) == 0 || first == "GET /metrics") {
        body = RenderMetrics();
      } else if (first.rfind("GET / ", 0) == 0) {
        type = "text/plain; charset=utf-8";
        body = "mapguard-sidecar: metrics at /metrics\n";
      } else {
        status = first.rfind("GET ", 0) == 0 ? "404 Not Found" : "405 Method Not Allowed";
        type = "text/plain; charset=utf-8";
        body = status + "\n";
      }
      std::string head = "HTTP/1.0 " + status + "\r\nContent-Type: " + type +
                         "\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\nConnection: close\r\n\r\n";
      std::string all = head + body;
      const char *p = all.data();
      size_t left = all.size();
      while (left > 0) {
        ssize_t w = send(c, p, left, MSG_NOSIGNAL);
        if (w <= 0) break;
        p += w;
        left -= size_t(w);
      }
      close(c);
    }
  }
  int fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// ---- The end: cross-check, heatmap, per-map report ----
struct Verdict {
  std::vector<Conflict> matched, kernel_only, runtime_only;
  // Seen by the kernel in a process whose runtime then stopped at another
  // report (halt_on_error=1): real races it did not get to report.
  std::vector<Conflict> kernel_races_before_halt;
  std::vector<std::pair<Conflict, std::string>> reasons;  // not_comparable with why
  bool agree() const { return kernel_only.empty() && runtime_only.empty(); }
};

// Two sightings of a conflict are the same one when process, map and kind
// match and so do the threads; a side that could not name the other thread
// (0) matches on the thread it did name.
bool SameConflict(const Conflict &x, const Conflict &y) {
  if (x.tgid != y.tgid || x.map != y.map || x.kind != y.kind) return false;
  if (x.other_tid && y.other_tid) return KeyOf(x) == KeyOf(y);
  auto in = [](uint32_t t, const Conflict &c) { return t == c.tid || t == c.other_tid; };
  return x.other_tid ? in(y.tid, x) : in(x.tid, y);
}

// The kernel's regions contain the runtime's (see runtime/mg_probes.h), so
// every overlap the runtime reports, the kernel saw. Kernel-only sightings
// before a halting report are races the runtime did not get to (it stops at
// the first one); everything else that differs is a disagreement.
Verdict CrossCheck(uint64_t read_sample) {
  Verdict v;
  std::vector<Conflict> kernel;
  for (const Conflict &k : g_state.kernel)
    if (!k.after_halt) kernel.push_back(k);
  auto distinct = [](const std::vector<Conflict> &in) {
    std::vector<Conflict> out;
    for (const Conflict &c : in)
      if (std::none_of(out.begin(), out.end(), [&](const Conflict &o) { return KeyOf(o) == KeyOf(c); }))
        out.push_back(c);
    return out;
  };
  for (const Conflict &r : distinct(g_state.runtime)) {
    bool seen = std::any_of(kernel.begin(), kernel.end(), [&](const Conflict &k) { return SameConflict(k, r); });
    if (seen) {
      v.matched.push_back(r);
    } else if (r.flags & MGS_RT_HAPPENS_BEFORE) {
      v.reasons.push_back({r, "found by happens-before analysis: the accesses did not overlap in "
                              "time, and the kernel only sees overlaps"});
    } else if (read_sample > 1 && r.kind != MGS_CONFLICT_WRITES) {
      v.reasons.push_back({r, "reads were sampled (1 in " + std::to_string(read_sample) +
                              "), so the kernel may not have seen this one"});
    } else {
      v.runtime_only.push_back(r);
    }
  }
  for (const Conflict &k : distinct(kernel)) {
    bool reported = std::any_of(g_state.runtime.begin(), g_state.runtime.end(),
                                [&](const Conflict &r) { return SameConflict(k, r); });
    if (reported) continue;
    if (g_state.halted.count(k.tgid))
      v.kernel_races_before_halt.push_back(k);
    else
      v.kernel_only.push_back(k);
  }
  return v;
}

std::string Describe(const Conflict &c) {
  std::string who = "tid " + std::to_string(c.tid) +
                    (c.other_tid ? " and tid " + std::to_string(c.other_tid) : " and an unknown thread");
  std::string map = c.type.empty() ? "map" : c.type;
  if (!c.name.empty()) map += " '" + c.name + "'";
  return std::string(KindName(c.kind)) + " on " + map + " at " + Hex(c.map) + " (pid " +
         std::to_string(c.tgid) + ", " + who + "): " + c.site + " vs " + c.other_site;
}

struct HeatCell {
  std::string a, b;
  uint64_t count;
};

std::vector<HeatCell> Heatmap() {
  std::map<std::pair<std::string, std::string>, uint64_t> cells;
  for (const Conflict &k : g_state.kernel) {
    std::string a = k.site, b = k.other_site;
    if (b < a) std::swap(a, b);
    cells[{a, b}]++;
  }
  std::vector<HeatCell> out;
  for (auto &[ab, n] : cells) out.push_back({ab.first, ab.second, n});
  std::sort(out.begin(), out.end(), [](const HeatCell &x, const HeatCell &y) { return x.count > y.count; });
  return out;
}

nlohmann::json ConflictJson(const Conflict &c) {
  return {{"pid", c.tgid},      {"map", Hex(c.map)},         {"type", c.type},
          {"name", c.name},     {"kind", KindKey(c.kind)},   {"message", KindName(c.kind)},
          {"tid", c.tid},       {"other_tid", c.other_tid},  {"site", c.site},
          {"other_site", c.other_site}};
}

// How tracing ended.
struct TraceEnd {
  int target_status = 0;  // launch mode: the program's exit status
  std::string stop_reason;
  double seconds = 0;
};

// One run of the sidecar: the BPF object, the launched program or the
// attached process, the ring buffer, the metrics server and the --json
// file. Everything it holds is released in one place, ~Session, however the
// run ends (a setup error, the program's end, a signal).
class Session {
 public:
  explicit Session(Options opt) : opt_(std::move(opt)) {}
  ~Session();
  // Finds the runtime, loads and attaches the BPF program, opens the
  // outputs, and starts the program (launch mode) or watches the process
  // (--pid). Throws SetupError.
  void Start();
  // Collects events until the program or process ends, or a signal stops
  // tracing.
  TraceEnd Trace();
  // The per-map summary, the heatmap, the cross-check verdict and --json;
  // returns the sidecar's exit status.
  int Report(const TraceEnd &end);

 private:
  void ResolveRuntime();
  void Launch();
  Options opt_;
  std::string runtime_;
  std::ofstream json_out_;
  MetricsServer server_;
  pid_t child_ = 0;
  int go_ = -1;     // launch mode: the write end of the pipe the child waits on
  int pidfd_ = -1;  // --pid: becomes readable when the process exits
  ring_buffer *rb_ = nullptr;
};

Session::~Session() {
  server_.Stop();
  if (go_ >= 0 && child_ > 0) {  // launched but never let go: it must not run untraced
    kill(child_, SIGKILL);
    waitpid(child_, nullptr, 0);
  }
  if (go_ >= 0) close(go_);
  if (pidfd_ >= 0) close(pidfd_);
  if (rb_) ring_buffer__free(rb_);
  if (g_bpf) mgs_bpf_destroy(g_bpf);
  g_bpf = nullptr;
}

void Session::ResolveRuntime() {
  runtime_ = opt_.runtime;
  if (opt_.pid) {
    std::string mapped = RuntimeOfProcess(opt_.pid);
    if (mapped.empty())
      throw SetupError{"process " + std::to_string(opt_.pid) +
                       " has no mapguard runtime loaded (no libmapguard_rt.so in /proc/" +
                       std::to_string(opt_.pid) +
                       "/maps); build it with -fplugin=mapguard.so and link -lmapguard_rt"};
    if (runtime_.empty()) runtime_ = "/proc/" + std::to_string(opt_.pid) + "/root" + mapped;
  }
  if (runtime_.empty()) runtime_ = DefaultRuntime();
  if (runtime_.empty())
    throw SetupError{"cannot find libmapguard_rt.so next to the sidecar (" MAPGUARD_SIDECAR_RUNTIME_RELPATH
                     " from its directory); pass --runtime PATH"};
  std::string resolved = RealPath(runtime_);
  if (resolved.empty()) throw SetupError{"--runtime '" + runtime_ + "': " + strerror(errno)};
  runtime_ = resolved;
}

// Launch mode: the child waits for a byte on a pipe, so every probe is
// attached before it runs a single instruction of the program.
void Session::Launch() {
  int go[2];
  if (pipe2(go, O_CLOEXEC) != 0) throw SetupError{std::string("pipe: ") + strerror(errno)};
  child_ = fork();
  if (child_ < 0) {
    close(go[0]);
    close(go[1]);
    child_ = 0;
    throw SetupError{std::string("fork: ") + strerror(errno)};
  }
  if (child_ == 0) {
    close(go[1]);
    char b;
    if (read(go[0], &b, 1) != 1) _exit(127);
    // --json -: the sidecar's stdout carries the JSON summary alone (jq can
    // read it); the program's own stdout goes to stderr instead.
    if (opt_.json_path == "-") dup2(2, 1);
    if (opt_.read_sample) {
      std::string o = getenv("MAPGUARD_OPTIONS") ? getenv("MAPGUARD_OPTIONS") : "";
      o += (o.empty() ? "" : ":") + std::string("usdt_read_sample=") + std::to_string(opt_.read_sample);
      setenv("MAPGUARD_OPTIONS", o.c_str(), 1);
    }
    std::vector<char *> args;
    for (std::string &s : opt_.command) args.push_back(s.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    fprintf(stderr, "%s: error: cannot run '%s': %s\n", g_prog, args[0], strerror(errno));
    _exit(127);
  }
  close(go[0]);
  go_ = go[1];
}

void Session::Start() {
  ResolveRuntime();
  if (!opt_.verbose)
    libbpf_set_print([](enum libbpf_print_level, const char *, va_list) { return 0; });
  char err[512];
  g_bpf = mgs_bpf_load(opt_.trace_all, err, sizeof(err));
  if (!g_bpf) throw SetupError{err};

  // Everything that can fail on bad input fails before the program starts.
  if (!opt_.json_path.empty() && opt_.json_path != "-") {
    json_out_.open(opt_.json_path);
    if (!json_out_)
      throw SetupError{"cannot write --json file '" + opt_.json_path + "': " + strerror(errno)};
  }
  if (opt_.metrics_port >= 0) {
    int port = server_.Start(opt_.metrics_address, opt_.metrics_port);
    Info("serving metrics on http://" + opt_.metrics_address + ":" + std::to_string(port) + "/metrics");
  }

  if (!opt_.command.empty()) Launch();
  mgs_bpf_track(g_bpf, unsigned(child_ > 0 ? child_ : opt_.pid));
  if (mgs_bpf_attach(g_bpf, runtime_.c_str(), err, sizeof(err)) != 0) throw SetupError{err};

  rb_ = ring_buffer__new(mgs_bpf_events_fd(g_bpf), OnEvent, nullptr, nullptr);
  if (!rb_) throw SetupError{std::string("cannot open the BPF ring buffer: ") + strerror(errno)};

  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  if (opt_.pid) {
    pidfd_ = int(syscall(SYS_pidfd_open, opt_.pid, 0));
    if (pidfd_ < 0)
      throw SetupError{"cannot watch pid " + std::to_string(opt_.pid) + ": " + strerror(errno)};
    Info("attached to pid " + std::to_string(opt_.pid) + " (runtime " + runtime_ + ")");
  } else {
    bool started = write(go_, "g", 1) == 1;
    close(go_);
    go_ = -1;
    if (!started) throw SetupError{"cannot start the program"};
  }
}

TraceEnd Session::Trace() {
  TraceEnd end;
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  bool forwarded = false;
  for (;;) {
    ring_buffer__poll(rb_, 100);
    if (child_ > 0) {
      int st;
      pid_t w = waitpid(child_, &st, WNOHANG);
      if (w == child_) {
        child_ = -child_;  // reaped; its pid is still what the report names
        end.target_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        end.stop_reason = "the program exited with status " + std::to_string(end.target_status);
        break;
      }
    } else {
      pollfd p = {pidfd_, POLLIN, 0};
      if (poll(&p, 1, 0) > 0) {
        end.stop_reason = "pid " + std::to_string(opt_.pid) + " exited";
        break;
      }
    }
    int sig = g_signal.exchange(0);
    if (sig) {
      // Launch mode: pass the first signal on and wait for the program's
      // last events; a second one, or --pid mode, stops tracing now.
      if (child_ > 0 && !forwarded) {
        kill(child_, sig);
        forwarded = true;
        continue;
      }
      end.stop_reason = std::string("stopped by ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                        (child_ > 0 ? "" : "; detached, the process goes on");
      break;
    }
  }
  ring_buffer__consume(rb_);  // whatever the program emitted before it stopped
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  end.seconds = double(now.tv_sec - start.tv_sec) + double(now.tv_nsec - start.tv_nsec) / 1e9;
  server_.Stop();
  return end;
}

int Session::Report(const TraceEnd &end) {
  const bool launched = child_ != 0;
  const pid_t launched_pid = child_ < 0 ? -child_ : child_;
  const volatile mgs_counters *c = mgs_bpf_counters(g_bpf);
  uint64_t probe_hits = c->probe_hits, lost = c->events_lost, untracked = c->maps_untracked,
           unmatched = c->unmatched_ends;
  uint64_t read_sample = c->read_sample ? c->read_sample : 1;
  std::vector<MapRow> rows = ReadMapStats();

  std::lock_guard<std::mutex> lock(g_state.mu);
  // Launch mode: the program must have started the runtime we probed. (127:
  // it could not even be run, which the child already said.)
  if (launched && g_state.inits.empty() && probe_hits == 0) {
    if (end.target_status == 127) return 127;
    fprintf(stderr,
            "%s: error: '%s' never started the mapguard runtime %s (no mapguard:init probe "
            "fired): build it with -fplugin=mapguard.so and link that runtime, or pass the one "
            "it uses with --runtime\n",
            g_prog, opt_.command[0].c_str(), runtime_.c_str());
    return kExitUsage;
  }
  for (auto &[pid, sample] : g_state.inits) read_sample = std::max<uint64_t>(read_sample, sample);
  Verdict v = CrossCheck(read_sample);
  std::vector<HeatCell> heat = Heatmap();

  if (!opt_.quiet) {
    std::ostringstream o;
    o << "==================\n"
      << g_prog << ": " << end.stop_reason << "; traced " << std::fixed;
    o.precision(2);
    o << end.seconds << " s, " << probe_hits << " probe hits, " << lost << " events lost\n";
    o << "maps (kernel view, " << rows.size() << "):\n";
    size_t shown = 0;
    for (const MapRow &r : rows) {
      if (shown++ == 20) {
        o << "  ... " << rows.size() - 20 << " more (see --json or the metrics)\n";
        break;
      }
      const mgs_map_stats &s = r.stats;
      o << "  " << (s.type[0] ? s.type : "map") << (s.name[0] ? std::string(" '") + s.name + "'" : "")
        << " at " << Hex(r.key.map) << " (pid " << r.key.tgid << "): " << s.reads << " reads, "
        << s.writes << " writes, " << s.iterations << " iterations, " << s.threads << " thread"
        << (s.threads == 1 ? "" : "s") << ", " << s.rehashes << " rehashes, " << s.conflicts
        << " conflict" << (s.conflicts == 1 ? "" : "s") << "\n"
        << "    pattern: "
        << mapguard::AccessPattern(s.reads + s.iterations, s.writes, int(s.threads), s.conflicts)
        << "; hint: "
        << mapguard::LockStrategyHint(s.reads + s.iterations, s.writes, int(s.threads), s.conflicts)
        << "\n";
    }
    if (!heat.empty()) {
      o << "conflict heatmap (kernel, by pair of call sites):\n";
      for (const HeatCell &h : heat) o << "  " << h.count << "x  " << h.a << "  <->  " << h.b << "\n";
    }
    fputs(o.str().c_str(), stderr);
  }

  // The verdict always prints: it is what the exit status means.
  {
    std::ostringstream o;
    size_t kernel_n = 0;
    for (const Conflict &k : g_state.kernel) kernel_n += !k.after_halt;
    o << "cross-check: the kernel saw " << kernel_n << " conflict" << (kernel_n == 1 ? "" : "s")
      << ", the runtime reported " << g_state.runtime.size() << ": "
      << (v.agree() ? "they agree" : "they DISAGREE") << "\n";
    for (const Conflict &m : v.matched) o << "  both:          " << Describe(m) << "\n";
    for (const Conflict &k : v.kernel_only) o << "  kernel only:   " << Describe(k) << "\n";
    for (const Conflict &r : v.runtime_only) o << "  runtime only:  " << Describe(r) << "\n";
    for (auto &[r, why] : v.reasons) o << "  not compared:  " << Describe(r) << " (" << why << ")\n";
    for (const Conflict &k : v.kernel_races_before_halt)
      o << "  not compared:  " << Describe(k)
        << " (kernel only; the runtime stopped the program at its first report before it got to this one)\n";
    if (lost) o << "  " << lost << " events were lost (ring buffer full): the cross-check is incomplete\n";
    if (untracked) o << "  " << untracked << " maps did not fit the sidecar's BPF maps and were not followed\n";
    if (opt_.pid && unmatched)
      o << "  (" << unmatched << " region ends had begun before the sidecar attached)\n";
    if (!opt_.quiet) o << "==================\n";
    fputs(o.str().c_str(), stderr);
  }

  if (!opt_.json_path.empty()) {
    nlohmann::json j;
    j["target"] = opt_.pid ? nlohmann::json{{"pid", opt_.pid}} : nlohmann::json{{"command", opt_.command}, {"pid", launched_pid}};
    j["runtime"] = runtime_;
    j["stop_reason"] = end.stop_reason;
    j["seconds"] = end.seconds;
    j["probe_hits"] = probe_hits;
    j["events_lost"] = lost;
    j["maps_untracked"] = untracked;
    j["read_sample"] = read_sample;
    j["maps"] = nlohmann::json::array();
    for (const MapRow &r : rows) {
      const mgs_map_stats &s = r.stats;
      uint64_t reads = s.reads + s.iterations;
      j["maps"].push_back({{"pid", r.key.tgid},
                           {"map", Hex(r.key.map)},
                           {"type", s.type},
                           {"name", s.name},
                           {"reads", s.reads},
                           {"writes", s.writes},
                           {"iterations", s.iterations},
                           {"conflicts", s.conflicts},
                           {"rehashes", s.rehashes},
                           {"threads", s.threads},
                           {"read_write_ratio", s.writes ? double(reads) / double(s.writes) : double(reads)},
                           {"pattern", mapguard::AccessPattern(reads, s.writes, int(s.threads), s.conflicts)},
                           {"hint", mapguard::LockStrategyHint(reads, s.writes, int(s.threads), s.conflicts)}});
    }
    auto list = [](const std::vector<Conflict> &cs) {
      nlohmann::json a = nlohmann::json::array();
      for (const Conflict &c : cs) a.push_back(ConflictJson(c));
      return a;
    };
    nlohmann::json kernel = nlohmann::json::array(), runtime_list = nlohmann::json::array();
    for (const Conflict &k : g_state.kernel) {
      nlohmann::json e = ConflictJson(k);
      e["after_halt"] = k.after_halt;
      kernel.push_back(e);
    }
    for (const Conflict &r : g_state.runtime) {
      nlohmann::json e = ConflictJson(r);
      e["happens_before"] = bool(r.flags & MGS_RT_HAPPENS_BEFORE);
      e["suppressed"] = bool(r.flags & MGS_RT_SUPPRESSED);
      e["duplicate"] = bool(r.flags & MGS_RT_DUPLICATE);
      e["halting"] = bool(r.flags & MGS_RT_HALTING);
      runtime_list.push_back(e);
    }
    j["conflicts"] = {{"kernel", kernel}, {"runtime", runtime_list}};
    nlohmann::json not_compared = nlohmann::json::array();
    for (auto &[r, why] : v.reasons) {
      nlohmann::json e = ConflictJson(r);
      e["why"] = why;
      not_compared.push_back(e);
    }
    for (const Conflict &k : v.kernel_races_before_halt) {
      nlohmann::json e = ConflictJson(k);
      e["why"] = "kernel only; the runtime stopped at its first report before this one";
      not_compared.push_back(e);
    }
    j["cross_check"] = {{"agree", v.agree()},
                        {"complete", lost == 0},
                        {"matched", list(v.matched)},
                        {"kernel_only", list(v.kernel_only)},
                        {"runtime_only", list(v.runtime_only)},
                        {"not_compared", not_compared}};
    nlohmann::json hm = nlohmann::json::array();
    for (const HeatCell &h : heat) hm.push_back({{"site", h.a}, {"other_site", h.b}, {"count", h.count}});
    j["heatmap"] = hm;
    std::string text = j.dump(2) + "\n";
    if (opt_.json_path == "-") {
      fputs(text.c_str(), stdout);
    } else {
      json_out_ << text;
      json_out_.flush();
      if (!json_out_) fprintf(stderr, "%s: error: cannot write --json file '%s'\n", g_prog, opt_.json_path.c_str());
    }
  }

  if (!v.agree()) return kExitDisagree;
  if (lost) return kExitEventsLost;
  return launched ? end.target_status : 0;
}

}  // namespace

int main(int argc, char **argv) {
  Options opt = ParseArgs(argc, argv);
  CheckPrivileges();
  Session session(std::move(opt));
  try {
    session.Start();
  } catch (const SetupError &e) {
    fprintf(stderr, "%s: error: %s\n", g_prog, e.message.c_str());
    return kExitUsage;
  }
  TraceEnd end = session.Trace();
  return session.Report(end);
}
