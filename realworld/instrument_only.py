#!/usr/bin/env python3
"""A compiler launcher for a project built only partly with mapguard.

    CMAKE_CXX_COMPILER_LAUNCHER="python3;/abs/realworld/instrument_only.py;SOURCE_ROOT;REGEX;FLAGS"

Runs the compiler command CMake gives it unchanged, except that a compile
whose source file's path, relative to SOURCE_ROOT, matches REGEX (Python
syntax, searched) also gets FLAGS (mapguard's plugin flags, one argument,
split as a shell would). So a library target compiles plain and its tests
with the plugin, as a project that vendors a library built without mapguard
would be (realworld/run.py's `instrument_only`). Links, and compiles of
files outside SOURCE_ROOT, are left alone.
"""
import os
import re
import shlex
import sys

SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".c++", ".cp", ".C", ".CPP", ".m", ".mm")
# Options whose value is the next argument (never the source file).
TAKES_VALUE = {"-o", "-MF", "-MT", "-MQ", "-include", "-imacros", "-isystem", "-iquote", "-idirafter",
               "-I", "-D", "-U", "-x", "-Xclang", "-mllvm", "-arch", "-target", "--target"}


def source_of(args):
    """The one source file a compile command names, or None (a link)."""
    if "-c" not in args and "-S" not in args and "-E" not in args:
        return None
    found, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in TAKES_VALUE:
            skip = True
        elif not arg.startswith("-") and arg.endswith(SOURCE_SUFFIXES):
            found.append(arg)
    return found[0] if len(found) == 1 else None


def main():
    if len(sys.argv) < 5:
        sys.exit("instrument_only.py: usage: instrument_only.py SOURCE_ROOT REGEX FLAGS COMPILER ARGS...")
    root, pattern = os.path.realpath(sys.argv[1]), re.compile(sys.argv[2])
    flags, cmd = shlex.split(sys.argv[3]), sys.argv[4:]
    source = source_of(cmd[1:])
    if source is not None:
        path = os.path.realpath(source)
        if path.startswith(root + os.sep) and pattern.search(os.path.relpath(path, root)):
            cmd = cmd[:1] + flags + cmd[1:]
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
