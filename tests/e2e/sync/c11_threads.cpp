// C11 threads (thrd_create, mtx_lock, cnd_wait, call_once) create the same
// happens-before edges as their POSIX twins, although glibc implements them
// on internal entry points: a map guarded by an mtx_t, handed over through a
// cnd_t, initialized through call_once and read after thrd_join is not
// reported. Its racy twin drops the mutex: reported.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O0 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: DONE clean
// RACY: fatal error: {{concurrent|unsynchronized}} map writes
// RACY: Thread T{{[0-9]+}} (tid {{[0-9]+}}) created by thread T0 at:
// RACY-NEXT: #0 {{.*}}c11_threads.cpp
#include <threads.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>

std::map<int, int> g_map;
mtx_t g_mu;
cnd_t g_cv;
bool g_ready = false;
once_flag g_once = ONCE_FLAG_INIT;
std::map<int, int> *g_table;
bool g_racy;

void init_table() {
  g_table = new std::map<int, int>;
  for (int i = 0; i < 10; i++) (*g_table)[i] = i;
}

int worker(void *arg) {
  int id = int(reinterpret_cast<intptr_t>(arg));
  call_once(&g_once, init_table);
  int sum = int(g_table->count(3));
  for (int i = 0; i < 500; i++) {
    if (!g_racy) mtx_lock(&g_mu);
    g_map[i % 50 + id * 100] = i;
    if (!g_racy) mtx_unlock(&g_mu);
  }
  mtx_lock(&g_mu);
  g_ready = true;
  cnd_signal(&g_cv);
  mtx_unlock(&g_mu);
  return sum;
}

int main(int argc, char **argv) {
  g_racy = argc > 1 && !strcmp(argv[1], "racy");
  mtx_init(&g_mu, mtx_plain);
  cnd_init(&g_cv);
  thrd_t t[2];
  for (int i = 0; i < 2; i++) thrd_create(&t[i], worker, reinterpret_cast<void *>(intptr_t(i)));
  mtx_lock(&g_mu);
  while (!g_ready) cnd_wait(&g_cv, &g_mu);
  mtx_unlock(&g_mu);
  int total = 0;
  for (auto &th : t) {
    int res = 0;
    thrd_join(th, &res);
    total += res;
  }
  g_map[-1] = total;  // after the joins
  std::printf("DONE clean %zu\n", g_map.size());
  return 0;
}
