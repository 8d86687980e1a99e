// A coroutine that iterates a map is destroyed while it is suspended inside
// its loop. Its iteration region ended at the suspension (a coroutine may be
// resumed on another thread), so the destroy path must not end it again:
// before, the loop's exit ran the end once more, which closed the innermost
// iteration region of this thread on the same map, the caller's own loop over
// it, and a write racing with the rest of that loop was missed.
//  clean  the caller iterates M, runs and destroys the coroutine at the first
//         element, finishes its loop; then another thread writes M (ordered
//         by the join): quiet
//  racy   the same, but after the destroy, while the caller's loop is still
//         running, another thread writes M (the two overlap, forced):
//         reported as a write during the caller's iteration
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O0 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: env MAPGUARD_OPTIONS=detect=overlap %t.O2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: DONE clean walked=1 sum=45
// RACY: fatal error: concurrent map iteration and map write
// RACY: Write (operator[]) by thread
// RACY: Iteration {{.*}}in progress in thread T0
// RACY-SAME: in main
// RACY: SUMMARY: mapguard
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdio>
#include <cstring>
#include <map>
#include <thread>

// A coroutine the caller resumes and destroys by hand.
struct Walk {
  struct promise_type {
    Walk get_return_object() { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() {}
  };
  std::coroutine_handle<promise_type> h;
};

int g_walked = 0;

__attribute__((noinline)) Walk walk(std::map<int, int> &m) {
  for (const auto &kv : m) {
    g_walked += kv.first == 0;
    co_await std::suspend_always{};  // destroyed here, never resumed
  }
}

std::atomic<bool> g_go{false}, g_written{false};  // relaxed: they order nothing

int main(int argc, char **argv) {
  const bool racy = argc > 1 && !strcmp(argv[1], "racy");
  std::map<int, int> m;
  for (int i = 0; i < 10; i++) m[i] = i;
  std::thread writer([&] {
    if (!racy) return;
    while (!g_go.load(std::memory_order_relaxed)) std::this_thread::yield();
    m[5] = 50;  // an existing key: the caller's iterator stays valid natively
    g_written.store(true, std::memory_order_relaxed);
  });
  int sum = 0;
  for (const auto &kv : m) {
    if (kv.first == 0) {
      Walk w = walk(m);
      w.h.resume();   // into its loop, suspended at the first element
      w.h.destroy();  // never resumed
      if (racy) {
        g_go.store(true, std::memory_order_relaxed);
        for (int i = 0; i < 10000 && !g_written.load(std::memory_order_relaxed); i++)
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    sum += kv.second;
  }
  writer.join();
  if (!racy) {
    std::thread later([&] { m[5] = 50; });  // after the loop, ordered by the join
    later.join();
  }
  std::printf("DONE %s walked=%d sum=%d\n", racy ? "racy" : "clean", g_walked, sum);
  return 0;
}
