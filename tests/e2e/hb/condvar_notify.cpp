// A notify is not a synchronization edge: C++ gives notify_one/notify_all
// none ([thread.condition]), the mutex carries the real one. A map written
// after the unlock and before the notify races with the woken waiter, in
// every run (before: signal released and a successful wait acquired, so the
// waiter was ordered after the write and the race was never reported). The
// clean twin writes before the unlock. Also through C11 cnd_t.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O0 std clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 std clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 c11 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 std racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 std racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 c11 racy 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: DONE
// RACY: fatal error: unsynchronized map writes
#include <threads.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

std::unordered_map<int, int> g_map;
std::atomic<int> g_waiting{0};  // relaxed: only makes the waiter wait first
bool g_ready = false;

template <typename Lock, typename Unlock, typename Wait, typename Notify>
int run(bool clean, Lock lock, Unlock unlock, Wait wait, Notify notify) {
  std::thread waiter([&] {
    lock();
    g_waiting.store(1, std::memory_order_relaxed);
    while (!g_ready) wait();  // woken by the notify
    unlock();
    g_map[2] = 2;
  });
  while (!g_waiting.load(std::memory_order_relaxed))
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // inside the wait
  lock();
  g_ready = true;
  if (clean) g_map[1] = 1;
  unlock();
  if (!clean) g_map[1] = 1;  // after the unlock: nothing orders it
  notify();
  waiter.join();
  std::printf("DONE\n");
  return 0;
}

int main(int argc, char **argv) {
  bool c11 = argc > 1 && !std::strcmp(argv[1], "c11");
  bool clean = argc > 2 && !std::strcmp(argv[2], "clean");
  if (c11) {
    static mtx_t mu;
    static cnd_t cv;
    mtx_init(&mu, mtx_plain);
    cnd_init(&cv);
    return run(
        clean, [] { mtx_lock(&mu); }, [] { mtx_unlock(&mu); }, [] { cnd_wait(&cv, &mu); },
        [] { cnd_signal(&cv); });
  }
  static std::mutex mu;
  static std::condition_variable cv;
  // The wait adopts the mutex the waiter locked, and gives it back held.
  return run(
      clean, [] { mu.lock(); }, [] { mu.unlock(); },
      [] {
        std::unique_lock<std::mutex> adopt(mu, std::adopt_lock);
        cv.wait(adopt);
        adopt.release();
      },
      [] { cv.notify_one(); });
}
