#!/usr/bin/env python3
"""How often one read region of a map follows another on the same map, and
whether a call sits between them: what merging adjacent read regions in the
pass could save (docs/performance.md).

    python3 bench/adjacent_reads.py BUILD/compile_commands.json [...]

Each compile_commands.json must come from a build configured with the plugin
in its flags (-fplugin=.../mapguard.so). Every C++ translation unit is
compiled again to unoptimized IR (-O0 -S -emit-llvm, where every region is
still a pair of __mapguard_read_begin/end calls) and each function is
scanned in order: a read begin on the same map as the read end before it
(the same pointer, looked through loads and field addresses) is a pair,
counted by whether it is in the same basic block and whether any call other
than debug and lifetime intrinsics lies between.
"""
import collections
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

DEF = re.compile(r"^\s*(%[\w.]+) = (.*)$")
CALL = re.compile(r"\b(?:call|invoke)\b[^@]*@([\w.$]+)\((.*)")
LOAD = re.compile(r"load ptr, ptr (%[\w.]+|@[\w.]+)")
GEP = re.compile(r"getelementptr inbounds [^,]+, ptr (%[\w.]+|@[\w.]+)((?:, i\d+ -?\d+)*)")


def pointer_key(value, defs, depth=0):
    """The same map through different SSA values: -O0 reloads `this` or a
    reference from its stack slot at each use."""
    if depth > 6 or not value.startswith("%") or value not in defs:
        return value
    d = defs[value]
    m = LOAD.match(d)
    if m:
        return ("load", pointer_key(m.group(1), defs, depth + 1))
    m = GEP.match(d)
    if m:
        return ("field", pointer_key(m.group(1), defs, depth + 1), m.group(2))
    return value


def scan_function(body, counts):
    defs = {m.group(1): m.group(2) for m in map(DEF.match, body) if m}
    last_end, call_between, crossed = None, False, False
    for line in body:
        if line and not line.startswith(" "):  # a block label
            crossed = True
            continue
        m = CALL.search(line)
        if not m:
            continue
        callee, args = m.group(1), m.group(2)
        if callee.startswith(("llvm.dbg", "llvm.lifetime")):
            continue
        if callee in ("__mapguard_read_begin", "__mapguard_read_end"):
            key = pointer_key(args.split(",")[0].split()[-1], defs)
            if callee == "__mapguard_read_end":
                last_end, call_between, crossed = key, False, False
                continue
            counts["read regions"] += 1
            if key == last_end:
                where = "in a later block" if crossed else "in the same block"
                between = "calls between" if call_between else "no call between"
                counts[f"after a read of the same map {where}, {between}"] += 1
            continue
        if callee.startswith("__mapguard"):
            last_end = None
            continue
        call_between = True


def scan_ir(path, counts):
    body, inside = [], False
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("define"):
                body, inside = [], True
            elif inside and line == "}":
                scan_function(body, counts)
                inside = False
            elif inside:
                body.append(line)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip())
    counts = collections.Counter()
    units = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for db in sys.argv[1:]:
            try:
                with open(db) as f:
                    entries = json.load(f)
            except (OSError, ValueError) as e:
                sys.exit(f"adjacent_reads: {db}: {e}")
            for e in entries:
                if not e["file"].endswith((".cc", ".cpp", ".cxx")):
                    continue
                args = shlex.split(e["command"]) if "command" in e else list(e["arguments"])
                if not any(a.startswith("-fplugin=") and "mapguard" in a for a in args):
                    sys.exit(f"adjacent_reads: {db}: {e['file']} is not compiled with the mapguard plugin")
                cmd, skip = [], False
                for a in args:
                    if skip:
                        skip = False
                    elif a == "-o":
                        skip = True
                    elif not a.startswith("-O"):
                        cmd.append(a)
                units += 1
                out = os.path.join(tmp, f"{units}.ll")
                r = subprocess.run(cmd + ["-O0", "-S", "-emit-llvm", "-o", out], cwd=e["directory"],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    failed += 1
                    print(f"adjacent_reads: {e['file']}: compile failed: {r.stderr.strip()[:300]}",
                          file=sys.stderr)
                    continue
                scan_ir(out, counts)
                os.remove(out)
    print(f"{units} translation units ({failed} failed to compile)")
    for what, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{n:7d}  {what}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
