// A coroutine iterates a map and co_awaits in the loop; at the first element
// await_suspend declines to suspend (returns false), at the second the
// coroutine really suspends and is resumed. The iteration region ends before
// each suspension point and must be open again wherever the coroutine goes
// on: after the real resume and after the declined suspension alike. Before,
// it was begun again on the resume edge only, so after a declined one the
// rest of the loop had no region and a write racing with it was missed.
//  racy   after the real resume, the loop waits inside its body while another
//         thread writes the map (forced overlap): reported as concurrent
//  clean  another thread writes the map once the coroutine is done (ordered
//         by the thread's creation): quiet
//  thrown the first await_suspend throws instead of declining, and the loop
//         body catches it; then as racy: reported (before, the map was
//         parked at each suspension, so the empty slot left by the throw
//         was parked too and the rest of the loop had no region)
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O0 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.O0 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.O0 thrown 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.O2 thrown 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: DONE clean steps=4
// RACY: fatal error: concurrent map iteration and map write
// RACY: SUMMARY: mapguard
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

std::map<int, int> g;
std::atomic<int> g_phase{0};  // relaxed: it orders nothing
bool g_racy = false;
bool g_throw = false;

struct Task {
  struct promise_type {
    Task get_return_object() { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::abort(); }
  };
  std::coroutine_handle<promise_type> h;
};

// Suspends only if `really`: await_suspend returning false resumes at once.
struct MaybeSuspend {
  bool really;
  bool await_ready() { return false; }
  bool await_suspend(std::coroutine_handle<>) {
    if (!really && g_throw) throw 1;
    return really;
  }
  void await_resume() {}
};

int g_steps = 0;

Task walk() {
  for (auto &kv : g) {
    try {
      co_await MaybeSuspend{g_steps == 1};  // declined (or thrown) at the first element
    } catch (int) {
    }
    if (g_racy && g_steps == 1) {
      g_phase.store(1, std::memory_order_relaxed);
      for (int i = 0; i < 10000 && g_phase.load(std::memory_order_relaxed) != 2; i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    g_steps++;
    (void)kv;
  }
}

int main(int argc, char **argv) {
  g_throw = argc > 1 && !std::strcmp(argv[1], "thrown");
  g_racy = g_throw || (argc > 1 && !std::strcmp(argv[1], "racy"));
  for (int i = 0; i < 4; i++) g[i] = i;
  Task t = walk();
  std::thread writer([] {
    if (!g_racy) return;
    while (g_phase.load(std::memory_order_relaxed) != 1) std::this_thread::yield();
    g[1] = 10;  // an existing key: the loop's iterator stays valid natively
    g_phase.store(2, std::memory_order_relaxed);
  });
  while (!t.h.done()) t.h.resume();
  writer.join();
  t.h.destroy();
  if (!g_racy) std::thread([] { g[1] = 10; }).join();
  std::printf("DONE %s steps=%d\n", g_racy ? "racy" : "clean", g_steps);
  return 0;
}
