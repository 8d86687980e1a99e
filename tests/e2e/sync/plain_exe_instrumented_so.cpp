// A plain executable (no plugin, no runtime on its link line) linked against
// an instrumented shared library: the runtime arrives as that library's
// dependency, after libc, so the program's locks bind to libc and mapguard
// cannot see them. It stops before main with one line (status 64) that names
// the library and both fixes; with either fix the program runs checked and,
// being correct, quiet. (Before, the line said "dlopen?" and "fatal".)
// RUN: mkdir -p %t.dir && %clangxx_mg -O1 -DLIBRARY -shared -fPIC %s -o %t.dir/libinst.so
// RUN: %clangxx_plain -O1 %s -L%t.dir -Wl,-rpath,%t.dir -linst -pthread -o %t.plain
// RUN: %clangxx_plain -O1 %s -L%t.dir -Wl,-rpath,%t.dir -linst %{mglink} -o %t.linked
// RUN: %expect_exit 64 %t.plain 2>&1 | FileCheck %s --check-prefix=PLAIN
// RUN: env LD_PRELOAD=%mglib/libmapguard_rt.so %t.plain 2>&1 | FileCheck %s --check-prefix=CHECKED
// RUN: %t.linked 2>&1 | FileCheck %s --check-prefix=CHECKED
// PLAIN: mapguard: error: the runtime came in as a dependency of {{.*}}libinst.so, after libc, so it cannot see the program's locks; link the executable itself with the runtime (pkg-config --libs mapguard) or run it with LD_PRELOAD={{.*}}libmapguard_rt.so
// PLAIN-NOT: DONE
// CHECKED-NOT: fatal error
// CHECKED-NOT: mapguard: error
// CHECKED: DONE
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#ifdef LIBRARY
std::map<int, int> g;
std::mutex mu;
void lib_add(int k) {
  std::lock_guard<std::mutex> lock(mu);
  g[k] = k;
}
#else
void lib_add(int k);
int main() {
  std::thread a([] {
    for (int i = 0; i < 1000; i++) lib_add(i);
  });
  for (int i = 0; i < 1000; i++) lib_add(-i);
  a.join();
  std::puts("DONE");
}
#endif
