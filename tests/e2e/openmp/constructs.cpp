// OpenMP's synchronization orders map accesses (clang -fopenmp, libomp, seen
// through OMPT): parallel fork and join, explicit and implicit barriers,
// named and unnamed critical, omp locks and nest locks, single, tasks with
// taskwait and with dependences. Each form is quiet; the racy twins (the
// critical, the lock, the barrier removed) are reported on every run.
// This clang's omp.h is needed (lit.cfg.py's openmp feature).
// REQUIRES: openmp
// RUN: %clangxx_mg -fopenmp -O0 %s -o %t.O0
// RUN: %clangxx_mg -fopenmp -O2 %s -o %t.O2
// RUN: for m in fork-join critical named-critical lock nest-lock barrier single taskwait depend; do \
// RUN:   env OMP_NUM_THREADS=4 %t.O0 $m 2>&1 | FileCheck %s -DMODE=$m && \
// RUN:   env OMP_NUM_THREADS=4 %t.O2 $m 2>&1 | FileCheck %s -DMODE=$m || exit 1; done
// RUN: for m in critical lock barrier; do \
// RUN:   env OMP_NUM_THREADS=4 %expect_exit 66 %t.O0 $m racy 2>&1 | FileCheck %s --check-prefix=RACY && \
// RUN:   env OMP_NUM_THREADS=4 %expect_exit 66 %t.O2 $m racy 2>&1 | FileCheck %s --check-prefix=RACY || exit 1; done
// CHECK-NOT: fatal error
// CHECK: DONE [[MODE]]
// RACY: fatal error: {{concurrent|unsynchronized}} map
#include <omp.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <unordered_map>

std::map<int, int> g_map;
std::unordered_map<int, int> g_counts;
bool g_racy;

int main(int argc, char **argv) {
  std::string mode = argc > 1 ? argv[1] : "fork-join";
  g_racy = argc > 2 && !strcmp(argv[2], "racy");
  for (int i = 0; i < 16; i++) g_map[i] = i;  // before the region: fork orders it
  long sum = 0;
  if (mode == "fork-join") {
#pragma omp parallel reduction(+ : sum)
    { sum += long(g_map.count(omp_get_thread_num())); }
    g_map[100] = 1;  // after the join
  } else if (mode == "critical") {
#pragma omp parallel for
    for (int i = 0; i < 200; i++) {
      if (g_racy) {
        if (g_counts.find(i % 10) == g_counts.end()) g_counts.emplace(i % 10, 0);
        usleep(100);
      } else {
#pragma omp critical
        {
          if (g_counts.find(i % 10) == g_counts.end()) g_counts.emplace(i % 10, 0);
        }
      }
    }
  } else if (mode == "named-critical") {
#pragma omp parallel for
    for (int i = 0; i < 200; i++) {
#pragma omp critical(counts)
      g_counts[i % 10]++;
    }
  } else if (mode == "lock" || mode == "nest-lock") {
    omp_lock_t lock;
    omp_nest_lock_t nest;
    omp_init_lock(&lock);
    omp_init_nest_lock(&nest);
#pragma omp parallel for
    for (int i = 0; i < 200; i++) {
      if (mode == "nest-lock") {
        omp_set_nest_lock(&nest);
        omp_set_nest_lock(&nest);
        g_counts[i % 10]++;
        omp_unset_nest_lock(&nest);
        omp_unset_nest_lock(&nest);
      } else {
        if (!g_racy) omp_set_lock(&lock);
        g_counts[i % 10]++;
        if (g_racy) usleep(100);
        if (!g_racy) omp_unset_lock(&lock);
      }
    }
    omp_destroy_lock(&lock);
    omp_destroy_nest_lock(&nest);
  } else if (mode == "barrier") {
#pragma omp parallel
    {
      if (omp_get_thread_num() == 0) g_map[200] = 2;
      if (!g_racy) {
#pragma omp barrier
      } else {
        usleep(20000);  // a sleep is no barrier
      }
      if (omp_get_thread_num() != 0) (void)g_map.count(200);
    }
  } else if (mode == "single") {
#pragma omp parallel
    {
#pragma omp single
      g_map[300] = 3;
      // single ends with an implicit barrier
      (void)g_map.count(300);
    }
  } else if (mode == "taskwait") {
#pragma omp parallel
#pragma omp single
    {
      for (int t = 0; t < 8; t++) {
#pragma omp task firstprivate(t)
        {
#pragma omp critical
          g_counts[t] = t;
        }
      }
#pragma omp taskwait
      for (int t = 0; t < 8; t++) sum += g_counts[t];  // after the tasks
    }
  } else if (mode == "depend") {
#pragma omp parallel
#pragma omp single
    {
      for (int round = 0; round < 20; round++) {
#pragma omp task depend(out : g_map)
        g_map[400 + round] = round;
#pragma omp task depend(in : g_map)
        (void)g_map.count(400 + round);
      }
    }
  }
  std::printf("DONE %s\n", mode.c_str());
  return sum < 0;
}
