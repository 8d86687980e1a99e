// valgrind on a mapguard program: Debian 12's valgrind (3.19) aborted on
// every mapguard binary ("Possibly corrupted debuginfo file") because it
// cannot read the DWARF 5 that clang 19 writes by default, and the runtime
// carried it. The runtime is built with DWARF 4 now; a program compiled with
// -gdwarf-4 runs under memcheck with no error, and a race is still reported.
// RUN: %clangxx_mg_nog -gdwarf-4 -O1 %S/../../../examples/fixed_registry.cpp -o %t.fixed
// RUN: %clangxx_mg_nog -gdwarf-4 -O1 %S/../../../examples/racy_registry.cpp -o %t.racy
// RUN: valgrind -q --error-exitcode=9 %t.fixed 2>&1 | FileCheck %s --check-prefix=FIXED
// RUN: %expect_exit 66 valgrind -q --error-exitcode=9 %t.racy 2>&1 | FileCheck %s --check-prefix=RACY
// FIXED-NOT: debuginfo
// FIXED-NOT: fatal error
// FIXED: registered {{[0-9]+}} plugins
// FIXED-NOT: ==
// RACY-NOT: debuginfo
// RACY: fatal error: {{concurrent|unsynchronized}} map writes [map-writes]
// RACY: SUMMARY: mapguard
