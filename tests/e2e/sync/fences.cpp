// Fences paired with atomic operations ([atomics.fences]) order map accesses:
//  refcount: Boost's documented idiom, fetch_sub(release) by every owner and
//            an acquire fence before the last owner deletes the object;
//  release-fence: a release fence, then a relaxed store, read by an acquire load;
//  acquire-fence: a release store, read by a relaxed load, then an acquire fence.
// Each is quiet; each racy twin (the fence removed) is reported.
// RUN: %clangxx_mg -O0 %s -o %t.O0
// RUN: %clangxx_mg -O2 %s -o %t.O2
// RUN: for m in refcount release-fence acquire-fence; do \
// RUN:   %t.O0 $m 2>&1 | FileCheck %s -DMODE=$m && %t.O2 $m 2>&1 | FileCheck %s -DMODE=$m || exit 1; done
// RUN: for m in refcount release-fence acquire-fence; do \
// RUN:   %expect_exit 66 %t.O0 $m racy 2>&1 | FileCheck %s --check-prefix=RACY && \
// RUN:   %expect_exit 66 %t.O2 $m racy 2>&1 | FileCheck %s --check-prefix=RACY || exit 1; done
// CHECK-NOT: fatal error
// CHECK: DONE [[MODE]]
// RACY: fatal error: unsynchronized map
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

bool g_racy;

struct Shared {
  std::atomic<int> refs{3};
  std::map<int, int> data;
};

__attribute__((noinline)) void release_ref(Shared *s) {
  if (g_racy) {
    if (s->refs.fetch_sub(1, std::memory_order_relaxed) == 1) delete s;
    return;
  }
  if (s->refs.fetch_sub(1, std::memory_order_release) == 1) {
    std::atomic_thread_fence(std::memory_order_acquire);
    delete s;  // destroying the map is a write
  }
}

std::map<int, int> g_map;
std::atomic<int> g_flag{0};

int main(int argc, char **argv) {
  std::string mode = argc > 1 ? argv[1] : "refcount";
  g_racy = argc > 2 && !strcmp(argv[2], "racy");
  if (mode == "refcount") {
    for (int round = 0; round < 50; round++) {
      Shared *s = new Shared;
      for (int i = 0; i < 10; i++) s->data[i] = i;
      std::vector<std::thread> owners;
      for (int t = 0; t < 3; t++)
        owners.emplace_back([s, t] {
          volatile long sum = long(s->data.count(t));
          (void)sum;
          release_ref(s);
        });
      for (auto &t : owners) t.join();
    }
  } else {
    g_flag = 0;
    std::thread writer([&] {
      g_map[1] = 1;
      if (mode == "release-fence") {
        if (!g_racy) std::atomic_thread_fence(std::memory_order_release);
        g_flag.store(1, std::memory_order_relaxed);
      } else {
        g_flag.store(1, g_racy ? std::memory_order_relaxed : std::memory_order_release);
      }
    });
    std::thread reader([&] {
      if (mode == "release-fence") {
        while (g_flag.load(g_racy ? std::memory_order_relaxed : std::memory_order_acquire) == 0) {
        }
      } else {
        while (g_flag.load(std::memory_order_relaxed) == 0) {
        }
        if (!g_racy) std::atomic_thread_fence(std::memory_order_acquire);
      }
      (void)g_map.count(1);
    });
    writer.join();
    reader.join();
  }
  std::printf("DONE %s\n", mode.c_str());
  return 0;
}
