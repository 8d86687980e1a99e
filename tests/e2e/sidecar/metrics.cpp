// --metrics-port: while the program runs, a real HTTP client (curl) scrapes
// the Prometheus endpoint on 127.0.0.1; the text is parsed strictly and the
// per-map counters checked against what the program did. Unknown paths get
// a 404. When the program exits, the sidecar exits 0.
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: python3 %S/Inputs/sidecar_session.py metrics --sidecar %sidecar --json %t.json -- %t > %t.out 2>&1
// RUN: FileCheck %s < %t.out
// The Grafana dashboard queries only metrics the sidecar serves.
// RUN: python3 %S/Inputs/check_dashboard.py %S/../../../docs/grafana-mapguard.json %t.out | FileCheck %s --check-prefix=DASH
// DASH: dashboard: all {{[0-9]+}} metrics it queries are served
// RUN: python3 %S/Inputs/check_summary.py %t.json --kernel-conflicts 0 --map-name registry --min-reads 5000 --min-writes 1000 --threads 2
// CHECK: metrics: mapguard_sidecar_events_lost_total 0
// CHECK: metrics: mapguard_conflicts_total{source="kernel"} 0
// CHECK: metrics: mapguard_conflicts_total{source="runtime"} 0
// CHECK: metrics: mapguard_map_accesses_total{{{.*}}name="registry",kind="read"} 5000
// CHECK: metrics: mapguard_map_accesses_total{{{.*}}name="registry",kind="write"} 1000
// CHECK: metrics: mapguard_map_conflicts_total{{{.*}}name="registry"} 0
// 1000 int keys in libstdc++: 1 -> 13 -> 29 -> 59 -> 127 -> 257 -> 541 -> 1109 buckets.
// CHECK: metrics: mapguard_map_rehashes_total{{{.*}}name="registry"} 7
// CHECK: metrics: mapguard_map_threads{{{.*}}name="registry"} 2
// The access-pattern facts and the advice's pattern (mg_advice.h): written
// by one thread, then only read by main after the join.
// CHECK: metrics: mapguard_map_users{{{.*}}name="registry"} 2
// CHECK: metrics: mapguard_map_writer_threads{{{.*}}name="registry"} 1
// CHECK: metrics: mapguard_map_shared_writes_total{{{.*}}name="registry"} 0
// CHECK: metrics: mapguard_map_thread_switches_total{{{.*}}name="registry"} 1
// CHECK: metrics: mapguard_map_lock_waits_total{{{.*}}name="registry"} 0
// CHECK: metrics: mapguard_map_rehash_moved_elements_total{{{.*}}name="registry"} 1033
// CHECK: metrics: mapguard_map_max_size{{{.*}}name="registry"} 1000
// CHECK: metrics: mapguard_map_buckets{{{.*}}name="registry"} 1109
// CHECK: metrics: mapguard_map_pattern{{{.*}}name="registry",pattern="read-only-after-publication"} 1
// CHECK: metrics: mapguard_map_read_write_ratio{{{.*}}name="registry"} 5
// CHECK: metrics: /nope -> 404
// CHECK: mapguard-sidecar: serving metrics on http://127.0.0.1:{{[0-9]+}}/metrics
// CHECK: cross-check: the kernel saw 0 conflicts, the runtime reported 0: they agree
// CHECK: session: program exited 0, sidecar exited 0
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

int main(int argc, char **argv) {
  std::mutex mu;
  std::unordered_map<int, int> registry;
  std::thread writer([&] {
    for (int i = 0; i < 1000; i++) {
      std::lock_guard<std::mutex> g(mu);
      registry[i] = i;
    }
  });
  writer.join();
  long found = 0;
  for (int i = 0; i < 5000; i++) {
    std::lock_guard<std::mutex> g(mu);
    found += registry.count(i % 2000);
  }
  std::printf("READY found=%ld\n", found);
  std::fflush(stdout);
  std::string go = argv[1];
  while (!std::ifstream(go)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return 0;
}
