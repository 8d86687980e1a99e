// The sidecar on a live service (Inputs/live_server.cpp, driven by
// Inputs/live_session.py): attached with --pid to a server that keeps
// serving, its watched-map rate changed on the live process through
// /control, then detached with SIGINT. The counts it exports for the
// attached window are exactly the requests the server served in it (one
// read and one write each); the server serves on after the detach, and
// nothing is reported about this correct program. The request rates before,
// during and after are printed, not asserted (bench/sidecar_live.py
// measures them).
// RUN: %clangxx_mg -O2 %S/Inputs/live_server.cpp -o %t
// RUN: python3 %S/Inputs/live_session.py --sidecar %sidecar --window 0.5 -- %t 2>&1 | FileCheck %s
// CHECK: live: an untraced process of the same runtime exited 0 without waiting
// CHECK: live: watched maps with map_sample 0: 0
// CHECK: live: control: map_sample 1, trace_budget 2000: set in 1 process
// CHECK: live: watched maps with map_sample 1: 64
// CHECK: live: bad control answer: error: map_sample must be a number
// CHECK: live: counts match: served while attached [[N:[0-9]+]], sidecar reads [[N]], writes [[N]]
// CHECK: mapguard-sidecar: stopped by SIGINT; detached, the process goes on
// CHECK: cross-check: the kernel saw 0 conflicts, the runtime reported 0: they agree (the kernel watched 64 of 64 maps
// CHECK: live: requests/s before {{[0-9]+}}, attached {{[0-9]+}}, after {{[0-9]+}}
// CHECK: live: server exited 0, sidecar exited 0
