// Every way out of a region leaves no state behind: break, return and throw
// out of loops over a map, at() on a missing key, a throwing hash. A leaked
// region would make the later writes from another thread look concurrent.
// RUN: %clangxx_mg -O0 %s -o %t.O0 && %t.O0 2>&1 | FileCheck %s
// RUN: %clangxx_mg -O2 %s -o %t.O2 && %t.O2 2>&1 | FileCheck %s
// RUN: %clangxx_mg -O1 %s -o %t.O1 && %t.O1 2>&1 | FileCheck %s
// RUN: %clangxx_mg -O3 %s -o %t.O3 && %t.O3 2>&1 | FileCheck %s
// CHECK-NOT: fatal error
// CHECK: DONE caught=4
#include <cstdio>
#include <map>
#include <stdexcept>
#include <thread>
#include <unordered_map>

struct ThrowingHash {
  size_t operator()(int k) const {
    if (k == 13) throw std::runtime_error("unlucky");
    return size_t(k);
  }
};

std::map<int, int> m;
std::unordered_map<int, int, ThrowingHash> h;

__attribute__((noinline)) int first_big() {
  for (const auto &kv : m)
    if (kv.second > 5) return kv.first;  // return out of a range-for
  return -1;
}

__attribute__((noinline)) int count_until_break() {
  int n = 0;
  for (auto it = m.begin(); it != m.end(); ++it) {  // iterator loop, left by break
    if (it->first == 3) break;
    n++;
  }
  return n;
}

__attribute__((noinline)) void throw_from_loop() {
  for (const auto &kv : m)
    if (kv.first == 4) throw std::runtime_error("from loop body");
}

int main() {
  for (int i = 0; i < 10; i++) m[i] = i;
  int caught = 0;
  (void)first_big();
  (void)count_until_break();
  try { throw_from_loop(); } catch (const std::exception &) { caught++; }
  try { (void)m.at(12345); } catch (const std::out_of_range &) { caught++; }
  try { h[13] = 1; } catch (const std::runtime_error &) { caught++; }
  try {
    for (const auto &kv : m) {
      if (kv.first == 2) throw 7;  // caught in the same function
    }
  } catch (int) { caught++; }
  // Another thread now writes both maps. Any region left open above would
  // be reported as overlapping it.
  std::thread([] {
    m[100] = 1;
    m.erase(0);
    h[1] = 1;
  }).join();
  std::printf("DONE caught=%d\n", caught);
}
