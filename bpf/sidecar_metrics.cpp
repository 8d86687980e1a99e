// The sidecar's Prometheus metrics: the runtime's per-map counts
// (sidecar_records.cpp) and the sidecar's own, served over a minimal
// HTTP/1.0 server at /metrics; /control changes which maps the kernel
// watches, on the live processes.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include <bpf/bpf.h>

#include "mapguard/interface.h"
#include "sidecar.h"

namespace sidecar {

namespace {

// Every entry of a BPF hash map, read from user space.
template <class Key, class Value, class Fn>
void ForEachEntry(int fd, Fn fn) {
  Key key, next;
  Key *prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    Value v{};
    if (bpf_map_lookup_elem(fd, &next, &v) == 0) fn(next, v);
    key = next;
    prev = &key;
  }
}

}  // namespace

std::vector<GuardSwitches> ReadGuardSwitches() {
  std::vector<GuardSwitches> out;
  ForEachEntry<mgs_guard_key, uint64_t>(
      mgs_bpf_guard_switches_fd(g_bpf),
      [&](const mgs_guard_key &k, uint64_t n) { out.push_back({k, n}); });
  std::sort(out.begin(), out.end(), [](const GuardSwitches &a, const GuardSwitches &b) {
    return std::tie(a.key.tgid, a.key.guard, a.key.to) < std::tie(b.key.tgid, b.key.guard, b.key.to);
  });
  return out;
}

mapguard::MapUsage UsageOf(const mgs_map_stats &s) {
  mapguard::MapUsage u;
  u.reads = s.reads;
  u.writes = s.writes;
  u.iterations = s.iterations;
  u.threads = s.users;
  u.lifecycle_threads = s.threads > s.users ? s.threads - s.users : 0;
  u.writer_threads = s.writer_threads;
  u.nonwriter_iterations = s.nonwriter_iterations;
  u.shared_writes = s.shared_writes;
  u.switches = s.switches;
  u.contended_locks = s.lock_waits;
  u.conflicts = s.conflicts;
  u.size = s.max_size;
  u.rehashes = s.rehashes;
  u.moved = s.moved;
  return u;
}

mapguard::MapAdvice AdviceOf(const mgs_map_stats &s) { return mapguard::Advise(UsageOf(s)); }

namespace {

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

}  // namespace

// GET /control?map_sample=N&trace_budget=M: which maps the kernel watches,
// from now on, in every traced process (either parameter may be left out).
std::string Control(const std::string &request_line) {
  size_t q = request_line.find('?');
  size_t sp = request_line.find(' ', q == std::string::npos ? 0 : q);
  std::string query = q == std::string::npos ? "" : request_line.substr(q + 1, sp - q - 1);
  uint64_t control;
  {
    std::lock_guard<std::mutex> lock(g_state.mu);
    control = g_state.control;
  }
  uint64_t sample = uint32_t(control), budget = control >> 32;
  std::istringstream in(query);
  std::string pair;
  while (std::getline(in, pair, '&')) {
    size_t eq = pair.find('=');
    std::string key = pair.substr(0, eq), value = eq == std::string::npos ? "" : pair.substr(eq + 1);
    char *end = nullptr;
    unsigned long long v = strtoull(value.c_str(), &end, 10);
    if (value.empty() || *end || v > (1u << 30))
      return "error: " + key + " must be a number from 0 to " + std::to_string(1u << 30) + "\n";
    if (key == "map_sample") sample = v;
    else if (key == "trace_budget") budget = v;
    else return "error: unknown parameter '" + key + "' (map_sample, trace_budget)\n";
  }
  int n = ApplyControl(sample | (budget << 32));
  return "map_sample " + std::to_string(sample) + ", trace_budget " + std::to_string(budget) +
         ": set in " + std::to_string(n) + " process" + (n == 1 ? "" : "es") + "\n";
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
  CollectLive();
  {
    std::lock_guard<std::mutex> lock(g_state.mu);
    header("mapguard_sidecar_map_sample", "gauge", "The kernel-side check watches 1 in this many maps (0: none).");
    o << "mapguard_sidecar_map_sample " << uint32_t(g_state.control) << "\n";
    header("mapguard_sidecar_trace_budget", "gauge", "Watched regions per second and process the kernel follows at most (0: no limit).");
    o << "mapguard_sidecar_trace_budget " << (g_state.control >> 32) << "\n";
    header("mapguard_sidecar_maps", "gauge", "Maps one process's runtime has counted.");
    for (auto &[pid, p] : g_state.processes)
      if (p.collected) o << "mapguard_sidecar_maps{pid=\"" << pid << "\"} " << p.rows.size() << "\n";
    header("mapguard_sidecar_watched_maps", "gauge", "Maps of one process the kernel-side check has watched.");
    for (auto &[pid, p] : g_state.processes)
      if (p.collected) o << "mapguard_sidecar_watched_maps{pid=\"" << pid << "\"} " << p.watched_maps << "\n";
  }
  std::vector<MapRow> rows = ReadMapStats();
  auto labels = [](const MapRow &r) {
    return "pid=\"" + std::to_string(r.key.tgid) + "\",map=\"" + Hex(r.key.map) + "\",type=\"" +
           PromEscape(r.stats.type) + "\",name=\"" + PromEscape(r.stats.name) + "\"";
  };
  header("mapguard_map_accesses_total", "counter", "Accesses to one map by kind (the runtime's exact counts).");
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
  header("mapguard_map_users", "gauge", "Threads that read, wrote or iterated one map (not those that only destroyed it).");
  for (const MapRow &r : rows) o << "mapguard_map_users{" << labels(r) << "} " << r.stats.users << "\n";
  header("mapguard_map_writer_threads", "gauge", "Threads that wrote to one map.");
  for (const MapRow &r : rows) o << "mapguard_map_writer_threads{" << labels(r) << "} " << r.stats.writer_threads << "\n";
  header("mapguard_map_shared_writes_total", "counter", "Writes to one map after a second thread used it.");
  for (const MapRow &r : rows) o << "mapguard_map_shared_writes_total{" << labels(r) << "} " << r.stats.shared_writes << "\n";
  header("mapguard_map_thread_switches_total", "counter", "Changes of the thread using one map.");
  for (const MapRow &r : rows) o << "mapguard_map_thread_switches_total{" << labels(r) << "} " << r.stats.switches << "\n";
  header("mapguard_map_lock_waits_total", "counter", "Lock acquisitions that had to wait just before an access to one map.");
  for (const MapRow &r : rows) o << "mapguard_map_lock_waits_total{" << labels(r) << "} " << r.stats.lock_waits << "\n";
  header("mapguard_map_rehash_moved_elements_total", "counter", "Elements relinked by the rehashes of one unordered map.");
  for (const MapRow &r : rows) o << "mapguard_map_rehash_moved_elements_total{" << labels(r) << "} " << r.stats.moved << "\n";
  header("mapguard_map_watched", "gauge", "1 if the kernel-side check watched one map (the sidecar's map sample).");
  for (const MapRow &r : rows) o << "mapguard_map_watched{" << labels(r) << "} " << (r.stats.watched ? 1 : 0) << "\n";
  header("mapguard_map_max_size", "gauge", "Largest element count of one unordered map seen at a rehash, a write or its destruction.");
  for (const MapRow &r : rows) o << "mapguard_map_max_size{" << labels(r) << "} " << r.stats.max_size << "\n";
  header("mapguard_map_max_load_factor", "gauge", "Largest load factor (elements per bucket) of one unordered map seen, at a rehash the one that made it grow.");
  for (const MapRow &r : rows)
    if (r.stats.max_buckets)
      o << "mapguard_map_max_load_factor{" << labels(r) << "} " << double(r.stats.max_load_milli) / 1000 << "\n";
  header("mapguard_map_buckets", "gauge", "Largest bucket count of one unordered map seen at a rehash.");
  for (const MapRow &r : rows) o << "mapguard_map_buckets{" << labels(r) << "} " << r.stats.max_buckets << "\n";
  header("mapguard_map_longest_chain", "gauge", "Longest bucket chain of one hash map when it was last destroyed (maps of 64 keys or more).");
  for (const MapRow &r : rows)
    if (r.stats.spread_buckets) o << "mapguard_map_longest_chain{" << labels(r) << "} " << r.stats.spread_longest << "\n";
  header("mapguard_map_empty_bucket_ratio", "gauge", "Share of empty buckets of one hash map when it was last destroyed.");
  for (const MapRow &r : rows)
    if (r.stats.spread_buckets)
      o << "mapguard_map_empty_bucket_ratio{" << labels(r) << "} "
        << double(r.stats.spread_buckets - r.stats.spread_occupied) / double(r.stats.spread_buckets) << "\n";
  header("mapguard_map_hash_dispersion", "gauge", "Chi-square of one hash map's chain lengths against a uniform hash, per bucket (about 1 is uniform; far above: a bad hash).");
  for (const MapRow &r : rows)
    if (r.stats.spread_buckets)
      o << "mapguard_map_hash_dispersion{" << labels(r) << "} " << double(r.stats.spread_dispersion_milli) / 1000 << "\n";
  header("mapguard_map_pattern", "gauge", "1 for one map's access pattern (the advice of print_stats), labelled with it.");
  for (const MapRow &r : rows)
    o << "mapguard_map_pattern{" << labels(r) << ",pattern=\"" << AdviceOf(r.stats).pattern << "\"} 1\n";
  header("mapguard_guarded_switches_total", "counter", "Strategy switches of one mapguard::guarded, by the strategy switched to.");
  for (const GuardSwitches &g : ReadGuardSwitches())
    o << "mapguard_guarded_switches_total{pid=\"" << g.key.tgid << "\",guard=\"" << Hex(g.key.guard)
      << "\",to=\"" << mapguard_guarded_strategy_name(g.key.to) << "\"} " << g.count << "\n";
  header("mapguard_map_read_write_ratio", "gauge", "Reads and iterations per write on one map (reads if no write).");
  for (const MapRow &r : rows) {
    double reads = double(r.stats.reads + r.stats.iterations);
    o << "mapguard_map_read_write_ratio{" << labels(r) << "} "
      << (r.stats.writes ? reads / double(r.stats.writes) : reads) << "\n";
  }
  return o.str();
}

int MetricsServer::Start(const std::string &address, int port) {
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
void MetricsServer::Stop() {
  if (fd_ < 0) return;
  stopping_ = true;
  shutdown(fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();  // not started when Start threw
  close(fd_);
  fd_ = -1;
}

void MetricsServer::Serve() {
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
    } else if (first.rfind("GET /control", 0) == 0) {
      type = "text/plain; charset=utf-8";
      body = Control(first);
      if (body.rfind("error", 0) == 0) status = "400 Bad Request";
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

}  // namespace sidecar
