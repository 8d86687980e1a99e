#!/usr/bin/env python3
"""verify_ir.py CLANGXX PLUGIN OPT ROOT[,ROOT...] FLAGS...: compiles every
end-to-end input under the ROOTs with the plugin to LLVM IR (-O0 and -O2) and runs the LLVM
verifier on the result. Prints one line per failure; exits 1 if any.
The -D flags a test passes on its RUN lines (FAMILY_..., etc.) are used too."""
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile

clangxx, plugin, opt, root = sys.argv[1:5]
flags = sys.argv[5:]
tests = []
for top in root.split(","):
    for d, _, files in os.walk(top):
        if "/Output" in d or d.endswith("Inputs"):
            continue
        for f in sorted(files):
            if f.endswith(".cpp"):
                tests.append(os.path.join(d, f))


def pkg_cflags(line):
    """The flags of each $(pkg-config --cflags PKG) on a RUN line."""
    out = []
    for pkg in re.findall(r"\$\(pkg-config --cflags ([\w.+-]+)\)", line):
        r = subprocess.run(["pkg-config", "--cflags", pkg], capture_output=True, text=True)
        out += r.stdout.split()
    return tuple(out)


def modules(path):
    """(source, flags) for each distinct compile the test's RUN lines do with
    the plugin: the test itself (%s) or a shared program under Inputs/, with
    the -D/-f flags given there."""
    text = open(path, errors="replace").read()
    found = set()
    for line in text.splitlines():
        if "RUN:" not in line or "%clangxx_mg" not in line:
            continue
        tokens = line.split()
        extra = tuple(t for t in tokens if re.match(r"-(D\w+|fopenmp|fPIC|stdlib=libc\+\+|idirafter\S+|std=c\+\+\d+)", t))
        extra += pkg_cflags(line)
        src = path
        for t in tokens:
            if t.endswith(".cpp") and t != "%s":
                src = os.path.normpath(t.replace("%S", os.path.dirname(path)))
        found.add((src, extra))
    return sorted(found) or [(path, ())]


def check(job):
    path, extra, level = job
    with tempfile.TemporaryDirectory() as tmp:
        ll = os.path.join(tmp, "out.ll")
        cmd = [clangxx, *flags, *extra, level, "-S", "-emit-llvm", f"-fplugin={plugin}", path, "-o", ll]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            return f"{path} {' '.join(extra)} {level}: compile failed: {r.stderr.strip().splitlines()[-1:]}"
        v = subprocess.run([opt, "-passes=verify", "-disable-output", ll], capture_output=True, text=True)
        if v.returncode != 0:
            return f"{path} {' '.join(extra)} {level}: verifier: {v.stderr.strip()[:400]}"
    return None


# Flags a test's compile may use that not every supported clang has, with a
# probe and why it may fail: Debian installs one libomp-N-dev at a time (19's),
# so another clang may have no omp.h; clang 16 spells C++23 -std=c++2b.
OPTIONAL_FLAGS = [
    ("-fopenmp", "#include <omp.h>\nint main() { return omp_get_max_threads() < 0; }\n",
     "this clang has no OpenMP headers"),
    ("-std=c++23", "int main() { return 0; }\n", "this clang has no -std=c++23"),
]


def compiles_with(flag, probe):
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.cpp")
        with open(src, "w") as f:
            f.write(probe)
        return subprocess.run([clangxx, flag, "-fsyntax-only", src], capture_output=True).returncode == 0


jobs = sorted({(src, e, lvl) for t in tests for src, e in modules(t) for lvl in ("-O0", "-O2")})
for flag, probe, why in OPTIONAL_FLAGS:
    if compiles_with(flag, probe):
        continue
    for path, _, level in [j for j in jobs if flag in j[1]]:
        print(f"skipped {path} {level}: {why}")
    jobs = [j for j in jobs if flag not in j[1]]
with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    failures = [f for f in pool.map(check, jobs) if f]
for f in failures:
    print(f)
print(f"verified {len(jobs) - len(failures)} of {len(jobs)} modules")
sys.exit(1 if failures else 0)
