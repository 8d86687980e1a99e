// The sidecar under a correctly synchronized program: the kernel sees no
// conflict, the runtime reports none, the sidecar exits 0, and its per-map
// report shows the access pattern and its advice.
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: %sidecar --json %t.json -- %t 2>&1 | FileCheck %s
// RUN: python3 %S/Inputs/check_summary.py %t.json --kernel-conflicts 0 --map-name config --min-reads 4000 --min-writes 100 --threads 5
// The same with reads sampled 1 in 10: writes are all seen, reads scaled up.
// RUN: %sidecar --read-sample 10 --json %t.sampled.json -- %t 2>&1 | FileCheck %s
// RUN: python3 %S/Inputs/check_summary.py %t.sampled.json --kernel-conflicts 0 --map-name config --min-reads 3000 --min-writes 100
// CHECK: DONE
// CHECK: mapguard-sidecar: the program exited with status 0
// CHECK: std::map<int, int> 'config' at 0x{{[0-9a-f]+}} (pid {{[0-9]+}}): {{[0-9]+}} reads, {{10[0-9]}} writes, 0 iterations, 5 threads, 0 rehashes, 0 conflicts, {{[0-9]+}} lock wait{{s?}}
// CHECK-NEXT: pattern: {{.+}}
// (sidecar/advice.cpp checks the advice for each pattern.)
// CHECK: cross-check: the kernel saw 0 conflicts, the runtime reported 0: they agree
#include <cstdio>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

int main() {
  std::shared_mutex mu;
  std::map<int, int> config;
  for (int i = 0; i < 100; i++) config[i] = i;
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; t++)
    readers.emplace_back([&] {
      for (int i = 0; i < 1000; i++) {
        std::shared_lock<std::shared_mutex> r(mu);
        (void)config.count(i % 100);
      }
      std::unique_lock<std::shared_mutex> w(mu);
      config[1000] = 1;
    });
  for (auto &t : readers) t.join();
  std::printf("DONE\n");
  std::fflush(stdout);
  return 0;
}
