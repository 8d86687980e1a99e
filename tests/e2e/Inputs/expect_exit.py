#!/usr/bin/env python3
"""expect_exit.py CODE CMD...: run CMD, pass its output through, succeed iff it exits with CODE."""
import subprocess
import sys

want = int(sys.argv[1])
proc = subprocess.run(sys.argv[2:], stdin=subprocess.DEVNULL, timeout=120)
if proc.returncode != want:
    print(f"expect_exit: {sys.argv[2]} exited with {proc.returncode}, expected {want}", file=sys.stderr)
    sys.exit(1)
