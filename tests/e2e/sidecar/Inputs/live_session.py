#!/usr/bin/env python3
"""live_session.py --sidecar PATH [--window S] -- SERVER

The sidecar on a live service (Inputs/live_server.cpp): attach, change the
watched-map rate, detach, while the server keeps serving.

  1. start the server; measure its request rate (before)
     (and, while attached, run a second server that is not traced and stop
     it: it must exit at once, not wait for a hand-over nobody takes)
  2. pause it (A requests served); attach with --pid --metrics-port 0
     --map-sample 0; resume; measure the rate (attached); scrape: no map
     watched
  3. GET /control?map_sample=1 on the sidecar: every map watched from now
     on; scrape until the watched-map count shows it (the rate change)
  4. pause it (B requests served); scrape: the counts of every map add up to
     exactly B - A reads and B - A writes (the runtime counts from the
     attach on; the server does one find and one operator[] per request)
  5. SIGINT the sidecar: it detaches; resume; measure the rate (after)

Prints 'live: ...' lines, the sidecar's stderr and the three rates (a
benchmark reads them; the test does not assert on time). Fails loudly
(non-zero) on a timeout, a mismatch or a dead server."""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("--sidecar", required=True)
ap.add_argument("--window", type=float, default=1.0, help="seconds per rate measurement")
if "--" not in sys.argv:
    sys.exit("live_session.py: give the server after --")
split = sys.argv.index("--")
args = ap.parse_args(sys.argv[1:split])
server_cmd = sys.argv[split + 1:]
deadline = time.time() + 120
tmp = tempfile.mkdtemp(prefix="mg-live-")
err_path = os.path.join(tmp, "sidecar.err")


def die(msg):
    print(f"live: FAILED: {msg}", flush=True)
    if os.path.exists(err_path):
        print(open(err_path).read(), end="")
    sys.exit(1)


server = subprocess.Popen(server_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def ask(cmd):
    server.stdin.write(cmd + "\n")
    server.stdin.flush()
    line = server.stdout.readline()
    if not line:
        die(f"the server died (status {server.poll()}) after '{cmd}'")
    return line.split()


def rate():
    a = int(ask("count")[1])
    t0 = time.perf_counter()
    time.sleep(args.window)
    b = int(ask("count")[1])
    return (b - a) / (time.perf_counter() - t0)


def wait_for(pred, what):
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    die(f"timed out waiting for {what}")


def scrape(url, path="/metrics", fail=True):
    r = subprocess.run(["curl", "-sS"] + (["--fail"] if fail else []) +
                       ["--max-time", "10", url.replace("/metrics", path)], capture_output=True, text=True)
    if r.returncode != 0:
        die(f"curl {path} failed: {r.stderr.strip()}")
    return r.stdout


def sample(text, name, pid=None):
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if pid is not None and f'pid="{pid}"' not in line:
                continue
            total += float(line.rsplit(" ", 1)[1])
            found = True
    return total if found else None


ready = server.stdout.readline()
if not ready.startswith("READY"):
    die(f"server said {ready!r}")
pid = int(ready.split()[1])
before = rate()

a = int(ask("pause")[1])
err = open(err_path, "w")
side = subprocess.Popen([args.sidecar, "--pid", str(pid), "--metrics-port", "0", "--map-sample", "0"],
                        stderr=err)
url = wait_for(lambda: (re.search(r"serving metrics on (http://\S+)", open(err_path).read()) or
                        (side.poll() is not None and die(f"the sidecar exited {side.returncode}"))),
               "the metrics address").group(1)
wait_for(lambda: "attached to pid" in open(err_path).read(), "the sidecar to attach")
ask("resume")
attached = rate()
# Another process of the same runtime, not traced: the sidecar's uprobes are
# per file, so its semaphores are up there too, but nobody will take its
# records at exit and it must not wait for that (a 2 s stall before).
t0 = time.perf_counter()
other = subprocess.run(server_cmd, input="stop\n", capture_output=True, text=True, timeout=60)
took = time.perf_counter() - t0
print(f"live: an untraced process of the same runtime exited {other.returncode} "
      f"{'without waiting' if took < 1.5 else f'after {took:.1f} s (it waited for a hand-over)'}")
text = scrape(url)
print(f"live: watched maps with map_sample 0: {sample(text, 'mapguard_sidecar_watched_maps', pid):.0f}")

print(f"live: control: {scrape(url, '/control?map_sample=1').strip()}")
wait_for(lambda: (sample(scrape(url), "mapguard_sidecar_watched_maps", pid) or 0) >= 64,
         "every map to be watched after map_sample=1")
print(f"live: watched maps with map_sample 1: {sample(scrape(url), 'mapguard_sidecar_watched_maps', pid):.0f}")
bad = scrape(url, "/control?map_sample=x", fail=False)
print(f"live: bad control answer: {bad.strip()}" if bad else "live: bad control answered nothing")

b = int(ask("pause")[1])
text = scrape(url)
reads = sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
            if l.startswith("mapguard_map_accesses_total{") and f'pid="{pid}"' in l and 'kind="read"' in l)
writes = sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
             if l.startswith("mapguard_map_accesses_total{") and f'pid="{pid}"' in l and 'kind="write"' in l)
served = b - a
verdict = "match" if reads == served and writes == served else "DIFFER"
print(f"live: counts {verdict}: served while attached {served}, sidecar reads {reads:.0f}, writes {writes:.0f}")
if verdict != "match":
    die("the sidecar's counts are not the server's")

side.send_signal(signal.SIGINT)
side_rc = side.wait(timeout=60)
if server.poll() is not None:
    die(f"the server died with the sidecar ({server.returncode})")
ask("resume")
after = rate()
server.stdin.write("stop\n")
server.stdin.flush()
server_rc = server.wait(timeout=60)
print(open(err_path).read(), end="")
print(f"live: requests/s before {before:.0f}, attached {attached:.0f}, after {after:.0f}")
print(f"live: server exited {server_rc}, sidecar exited {side_rc}")
sys.exit(0 if server_rc == 0 and side_rc == 0 else 1)
