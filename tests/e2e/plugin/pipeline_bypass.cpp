// Where IR does not go through the plugin's pass, the user is warned instead
// of silently getting an uninstrumented binary.
// RUN: cd %T && %clangxx_mg -save-temps -O1 -c %s -o %t.o 2>&1 | FileCheck %s
// RUN: %clangxx_mg -Xclang -disable-llvm-passes -O1 -c %s -o %t2.o 2>&1 | FileCheck %s
// RUN: %clangxx_mg -O1 -c %s -o %t3.o 2>&1 | FileCheck %s --allow-empty --check-prefix=NORMAL
// CHECK: warning: mapguard: LLVM passes are disabled here
// NORMAL-NOT: warning: mapguard
#include <map>
int f(std::map<int, int> &m) { return m.count(1); }
