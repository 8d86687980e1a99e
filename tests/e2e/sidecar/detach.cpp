// Ctrl-C (SIGINT) on a sidecar attached with --pid: it prints its summary,
// detaches and exits 0; the traced program is not disturbed and runs on to
// its normal end.
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: python3 %S/Inputs/sidecar_session.py detach --sidecar %sidecar -- %t 2>&1 | FileCheck %s
// CHECK: mapguard-sidecar: attached to pid {{[0-9]+}}
// CHECK: mapguard-sidecar: stopped by SIGINT; detached, the process goes on
// CHECK: cross-check: the kernel saw 0 conflicts, the runtime reported 0: they agree
// CHECK: session: program exited 0, sidecar exited 0
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <unistd.h>

int main(int argc, char **argv) {
  std::map<int, int> m;
  std::printf("READY %d\n", int(getpid()));
  std::fflush(stdout);
  std::string go = argv[1];
  while (!std::ifstream(go)) {
    m[int(m.size())] = 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (int i = 0; i < 1000; i++) m[i] = i;
  return m.size() >= 1000 ? 0 : 1;
}
