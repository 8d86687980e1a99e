#!/usr/bin/env python3
"""check_summary.py FILE [--matched KIND]... [--kernel-conflicts N] [--not-compared N]
[--map-name NAME --min-writes N --min-reads N --threads N]

Checks the sidecar's --json summary: well-formed, the fields its schema
promises (docs/sidecar.md), and the facts a test asks about. Exits non-zero,
naming the first thing that differs."""
import argparse
import json
import sys

ap = argparse.ArgumentParser()
ap.add_argument("file")
ap.add_argument("--matched", action="append", default=[])
ap.add_argument("--kernel-conflicts", type=int)
ap.add_argument("--not-compared", type=int)
ap.add_argument("--map-name")
ap.add_argument("--min-writes", type=int, default=0)
ap.add_argument("--min-reads", type=int, default=0)
ap.add_argument("--threads", type=int)
ap.add_argument("--pattern")
args = ap.parse_args()


def fail(msg):
    print(f"check_summary: {args.file}: {msg}", file=sys.stderr)
    sys.exit(1)


with open(args.file) as f:
    s = json.load(f)
for key in ("target", "runtime", "stop_reason", "seconds", "probe_hits", "events_lost", "maps",
            "conflicts", "cross_check", "heatmap", "read_sample"):
    if key not in s:
        fail(f"missing key '{key}'")
cc = s["cross_check"]
for key in ("agree", "complete", "matched", "kernel_only", "runtime_only", "not_compared"):
    if key not in cc:
        fail(f"cross_check lacks '{key}'")
if not cc["agree"] or cc["kernel_only"] or cc["runtime_only"]:
    fail(f"the cross-check disagrees: {json.dumps(cc)[:400]}")
if s["events_lost"] != 0:
    fail(f"{s['events_lost']} events lost")
kinds = sorted(c["kind"] for c in cc["matched"])
if sorted(args.matched) != kinds:
    fail(f"matched kinds {kinds}, expected {sorted(args.matched)}")
for c in cc["matched"]:
    if not (c["tid"] and c["other_tid"] and c["tid"] != c["other_tid"]):
        fail(f"matched conflict without two threads: {c}")
kernel = [c for c in s["conflicts"]["kernel"] if not c["after_halt"]]
if args.kernel_conflicts is not None and len(kernel) != args.kernel_conflicts:
    fail(f"{len(kernel)} kernel conflicts, expected {args.kernel_conflicts}")
if args.not_compared is not None and len(cc["not_compared"]) != args.not_compared:
    fail(f"{len(cc['not_compared'])} not compared, expected {args.not_compared}")
if args.map_name:
    rows = [m for m in s["maps"] if m["name"] == args.map_name]
    if not rows:
        fail(f"no map named '{args.map_name}' in {[m['name'] for m in s['maps']]}")
    m = rows[0]
    if m["writes"] < args.min_writes or m["reads"] < args.min_reads:
        fail(f"map '{args.map_name}': {m['reads']} reads, {m['writes']} writes; expected at least "
             f"{args.min_reads} and {args.min_writes}")
    if args.threads is not None and m["threads"] != args.threads:
        fail(f"map '{args.map_name}': {m['threads']} threads, expected {args.threads}")
    if args.pattern and m["pattern"] != args.pattern:
        fail(f"map '{args.map_name}': pattern {m['pattern']}, expected {args.pattern}")
print("check_summary: ok")
