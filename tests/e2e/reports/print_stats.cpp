// print_stats=1: at exit, a block per map with accesses by kind and thread,
// contention, the access pattern and advice (reports/advice_patterns.cpp
// checks the advice for each pattern).
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t 2>&1 | FileCheck %s
// RUN: %t 2>&1 | FileCheck %s --check-prefix=OFF
// Statistics go where reports go: with log_path and format=json, one JSON
// object per map in the log, and nothing on the program's own stderr.
// RUN: rm -f %t.log.*
// RUN: env MAPGUARD_OPTIONS=print_stats=1:format=json:log_path=%t.log %t > %t.out 2>&1
// RUN: not grep -q "map statistics" %t.out
// RUN: python3 -c "import json,glob,sys; objs=[json.loads(l) for f in glob.glob(sys.argv[1]+'.*') for l in open(f)]; s=[o['mapguard_stats'] for o in objs if 'mapguard_stats' in o]; assert all(x['hint'] and x['threads'] >= 1 for x in s), objs; print('STATS', len(s), sorted(x['name'] for x in s))" %t.log | FileCheck %s --check-prefix=JSON
// JSON: STATS 3 ['config', 'counters', 'scratch']
// CHECK: mapguard: map statistics (3 maps, 2 used by several threads)
// Maps used by several threads come first. The destructor is not a use.
// CHECK-DAG: Map std::map<int, int> 'config'
// CHECK-DAG: accesses: 4000 reads, 100 writes, 0 iterations; threads: 4;
// CHECK-DAG: pattern: written, then only read once a second thread used it (4 threads in all): no lock needed, as long as the writes happen before the readers start
// CHECK-DAG: Map std::unordered_map<int, int> 'counters'
// CHECK-DAG: accesses: 0 reads, 1500 writes, 0 iterations; threads: 3;
// CHECK: Map std::set<int> 'scratch'
// CHECK-NEXT: accesses: 0 reads, 10 writes, 0 iterations; threads: 1;
// CHECK-NEXT: by thread: T0 (0/10/0)  [reads/writes/iterations]
// CHECK: pattern: one thread uses it: no lock needed
// CHECK: 3 maps in all, 2 used by several threads
// The list's length is an option; what it leaves out is counted.
// RUN: env MAPGUARD_OPTIONS=print_stats=1:stats_maps=1 %t 2>&1 | FileCheck %s --check-prefix=ONE
// ONE: mapguard: map statistics (3 maps, 2 used by several threads)
// ONE-NOT: 'scratch'
// ONE: 3 maps in all, 2 used by several threads; 2 not shown (stats_maps=1; 0 lists every map)
// RUN: env MAPGUARD_OPTIONS=stats_maps=-1 %expect_exit 64 %t 2>&1 | FileCheck %s --check-prefix=BAD
// BAD: option 'stats_maps' must be 0 (all maps) or more
// OFF-NOT: map statistics
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <vector>

int main() {
  std::shared_mutex config_mu;
  std::map<int, int> config;
  std::mutex counters_mu;
  std::unordered_map<int, int> counters;
  std::set<int> scratch;
  for (int i = 0; i < 100; i++) config[i] = i;  // 100 writes by T0
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; t++)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 1000; i++) {
        std::shared_lock<std::shared_mutex> r(config_mu);
        (void)config.count(i % 100);
      }
      for (int i = 0; i < 500; i++) {
        std::lock_guard<std::mutex> g(counters_mu);
        counters[i % 50 + t]++;
      }
    });
  for (int i = 0; i < 1000; i++) (void)config.count(i);
  for (auto &t : ts) t.join();
  for (int i = 0; i < 10; i++) scratch.insert(i);
  std::printf("DONE\n");
}
