#!/usr/bin/env python3
"""mapguard's benchmark: every workload built natively, with mapguard
(detect=overlap and detect=hb, one binary) and with ThreadSanitizer, run side
by side in one session. Prints a table of median wall time and peak RSS with
ratios to native, plus the plugin's compile-time ratio.

  bench/run.py                 full run (about a second per native workload),
                               writes docs/performance.md and docs/performance.png
  bench/run.py --smoke         tiny sizes, one run each: checks every variant
                               runs and prints its figures (used by ctest)
  bench/run.py --profile       a perf profile of each workload under detect=hb
                               (where the time goes), written to
                               docs/performance-profile.md
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLANG = "clang++-19"
VARIANTS = ["native", "overlap", "hb", "hb_noprobes", "tsan"]
# The BPF sidecar at its default settings (the runtime counts, the kernel
# watches 1 in 8 maps within a trace budget) runs at the main table's scale
# against the same binary without it (hb). Its --full-trace test mode traps
# into the kernel at every region, so it runs at a smaller scale against
# native at that scale. Both are timed by the workload itself (the sidecar's
# own start-up is not counted).
SIDECAR_FULL_SCALE = 0.005
# A workload whose race is suppressed: the same function named to mapguard
# and to TSan, each in its own suppressions format.
SUPPRESSED = {"suppressed_race": {"mapguard": "fun:suppressed_race\n", "tsan": "race:suppressed_race\n"}}


def workload_env(workload, variant, tmp):
    """The environment of one run: detect mode, and the suppressions file of
    a workload whose race is suppressed."""
    env = dict(os.environ)
    opts = {"overlap": "detect=overlap"}.get(variant, "detect=hb" if variant.startswith(("hb", "sidecar")) else "")
    if workload in SUPPRESSED and variant != "native":
        kind = "tsan" if variant == "tsan" else "mapguard"
        path = os.path.join(tmp, f"{workload}.{kind}.supp")
        with open(path, "w") as f:
            f.write(SUPPRESSED[workload][kind])
        if kind == "tsan":
            env["TSAN_OPTIONS"] = f"suppressions={path}"
        else:
            opts = (opts + ":" if opts else "") + f"suppressions={path}"
    env["MAPGUARD_OPTIONS"] = opts
    return env


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def build(build_dir, out_dir):
    lib = os.path.join(build_dir, "lib")
    src = os.path.join(ROOT, "bench", "workloads.cpp")
    common = [CLANG, "-std=c++20", "-O2", "-g", "-pthread", src]
    bins = {
        "native": os.path.join(out_dir, "native"),
        "mapguard": os.path.join(out_dir, "mapguard"),
        "mapguard_noprobes": os.path.join(out_dir, "mapguard_noprobes"),
        "tsan": os.path.join(out_dir, "tsan"),
    }
    sh(common + ["-o", bins["native"]])
    sh(common + [f"-fplugin={lib}/mapguard.so", f"-I{ROOT}/runtime/include", f"-L{lib}",
                 f"-Wl,-rpath,{lib}", "-lmapguard_rt", "-o", bins["mapguard"]])
    noprobes = os.path.join(lib, "noprobes")
    sh(common + [f"-fplugin={lib}/mapguard.so",
                 f"-fplugin-arg-mapguard-fast-path={noprobes}/mapguard_fast_path.clang{CLANG.rsplit('-', 1)[1]}.bc",
                 f"-I{ROOT}/runtime/include", f"-L{noprobes}",
                 f"-Wl,-rpath,{noprobes}", "-lmapguard_rt", "-o", bins["mapguard_noprobes"]])
    sh(common + ["-fsanitize=thread", "-o", bins["tsan"]])
    return bins


def run_once(binary, workload, scale, env, prefix=()):
    start = time.perf_counter()
    proc = subprocess.Popen(list(prefix) + [binary, workload, str(scale)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, _, rusage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out, err = proc.communicate()
    if proc.returncode not in (0, None) or "checksum" not in out:
        raise SystemExit(f"bench: {' '.join(prefix)} {binary} {workload} failed (status {proc.returncode}): "
                         f"{err.strip()[:500]}")
    elapsed = float(out.split("elapsed")[1].split()[0])
    return wall, rusage.ru_maxrss, elapsed  # seconds, KiB, the workload's own seconds


def live_server(build_dir, tmp, window):
    """The sidecar attached to, and detached from, a running server
    (tests/e2e/sidecar/Inputs/live_session.py): its request rate in each phase."""
    lib = os.path.join(build_dir, "lib")
    src = os.path.join(ROOT, "tests", "e2e", "sidecar", "Inputs", "live_server.cpp")
    server = os.path.join(tmp, "live_server")
    sh([CLANG, "-std=c++20", "-O2", "-g", "-pthread", src, f"-fplugin={lib}/mapguard.so",
        f"-I{ROOT}/runtime/include", f"-L{lib}", f"-Wl,-rpath,{lib}", "-lmapguard_rt", "-o", server])
    out = sh([sys.executable, os.path.join(ROOT, "tests", "e2e", "sidecar", "Inputs", "live_session.py"),
              "--sidecar", os.path.join(build_dir, "bin", "mapguard-sidecar"), "--window", str(window),
              "--", server]).stdout
    line = [l for l in out.splitlines() if l.startswith("live: requests/s")][0].split()
    live = {"before": float(line[3].rstrip(",")), "attached": float(line[5].rstrip(",")),
            "after": float(line[7])}
    print(f"  live server: requests/s before {live['before']:.0f}, attached {live['attached']:.0f}, "
          f"after {live['after']:.0f}", flush=True)
    return live


CALLGRIND_WORKLOAD = "private_maps"
CALLGRIND_CALLS_PER_SCALE = 100000000 * 4  # private_maps: one map call per iteration, 4 threads


def instructions_per_call(build_dir, tmp, bins, scales):
    """Instructions per map call of private_maps under callgrind: native, and
    what mapguard adds (overlap, hb), with the owned fast path inlined (the
    default at -O2) and with fast-path=off (every begin and end a call into
    the runtime). Two scales, so start-up and thread creation cancel out.
    Valgrind 3.19 cannot read clang 19's DWARF 5, so the mapguard binaries
    are linked against a copy of the runtime without debug info."""
    lib = os.path.join(build_dir, "lib")
    stripped = os.path.join(tmp, "stripped")
    os.makedirs(stripped, exist_ok=True)
    sh(["objcopy", "--strip-debug", os.path.join(lib, "libmapguard_rt.so"),
        os.path.join(stripped, "libmapguard_rt.so")])
    binaries = {}
    for name, extra in (("inline", []), ("calls", ["-fplugin-arg-mapguard-fast-path=off"])):
        binaries[name] = os.path.join(tmp, f"mapguard_callgrind_{name}")
        sh([CLANG, "-std=c++20", "-O2", "-g", "-pthread", os.path.join(ROOT, "bench", "workloads.cpp"),
            f"-fplugin={lib}/mapguard.so", *extra, f"-I{ROOT}/runtime/include", f"-L{stripped}",
            f"-Wl,-rpath,{stripped}", "-lmapguard_rt", "-o", binaries[name]])
    counts = {}
    for v, b, opts in (("native", bins["native"], ""),
                       ("overlap", binaries["inline"], "detect=overlap"),
                       ("hb", binaries["inline"], "detect=hb"),
                       ("overlap_calls", binaries["calls"], "detect=overlap"),
                       ("hb_calls", binaries["calls"], "detect=hb")):
        ir = []
        for scale in scales:
            out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                                  b, CALLGRIND_WORKLOAD, str(scale)],
                                 env=dict(os.environ, MAPGUARD_OPTIONS=opts), capture_output=True, text=True)
            found = [l for l in out.stderr.splitlines() if "Collected :" in l]
            if out.returncode != 0 or not found:
                raise SystemExit(f"bench: callgrind of {v} failed: {out.stderr.strip()[-500:]}")
            ir.append(int(found[-1].split(":")[-1]))
        counts[v] = (ir[1] - ir[0]) / ((scales[1] - scales[0]) * CALLGRIND_CALLS_PER_SCALE)
    return counts


def compile_ratio(build_dir, repeats):
    lib = os.path.join(build_dir, "lib")
    tu = os.path.join(ROOT, "tests", "e2e", "plugin", "third_party_headers.cpp")
    base = [CLANG, "-std=c++20", "-O2", "-c", tu, "-o", os.devnull]
    times = {"plain": [], "plugin": []}
    for _ in range(repeats):
        for kind, extra in (("plain", []), ("plugin", [f"-fplugin={lib}/mapguard.so"])):
            start = time.perf_counter()
            sh(base + extra)
            times[kind].append(time.perf_counter() - start)
    plain, plugin = statistics.median(times["plain"]), statistics.median(times["plugin"])
    return plain, plugin


def text_sizes(build_dir, tmp):
    """.text bytes of bench/workloads.cpp at -O2: plain, with the plugin (the
    fast path inlined) and with fast-path=off: what inlining costs in code."""
    lib = os.path.join(build_dir, "lib")
    src = os.path.join(ROOT, "bench", "workloads.cpp")
    sizes = {}
    for kind, extra in (("plain", []), ("inline", [f"-fplugin={lib}/mapguard.so"]),
                        ("calls", [f"-fplugin={lib}/mapguard.so", "-fplugin-arg-mapguard-fast-path=off"])):
        obj = os.path.join(tmp, f"size_{kind}.o")
        sh([CLANG, "-std=c++20", "-O2", "-c", src, "-o", obj] + extra)
        out = subprocess.run(["size", "-A", obj], capture_output=True, text=True, check=True).stdout
        sizes[kind] = sum(int(line.split()[1]) for line in out.splitlines()
                          if line.startswith(".text"))
    return sizes


def main_table(workloads, results):
    """The ratios of every workload to native: time, added time against TSan's, peak RSS."""
    lines = ["| workload | native s | overlap | hb | tsan | hb added time vs tsan | RSS overlap | RSS hb | RSS tsan |",
             "|---|---|---|---|---|---|---|---|---|"]
    for w in workloads:
        n, nr = results[(w, "native")]
        cells = [f"{results[(w, v)][0] / n:.2f}x" for v in ("overlap", "hb", "tsan")]
        hb_added = results[(w, "hb")][0] - n
        tsan_added = results[(w, "tsan")][0] - n
        less = f"{tsan_added / hb_added:.1f}x less" if hb_added > 0 else "n/a"
        rss = [f"{results[(w, v)][1] / nr:.2f}x" for v in ("overlap", "hb", "tsan")]
        lines.append(f"| {w} | {n:.3f} | " + " | ".join(cells) + f" | {less} | " + " | ".join(rss) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--only", help="comma-separated workloads: their table only, side by side "
                                   "(no sidecar, compile-time or code-size runs; docs untouched)")
    args = ap.parse_args()
    if args.profile:
        return profile(args.build)
    scale = 0.01 if args.smoke else 1.0
    repeats = 1 if args.smoke else args.repeats
    if not os.path.exists(os.path.join(args.build, "lib", "mapguard.so")):
        raise SystemExit(f"bench: {args.build}/lib/mapguard.so not found: build mapguard first (scripts/build.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        bins = build(args.build, tmp)
        workloads = sh([bins["native"]]).stdout.split()
        if args.only:
            unknown = set(args.only.split(",")) - set(workloads)
            if unknown:
                raise SystemExit(f"bench: no workload {', '.join(sorted(unknown))} (there are: {' '.join(workloads)})")
            workloads = [w for w in workloads if w in args.only.split(",")]
        results = {}
        sidecar = os.path.join(args.build, "bin", "mapguard-sidecar")
        if not os.path.exists(sidecar):
            raise SystemExit(f"bench: {sidecar} not found: build mapguard first (scripts/build.sh)")
        side_scale = SIDECAR_FULL_SCALE * (0.2 if args.smoke else 1.0)
        for w in workloads:
            # Rounds of every variant in turn, so that a slow phase of this
            # noisy machine hits all variants alike instead of one of them.
            runs = {v: [] for v in VARIANTS}
            for _ in range(repeats):
                for v in VARIANTS:
                    binary = {"overlap": bins["mapguard"], "hb": bins["mapguard"],
                              "hb_noprobes": bins["mapguard_noprobes"]}.get(v, bins.get(v))
                    runs[v].append(run_once(binary, w, scale, workload_env(w, v, tmp)))
            for v in VARIANTS:
                results[(w, v)] = (statistics.median(r[0] for r in runs[v]), max(r[1] for r in runs[v]))
                print(f"  {w:14s} {v:15s} {results[(w, v)][0]:8.3f} s  {results[(w, v)][1] / 1024:7.1f} MiB",
                      flush=True)
            if args.only:
                continue
            # The sidecar columns: the workload's own time. Default settings
            # against hb at the same scale, in rounds with it; --full-trace
            # against native at a small scale.
            hb_own, side_own = [], []
            for _ in range(repeats):
                env = workload_env(w, "hb", tmp)
                hb_own.append(run_once(bins["mapguard"], w, scale, env)[2])
                side_own.append(run_once(bins["mapguard"], w, scale, env, [sidecar, "--quiet", "--"])[2])
            results[(w, "sidecar")] = (statistics.median(side_own) / statistics.median(hb_own), 0)
            print(f"  {w:14s} {'sidecar':15s} {statistics.median(side_own):8.3f} s  "
                  f"({results[(w, 'sidecar')][0]:.2f}x hb without it)", flush=True)
            env = workload_env(w, "native", tmp)
            base = statistics.median(run_once(bins["native"], w, side_scale, env)[2] for _ in range(repeats))
            env = workload_env(w, "hb", tmp)
            t = statistics.median(run_once(bins["mapguard"], w, side_scale, env,
                                           [sidecar, "--quiet", "--full-trace", "--"])[2]
                                  for _ in range(repeats))
            results[(w, "sidecar_full")] = (t / base, 0)
            print(f"  {w:14s} {'sidecar_full':15s} {t:8.3f} s  ({t / base:.1f}x native at scale {side_scale})",
                  flush=True)
        if args.only:
            print()
            print(main_table(workloads, results))
            return
        live = live_server(args.build, tmp, 0.3 if args.smoke else 2.0)
        plain, plugin = compile_ratio(args.build, 1 if args.smoke else 3)
        sizes = text_sizes(args.build, tmp)
        ipc = instructions_per_call(args.build, tmp, bins, (0.0005, 0.001) if args.smoke else (0.002, 0.004))

    table = main_table(workloads, results)
    probe_lines = ["| workload | hb, probes compiled out | hb, probes untraced | untraced probe cost | "
                   "sidecar attached (default), vs hb | sidecar --full-trace, vs native |",
                   "|---|---|---|---|---|---|"]
    for w in workloads:
        n = results[(w, "native")][0]
        off, on = results[(w, "hb_noprobes")][0], results[(w, "hb")][0]
        probe_lines.append(f"| {w} | {off / n:.2f}x | {on / n:.2f}x | {(on - off) / off * 100:+.1f}% | "
                           f"{results[(w, 'sidecar')][0]:.2f}x | {results[(w, 'sidecar_full')][0]:.1f}x |")
    probe_table = "\n".join(probe_lines)
    probe_table += (f"\n\nA live server (tests/e2e/sidecar/Inputs/live_server.cpp), requests per second: "
                    f"{live['before']:.0f} before the sidecar attaches, {live['attached']:.0f} attached "
                    f"({live['before'] / live['attached']:.2f}x slower), {live['after']:.0f} after it "
                    f"detached; the counts it exported for the attached window matched the requests served.")
    print()
    print(table)
    print()
    print(probe_table)
    ipc_line = (f"instructions per map call ({CALLGRIND_WORKLOAD}, callgrind): native {ipc['native']:.0f}, "
                f"overlap +{ipc['overlap'] - ipc['native']:.0f}, hb +{ipc['hb'] - ipc['native']:.0f}; "
                f"fast-path=off: overlap +{ipc['overlap_calls'] - ipc['native']:.0f}, "
                f"hb +{ipc['hb_calls'] - ipc['native']:.0f}")
    print(ipc_line)
    print(f"\ncompile time, template-heavy TU (boost, nlohmann-json, fmt): plain {plain:.2f} s, "
          f"with plugin {plugin:.2f} s, ratio {plugin / plain:.2f}x")
    print("bench: all variants ran")
    if args.smoke:
        return
    print(f"code size, bench/workloads.cpp -O2 .text: plain {sizes['plain']}, inlined fast path "
          f"{sizes['inline']} ({sizes['inline'] / sizes['plain']:.2f}x), fast-path=off {sizes['calls']} "
          f"({sizes['calls'] / sizes['plain']:.2f}x)")
    write_docs(workloads, results, table, probe_table, plain, plugin, ipc, sizes)


def profile(build_dir):
    """perf record of each workload (detect=hb, scale 0.3): the top symbols."""
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        bins = build(build_dir, tmp)
        workloads = sh([bins["native"]]).stdout.split()
        for w in workloads:
            data = os.path.join(tmp, f"{w}.perf")
            env = workload_env(w, "hb", tmp)  # and the suppressions of a suppressed race
            subprocess.run(["perf", "record", "-q", "-F", "1999", "-o", data, bins["mapguard"], w, "0.3"],
                           env=env, check=True, capture_output=True)
            rep = sh(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol"]).stdout
            rows = []
            for line in rep.splitlines():
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.split(None, 3)
                if len(parts) < 4 or not parts[0].endswith("%"):
                    continue
                sym = parts[3].replace("[.] ", "").replace("[k] ", "")
                sym = sym.split("  ")[0].strip()  # perf pads the column with spaces
                if len(sym) > 90:
                    sym = sym[:87] + "..."
                rows.append(f"| {parts[0]} | {parts[1]} | `{sym}` |")
                if len(rows) == 8:
                    break
            sections.append(f"### {w}\n\n| samples | object | symbol |\n|---|---|---|\n" + "\n".join(rows))
            print(f"  profiled {w}", flush=True)
    with open(os.path.join(ROOT, "docs", "performance-profile.md"), "w") as f:
        f.write(f"""# Where the time goes (perf profiles)

`python3 bench/run.py --profile` on {time.strftime('%Y-%m-%d')}: each workload built with the
plugin, run with `MAPGUARD_OPTIONS=detect=hb` at scale 0.3 under `perf record -F 1999`; the eight
hottest symbols by self time. `docs/performance.md` reads these per workload.

""" + "\n\n".join(sections) + "\n")
    print("bench: wrote docs/performance-profile.md")


def write_docs(workloads, results, table, probe_table, plain, plugin, ipc, sizes):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.27
    for i, v in enumerate(("overlap", "hb", "tsan")):
        ratios = [results[(w, v)][0] / results[(w, "native")][0] for w in workloads]
        ax.bar([x + (i - 1) * width for x in range(len(workloads))], ratios, width, label=v)
    ax.axhline(1.1, color="green", linestyle="--", linewidth=1, label="overlap target 1.1x")
    ax.axhline(1.5, color="orange", linestyle="--", linewidth=1, label="hb target 1.5x")
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels(workloads, rotation=15)
    ax.set_ylabel("wall time / native")
    ax.set_yscale("log")
    ax.set_title("mapguard overhead vs ThreadSanitizer (lower is better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(ROOT, "docs", "performance.png"), dpi=110)
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with open(os.path.join(ROOT, "docs", "performance.md"), "w") as f:
        f.write(f"""# Performance

Measured by `bench/run.py` on {time.strftime('%Y-%m-%d')}: {cpu}, {os.cpu_count()} cores,
{platform.platform()}. Each workload is built once natively, once with mapguard (run with
`detect=overlap` and with `detect=hb`) and once with `-fsanitize=thread`, all `-O2 -g` with
clang 19, and run side by side in one session, in rounds of every variant in turn; times are
the median wall time of 3 rounds, RSS the peak resident set. This 2-core VM is noisy: the
contended workloads (`mutex_shared`, `read_mostly`, `sync_heavy`) move by tens of percent from
one run to the next, native included. Ratios are to native. Re-run with `python3 bench/run.py`.

{table}

Compile time of a template-heavy translation unit (boost unordered, nlohmann-json, fmt):
plain {plain:.2f} s, with the plugin {plugin:.2f} s: **{plugin / plain:.2f}x**.

Instructions per map call in `{CALLGRIND_WORKLOAD}` (maps private to each thread, so every
map is owned by its thread: the cheapest path there is), counted by callgrind at two sizes so
start-up cancels out: native **{ipc['native']:.0f}** per iteration (a random key, one `find`,
`operator[]` or `erase`), mapguard adds **{ipc['overlap'] - ipc['native']:.0f}** under
`detect=overlap` and **{ipc['hb'] - ipc['native']:.0f}** under `detect=hb` (targets: 15 and 30)
with the owned fast path inlined (the default at -O1 and above), and
{ipc['overlap_calls'] - ipc['native']:.0f} and {ipc['hb_calls'] - ipc['native']:.0f} with
`-fplugin-arg-mapguard-fast-path=off` (every begin and end a call into the runtime).
Inlining costs code: the `.text` of `bench/workloads.cpp` at -O2 (a file that is little but
map calls) is {sizes['inline'] / sizes['plain']:.2f}x native with it and
{sizes['calls'] / sizes['plain']:.2f}x with `fast-path=off` (about 900 bytes per map call
there, slow-path calls included, placed at the end of the function; 700 before a read also
carried the announced read of a read-shared map). It also costs compile
time: the template-heavy TU above took 6.0 s with `fast-path=off` and 6.4 s with the fast path
inlined (plain 5.6 s; medians of 3 side-by-side runs, 2026-11-30).

![ratios](performance.png)

## Targets and where the time goes

Targets (issue 6): `detect=overlap` ≤ 1.1x, `detect=hb` ≤ 1.5x and at least 5x less added time
than ThreadSanitizer, peak RSS ≤ 1.5x, compile time ≤ 1.15x. The compile-time target is met;
the RSS target everywhere but `shared_ptr_lookup` under `detect=hb` (13 MiB native, 31 MiB:
a SyncVar, one cache line with its lock and clock, per `shared_ptr` control block, 20,000
of them, each a synchronization object); the time targets are met only by `iteration`. `python3 bench/run.py --profile` records a
`perf` profile of every workload under `detect=hb` (docs/performance-profile.md); what it shows,
and what was changed because of it:

- `private_maps`, `word_count` (no sharing; a few nanoseconds per native map call). Before,
  73% of `__mapguard_read_begin`'s samples and 69% of `__mapguard_read_end`'s sat on the atomic
  read-modify-write of the map's state word, and 74% of `HbOnWrite`'s on the per-map
  happens-before lock. Now a map used by one thread is *owned* by it (no state-word update at
  all; a second thread revokes ownership with a signal handshake), the happens-before
  same-epoch checks are inline (a write that finds its own epoch takes no lock; one that
  does not takes the map's lock if the map has a read set: a program that goes on after a
  report has racing regions, and emptying the set without the lock corrupted the runtime), the USDT semaphores every access reads have a cache line of
  their own (they shared one with the arena lock), and each thread's state is cache-line
  aligned: 22% of `__mapguard_read_begin`'s samples were on loading the thread's slot, from a
  line the previous thread's state wrote on every read (false sharing). The read and write
  entry points now handle the owned case themselves (push, owner check, pop, same-epoch
  check) and tail-call the full path for anything else, so the common case saves no
  registers: 169 and 186 added instructions per map call became about 139 and 148, and
  `private_maps` went from about 1.55 s to 1.25 s (overlap) and 1.62 s to 1.42 s (hb) at scale
  0.5 in a side-by-side run of the two runtimes. That owned path is now also compiled to
  bitcode and inlined into the instrumented code (docs/design.md), which removes the two
  calls, their argument set-up and the PLT: {ipc['overlap_calls'] - ipc['native']:.0f} and
  {ipc['hb_calls'] - ipc['native']:.0f} added instructions became
  {ipc['overlap'] - ipc['native']:.0f} and {ipc['hb'] - ipc['native']:.0f} (the line above). What remains, read off the
  inlined code of `private_maps`, is about 50 instructions per begin and 45 per end, and it is
  the protocol itself: the shadow lookup and the thread pointer (each a GOT load and a load,
  done again at the end because the user's code in between may change them), the owner check
  before and after the push (B3/E3 of the ownership protocol), six stores to publish the
  region for a revoker or a report, the check-then-insert hint's three stores, the two flag
  tests and two probe semaphores, and the happens-before epoch. 15/30 would need a region
  that is not published on the thread's stack, which the ownership protocol's revoker and
  the reports depend on; no design that keeps them was found.
- Merging adjacent read regions of one map (`if (m.count(k)) return m.at(k);` as one
  region) is not built, for lack of anything to merge. A merged region must not span anything
  that may synchronize: a region left open across an unlock overlaps the next lock holder's
  write, a false report. So only pairs with no call between them qualify, and at the pass's
  place in the pipeline (before inlining) key construction, iterator comparison and cleanups
  are calls. Counted by `bench/adjacent_reads.py` in the unoptimized IR of the library code
  of re2, leveldb, zeromq3 and log4cplus (231 translation units compiled with the plugin, each
  function scanned for a read region that begins after one on the same map ended): of 193
  read regions, 2 follow a read of the same map in the same block and 7 in a later block, all
  with calls between, and 1 (in leveldb's db_impl.cc) follows one in a later block with no
  call between. Merging would save at most that one region of 193, and its report would name
  one call for two.
- `mutex_shared`: most samples are in the kernel (futex wait and wake) and in glibc's mutex
  slow paths: the work mapguard adds inside each critical section (region bookkeeping, the
  state-word update of the shared map, the vector-clock join at lock and unlock) makes the lock
  held longer, and with 4 threads on 2 cores that turns into more contention. The SyncVar of a
  mutex no longer takes its own spin lock (the mutex already serializes its releases and
  acquires), which removed one lock round trip per lock and unlock. Counted by callgrind
  (`mutex_shared` at scales 0.01 and 0.02, so start-up cancels out; callgrind runs one thread
  at a time, so these counts hold no contention): native 152 instructions per iteration (a
  lock, one map call, an unlock); `detect=overlap` added 335 and `detect=hb` 917. Of hb's,
  about 320 were the lock and unlock themselves (the interceptors, `Acquire` with its clock
  join, `Release` with its join and tick) and 230 the history record of the map access: every
  unlock starts a new epoch, so every access records who made it, with a 16-frame stack walk,
  a hash of the stack and a depot lookup. The rest is the region and the happens-before check.
  Two changes: a thread now compares the stack it walked with the one it stored last and
  reuses that depot id when they are the same (a loop that touches a map after each unlock
  records the same stack every time), and a SyncVar names the thread whose clock covers it,
  so a thread that locks again the mutex it was the last to hold skips the join
  (`covered_by`, docs/design.md). 1069 instructions per iteration became 969; side by side
  (scale 0.5, min of 7 runs, probe-free runtimes) `mutex_shared` went from 0.661 s to 0.557 s
  and `sync_heavy` from 0.516 s to 0.472 s under hb. What is left is the stack walk (80
  instructions, the price of showing the earlier access's stack: `history_stacks=0` turns it
  off), the joins, which are linear in the number of threads a clock has seen, and the
  contention that the longer critical section causes; the native run of this workload itself
  moves between 0.3 s and 0.75 s from one bench run to the next.
- `read_mostly`: `Acquire`/`Release` on the `shared_mutex` (readers release concurrently, so
  that SyncVar keeps its lock) and the kernel. Its reads overlap, so the map turns read-shared
  (see `read_shared`) between writes, and a reader that already read in its epoch finds its
  epoch in the map's read set without the map's lock; one whose epoch moved on (it unlocked
  the `shared_mutex` since) refreshes its own entry there without the lock too. `perf` of the
  hb run (scale 0.5): 55% of the samples in the kernel (futex wait and wake), 18% in the
  workload's own code with the inlined paths, 7% in `Acquire` and `Release`. The work added
  inside the read-side critical section holds the lock longer, and the one writer in a
  hundred iterations then waits for more readers; what would close it is less work per
  critical section, of which the history record (above) is now cheaper.
- `sync_heavy`: `Release`/`Acquire` spinning on the SyncVar lock of atomics shared by all
  threads (two thirds of `Release`'s samples were on the lock word). Spinners now yield after a
  short spin, so a preempted holder is not waited for a whole time slice; mutexes skip the lock
  as above. The vector-clock join itself is the rest.
- `churn`: every construction and destruction resets the map's happens-before state under its
  lock and the shadow's fields; an owned map no longer pays state-word updates in between.
  Counted by callgrind (scales 0.002 and 0.004): native 1235 instructions per iteration (a
  `std::map` built, four inserts, `size` and `begin`, destroyed), hb adds 1414: 336 in the
  construction and destruction entries (`__mapguard_construct`, `__mapguard_destroy_*`,
  `HbReset`: a map later built at the same address must start with a clean history), 150 in
  recording the first write of each new map with its stack (every map starts a new history),
  and the rest inline, in the regions of the six map calls. What would close it is a map's
  history kept per lifetime without touching the shadow at construction; the reset is what
  keeps a map built where another died from inheriting that one's accesses.
- `iteration` pays per loop, not per element, and stays within about 10% of native.
- `read_shared` (a map several threads read without a lock). Before, each
  read did two locked read-modify-writes (count in, count out) on the map's state word, and
  with the threads on two cores that cache line moved between them on every read: 17x native
  in overlap mode, 28x in hb mode, slower than TSan. Now a shared map whose reads overlap turns
  *read-shared* (docs/design.md): a read only marks its entry on its own thread's region stack
  and re-stores its depth with a seq_cst exchange (a locked instruction on the thread's own
  cache line; an `mfence` in its place cost 0.48 s instead of 0.17 s at scale 1), and the next
  write scans for such reads. In hb mode the reader finds its own epoch in the map's read set
  without the map's lock. Measured at scale 1 (`./workloads read_shared 1`, one run each,
  native 0.035 s): overlap 0.48 s → 0.17-0.19 s, hb 0.52 s → 0.18-0.19 s (TSan 0.34 s).
  The instructions did not get fewer (callgrind serializes the threads, so the map mostly
  stays counted there: about 250 added per `find`, against 25 for the `find` itself); the
  cache line that moved on every read is what went away. What is left is not the
  locked instruction: a runtime with A2's exchange replaced by a plain store (unsafe, an
  experiment only) ran `read_shared 2` in 0.319 s against 0.321 s (overlap; hb 0.378 against
  0.383; min of 7 and 5 runs side by side, native 0.056 s), although `perf` attributes a
  quarter of `begin_looked_up`'s samples to the load after it. So an asymmetric fence
  (`membarrier` on the writer's side, a plain store on the reader's) would not pay; it would
  also cost every write that ends a read-shared phase 5-8 µs here (`read_mostly` has 180,000
  such writes at scale 1). The cost is the instructions of the shared path itself: the
  owner check, the region push, the announcement and its re-check, the happens-before
  lookup, and at the end the region search and the tombstone. That path, the announced read
  of a read-shared map, now runs in the fast path too (inlined at -O1 and above, as the
  owned case): through the entry points, callgrind counts 155 instructions per begin and
  end where the runtime's general path took 234 (hb: 159 and 238), and `read_shared 2` went
  from 0.337 s to 0.252 s (overlap) and from 0.378 s to 0.318 s (hb), min of 7 and 5 runs
  side by side.
- `suppressed_race` (one thread writes a map while three read it, no lock, the race
  suppressed). At scale 1 the table's ratio is mostly a fixed cost that all three tools pay:
  matching the suppression needs the first report's symbolized stack, about 70 ms here (the
  workload's own time at scale 0.001 is 0.069 s under mapguard, 0.077 s under TSan, 0.0004 s
  natively). At scale 10 (40 million accesses) it is native 0.07 s, overlap 0.50 s, hb
  0.55 s, TSan 0.38 s: here mapguard is slower than TSan. Every access races, and about one in
  six finds a conflict (`print_suppressions=1`: 6.7 million matches at scale 10). The map
  never stays read-shared, since every write turns it back to counted, so every access does
  a read-modify-write of the map's state word, a cache line the four threads pass around.
  Each conflict is recognized by its pair of sites before any stack or symbol work, costs a
  search of the other threads' region stacks, and the accesses are recorded as usual. Tried:
  recognizing the suppressed pair before freezing the map (the freeze serves a report only;
  a thread that meets a frozen map sleeps 1 ms). Each conflict got cheaper, but with no thread
  asleep more of them ran at once: 9.8 million conflicts instead of 6.7 million, 0.58-0.74 s
  instead of 0.55-0.58 s, and 1.0-1.5 s of CPU instead of 0.65-0.71 s. Not kept. What would
  close it is not counting the accesses of a map on which only suppressed pairs race, which
  would also hide the next pair that is not suppressed; no design that keeps that was found.
- `shared_ptr_lookup` (hb): every copy and release of a `shared_ptr` is an acq_rel
  read-modify-write of its control block, so a release (join of the thread's clock into the
  control block's, and a tick of the thread's own entry) and an acquire per copy and per
  destruction, and after each tick the next `find` is in a new epoch and must record it. Two
  changes, measured side by side at scale 0.5 with probe-free runtimes (native 0.08 s): the
  `find` after a tick took the map's happens-before lock, which the four readers passed
  between them (`perf`: 28% of the samples in recording those reads); a thread's entry in the
  map's read set now has a cache line of its own and the thread refreshes it without the lock
  (the read-set protocol in `runtime/mg_hb.h`), which brought that to 5% and the run from
  1.00-1.19 s to 0.78-0.85 s. Then a SyncVar became one cache line holding its lock and the
  first 10 entries of its clock, where the clock had been a second allocation: min of 7 runs
  0.97 s before both, 0.72 s after. What is left is in `Release` (46% of the samples), on two
  cache misses per operation on one of 20,000 control blocks spread over memory: the control
  block's shadow slot (62% of `Release`) and its SyncVar line (36%, at the lock's
  compare-and-swap, the line's first touch). The lock itself costs nothing beyond that miss:
  a runtime whose `Release` takes no lock at all (unsafe, an experiment only) ran in 0.661 s
  against 0.663 s (min of 7; `sync_heavy` 0.492 s against 0.515 s), so releases do not skip
  the lock when uncontended, which would need clocks joined with atomic maxima. Huge pages for the
  shadow took 10% off that and added 12 MiB of RSS, so they are not used; a SyncVar inside
  the shadow slot would save one miss, at the price of a larger slot for every map.

## USDT probes and the BPF sidecar

The same `detect=hb` binary, run with the runtime's probe checks compiled out (`lib/noprobes/`, a
build only the benchmark uses) and with them in place but no tracer attached: the difference is
what the probes cost a program nobody traces. Then the same binary under `mapguard-sidecar` at
its default settings (the runtime counts every access itself; the kernel watches 1 in 8 maps, at
most 2000 of their regions a second), against the same binary without the sidecar, in rounds
with it at the same scale; and under `--full-trace` (the test mode: every region traps into the
kernel) at scale {SIDECAR_FULL_SCALE} against native at that scale. Both are timed by the
workload itself, so the sidecar's start-up is not counted. See docs/sidecar.md for what the
numbers mean in practice.
Workloads bound by lock contention (`mutex_shared`, `sync_heavy`) vary from run to run by more
than the probes cost (their native time alone moves by tens of percent); on the others the
difference between the two hb columns is the probes' cost when nobody traces them.

{probe_table}
""")


if __name__ == "__main__":
    main()
