// Correct programs whose threads end in unusual ways are neither reported
// nor changed: a thread cancelled while it keeps taking maps over, a pthread
// key destructor that still uses the thread's map (it runs after mapguard's
// own exit hook would have), and longjmp / siglongjmp out of a loop body and
// out of a map call, followed by properly ordered writes from another thread.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: for m in cancel keys longjmp; do %t.O0 $m 2>&1 | FileCheck %s -DMODE=$m && %t.O2 $m 2>&1 | FileCheck %s -DMODE=$m || exit 1; done
// RUN: for m in cancel longjmp; do env MAPGUARD_OPTIONS=detect=overlap %t.O2 $m 2>&1 | FileCheck %s -DMODE=$m || exit 1; done
// CHECK-NOT: fatal error
// CHECK-NOT: FAILED
// CHECK: DONE [[MODE]]
#include <pthread.h>
#include <setjmp.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

// ---- cancel ----
std::mutex g_mu;
std::vector<std::map<int, int> *> g_maps;  // built by main, taken over by the worker
std::atomic<int> g_taken{0};

void *cancellable(void *) {
  for (size_t i = 0;; i++) {
    {
      std::lock_guard<std::mutex> lock(g_mu);
      if (i < g_maps.size()) (*g_maps[i])[1]++;  // takes a map main owns
    }
    g_taken.fetch_add(1, std::memory_order_relaxed);
    usleep(10);  // a cancellation point in the program's own code
  }
  return nullptr;
}

void run_cancel() {
  for (int round = 0; round < 20; round++) {
    {
      std::lock_guard<std::mutex> lock(g_mu);
      for (auto *m : g_maps) delete m;
      g_maps.clear();
    }
    pthread_t t;
    pthread_create(&t, nullptr, cancellable, nullptr);
    for (int i = 0; i < 200; i++) {
      auto *m = new std::map<int, int>;
      (*m)[1] = 0;
      std::lock_guard<std::mutex> lock(g_mu);
      g_maps.push_back(m);
      (void)m->count(1);
    }
    while (g_taken.load(std::memory_order_relaxed) < 50) usleep(10);
    pthread_cancel(t);
    void *ret = nullptr;
    pthread_join(t, &ret);
    if (ret != PTHREAD_CANCELED) std::printf("FAILED: not cancelled\n");
    g_taken = 0;
  }
}

// ---- keys ----
pthread_key_t g_key;
struct PerThread {
  std::unordered_map<int, int> counts;
};
void destroy_per_thread(void *p) {
  auto *pt = static_cast<PerThread *>(p);
  pt->counts[-1] = int(pt->counts.size());  // a last write, from the destructor
  delete pt;
}

void run_keys() {
  pthread_key_create(&g_key, destroy_per_thread);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++)
    threads.emplace_back([] {
      auto *pt = new PerThread;
      for (int i = 0; i < 100; i++) pt->counts[i % 7]++;
      pthread_setspecific(g_key, pt);
    });
  for (auto &t : threads) t.join();
}

// ---- longjmp ----
jmp_buf g_jmp;
sigjmp_buf g_sigjmp;
struct JumpingHash {
  size_t operator()(int k) const {
    if (k == 13) siglongjmp(g_sigjmp, 1);  // out of the middle of a map call
    return size_t(k);
  }
};

__attribute__((noinline)) void scan_and_jump(std::map<int, int> &m) {
  for (auto &kv : m)
    if (kv.first == 5) longjmp(g_jmp, 1);  // out of a loop body
}

void run_longjmp() {
  std::map<int, int> m;
  std::unordered_map<int, int, JumpingHash> h;
  for (int i = 0; i < 10; i++) m[i] = i, h[i] = i;
  int jumps = 0;
  for (int i = 0; i < 100; i++) {
    if (setjmp(g_jmp) == 0) scan_and_jump(m);
    else jumps++;
    if (sigsetjmp(g_sigjmp, 1) == 0) (void)h.count(13);
    else jumps++;
  }
  // Another thread writes both maps; the join orders it after the loops.
  std::thread writer([&] {
    m[100] = 1;
    h[100] = 1;
  });
  writer.join();
  m[101] = 1;
  h.erase(100);
  if (jumps != 200) std::printf("FAILED: %d jumps\n", jumps);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "cancel";
  if (!strcmp(mode, "cancel")) run_cancel();
  else if (!strcmp(mode, "keys")) run_keys();
  else run_longjmp();
  std::printf("DONE %s\n", mode);
  return 0;
}
