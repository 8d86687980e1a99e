// Found in zeromq's inproc tests (realworld/): once 64 thread slots exist,
// a new thread reuses a finished thread's slot and clock entry. If its
// creator had not seen all of the old owner (it exited unjoined), one clock
// entry cannot keep the two apart: here B (in A's old slot) releases a mutex
// n, C carries B's clock into m, and B's later lock of m then could not tell
// that A's write under m came before. Correct code, reported before the fix;
// now a thread only reuses a slot whose earlier owners its creator knows.
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: for i in 1 2 3 4 5; do %t 2>&1 | FileCheck %s || exit 1; done
// CHECK-NOT: fatal error
// CHECK: DONE
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

std::map<int, int> g_map;
pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER, n = PTHREAD_MUTEX_INITIALIZER;
std::atomic<int> g_step{0};  // relaxed: sequences the threads, orders nothing

void wait_step(int s) {
  while (g_step.load(std::memory_order_relaxed) < s) std::this_thread::yield();
}

void *thread_a(void *) {  // writes under m, then exits unjoined
  pthread_mutex_lock(&m);
  g_map[1] = 1;
  pthread_mutex_unlock(&m);
  g_step.store(1, std::memory_order_relaxed);
  return nullptr;
}

void *thread_b(void *) {
  pthread_mutex_lock(&n);  // B's own clock goes into n
  pthread_mutex_unlock(&n);
  g_step.store(3, std::memory_order_relaxed);
  wait_step(4);
  pthread_mutex_lock(&m);  // ordered after A's write by m (A -> C -> B)
  int v = g_map.count(1);
  pthread_mutex_unlock(&m);
  std::printf("B read %d\n", v);
  return nullptr;
}

void *thread_c(void *) {
  wait_step(3);
  pthread_mutex_lock(&n);  // learns B's clock
  pthread_mutex_unlock(&n);
  pthread_mutex_lock(&m);  // after A's unlock; carries B's clock into m
  pthread_mutex_unlock(&m);
  g_step.store(4, std::memory_order_relaxed);
  return nullptr;
}

int main() {
  // Fill 64 slots with threads that are joined.
  for (int i = 0; i < 70; i++) std::thread([] {}).join();
  pthread_t a, b, c;
  pthread_create(&a, nullptr, thread_a, nullptr);
  pthread_detach(a);
  wait_step(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // A has exited
  pthread_create(&b, nullptr, thread_b, nullptr);  // took A's slot before the fix
  pthread_create(&c, nullptr, thread_c, nullptr);
  pthread_join(b, nullptr);
  pthread_join(c, nullptr);
  std::printf("DONE\n");
  return 0;
}
