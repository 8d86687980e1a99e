#!/usr/bin/env python3
"""A compiler launcher for a project built only partly with mapguard.

    CMAKE_CXX_COMPILER_LAUNCHER="python3;realworld/instrument_only.py;REGEX;FLAGS"

Runs the compiler command CMake gives it unchanged, except that a compile
whose source file's path matches REGEX (Python syntax, searched) also gets
FLAGS (mapguard's plugin flags, one argument, split at spaces). So a library
target compiles plain and its tests with the plugin, as a project that
vendors a library built without mapguard would be (realworld/run.py's
`instrument_only`). Links are left alone.
"""
import os
import re
import sys


def main():
    if len(sys.argv) < 4:
        sys.exit("instrument_only.py: usage: instrument_only.py REGEX FLAGS COMPILER ARGS...")
    pattern, flags, cmd = re.compile(sys.argv[1]), sys.argv[2].split(), sys.argv[3:]
    source = None
    for i, arg in enumerate(cmd):
        if arg == "-c" and i + 1 < len(cmd):
            source = cmd[i + 1]
    if source is None:  # CMake puts -c last-but-one; else any source file argument
        source = next((a for a in cmd[1:] if a.endswith((".cpp", ".cc", ".cxx", ".c"))), None)
    if source is not None and pattern.search(os.path.abspath(source)):
        cmd = cmd[:1] + flags + cmd[1:]
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
