#!/usr/bin/env python3
"""sidecar_session.py MODE --sidecar PATH [--json FILE] -- PROGRAM

Runs the sidecar next to a test program that prints 'READY ...' on stdout and
then waits until the file named by its first argument exists.

  pid      start the program, wait for READY, attach with --pid, wait for the
           sidecar's 'attached' line, let the program go on.
  detach   as pid, but interrupt the sidecar (SIGINT) before letting the
           program go on: the sidecar must summarize and detach, and the
           program must run on to its normal end.
  metrics  launch the program under the sidecar with --metrics-port 0, wait for
           READY, scrape /metrics with curl, parse it strictly, print the
           samples ('metrics: ...'), check that /nope is a 404, let it go on.

Prints the sidecar's stderr and 'session: program exited N, sidecar exited M'.
Fails loudly (non-zero) on a timeout or a malformed response."""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=["pid", "detach", "metrics"])
ap.add_argument("--sidecar", required=True)
ap.add_argument("--json")
ap.add_argument("--extra", action="append", default=[], help="one more sidecar argument (repeatable)")
if "--" not in sys.argv:
    sys.exit("sidecar_session.py: give the program after --")
split = sys.argv.index("--")
args = ap.parse_args(sys.argv[1:split])
program = sys.argv[split + 1:]
tmp = tempfile.mkdtemp(prefix="mg-sidecar-")
go = os.path.join(tmp, "go")
deadline = time.time() + 60


def die(msg):
    print(f"session: FAILED: {msg}", flush=True)
    sys.exit(1)


def wait_for(pred, what):
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    die(f"timed out waiting for {what}")


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? (-?[0-9.eE+]+|NaN|\+Inf|-Inf)$')


def parse_prometheus(text):
    """Strict Prometheus text format 0.0.4: HELP/TYPE before samples, one sample per line."""
    typed = {}
    samples = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if len(parts) < 4:
                die(f"metrics line {n} malformed: {line!r}")
            if parts[1] == "TYPE":
                if parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    die(f"metrics line {n}: bad type {parts[3]!r}")
                typed[parts[2]] = parts[3]
            continue
        m = SAMPLE.match(line)
        if not m:
            die(f"metrics line {n} is not a sample: {line!r}")
        if m.group(1) not in typed:
            die(f"metrics line {n}: {m.group(1)} has no # TYPE")
        samples.append(line)
    if not samples:
        die("no samples in /metrics")
    return samples


err_path = os.path.join(tmp, "sidecar.err")
err = open(err_path, "w")
json_args = ["--json", args.json] if args.json else []
if args.mode in ("pid", "detach"):
    prog = subprocess.Popen(program + [go], stdout=subprocess.PIPE, text=True)
    line = prog.stdout.readline()
    if not line.startswith("READY"):
        die(f"program said {line!r}")
    side = subprocess.Popen([args.sidecar, "--pid", str(prog.pid)] + args.extra + json_args, stderr=err)
    wait_for(lambda: "attached to pid" in read(err_path) or side.poll() is not None, "the sidecar to attach")
    if side.poll() is not None:
        print(read(err_path))
        die(f"the sidecar exited early with {side.returncode}")
    if args.mode == "detach":
        side.send_signal(signal.SIGINT)
        side_rc = side.wait(timeout=60)
        if prog.poll() is not None:
            die(f"the program died with the sidecar ({prog.returncode})")
        open(go, "w").close()
        prog_rc = prog.wait(timeout=60)
    else:
        open(go, "w").close()
        prog_rc = prog.wait(timeout=60)
        side_rc = side.wait(timeout=60)
else:
    ready = os.path.join(tmp, "ready")
    out = open(ready, "w")
    side = subprocess.Popen([args.sidecar, "--metrics-port", "0"] + args.extra + json_args + ["--"] + program + [go],
                            stderr=err, stdout=out)
    url = wait_for(lambda: (re.search(r"serving metrics on (http://\S+)", read(err_path)) or
                            (side.poll() is not None and die(f"sidecar exited {side.returncode}: {read(err_path)}"))),
                   "the metrics address").group(1)
    wait_for(lambda: "READY" in read(ready), "the program to be ready")
    body = subprocess.run(["curl", "-sS", "--fail", "--max-time", "10", url], capture_output=True, text=True)
    if body.returncode != 0:
        die(f"curl {url} failed: {body.stderr.strip()}")
    for s in parse_prometheus(body.stdout):
        print(f"metrics: {s}")
    nope = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                           url.replace("/metrics", "/nope")], capture_output=True, text=True)
    print(f"metrics: /nope -> {nope.stdout}")
    open(go, "w").close()
    side_rc = side.wait(timeout=60)
    prog_rc = side_rc  # launch mode: the sidecar passes the program's status on
print(read(err_path), end="")
print(f"session: program exited {prog_rc}, sidecar exited {side_rc}")
sys.exit(0 if side_rc in (0, 66) else 1)
