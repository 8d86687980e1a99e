#!/usr/bin/env python3
"""same_advice.py SIDECAR_JSON STATS_LOG_PREFIX MAP_NAME PATTERN

The sidecar's advice (from the kernel's view) and print_stats's (from the
runtime's, format=json in log files STATS_LOG_PREFIX.*) for the map named
MAP_NAME: both must name PATTERN and give the same advice text."""
import glob
import json
import sys

sidecar_json, log_prefix, name, pattern = sys.argv[1:5]
with open(sidecar_json) as f:
    maps = [m for m in json.load(f)["maps"] if m["name"] == name]
stats = []
for path in glob.glob(log_prefix + ".*"):
    with open(path) as f:
        stats += [json.loads(l)["mapguard_stats"] for l in f if l.startswith('{"mapguard_stats":')]
stats = [s for s in stats if s["name"] == name]
if len(maps) != 1 or len(stats) != 1:
    sys.exit(f"same_advice: map '{name}': {len(maps)} in the sidecar's summary, {len(stats)} in print_stats")
k, r = maps[0], stats[0]
for who, m in (("sidecar", k), ("print_stats", r)):
    if m["pattern"] != pattern:
        sys.exit(f"same_advice: {who} says '{m['pattern']}' ({m['summary']}), expected '{pattern}'")
if k["advice"] != r["advice"] or k["summary"] != r["summary"]:
    sys.exit(f"same_advice: different advice:\n  sidecar:     {k['summary']} / {k['advice']}\n"
             f"  print_stats: {r['summary']} / {r['advice']}")
print(f"SAME {name} {pattern}: {k['summary']}" + (f" / {k['advice']}" if k["advice"] else ""))
