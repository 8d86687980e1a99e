// mapguard-sidecar: watches a mapguard-instrumented program from the kernel.
//
// The BPF program (mapguard.bpf.c) follows the runtime's USDT probes and
// detects overlapping conflicting map accesses with its own state; this
// daemon launches or attaches to the target, collects the kernel's conflicts
// and the runtime's reports from the ring buffer, serves metrics, and at the
// end cross-checks the two views. See docs/sidecar.md. This file: the run
// (Session) and the events; sidecar.h names the other parts.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>

#include <bpf/libbpf.h>

#include "sidecar.h"

#ifndef MAPGUARD_SIDECAR_RUNTIME_RELPATH
#define MAPGUARD_SIDECAR_RUNTIME_RELPATH "../lib/libmapguard_rt.so"
#endif

namespace sidecar {

const char *g_prog = "mapguard-sidecar";
State g_state;
mgs_bpf *g_bpf;

[[noreturn]] void Fail(const std::string &msg) {
  fprintf(stderr, "%s: error: %s\n", g_prog, msg.c_str());
  exit(kExitUsage);
}

void Info(const std::string &msg) { fprintf(stderr, "%s: %s\n", g_prog, msg.c_str()); }

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

namespace {

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
  if (kill(pid, 0) != 0 && errno == ESRCH) throw SetupError{"no process with pid " + std::to_string(pid)};
  std::string path = "/proc/" + std::to_string(pid) + "/maps";
  std::ifstream maps(path);
  if (!maps) throw SetupError{"cannot read " + path + ": " + strerror(errno)};
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

std::atomic<int> g_signal{0};

int OnEvent(void *, void *data, size_t size) {
  if (size < sizeof(mgs_event)) return 0;
  const mgs_event *e = static_cast<const mgs_event *>(data);
  if (e->type == MGS_EV_INIT) {
    {
      std::lock_guard<std::mutex> lock(g_state.mu);
      g_state.inits[e->tgid] = e->kind;
    }
    if (e->map) NoteRegistry(e->tgid, e->map);
    return 0;
  }
  if (e->type == MGS_EV_FORK) {
    // A child of a traced process has its parent's registry at the same
    // address (a copy of its memory): live metrics and /control reach it.
    uint64_t registry = 0;
    {
      std::lock_guard<std::mutex> lock(g_state.mu);
      auto parent = g_state.processes.find(e->other_tid);
      if (parent != g_state.processes.end()) registry = parent->second.registry;
    }
    if (registry) NoteRegistry(e->tgid, registry);
    return 0;
  }
  if (e->type == MGS_EV_HANDOVER) {
    // The process waits in its exit path (at most 2 s) until this is done.
    std::string why;
    bool read = CollectRecords(e->tgid, e->map, &why);
    AcknowledgeHandover(e->tgid, e->map, uint64_t(e->kind) | (uint64_t(e->flags) << 32));
    std::lock_guard<std::mutex> lock(g_state.mu);
    g_state.processes[e->tgid].handed_over = read;
    return 0;
  }
  std::lock_guard<std::mutex> lock(g_state.mu);
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
    // The program's first accesses already follow the sidecar's settings
    // (its control word is written again once its init probe is seen).
    std::string o = getenv("MAPGUARD_OPTIONS") ? getenv("MAPGUARD_OPTIONS") : "";
    if (opt_.read_sample) o += (o.empty() ? "" : ":") + std::string("usdt_read_sample=") + std::to_string(opt_.read_sample);
    o += (o.empty() ? "" : ":") + std::string("usdt_map_sample=") + std::to_string(opt_.map_sample) +
         ":usdt_trace_budget=" + std::to_string(opt_.trace_budget) + ":usdt_handover=1";
    setenv("MAPGUARD_OPTIONS", o.c_str(), 1);
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

  g_state.control = opt_.Control();
  uint64_t registry = 0;
  if (opt_.pid) {
    // The baseline first: counting is off until the attach (unless
    // print_stats or another sidecar has it on), so nothing moves under it.
    registry = FindRegistry(uint32_t(opt_.pid), runtime_);
    std::string why;
    if (!CollectRecords(uint32_t(opt_.pid), registry, &why) && why.find("EPERM") != std::string::npos)
      throw SetupError{"process " + std::to_string(opt_.pid) + ": " + why};
    TakeBaseline(uint32_t(opt_.pid));
  }
  if (!opt_.command.empty()) Launch();
  mgs_bpf_track(g_bpf, unsigned(child_ > 0 ? child_ : opt_.pid));
  if (mgs_bpf_attach(g_bpf, runtime_.c_str(), opt_.full_trace, err, sizeof(err)) != 0)
    throw SetupError{err};
  if (opt_.pid) {
    // Attached: the runtime counts from now on (the semaphore is up); the
    // control word says which maps the kernel watches.
    NoteRegistry(uint32_t(opt_.pid), registry);
  }

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
  timespec last_collect = start;
  for (;;) {
    ring_buffer__poll(rb_, 100);
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - last_collect.tv_sec >= 1) {
      CollectLive();
      last_collect = now;
    }
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
  CollectLive();              // --pid detaching: the counts as of now
  ReleaseProcesses();
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  end.seconds = double(now.tv_sec - start.tv_sec) + double(now.tv_nsec - start.tv_nsec) / 1e9;
  server_.Stop();
  return end;
}

int Session::Report(const TraceEnd &end) {
  return FinalReport({opt_, runtime_, child_ != 0, child_ < 0 ? -child_ : child_, json_out_}, end);
}

}  // namespace

}  // namespace sidecar

int main(int argc, char **argv) {
  using namespace sidecar;
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
