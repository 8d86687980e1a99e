// Report options: JSON output, log_path, suppressions (map:, fun:, src:,
// wildcards, anchors, comments), print_suppressions, dedup with
// halt_on_error=0, strip_path_prefix, help, and their bad-input cases.
// RUN: %clangxx_mg -O1 %s -o %t
//
// JSON: one object per line, validated and checked field by field.
// RUN: env MAPGUARD_OPTIONS=format=json %expect_exit 66 %t 2> %t.json
// RUN: python3 %S/../Inputs/check_json.py %t.json concurrent-map-writes "std::unordered_map<int, int, mg_test::BlockingHash>" 'registry' put_entry
//
// log_path: the report goes to <path>.<pid>, nothing to stderr.
// RUN: rm -rf %t.logs && mkdir -p %t.logs
// RUN: env MAPGUARD_OPTIONS=log_path=%t.logs/report %expect_exit 66 %t 2> %t.stderr
// RUN: not grep "fatal error" %t.stderr
// RUN: cat %t.logs/report.* | FileCheck %s --check-prefix=TEXT
// RUN: env MAPGUARD_OPTIONS=log_path=/nonexistent-dir/x %expect_exit 64 %t 2>&1 | FileCheck %s --check-prefix=BADLOG
// log_path=stdout / stderr (as sanitizers accept) and /dev/ paths are used as
// they are; a clean run creates no file at all.
// RUN: env MAPGUARD_OPTIONS=log_path=stdout %expect_exit 66 %t 2>/dev/null | FileCheck %s --check-prefix=TEXT
// RUN: env MAPGUARD_OPTIONS=log_path=/dev/stdout %expect_exit 66 %t 2>/dev/null | FileCheck %s --check-prefix=TEXT
// RUN: env MAPGUARD_OPTIONS=log_path=stderr %expect_exit 66 %t 2>&1 >/dev/null | FileCheck %s --check-prefix=TEXT
// RUN: rm -rf %t.clean && mkdir -p %t.clean && env MAPGUARD_OPTIONS=log_path=%t.clean/report %t none
// RUN: ls %t.clean | count 0
//
// halt_on_error=0 with format=json: every line of the stream is JSON, the
// last one the summary, so jq reads it whole.
// RUN: env MAPGUARD_OPTIONS=format=json:halt_on_error=0:dedup=0:report_wait_ms=200 %expect_exit 66 %t twice 2> %t.stream.json
// RUN: jq -s -c '[length >= 3, .[0].rule, .[-1].mapguard_summary, .[-1].exit_status]' %t.stream.json | FileCheck %s --check-prefix=JQ
// JQ: [true,"map-writes",1,66]
//
// Booleans take 1/0, true/false, yes/no, and the error says so.
// RUN: env MAPGUARD_OPTIONS=halt_on_error=no:report_wait_ms=200 %expect_exit 66 %t 2>&1 | FileCheck %s --check-prefix=TEXT
// RUN: env MAPGUARD_OPTIONS=halt_on_error=maybe %expect_exit 64 %t 2>&1 | FileCheck %s --check-prefix=BADBOOL
// BADBOOL: mapguard: error: option 'halt_on_error' is a boolean: 1/0, true/false or yes/no, got 'maybe'
//
// A suppressions "file" that is a FIFO is refused at once, not waited on.
// RUN: rm -f %t.fifo && mkfifo %t.fifo
// RUN: env MAPGUARD_OPTIONS=suppressions=%t.fifo %expect_exit 64 %t 2>&1 | FileCheck %s --check-prefix=FIFO
// FIFO: mapguard: error: suppressions file {{.*}}.fifo{{.*}}not a regular file
//
// Suppressions of each kind silence the report; the program runs to the end.
// RUN: printf '# known race, tracked in BUG-123\nmap:std::unordered_map<int, int, mg_test::Blocking*>\n' > %t.map.supp
// RUN: env MAPGUARD_OPTIONS=suppressions=%t.map.supp:print_suppressions=1 %t 2>&1 | FileCheck %s --check-prefix=SUPPRESSED -DRULE='map:std::unordered_map<int, int, mg_test::Blocking*>'
// RUN: printf 'fun:^put_entry(\n' > %t.fun.supp
// RUN: env MAPGUARD_OPTIONS=suppressions=%t.fun.supp:print_suppressions=1 %t 2>&1 | FileCheck %s --check-prefix=SUPPRESSED -DRULE='fun:^put_entry('
// RUN: printf 'src:options.cpp$\n' > %t.src.supp
// RUN: env MAPGUARD_OPTIONS=suppressions=%t.src.supp:print_suppressions=1 %t 2>&1 | FileCheck %s --check-prefix=SUPPRESSED -DRULE='src:options.cpp$'
// A rule that matches nothing leaves the report alone:
// RUN: printf 'fun:^no_such_function$\n' > %t.none.supp
// RUN: env MAPGUARD_OPTIONS=suppressions=%t.none.supp %expect_exit 66 %t 2>&1 | FileCheck %s --check-prefix=TEXT
// Bad suppression files: one line naming the problem, exit 64.
// RUN: printf 'map:ok\nfunc:typo\n' > %t.bad.supp
// RUN: env MAPGUARD_OPTIONS=suppressions=%t.bad.supp %expect_exit 64 %t 2>&1 | FileCheck %s --check-prefix=BADSUPP
// RUN: printf 'no colon here\n' > %t.bad2.supp
// RUN: env MAPGUARD_OPTIONS=suppressions=%t.bad2.supp %expect_exit 64 %t 2>&1 | FileCheck %s --check-prefix=BADSUPP2
// RUN: env MAPGUARD_OPTIONS=suppressions=%t.missing %expect_exit 64 %t 2>&1 | FileCheck %s --check-prefix=NOSUPP
//
// halt_on_error=0 with dedup: the same pair is reported once, the program
// finishes, and the exit status still says a race was found.
// RUN: env MAPGUARD_OPTIONS=halt_on_error=0:report_wait_ms=200 %expect_exit 66 %t twice 2>&1 | FileCheck %s --check-prefix=DEDUP
// RUN: env MAPGUARD_OPTIONS=halt_on_error=0:dedup=0:report_wait_ms=200 %expect_exit 66 %t twice 2>&1 | FileCheck %s --check-prefix=NODEDUP
//
// strip_path_prefix and help
// RUN: env MAPGUARD_OPTIONS=strip_path_prefix=%S/ %expect_exit 66 %t 2>&1 | FileCheck %s --check-prefix=STRIP
// RUN: env MAPGUARD_OPTIONS=help=1 %t none 2>&1 | FileCheck %s --check-prefix=HELP
// RUN: env MAPGUARD_OPTIONS=format=xml %expect_exit 64 %t 2>&1 | FileCheck %s --check-prefix=BADFORMAT
//
// TEXT: fatal error: concurrent map writes
// TEXT: SUMMARY: mapguard: concurrent map writes
// BADLOG: mapguard: error: cannot create log_path file '/nonexistent-dir/x.{{[0-9]+}}': No such file or directory
// SUPPRESSED-NOT: fatal error
// SUPPRESSED-DAG: DONE
// SUPPRESSED-DAG: mapguard: suppression [[RULE]] matched 1 report
// BADSUPP: mapguard: error: suppressions file '{{.*}}bad.supp' line 2: unknown kind 'func' (kinds: map, fun, src)
// BADSUPP2: mapguard: error: suppressions file '{{.*}}bad2.supp' line 1: expected KIND:PATTERN
// NOSUPP: mapguard: error: suppressions file '{{.*}}.missing': No such file or directory
// DEDUP-COUNT-1: fatal error: concurrent map writes
// DEDUP-DAG: DONE
// DEDUP-DAG: mapguard: 1 report; exiting with status 66
// NODEDUP: fatal error: concurrent map writes
// NODEDUP: fatal error: concurrent map writes
// NODEDUP: mapguard: 2 reports; exiting with status 66
// STRIP: Write (insert_or_assign) by thread T2 {{.*}} at options.cpp:
// HELP: mapguard options
// HELP: suppressions
// HELP: halt_on_error
// BADFORMAT: mapguard: error: option 'format' must be text, json or sarif, got 'xml'
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "test_sync.h"

std::unordered_map<int, int, mg_test::BlockingHash> registry;

__attribute__((noinline)) void put_entry(int k) { registry.insert_or_assign(k, 1); }

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "once";
  if (strcmp(mode, "none") != 0) {
    int rounds = strcmp(mode, "twice") == 0 ? 2 : 1;
    for (int r = 0; r < rounds; r++) {
      mg_test::g_inside.store(false);
      mg_test::race([] { put_entry(mg_test::kBlockKey); }, [] { put_entry(3); });
    }
  }
  std::printf("DONE\n");
}
