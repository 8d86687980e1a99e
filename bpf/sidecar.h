// mapguard-sidecar's parts (docs/design.md has the map): options
// (sidecar_options.cpp), the events and the run (sidecar.cpp: Session), the
// metrics server (sidecar_metrics.cpp), and the final report with the
// cross-check (sidecar_report.cpp). What they share is declared here.
#ifndef MAPGUARD_SIDECAR_H
#define MAPGUARD_SIDECAR_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "mapguard/interface.h"
#include "mg_advice.h"
#include "sidecar_bpf.h"

namespace sidecar {

// Exit statuses besides the target's own (documented in docs/sidecar.md).
constexpr int kExitUsage = 2;         // bad command line, missing privilege, no probes
constexpr int kExitDisagree = 70;     // the kernel's and the runtime's conflicts differ
constexpr int kExitEventsLost = 71;   // the cross-check is incomplete: events were dropped

extern const char *g_prog;

// A bad command line: one line, exit status kExitUsage.
[[noreturn]] void Fail(const std::string &msg);
void Info(const std::string &msg);

// A setup step that failed once the session holds something: thrown so
// that ~Session releases it (Fail() is for the command line, before that).
struct SetupError {
  std::string message;
};

struct Options {
  int pid = 0;                      // --pid: attach to a running process
  std::vector<std::string> command; // -- prog args: launch and trace
  std::string runtime;              // --runtime: the libmapguard_rt.so to probe
  int metrics_port = -1;            // --metrics-port (0: any free port)
  std::string metrics_address = "127.0.0.1";
  std::string json_path;            // --json FILE ('-' = stdout)
  bool trace_all = false;           // --all
  int read_sample = 0;              // --read-sample N (passed to the launched program)
  // Which maps the kernel-side check watches (the runtime's control word,
  // mg_stats_record.h): 1 in map_sample maps, at most trace_budget watched
  // regions per second per process (0: no limit). --full-trace: every
  // region of every map (the test mode).
  int map_sample = 8;
  int trace_budget = 2000;
  bool full_trace = false;
  uint64_t Control() const { return uint64_t(uint32_t(map_sample)) | (uint64_t(uint32_t(trace_budget)) << 32); }
  bool quiet = false;
  bool verbose = false;
};

Options ParseArgs(int argc, char **argv);

// One conflict, as either side saw it.
struct Conflict {
  uint32_t tgid, tid, other_tid, kind, flags;
  uint64_t map;
  std::string site, other_site, type, name;
  bool after_halt = false;  // kernel-side, after the runtime stopped this process
};

// The cross-check compares distinct (process, map, kind, pair of threads).
using ConflictKey = std::tuple<uint32_t, uint64_t, uint32_t, uint32_t, uint32_t>;
inline ConflictKey KeyOf(const Conflict &c) {
  uint32_t a = std::min(c.tid, c.other_tid), b = std::max(c.tid, c.other_tid);
  return {c.tgid, c.map, c.kind, a, b};
}

// What the sidecar knows of one traced process's own records
// (sidecar_records.cpp).
struct SiteNames {
  std::string type, name;  // a map's, from its first access's mg_site
};
struct ProcessRecords {
  uint64_t registry = 0;                     // mapguard_sidecar_registry's address; 0: unknown
  std::map<uint64_t, mgs_map_stats> rows;    // by map address, as of the last collection
  // --pid: the counts when the sidecar attached (counting may have been on
  // already: print_stats, or another sidecar on the same runtime file). The
  // rows shown are the counts since then.
  std::map<uint64_t, mgs_map_stats> baseline;
  std::map<uint64_t, SiteNames> names;       // by mg_site address (constant: read once)
  uint64_t records = 0, watched_maps = 0, control = 0;
  bool collected = false;    // read at least once
  bool handed_over = false;  // read at its exit (the counts are final)
  bool gone = false;         // no such process any more (ESRCH)
  std::string read_error;    // why its records could not be read, if they could not
};

struct State {
  std::mutex mu;
  std::map<uint32_t, ProcessRecords> processes;
  uint64_t control = 0;  // what every traced process's control word is set to
  std::vector<Conflict> kernel, runtime;
  std::set<uint32_t> halted;        // processes whose runtime stopped them
  std::map<uint32_t, uint32_t> inits;  // pid -> read sample rate, from mapguard:init
};

extern State g_state;
extern mgs_bpf *g_bpf;

const char *KindName(uint32_t kind);
const char *KindKey(uint32_t kind);
std::string Hex(uint64_t v);

// ---- Per-map metrics: the runtime's own records (sidecar_records.cpp) ----
struct MapRow {
  mgs_map_key key;
  mgs_map_stats stats;
};

// Every traced process's maps as of their last collection, with the
// kernel's conflicts per map.
std::vector<MapRow> ReadMapStats();
// Copies the records of `pid` out of it (its registry at `registry`);
// false, with why, if the process cannot be read or has no records yet.
bool CollectRecords(uint32_t pid, uint64_t registry, std::string *why);
// The counts as of now become the process's baseline (--pid attach).
void TakeBaseline(uint32_t pid);
// The registry's address in a running process, from the runtime's dynamic
// symbol table and /proc/PID/maps; throws SetupError.
uint64_t FindRegistry(uint32_t pid, const std::string &runtime);
// The words of the registry the sidecar writes.
bool WriteControl(uint32_t pid, uint64_t registry, uint64_t control);
bool AcknowledgeHandover(uint32_t pid, uint64_t registry, uint64_t seq);
// Live processes whose counts are not final yet: their records, now (for
// the metrics, and for what a process that dies without its exit hand-over,
// killed by a signal, leaves). The daemon calls it every second and at each
// scrape.
void CollectLive();
// Sets the control word of every traced process, and of those that start
// later (the metrics server's /control, sidecar_metrics.cpp). Returns how
// many processes took it.
int ApplyControl(uint64_t control);
// A process whose registry the sidecar now knows: it gets the control word
// and is told the sidecar will take its records at exit.
void NoteRegistry(uint32_t pid, uint64_t registry);
// The sidecar is leaving: the processes it tracked must not wait for it at
// exit (another sidecar attached later may not track them).
void ReleaseProcesses();
// mapguard::guarded's strategy switches, per process, guard and strategy
// switched to (the runtime's guarded_switch probe).
struct GuardSwitches {
  mgs_guard_key key;
  uint64_t count;
};
std::vector<GuardSwitches> ReadGuardSwitches();

// The kernel's facts of one map, as the advice (runtime/mg_advice.h) takes
// them, and that advice: the same function print_stats uses.
mapguard::MapUsage UsageOf(const mgs_map_stats &s);
mapguard::MapAdvice AdviceOf(const mgs_map_stats &s);

// A minimal HTTP/1.0 server for /metrics (sidecar_metrics.cpp).
class MetricsServer {
 public:
  // Returns the bound port; throws SetupError with a clear message on failure.
  int Start(const std::string &address, int port);
  void Stop();

 private:
  void Serve();
  int fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// How tracing ended.
struct TraceEnd {
  int target_status = 0;  // launch mode: the program's exit status
  std::string stop_reason;
  double seconds = 0;
};

// What the final report is about (sidecar_report.cpp).
struct RunFacts {
  const Options &opt;
  const std::string &runtime;  // the libmapguard_rt.so probed
  bool launched;               // launch mode (else --pid)
  pid_t launched_pid;
  std::ofstream &json_out;     // --json FILE, opened at start
};
// The per-map summary, the heatmap, the cross-check verdict and --json;
// returns the sidecar's exit status.
int FinalReport(const RunFacts &run, const TraceEnd &end);

}  // namespace sidecar

#endif  // MAPGUARD_SIDECAR_H
