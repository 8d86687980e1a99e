// Maps built by a producer and handed to a consumer through a queue guarded
// by a mutex and condition variable; the consumer then owns them. No report.
// RUN: %clangxx_mg -O0 %s -o %t.O0 && %t.O0 2>&1 | FileCheck %s
// RUN: %clangxx_mg -O2 %s -o %t.O2 && %t.O2 2>&1 | FileCheck %s
// CHECK-NOT: fatal error
// CHECK: DONE 200
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

std::mutex mu;
std::condition_variable cv;
std::deque<std::unique_ptr<std::map<int, int>>> queue;

int main() {
  std::thread producer([] {
    for (int n = 0; n < 200; n++) {
      auto m = std::make_unique<std::map<int, int>>();
      for (int i = 0; i < 50; i++) (*m)[i] = n;
      {
        std::lock_guard<std::mutex> lock(mu);
        queue.push_back(std::move(m));
      }
      cv.notify_one();
    }
  });
  int received = 0;
  while (received < 200) {
    std::unique_ptr<std::map<int, int>> m;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [] { return !queue.empty(); });
      m = std::move(queue.front());
      queue.pop_front();
    }
    m->erase(3);
    (*m)[1000] = 1;
    received++;
  }
  producer.join();
  std::printf("DONE %d\n", received);
}
