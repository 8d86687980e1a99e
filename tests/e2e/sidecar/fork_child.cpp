// A traced program forks, and each child goes on using maps: the children
// must run as they do untraced. The runtime's probe sites are 1-byte nops;
// with 5-byte ones, this kernel's uprobe optimization patched a hit probe
// into a call to a trampoline page the fork child does not have, and every
// child died of SIGSEGV at its first probe (100 of 100 here).
// RUN: %clangxx_mg -O1 %s -o %t
// RUN: %sidecar -- %t 50 2>&1 | FileCheck %s
// CHECK-NOT: FAILED
// CHECK: DONE forks=50 bad=0
// CHECK: mapguard-sidecar: the program exited with status 0
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <unordered_map>

int main(int argc, char **argv) {
  const int forks = argc > 1 ? atoi(argv[1]) : 50;
  std::unordered_map<int, int> table;
  std::map<int, int> tree;
  int bad = 0;
  for (int f = 0; f < forks; f++) {
    table[f] = f;  // probes hit in the parent before each fork
    tree[f] = f;
    pid_t pid = fork();
    if (pid == 0) {
      table[-1] = 1;
      tree[-1] = 1;
      _exit(table.count(f) && tree.count(-1) ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::printf("FAILED: child %d status 0x%x\n", f, status);
      bad++;
    }
  }
  std::printf("DONE forks=%d bad=%d\n", forks, bad);
  return bad != 0;
}
