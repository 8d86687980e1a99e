// A race whose earlier access was made by a library unloaded since: the
// map's history still holds that access's call site, in memory the dlclose
// gave back. The report says so instead of reading it (before: SIGSEGV, no
// report). print_stats names the program's own map, first used by the
// library, by its next access.
// RUN: %clangxx_mg -O1 -DLIB -shared -fPIC %s -o %t.so
// RUN: %clangxx_mg -O1 %s -ldl -o %t
// RUN: %expect_exit 66 %t %t.so race 2>&1 | FileCheck %s --check-prefix=RACE
// RUN: env MAPGUARD_OPTIONS=print_stats=1 %t %t.so stats 2>&1 | FileCheck %s --check-prefix=STATS
// RACE: closed
// RACE: fatal error: unsynchronized map
// RACE: Previous {{.*}} (access by a library unloaded since) by thread T1
// RACE: SUMMARY: mapguard
// STATS: Map std::map<int, int> 'g' at
// STATS-NOT: unloaded since
// STATS: {{map|maps}} in all
#include <map>

#if defined(LIB)
extern "C" void touch(std::map<int, int> &m) { m[1] = 1; }
#else
#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>

std::map<int, int> g;
std::atomic<int> step{0};

int main(int argc, char **argv) {
  void *lib = dlopen(argv[1], RTLD_NOW);
  if (!lib) return std::printf("dlopen: %s\n", dlerror()), 1;
  auto touch = reinterpret_cast<void (*)(std::map<int, int> &)>(dlsym(lib, "touch"));
  if (!std::strcmp(argv[2], "stats")) {
    touch(g);
    dlclose(lib);
    for (int i = 0; i < 100; i++) g[i] = i;
    return 0;
  }
  // The library's write on another thread, then (relaxed: no edge) this
  // thread's, after the library is gone.
  std::thread t([&] {
    touch(g);
    step.store(1, std::memory_order_relaxed);
    while (step.load(std::memory_order_relaxed) != 2) usleep(100);
  });
  while (step.load(std::memory_order_relaxed) != 1) usleep(100);
  dlclose(lib);
  std::printf("closed\n");
  std::fflush(stdout);
  g[2] = 2;
  step.store(2, std::memory_order_relaxed);
  t.join();
}
#endif
