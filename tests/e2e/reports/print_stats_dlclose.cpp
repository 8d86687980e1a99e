// print_stats at exit reads data of instrumented code: the call sites named
// in map records and each link unit's table of inline copies. A library
// that was unloaded (dlclose) before the exit took that data with it, and
// another library may be loaded at its address. The records of its maps
// are still listed, without the gone text; its table is left out, and the
// library loaded in its place is counted once, as itself.
// Before: SIGSEGV at exit (a record's site), or another library's machine
// code printed as a function name and counted as a table.
// RUN: %clangxx_mg -O1 -DLIB_A -shared -fPIC %s -o %t.a.so
// RUN: %clangxx_mg -O1 -DLIB_B -shared -fPIC %s -o %t.b.so
// RUN: %clangxx_mg -O1 %s -ldl -o %t
// RUN: env MAPGUARD_OPTIONS=print_stats=1:stats_maps=0 %t %t.a.so %t.b.so 2>&1 | FileCheck %s
// RUN: env MAPGUARD_OPTIONS=print_stats=1:stats_maps=0:format=json %t %t.a.so %t.b.so 2>&1 | FileCheck %s --check-prefix=JSON
// CHECK: from a: 1, from b: 2
// CHECK-DAG: Map <unknown: first used by a library unloaded since> at
// CHECK-DAG: Map std::map<int, int> 'm' at
// CHECK: inline functions with an instrumented copy: {{[1-9][0-9]*}}; 0 of them
// CHECK-NOT: inline functions
// CHECK: maps in all
// JSON: "type":"<unknown: first used by a library unloaded since>"
// JSON: {"mapguard_inline_copies":{"instrumented":{{[1-9][0-9]*}},"plain_by_address":0,"names":[]}}
#include <map>
#include <string>

#if defined(LIB_A)
// A map that outlives nothing: created, used and destroyed in the library.
template <typename K>
inline int fill(std::map<K, int> &m) {
  m[K()] = 1;
  return int(m.size());
}
extern "C" int run() {
  std::map<std::string, int> m;
  return fill(m);
}
#elif defined(LIB_B)
// Padding so that b's table can land where a's was.
static const char kPad[0x30000] = {1};
template <typename K>
inline int fill2(std::map<K, int> &m) {
  m[K()] = 2;
  m[K() + 1] = 2;
  return int(m.size()) + kPad[0] - 1;
}
extern "C" int run() {
  std::map<int, int> m;
  return fill2(m);
}
#else
#include <dlfcn.h>

#include <cstdio>

int main(int argc, char **argv) {
  void *a = dlopen(argv[1], RTLD_NOW);
  if (!a) return std::printf("dlopen: %s\n", dlerror()), 1;
  int from_a = reinterpret_cast<int (*)()>(dlsym(a, "run"))();
  dlclose(a);
  void *b = dlopen(argv[2], RTLD_NOW);
  if (!b) return std::printf("dlopen: %s\n", dlerror()), 1;
  int from_b = reinterpret_cast<int (*)()>(dlsym(b, "run"))();
  std::printf("from a: %d, from b: %d\n", from_a, from_b);
  std::fflush(stdout);
  return 0;
}
#endif
