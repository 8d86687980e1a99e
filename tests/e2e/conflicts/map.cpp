// Every conflict kind, overlapping and unsynchronized, on std::map, at -O0 and -O2. The program and the
// checks are shared by all container families: see Inputs/.
// RUN: %clangxx_mg -O0 -DFAMILY_map %S/../Inputs/conflict_program.cpp -o %t.O0
// RUN: %clangxx_mg -O2 -DFAMILY_map %S/../Inputs/conflict_program.cpp -o %t.O2
// RUN: %expect_exit 66 %t.O0 writes 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=WRITES %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O0 read-write 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=READWRITE %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O0 write-read 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=WRITEREAD %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O0 iterate-write 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=ITERWRITE %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O0 write-iterate 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=WRITEITER %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O2 writes 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=WRITES %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O2 read-write 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=READWRITE %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O2 write-read 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=WRITEREAD %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O2 iterate-write 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=ITERWRITE %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O2 write-iterate 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=WRITEITER %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O0 unsync-writes 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=UNSYNCWRITES %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O0 unsync-read-write 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=UNSYNCREADWRITE %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O0 unsync-write-read 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=UNSYNCWRITEREAD %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O0 unsync-iterate-write 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=UNSYNCITERWRITE %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O2 unsync-writes 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=UNSYNCWRITES %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O2 unsync-read-write 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=UNSYNCREADWRITE %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O2 unsync-write-read 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=UNSYNCWRITEREAD %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// RUN: %expect_exit 66 %t.O2 unsync-iterate-write 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=UNSYNCITERWRITE %{marks} -DMAPTYPE='std::map<int, int, BlockingLess>'
// detect=overlap (Go parity) does not see races that never overlap:
// RUN: env MAPGUARD_OPTIONS=detect=overlap %t.O2 unsync-writes 2>&1 | FileCheck %S/../Inputs/conflict_checks.txt --check-prefix=OVERLAPONLY
