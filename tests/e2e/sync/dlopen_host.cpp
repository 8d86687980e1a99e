// An instrumented shared library loaded with dlopen by a host that was not
// linked with the runtime (a plugin, a Python extension): the host's
// pthread_mutex_lock binds to libc before the runtime arrives, so its
// interceptors would never run and a map guarded by a std::mutex would be
// reported. The runtime notices at start-up, says how to fix it in one line,
// and stops with status 64 instead of reporting falsely. Preloaded, the same
// library is checked and quiet.
// RUN: %clangxx_mg -O1 -DPLUGIN -shared -fPIC %s -o %t.so
// RUN: %clangxx_plain -O1 %s -ldl -pthread -o %t.host
// RUN: %expect_exit 64 %t.host %t.so 2>&1 | FileCheck %s --check-prefix=DLOPEN
// RUN: env LD_PRELOAD=%mglib/libmapguard_rt.so %t.host %t.so 2>&1 | FileCheck %s --check-prefix=PRELOAD
// DLOPEN: mapguard: error: the runtime was loaded after the program's own symbols (dlopen?){{.*}}LD_PRELOAD
// DLOPEN-NOT: fatal error
// PRELOAD-NOT: fatal
// PRELOAD: DONE plugin ran: 2000
#ifdef PLUGIN
#include <map>
#include <mutex>
#include <thread>

static std::mutex g_mu;
static std::map<int, int> g_map;

extern "C" int plugin_run() {
  std::thread a([] {
    for (int i = 0; i < 1000; i++) {
      std::lock_guard<std::mutex> lock(g_mu);
      g_map[i] = i;
    }
  });
  std::thread b([] {
    for (int i = 0; i < 1000; i++) {
      std::lock_guard<std::mutex> lock(g_mu);
      g_map[-i - 1] = i;
    }
  });
  a.join();
  b.join();
  return int(g_map.size());
}
#else
#include <dlfcn.h>

#include <cstdio>

int main(int argc, char **argv) {
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    std::printf("dlopen failed: %s\n", dlerror());
    return 1;
  }
  auto run = reinterpret_cast<int (*)()>(dlsym(h, "plugin_run"));
  std::printf("DONE plugin ran: %d\n", run());
  return 0;
}
#endif
