#!/usr/bin/env python3
"""mapguard's benchmark: every workload built natively, with mapguard
(detect=overlap and detect=hb, one binary) and with ThreadSanitizer, run side
by side in one session. Prints a table of median wall time and peak RSS with
ratios to native, plus the plugin's compile-time ratio.

  bench/run.py                 full run (about a second per native workload),
                               writes docs/performance.md and docs/performance.png
  bench/run.py --smoke         tiny sizes, one run each: checks every variant
                               runs and prints its figures (used by ctest)
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
# Under the BPF sidecar every traced probe traps into the kernel (about 2 us
# here), so these run at a smaller scale, each against native at that scale,
# timed by the workload itself (the sidecar's own start-up is not counted).
SIDECAR_VARIANTS = ["sidecar", "sidecar_sampled"]
SIDECAR_SCALE = 0.005
SIDECAR_READ_SAMPLE = 64


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
    sh(common + [f"-fplugin={lib}/mapguard.so", f"-I{ROOT}/runtime/include", f"-L{noprobes}",
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    scale = 0.01 if args.smoke else 1.0
    repeats = 1 if args.smoke else args.repeats
    if not os.path.exists(os.path.join(args.build, "lib", "mapguard.so")):
        raise SystemExit(f"bench: {args.build}/lib/mapguard.so not found: build mapguard first (scripts/build.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        bins = build(args.build, tmp)
        workloads = sh([bins["native"]]).stdout.split()
        results = {}
        sidecar = os.path.join(args.build, "bin", "mapguard-sidecar")
        if not os.path.exists(sidecar):
            raise SystemExit(f"bench: {sidecar} not found: build mapguard first (scripts/build.sh)")
        side_scale = SIDECAR_SCALE * (0.2 if args.smoke else 1.0)
        for w in workloads:
            for v in VARIANTS:
                binary = {"overlap": bins["mapguard"], "hb": bins["mapguard"],
                          "hb_noprobes": bins["mapguard_noprobes"]}.get(v, bins.get(v))
                env = dict(os.environ)
                env["MAPGUARD_OPTIONS"] = {"overlap": "detect=overlap"}.get(v, "detect=hb" if v.startswith("hb") else "")
                runs = [run_once(binary, w, scale, env) for _ in range(repeats)]
                results[(w, v)] = (statistics.median(r[0] for r in runs), max(r[1] for r in runs))
                print(f"  {w:14s} {v:15s} {results[(w, v)][0]:8.3f} s  {results[(w, v)][1] / 1024:7.1f} MiB",
                      flush=True)
            # The sidecar columns: the workload's own time, native vs traced.
            env = dict(os.environ)
            env["MAPGUARD_OPTIONS"] = ""
            base = statistics.median(run_once(bins["native"], w, side_scale, env)[2] for _ in range(repeats))
            for v in SIDECAR_VARIANTS:
                prefix = [sidecar, "--quiet"]
                if v == "sidecar_sampled":
                    prefix += ["--read-sample", str(SIDECAR_READ_SAMPLE)]
                env["MAPGUARD_OPTIONS"] = "detect=hb"
                t = statistics.median(run_once(bins["mapguard"], w, side_scale, env, prefix + ["--"])[2]
                                      for _ in range(repeats))
                results[(w, v)] = (t / base, 0)
                print(f"  {w:14s} {v:15s} {t:8.3f} s  ({t / base:.1f}x native at scale {side_scale})", flush=True)
        plain, plugin = compile_ratio(args.build, 1 if args.smoke else 3)

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
    table = "\n".join(lines)
    probe_lines = ["| workload | hb, probes compiled out | hb, probes untraced | untraced probe cost | "
                   f"sidecar attached | sidecar, reads 1 in {SIDECAR_READ_SAMPLE} |",
                   "|---|---|---|---|---|---|"]
    for w in workloads:
        n = results[(w, "native")][0]
        off, on = results[(w, "hb_noprobes")][0], results[(w, "hb")][0]
        probe_lines.append(f"| {w} | {off / n:.2f}x | {on / n:.2f}x | {(on - off) / off * 100:+.1f}% | "
                           f"{results[(w, 'sidecar')][0]:.1f}x | {results[(w, 'sidecar_sampled')][0]:.1f}x |")
    probe_table = "\n".join(probe_lines)
    print()
    print(table)
    print()
    print(probe_table)
    print(f"\ncompile time, template-heavy TU (boost, nlohmann-json, fmt): plain {plain:.2f} s, "
          f"with plugin {plugin:.2f} s, ratio {plugin / plain:.2f}x")
    print("bench: all variants ran")
    if args.smoke:
        return
    write_docs(workloads, results, table, probe_table, plain, plugin)


def write_docs(workloads, results, table, probe_table, plain, plugin):
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
clang 19, and run side by side in one session; times are the median wall time of 3 runs,
RSS the peak resident set. Ratios are to native. Re-run with `python3 bench/run.py`.

{table}

Compile time of a template-heavy translation unit (boost unordered, nlohmann-json, fmt):
plain {plain:.2f} s, with the plugin {plugin:.2f} s: **{plugin / plain:.2f}x**.

![ratios](performance.png)

## Targets and where the time goes

Targets (issue 6): `detect=overlap` ≤ 1.1x, `detect=hb` ≤ 1.5x and at least 5x less added time
than ThreadSanitizer, peak RSS ≤ 1.5x, compile time ≤ 1.15x. Only the RSS and compile-time
targets, and `iteration`, are met today. What dominates each miss (from the design and the
per-workload numbers; not yet confirmed by a `perf` profile):

- `private_maps`, `word_count`: every instrumented call costs two out-of-line calls through the
  PLT into `libmapguard_rt.so`, a TLS region-stack push/pop and one atomic read-modify-write on
  the map's state word at begin and at end, against a native operation of a few nanoseconds on a
  small hot map. ThreadSanitizer inlines its checks and is cheaper here. Fixes that keep
  precision: merge adjacent read regions of one map in the pass, skip trivial reads such as
  `end()`/`size()`, and inline the fast path (static runtime or LTO) instead of a PLT call.
- `read_mostly`: with `overlap`, four readers increment and decrement the same state word, so
  its cache line bounces between cores. With `hb`, every `shared_lock` release ticks the reader's
  epoch, so every `find` takes the slow path: the map's happens-before spin lock (all readers
  serialize on it), a `ReadSet` update and a frame-pointer walk. Per-thread read epochs without a
  lock (FastTrack's read-shared vector updated slot-wise) and skipping the stack walk when the
  site did not change would remove most of it.
- `mutex_shared`, `sync_heavy`: each intercepted lock and unlock joins vector clocks under the
  sync object's spin lock; each release makes the next map access of that thread take the slow
  path (above).
- `churn`: each construction and destruction resets the map's shadow and takes its
  happens-before lock.
- `iteration` pays per loop, not per element, and stays within 3% of native.

## USDT probes and the BPF sidecar

The same `detect=hb` binary, run with the runtime's probe checks compiled out (`lib/noprobes/`, a
build only the benchmark uses) and with them in place but no tracer attached: the difference is
what the probes cost a program nobody traces. Then the same binary under `mapguard-sidecar`
(every probe traced, and with reads sampled 1 in {SIDECAR_READ_SAMPLE} via `--read-sample`), at
scale {SIDECAR_SCALE} against native at that scale, timed by the workload itself so the
sidecar's start-up is not counted. See docs/sidecar.md for what the numbers mean in practice.

{probe_table}
""")


if __name__ == "__main__":
    main()
