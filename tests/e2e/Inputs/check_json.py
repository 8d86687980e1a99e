#!/usr/bin/env python3
"""check_json.py FILE KIND MAPTYPE MAPNAME FUNCTION: FILE holds exactly one JSON
report (one object per line) with the given kind, map and current function."""
import json
import sys

path, kind, map_type, map_name, function = sys.argv[1:6]
lines = [l for l in open(path) if l.strip()]
assert len(lines) == 1, f"expected one JSON line, got {len(lines)}: {lines!r}"
r = json.loads(lines[0])
assert r["mapguard_report"] == 1, r
assert r["kind"] == kind, r["kind"]
assert r["map"]["type"] == map_type, r["map"]["type"]
assert r["map"]["name"] == map_name, r["map"]["name"]
assert r["map"]["address"].startswith("0x"), r["map"]
for side in ("access", "other"):
    a = r[side]
    assert a["location"]["line"] > 0 and a["location"]["file"].endswith(".cpp"), a["location"]
    assert a["location"]["function"].startswith(function), a["location"]
    assert a["thread"]["id"].startswith("T") and a["thread"]["tid"] > 0, a["thread"]
    assert a["stack"] and any(f["function"].startswith(function) for f in a["stack"]), a["stack"]
assert r["access"]["role"] == "current" and r["other"]["role"] == "in_progress"
assert r["access"]["kind"] == "write" and r["other"]["kind"] == "write"
print("json ok")
