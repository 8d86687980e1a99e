// --pid: the sidecar attaches to a program that is already running (and has
// already used its maps), then sees the race the program runs afterwards and
// agrees with the runtime's report. The sidecar exits 0 (agreement); the
// program exits 66 (the runtime stopped it).
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: python3 %S/Inputs/sidecar_session.py pid --sidecar %sidecar --extra=--full-trace --json %t.json -- %t 2>&1 | FileCheck %s
// RUN: python3 %S/Inputs/check_summary.py %t.json --matched writes --kernel-conflicts 1
// The program's report (its stderr), then the sidecar's (printed after it).
// CHECK: fatal error: concurrent map writes
// CHECK: mapguard-sidecar: attached to pid [[PID:[0-9]+]]
// CHECK: mapguard-sidecar: pid [[PID]] exited
// CHECK: cross-check: the kernel saw 1 conflict, the runtime reported 1: they agree
// CHECK-NEXT: both: concurrent map writes on std::unordered_map<int, int, mg_test::BlockingHash> 'table'
// CHECK: session: program exited 66, sidecar exited 0
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <unordered_map>

#include "test_sync.h"

std::unordered_map<int, int, mg_test::BlockingHash> table;

int main(int argc, char **argv) {
  // Before the sidecar: ordinary use, then say we are ready and wait.
  for (int i = 0; i < 100; i++) table[i] = i;
  std::printf("READY %d\n", int(getpid()));
  std::fflush(stdout);
  std::string go = argv[1];
  while (!std::ifstream(go)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  mg_test::race([] { table.insert({mg_test::kBlockKey, 1}); }, [] { table[7] = 2; });
  return 0;
}
