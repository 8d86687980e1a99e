// The sidecar's access-pattern advice is print_stats's: the program of
// reports/advice_patterns.cpp, one pattern per mode, runs under the sidecar
// with print_stats=1, and both name the same pattern with the same words
// (the kernel counts lock waits through the runtime's lock_contended probe).
// RUN: %clangxx_mg -O1 %S/../reports/advice_patterns.cpp -o %t
// RUN: rm -f %t.*.log.*
// RUN: env MAPGUARD_OPTIONS=print_stats=1:format=json:log_path=%t.single.log %sidecar --quiet --json %t.single.json -- %t single
// RUN: python3 %S/Inputs/same_advice.py %t.single.json %t.single.log single single-thread | FileCheck %s --check-prefix=SINGLE
// RUN: env MAPGUARD_OPTIONS=print_stats=1:format=json:log_path=%t.published.log %sidecar --quiet --json %t.published.json -- %t published
// RUN: python3 %S/Inputs/same_advice.py %t.published.json %t.published.log published read-only-after-publication
// RUN: env MAPGUARD_OPTIONS=print_stats=1:format=json:log_path=%t.turns.log %sidecar --quiet --json %t.turns.json -- %t turns
// RUN: python3 %S/Inputs/same_advice.py %t.turns.json %t.turns.log turns uncontended
// RUN: env MAPGUARD_OPTIONS=print_stats=1:format=json:log_path=%t.registry.log %sidecar --quiet --json %t.registry.json -- %t one-writer
// RUN: python3 %S/Inputs/same_advice.py %t.registry.json %t.registry.log registry one-writer-iterating-readers
// RUN: env MAPGUARD_OPTIONS=print_stats=1:format=json:log_path=%t.rm.log %sidecar --quiet --json %t.rm.json -- %t read-mostly
// RUN: python3 %S/Inputs/same_advice.py %t.rm.json %t.rm.log read_mostly read-mostly-contended | FileCheck %s --check-prefix=CONTENDED
// RUN: env MAPGUARD_OPTIONS=print_stats=1:format=json:log_path=%t.wh.log %sidecar --quiet --json %t.wh.json -- %t write-heavy
// RUN: python3 %S/Inputs/same_advice.py %t.wh.json %t.wh.log write_heavy write-heavy-contended
// RUN: env MAPGUARD_OPTIONS=print_stats=1:format=json:log_path=%t.hot.log %sidecar --quiet --json %t.hot.json -- %t hot-keys
// RUN: python3 %S/Inputs/same_advice.py %t.hot.json %t.hot.log hot hot-keys
// RUN: env MAPGUARD_OPTIONS=print_stats=1:format=json:log_path=%t.handoff.log %sidecar --quiet --json %t.handoff.json -- %t handoff
// RUN: python3 %S/Inputs/same_advice.py %t.handoff.json %t.handoff.log 'b->items' hand-off
// RUN: env MAPGUARD_OPTIONS=print_stats=1:format=json:log_path=%t.qw.log %sidecar --quiet --json %t.qw.json -- %t queue-wait
// RUN: python3 %S/Inputs/same_advice.py %t.qw.json %t.qw.log results uncontended
// RUN: env MAPGUARD_OPTIONS=print_stats=1:format=json:log_path=%t.phases.log %sidecar --quiet --json %t.phases.json -- %t phases
// RUN: python3 %S/Inputs/same_advice.py %t.phases.json %t.phases.log table hand-off
// The growth audit's key spread, from the kernel (the key_spread probe).
// RUN: %clangxx_mg -O1 %S/../reports/print_stats_growth.cpp -o %t.growth
// RUN: %sidecar --quiet --json %t.growth.json -- %t.growth
// RUN: python3 -c "import json,sys; m={x['name']: x for x in json.load(open(sys.argv[1]))['maps']}; print('SPREAD', m['points']['spread']['keys'], m['points']['spread']['occupied'], m['points']['spread']['longest_chain'], m['points']['spread']['dispersion'] > 4, m['counts']['spread']['longest_chain'], m['reserved']['spread'])" %t.growth.json | FileCheck %s --check-prefix=SPREAD
// SPREAD: SPREAD 3200 16 200 True 1 None
// mapguard::guarded's switches are counted from the kernel (the guarded_switch probe).
// RUN: %clangxx_mg -O1 %S/../plugin/guarded.cpp -o %t.guarded
// RUN: %sidecar --quiet --json %t.guarded.json -- %t.guarded switches
// RUN: python3 -c "import json,sys; g=json.load(open(sys.argv[1]))['guarded_switches']; print('GUARDED', sorted((x['to'], x['count']) for x in g))" %t.guarded.json | FileCheck %s --check-prefix=GUARDED
// GUARDED: GUARDED [('copy-on-write', 1), ('sharded', 1)]
// SINGLE: SAME single single-thread: one thread uses it (1 other only constructed or destroyed it): no lock needed
// CONTENDED: SAME read_mostly read-mostly-contended: read-mostly by 2 threads (threads waited for a lock 20 times)
