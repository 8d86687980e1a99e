#!/usr/bin/env python3
"""check_dashboard.py DASHBOARD.json SESSION_OUTPUT

Every metric the Grafana dashboard (docs/grafana-mapguard.json) queries is
one the sidecar served in the session (its 'metrics: NAME{...} VALUE' lines):
a renamed metric fails here, not on a user's empty panel."""
import json
import re
import sys

dash = json.load(open(sys.argv[1]))
served = set()
for line in open(sys.argv[2]):
    if line.startswith("metrics: mapguard_"):
        served.add(re.match(r"metrics: ([a-zA-Z_:][a-zA-Z0-9_:]*)", line).group(1))
queried = set()
for panel in dash["panels"]:
    for t in panel.get("targets", []):
        queried.update(re.findall(r"\bmapguard_[a-z_]+", t["expr"]))
for v in dash["templating"]["list"]:
    if isinstance(v.get("query"), str):
        queried.update(re.findall(r"\bmapguard_[a-z_]+", v["query"]))
missing = sorted(queried - served)
if missing:
    sys.exit(f"dashboard: queries metrics the sidecar does not serve: {', '.join(missing)}")
print(f"dashboard: all {len(queried)} metrics it queries are served")
