// A coroutine iterates a map across co_await and is resumed on another
// thread at each step (two executor threads take turns). The iteration ends
// at each suspension and begins again where it resumes, so once the
// coroutine is done (a mutex-protected flag), another thread's writes are
// quiet. The racy twin writes the map from a thread that nothing orders with
// the iteration: reported.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %t.O0 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %t.O2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: env MAPGUARD_OPTIONS=detect=overlap %t.O2 clean 2>&1 | FileCheck %s --check-prefix=CLEAN
// RUN: %expect_exit 66 %t.O0 racy 2>&1 | FileCheck %s --check-prefix=RACY
// RUN: %expect_exit 66 %t.O2 racy 2>&1 | FileCheck %s --check-prefix=RACY
// CLEAN-NOT: fatal error
// CLEAN: DONE clean sum=45
// RACY: fatal error: {{concurrent|unsynchronized}} map iteration and map write
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

struct Executor {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::coroutine_handle<>> queue;
  bool stop = false;
  std::thread thread{[this] { run(); }};
  void run() {
    for (;;) {
      std::coroutine_handle<> h;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stop || !queue.empty(); });
        if (queue.empty()) return;
        h = queue.front();
        queue.pop_front();
      }
      h.resume();
    }
  }
  void post(std::coroutine_handle<> h) {
    std::lock_guard<std::mutex> lock(mu);
    queue.push_back(h);
    cv.notify_one();
  }
  ~Executor() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
      cv.notify_one();
    }
    thread.join();
  }
};

struct SwitchTo {
  Executor &ex;
  bool await_ready() { return false; }
  void await_suspend(std::coroutine_handle<> h) { ex.post(h); }
  void await_resume() {}
};

struct Task {
  struct promise_type {
    Task get_return_object() { return {}; }
    std::suspend_never initial_suspend() { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() {}
  };
};

std::mutex g_done_mu;
bool g_done = false;
int g_sum = 0;
std::atomic<bool> g_iterating{false};

Task scan(std::map<int, int> &m, Executor &a, Executor &b) {
  int sum = 0, step = 0;
  for (const auto &kv : m) {
    sum += kv.second;
    g_iterating.store(true, std::memory_order_relaxed);
    co_await SwitchTo{step++ % 2 ? a : b};  // resumed on the other thread
  }
  std::lock_guard<std::mutex> lock(g_done_mu);
  g_sum = sum;
  g_done = true;
}

int main(int argc, char **argv) {
  bool racy = argc > 1 && !strcmp(argv[1], "racy");
  std::map<int, int> m;
  for (int i = 0; i < 10; i++) m[i] = i;
  {
    Executor a, b;
    std::thread racer;
    if (racy)
      racer = std::thread([&] {
        while (!g_iterating.load(std::memory_order_relaxed)) std::this_thread::yield();
        m[100] = 1;  // nothing orders this with the coroutine's iteration
      });
    scan(m, a, b);
    for (;;) {
      std::lock_guard<std::mutex> lock(g_done_mu);
      if (g_done) break;
    }
    if (racer.joinable()) racer.join();
  }
  // The coroutine is done (ordered by g_done_mu): another thread writes.
  std::thread writer([&] {
    m[50] = 5;
    m.erase(3);
  });
  writer.join();
  std::printf("DONE clean sum=%d\n", g_sum);
  return 0;
}
