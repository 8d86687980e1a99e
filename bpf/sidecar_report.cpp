// The sidecar's final report: the per-map summary, the conflict heatmap, and
// the cross-check of the kernel's conflicts against the runtime's reports,
// as text and as --json.
#include <algorithm>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sidecar.h"

namespace sidecar {

namespace {

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
// Whether the trace budget left some regions of `map` of process `pid` out
// (the runtime's record says; whether the kernel watched the map at all, the
// runtime's conflict probe says, MGS_RT_WATCHED).
bool WatchedInPart(const std::vector<MapRow> &rows, uint32_t pid, uint64_t map) {
  return std::any_of(rows.begin(), rows.end(), [&](const MapRow &r) {
    return r.key.tgid == pid && r.key.map == map && r.stats.watch_skipped != 0;
  });
}

Verdict CrossCheck(uint64_t read_sample, const std::vector<MapRow> &rows, bool full_trace) {
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
    } else if (!full_trace && !(r.flags & MGS_RT_WATCHED)) {
      const uint32_t sample = uint32_t(g_state.control);
      v.reasons.push_back({r, "the kernel did not watch this map (" +
                              (sample ? "it watches 1 in " + std::to_string(sample) + " maps"
                                      : std::string("it watches none")) +
                              ": --map-sample; --full-trace watches all)"});
    } else if (!full_trace && WatchedInPart(rows, r.tgid, r.map)) {
      v.reasons.push_back({r, "the trace budget (--trace-budget) left some regions of this map "
                              "out, so the kernel may not have seen this one"});
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

// Which pairs of call sites collided: every runtime report (on every map,
// watched or not), and the kernel's sightings no report matched (one
// conflict counts once, whoever saw it).
std::vector<HeatCell> Heatmap() {
  std::map<std::pair<std::string, std::string>, uint64_t> cells;
  auto add = [&](const Conflict &c) {
    std::string a = c.site, b = c.other_site;
    if (b < a) std::swap(a, b);
    cells[{a, b}]++;
  };
  for (const Conflict &r : g_state.runtime) add(r);
  for (const Conflict &k : g_state.kernel)
    if (std::none_of(g_state.runtime.begin(), g_state.runtime.end(),
                     [&](const Conflict &r) { return SameConflict(k, r); }))
      add(k);
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

}  // namespace

int FinalReport(const RunFacts &run, const TraceEnd &end) {
  const Options &opt_ = run.opt;
  const std::string &runtime_ = run.runtime;
  const bool launched = run.launched;
  const pid_t launched_pid = run.launched_pid;
  std::ofstream &json_out_ = run.json_out;
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
  Verdict v = CrossCheck(read_sample, rows, opt_.full_trace);
  uint64_t maps_counted = rows.size(), maps_watched = 0, maps_partly = 0;
  for (const MapRow &r : rows) {
    maps_watched += r.stats.watched != 0;
    maps_partly += r.stats.watched && r.stats.watch_skipped;
  }
  std::vector<uint32_t> not_handed_over;
  for (auto &[pid, p] : g_state.processes)
    if (p.collected && !p.handed_over && !p.rows.empty() && (launched || pid != uint32_t(opt_.pid)))
      not_handed_over.push_back(pid);
  std::vector<HeatCell> heat = Heatmap();

  if (!opt_.quiet) {
    std::ostringstream o;
    o << "==================\n"
      << g_prog << ": " << end.stop_reason << "; traced " << std::fixed;
    o.precision(2);
    o << end.seconds << " s, " << probe_hits << " probe hits, " << lost << " events lost\n";
    o << "maps (the runtime's counts, " << rows.size() << "):\n";
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
        << " conflict" << (s.conflicts == 1 ? "" : "s") << ", " << s.lock_waits << " lock wait"
        << (s.lock_waits == 1 ? "" : "s") << "\n";
      const mapguard::MapAdvice a = AdviceOf(s);
      o << "    pattern: " << a.summary << "\n";
      if (a.advice[0]) o << "    advice: " << a.advice << "\n";
      if (a.growth[0]) o << "    advice: " << a.growth << "\n";
    }
    if (!heat.empty()) {
      o << "conflict heatmap (by pair of call sites: the runtime's reports, and the kernel's sightings no report matched):\n";
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
      << (v.agree() ? "they agree" : "they DISAGREE");
    if (opt_.full_trace)
      o << " (the kernel watched every map)";
    else
      o << " (the kernel watched " << maps_watched << " of " << maps_counted << " map"
        << (maps_counted == 1 ? "" : "s")
        << (maps_partly ? ", " + std::to_string(maps_partly) + " of them in part: trace budget" : "")
        << "; --full-trace watches all)";
    o << "\n";
    for (const Conflict &m : v.matched) o << "  both:          " << Describe(m) << "\n";
    for (const Conflict &k : v.kernel_only) o << "  kernel only:   " << Describe(k) << "\n";
    for (const Conflict &r : v.runtime_only) o << "  runtime only:  " << Describe(r) << "\n";
    for (auto &[r, why] : v.reasons) o << "  not compared:  " << Describe(r) << " (" << why << ")\n";
    for (const Conflict &k : v.kernel_races_before_halt)
      o << "  not compared:  " << Describe(k)
        << " (kernel only; the runtime stopped the program at its first report before it got to this one)\n";
    if (lost) o << "  " << lost << " events were lost (ring buffer full): the cross-check is incomplete\n";
    if (untracked) o << "  " << untracked << " maps did not fit the sidecar's BPF maps and were not followed\n";
    for (auto &[pid, p] : g_state.processes)
      if (!p.read_error.empty()) o << "  pid " << pid << ": no counts: " << p.read_error << "\n";
    for (uint32_t pid : not_handed_over)
      o << "  pid " << pid << " ended without handing over its counts (killed?): its maps show "
        << "the counts of the last second\n";
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
    j["full_trace"] = opt_.full_trace;
    j["map_sample"] = uint32_t(g_state.control);
    j["trace_budget"] = g_state.control >> 32;
    j["maps_watched"] = maps_watched;
    j["maps_watched_in_part"] = maps_partly;
    j["not_handed_over"] = not_handed_over;
    j["maps"] = nlohmann::json::array();
    for (const MapRow &r : rows) {
      const mgs_map_stats &s = r.stats;
      uint64_t reads = s.reads + s.iterations;
      const mapguard::MapAdvice a = AdviceOf(s);
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
                           {"users", s.users},
                           {"writer_threads", s.writer_threads},
                           {"shared_writes", s.shared_writes},
                           {"switches", s.switches},
                           {"lock_waits", s.lock_waits},
                           {"elements_moved", s.moved},
                           {"max_size", s.max_size},
                           {"spread", s.spread_buckets ? nlohmann::json{{"keys", s.spread_keys},
                                                                       {"buckets", s.spread_buckets},
                                                                       {"occupied", s.spread_occupied},
                                                                       {"longest_chain", s.spread_longest},
                                                                       {"dispersion", double(s.spread_dispersion_milli) / 1000}}
                                                       : nlohmann::json()},
                           {"watched", bool(s.watched)},
                           {"watch_skipped", s.watch_skipped},
                           {"pattern", a.pattern},
                           {"summary", a.summary},
                           {"advice", a.advice[0] ? nlohmann::json(a.advice) : nlohmann::json()},
                           {"growth_advice", a.growth[0] ? nlohmann::json(a.growth) : nlohmann::json()},
                           {"hint", a.advice[0] ? a.advice : a.summary}});
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
    nlohmann::json gs = nlohmann::json::array();
    for (const GuardSwitches &g : ReadGuardSwitches())
      gs.push_back({{"pid", g.key.tgid}, {"guard", Hex(g.key.guard)},
                    {"to", mapguard_guarded_strategy_name(g.key.to)}, {"count", g.count}});
    j["guarded_switches"] = gs;
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


}  // namespace sidecar
