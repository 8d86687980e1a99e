// Algorithms and views reach a map without calling its members from user
// code: std::ranges algorithms given the map, classic algorithms given its
// iterators, std::inserter, and range-for over views of it. Each touches the
// map for the call's (or the loop's) duration.
// Racy (detect=overlap): a thread parks inside the algorithm's callback (so
// only the algorithm's own region is open, not begin()'s) while another
// writes the map. Inserter (hb): a write through std::inserter, then an
// unordered read. Clean: two threads running the algorithm at once without
// a lock, then writer and reader under one mutex.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: %clangxx_mg -stdlib=libc++ -O0 %s -o %t.cxxO0
// RUN: %clangxx_mg -stdlib=libc++ -O2 %s -o %t.cxxO2
// RUN: for m in ranges_for_each ranges_find_if ranges_count_if find_if accumulate any_of \
// RUN:     views_keys views_values views_pipeline inserter; do \
// RUN:   %t.O0 $m clean 2>&1 | FileCheck %s --check-prefix=CLEAN -DMODE=$m && \
// RUN:   %t.O2 $m clean 2>&1 | FileCheck %s --check-prefix=CLEAN -DMODE=$m && \
// RUN:   %t.cxxO0 $m clean 2>&1 | FileCheck %s --check-prefix=CLEAN -DMODE=$m && \
// RUN:   %t.cxxO2 $m clean 2>&1 | FileCheck %s --check-prefix=CLEAN -DMODE=$m || exit 1; done
// RUN: for m in ranges_for_each ranges_find_if ranges_count_if find_if accumulate any_of \
// RUN:     views_keys views_values views_pipeline; do \
// RUN:   env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.O0 $m racy 2>&1 | FileCheck %s --check-prefix=ITER && \
// RUN:   env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.O2 $m racy 2>&1 | FileCheck %s --check-prefix=ITER && \
// RUN:   env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.cxxO0 $m racy 2>&1 | FileCheck %s --check-prefix=ITER && \
// RUN:   env MAPGUARD_OPTIONS=detect=overlap %expect_exit 66 %t.cxxO2 $m racy 2>&1 | FileCheck %s --check-prefix=ITER || exit 1; done
// RUN: %expect_exit 66 %t.O0 inserter racy 2>&1 | FileCheck %s --check-prefix=INSERTER
// RUN: %expect_exit 66 %t.O2 inserter racy 2>&1 | FileCheck %s --check-prefix=INSERTER
// RUN: %expect_exit 66 %t.cxxO0 inserter racy 2>&1 | FileCheck %s --check-prefix=INSERTER
// RUN: %expect_exit 66 %t.cxxO2 inserter racy 2>&1 | FileCheck %s --check-prefix=INSERTER
// CLEAN-NOT: fatal error
// CLEAN: DONE [[MODE]]
// ITER: fatal error: concurrent map iteration and map write [map-iteration-write]
// ITER: Map: std::map<int, int> 'm' at
// ITER: Write (operator[]) by thread
// ITER: Iteration ({{std::ranges::for_each|std::ranges::find_if|std::ranges::count_if|std::find_if|std::accumulate|std::any_of|iteration \(view\)}}) in progress in thread
// ITER-NOT: DONE
// INSERTER: fatal error: unsynchronized map read and map write [map-read-write]
// INSERTER: Read (count) by thread
// INSERTER: Previous Write (std::copy (std::inserter)) by thread
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <numeric>
#include <ranges>
#include <string>
#include <thread>
#include <vector>

#include "test_sync.h"

namespace {

std::map<int, int> m;
std::mutex mu;
std::atomic<int> g_step{0};

// Every callback passes through maybe_block: an armed thread parks there,
// inside the algorithm or loop, on key kBlockKey.
__attribute__((noinline)) long use(const std::string &mode) {
  using mg_test::maybe_block;
  long n = 0;
  if (mode == "ranges_for_each") {
    std::ranges::for_each(m, [&](const auto &e) { maybe_block(e.first); n += e.second; });
  } else if (mode == "ranges_find_if") {
    n += std::ranges::find_if(m, [](const auto &e) { maybe_block(e.first); return e.first == -1; }) != m.end();
  } else if (mode == "ranges_count_if") {
    n += std::ranges::count_if(m, [](const auto &e) { maybe_block(e.first); return e.first > 2; });
  } else if (mode == "find_if") {
    n += std::find_if(m.begin(), m.end(), [](const auto &e) { maybe_block(e.first); return e.first == -1; }) != m.end();
  } else if (mode == "accumulate") {
    n += std::accumulate(m.begin(), m.end(), 0L, [](long a, const auto &e) { maybe_block(e.first); return a + e.second; });
  } else if (mode == "any_of") {
    n += std::any_of(m.cbegin(), m.cend(), [](const auto &e) { maybe_block(e.first); return e.second < 0; });
  } else if (mode == "views_keys") {
    for (int k : m | std::views::keys) maybe_block(k), n += k;
  } else if (mode == "views_values") {
    for (int v : std::views::values(m)) maybe_block(v), n += v;
  } else if (mode == "views_pipeline") {
    for (int v : m | std::views::filter([](const auto &e) { return e.first % 2 == 0; }) | std::views::values)
      maybe_block(v), n += v;
  }
  return n;
}

__attribute__((noinline)) void insert_many(int base) {
  std::vector<std::pair<int, int>> v;
  for (int i = 0; i < 4; i++) v.push_back({base + i, i});
  std::copy(v.begin(), v.end(), std::inserter(m, m.end()));
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  std::string mode = argv[1];
  bool racy = !strcmp(argv[2], "racy");
  for (int i = 0; i < 50; i++) m[i] = i;  // values equal keys; kBlockKey is 42
  if (racy && mode == "inserter") {
    std::thread writer([] {
      insert_many(100);
      g_step.store(1, std::memory_order_relaxed);
    });
    std::thread reader([] {
      while (g_step.load(std::memory_order_relaxed) < 1) std::this_thread::yield();
      std::printf("%zu\n", m.count(3));
    });
    writer.join();
    reader.join();
  } else if (racy) {
    mg_test::race([&] { std::printf("%ld\n", use(mode)); }, [] { m[100] = 1; });
  } else {
    // Two readers at once, then writer and reader under one mutex.
    std::thread a([&] { std::printf("%ld\n", use(mode)); });
    std::printf("%ld\n", use(mode));
    a.join();
    std::thread w([&] {
      std::lock_guard<std::mutex> lock(mu);
      if (mode == "inserter") insert_many(200);
      else m[200] = 2;
    });
    {
      std::lock_guard<std::mutex> lock(mu);
      std::printf("%ld\n", mode == "inserter" ? long(m.count(3)) : use(mode));
    }
    w.join();
  }
  std::printf("DONE %s\n", mode.c_str());
  return 0;
}
