#!/usr/bin/env python3
"""Instructions mapguard adds to one owned map call: a loop of
unordered_map::find on a thread-private map (bench/owned_find.cpp) at -O2,
counted by callgrind at two sizes and differenced. Prints native, the
inlined fast path (the default at -O1 and above) and fast-path=off, each
under detect=overlap and detect=hb; then what the instrumentation costs in
code: the .text of bench/workloads.cpp at -O2, plain, inlined and calls.

  python3 bench/instructions.py [--build build]

Valgrind 3.19 cannot read clang's DWARF 5, so the binaries are built
without debug info and linked against a copy of the runtime stripped of it."""
import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = (100000, 200000)


def sh(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"instructions: {' '.join(cmd[:3])} ... failed: {r.stderr.strip()[-800:]}")
    return r


def count(binary, n, options):
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", binary, str(n)],
                       capture_output=True, text=True, env=dict(os.environ, MAPGUARD_OPTIONS=options))
    found = [l for l in r.stderr.splitlines() if "Collected :" in l]
    if r.returncode != 0 or not found:
        sys.exit(f"instructions: callgrind of {binary} failed: {r.stderr.strip()[-800:]}")
    return int(found[-1].split(":")[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--clang", default="clang++-19")
    args = ap.parse_args()
    lib = os.path.join(os.path.abspath(args.build), "lib")
    if not os.path.exists(os.path.join(lib, "mapguard.so")):
        sys.exit(f"instructions: no {lib}/mapguard.so: build first (bash scripts/build.sh), or pass --build DIR")
    src = os.path.join(ROOT, "bench", "owned_find.cpp")
    with tempfile.TemporaryDirectory() as tmp:
        sh(["objcopy", "--strip-debug", os.path.join(lib, "libmapguard_rt.so"), os.path.join(tmp, "libmapguard_rt.so")])
        common = [args.clang, "-std=c++20", "-O2", src]
        bins = {"native": os.path.join(tmp, "native")}
        sh(common + ["-o", bins["native"]])
        for name, extra in (("inline", []), ("calls", ["-fplugin-arg-mapguard-fast-path=off"])):
            bins[name] = os.path.join(tmp, name)
            sh(common + [f"-fplugin={lib}/mapguard.so", *extra, f"-I{ROOT}/runtime/include", f"-L{tmp}",
                         f"-Wl,-rpath,{tmp}", "-lmapguard_rt", "-o", bins[name]])
        per = {}
        for label, b, opts in (("native", "native", ""), ("overlap", "inline", "detect=overlap"),
                               ("hb", "inline", "detect=hb"), ("overlap, fast-path=off", "calls", "detect=overlap"),
                               ("hb, fast-path=off", "calls", "detect=hb")):
            a, c = (count(bins[b], n, opts) for n in SIZES)
            per[label] = (c - a) / (SIZES[1] - SIZES[0])
        text = {}
        work = os.path.join(ROOT, "bench", "workloads.cpp")
        for kind, extra in (("plain", []), ("inlined", [f"-fplugin={lib}/mapguard.so"]),
                            ("fast-path=off", [f"-fplugin={lib}/mapguard.so", "-fplugin-arg-mapguard-fast-path=off"])):
            obj = os.path.join(tmp, "w.o")
            sh([args.clang, "-std=c++20", "-O2", "-c", work, "-o", obj, f"-I{ROOT}/runtime/include"] + extra)
            out = sh(["size", "-A", obj]).stdout
            text[kind] = sum(int(l.split()[1]) for l in out.splitlines() if l.startswith(".text"))
    native = per["native"]
    print(f"instructions per owned find (callgrind, -O2, {SIZES[0]} and {SIZES[1]} finds differenced):")
    print(f"  native {native:.1f}")
    for label, v in per.items():
        if label != "native":
            print(f"  {label}: +{v - native:.1f}")
    print(".text of bench/workloads.cpp at -O2: " +
          ", ".join(f"{k} {v} bytes ({v / text['plain']:.2f}x)" for k, v in text.items()))


if __name__ == "__main__":
    main()
