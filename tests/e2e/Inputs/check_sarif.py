#!/usr/bin/env python3
"""check_sarif.py RUN1 RUN2 RUN3: the mapguard SARIF logs have the expected
shape; RUN1 and RUN2 (the same race) have the same fingerprint; RUN3 has
more results, the first with that same fingerprint."""
import json
import os
import sys

def load(path):
    with open(path) as f:
        log = json.load(f)
    assert log["version"] == "2.1.0", log.get("version")
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    # One stable rule per kind of conflict, whether the accesses overlapped or not.
    assert ids == ["map-writes", "map-read-write", "map-iteration-write"], ids
    root = run["originalUriBaseIds"]["SRCROOT"]["uri"]
    assert root.startswith("file:///") and root.endswith("/"), root
    # The default source root is the git top-level above the working directory.
    assert os.path.isdir(os.path.join(root[len("file://"):], ".git")), root
    for res in run["results"]:
        assert ids[res["ruleIndex"]] == res["ruleId"], res
        uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri == "tests/e2e/reports/sarif.cpp", f"expected a repository-relative path, got {uri}"
        assert res["relatedLocations"][0]["physicalLocation"]["artifactLocation"]["uri"] == uri
        flows = res["codeFlows"][0]["threadFlows"]
        assert len(flows) == 2 and all(f["locations"] for f in flows), flows
        assert res["partialFingerprints"]["mapguardConflict/v1"]
    return run["results"]

r1, r2, r3 = (load(p) for p in sys.argv[1:4])
assert len(r1) == 1 and len(r2) == 1, (len(r1), len(r2))
assert r1[0]["ruleId"] == "map-writes", r1[0]["ruleId"]
fp = lambda r: r["partialFingerprints"]["mapguardConflict/v1"]
assert fp(r1[0]) == fp(r2[0]), (fp(r1[0]), fp(r2[0]))
assert len(r3) >= 2 and fp(r3[0]) == fp(r1[0]), [fp(r) for r in r3]
assert "open_session" in r1[0]["message"]["text"] or "erase" in r1[0]["message"]["text"], r1[0]["message"]
print("sarif ok")
