// The classic mistake: operator[] under a std::shared_lock turns a lookup
// into an insert that the reader lock does not exclude. The report says so.
// RUN: %clangxx_mg -O1 %s -o %t && %expect_exit 66 %t 2>&1 | FileCheck %s
// RUN: env MAPGUARD_OPTIONS=format=json %expect_exit 66 %t 2>&1 | FileCheck %s --check-prefix=JSON
// CHECK: fatal error: {{(concurrent|unsynchronized)}} map
// CHECK: Hint: operator[] inserts when the key is missing, so it is a write, but this thread holds only a shared (reader) lock
// JSON: "hint":"operator[] inserts when the key is missing
#include <map>
#include <shared_mutex>
#include <string>
#include <thread>

std::shared_mutex mu;
std::map<std::string, int> hits;

__attribute__((noinline)) int lookup(const std::string &page) {
  std::shared_lock<std::shared_mutex> lock(mu);
  return hits[page];  // BUG: inserts "page" when it is missing
}

int main() {
  std::thread a([] { for (int i = 0; i < 100000; i++) lookup("/a" + std::to_string(i)); });
  std::thread b([] { for (int i = 0; i < 100000; i++) lookup("/b" + std::to_string(i)); });
  a.join();
  b.join();
}
