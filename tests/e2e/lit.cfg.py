# lit configuration for mapguard's end-to-end tests: each test compiles a real
# program with the real plugin, runs it, and checks what it prints.
import os
import re
import subprocess
import lit.formats

config.name = "mapguard-e2e"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".cpp", ".test"]
config.excludes = ["Inputs"]
config.environment["PATH"] = config.lit_tools_dir + ":" + os.environ.get("PATH", "")
# For scripts the tests run (realworld/run.py): this build and its clang.
config.environment["MAPGUARD_BUILD"] = config.mapguard_build
config.environment["MAPGUARD_CLANGXX"] = config.clangxx
# The LLVM the plugin was built for, for tests that name its tools or version.
config.available_features.add(f"llvm{config.llvm_major}")
# What a clang before 17 cannot do for the plugin (docs/usage.md, "Clang
# versions"): -std=c++23 (it spells it c++2b), and line tables asked for by
# a plugin (its code generator copied its options before the plugin ran).
if config.llvm_major >= 17:
    config.available_features.add("cxx23")
    config.available_features.add("plugin-line-tables")
else:
    # Its type printer spells an alias template's default arguments out:
    # absl::flat_hash_set<int, absl::hash_internal::Hash<int>>.
    config.available_features.add("type-names-keep-alias-defaults")
# OpenMP: this clang's omp.h comes with its libomp-N-dev, which Debian
# installs for one N at a time (19's, scripts/install-deps.sh).
import tempfile
with tempfile.TemporaryDirectory() as _tmp:
    _probe = os.path.join(_tmp, "probe.cpp")
    with open(_probe, "w") as _f:
        _f.write("#include <omp.h>\nint main() { return omp_get_max_threads() < 0; }\n")
    if subprocess.run([config.clangxx, "-fopenmp", "-fsyntax-only", _probe],
                      capture_output=True).returncode == 0:
        config.available_features.add("openmp")
    elif config.llvm_major == 19:
        # The default clang must run them: missing, it is a broken setup.
        lit_config.fatal("clang 19 cannot compile OpenMP (no omp.h): apt-get install libomp-19-dev")
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.mapguard_build, "tests", "e2e")

lib = os.path.join(config.mapguard_build, "lib")
inc = os.path.join(config.mapguard_src, "runtime", "include")
inputs = os.path.join(config.test_source_root, "Inputs")
plugin = os.path.join(lib, "mapguard.so")
# Every test input also checks the instrumented IR with the LLVM verifier.
plugin_flags = f"-fplugin={plugin} -fplugin-arg-mapguard-verify"
nog = f"{config.clangxx} -std=c++20 -I{inc} -I{inputs} -I{os.path.join(config.test_source_root, 'plugin', 'Inputs')}"
base = f"{nog} -g"
link = f"-L{lib} -Wl,-rpath,{lib} -lmapguard_rt -pthread"
config.substitutions.append(("%clangxx_mg_nog", f"{nog} {plugin_flags} %{{mglink}}"))
config.substitutions.append(("%clangxx_mg_static", f"{base} {plugin_flags} -static -L{lib} -Wl,@{lib}/mapguard_rt_static.rsp -pthread"))
# Third-party maps (tests/e2e/thirdparty): Abseil's libraries and LLVM's.
import subprocess
absl_libs = subprocess.run(["pkg-config", "--libs", "absl_flat_hash_map", "absl_node_hash_map",
                            "absl_btree", "absl_flat_hash_set"], capture_output=True, text=True).stdout.strip()
absl_sync_libs = subprocess.run(["pkg-config", "--libs", "absl_synchronization"],
                                capture_output=True, text=True).stdout.strip()
config.substitutions.append(("%{absl_sync_libs}", absl_sync_libs))
config.substitutions.append(("%{absl_libs_map}", absl_libs))
# LLVM's maps come from the LLVM 19 development package whatever the
# plugin's version (scripts/install-deps.sh installs it).
config.substitutions.append(("%{thirdparty_libs}", f"{absl_libs} -L/usr/lib/llvm-19/lib -Wl,-rpath,/usr/lib/llvm-19/lib -lLLVM"))
config.substitutions.append(("%llvm_major", str(config.llvm_major)))
config.substitutions.append(("%llvm_dir", config.llvm_dir))
config.substitutions.append(("%clangxx_mg", f"{base} {plugin_flags} %{{mglink}}"))
config.substitutions.append(("%clangxx_plain", f"{base}"))
config.substitutions.append(("%{mglink}", link))
config.substitutions.append(("%plugin", plugin))
config.substitutions.append(("%{ccache_extrafiles}", subprocess.run(
    ["pkg-config", "--variable=ccache_extrafiles", "mapguard"], capture_output=True, text=True,
    env={**os.environ, "PKG_CONFIG_PATH": config.mapguard_build}).stdout.strip()))
config.substitutions.append(("%clangxx_raw", config.clangxx))
config.substitutions.append(("%clangxx_bin", config.clangxx))
config.substitutions.append(("%mgbuild", config.mapguard_build))
config.substitutions.append(("%mgsrc", config.mapguard_src))
config.substitutions.append(("%mglib", lib))
config.substitutions.append(("%mginc", inc))
config.substitutions.append(("%expect_exit", f"python3 {os.path.join(inputs, 'expect_exit.py')}"))
config.substitutions.append(("FileCheck", config.filecheck))
config.substitutions.append(("%sidecar", os.path.join(config.mapguard_build, "bin", "mapguard-sidecar")))
config.substitutions.append(("%sarif_multitool", os.path.join(config.mapguard_src, ".tools", "node_modules", ".bin", "sarif-multitool")))

# Source lines marked "// MARK: name" in Inputs/*.h become FileCheck numeric
# variables (-D#NAME=LINE), so checks name exact lines without hard-coding them.
marks = []
for name in sorted(os.listdir(inputs)):
    if not name.endswith((".h", ".cpp")):
        continue
    with open(os.path.join(inputs, name)) as f:
        for number, line in enumerate(f, 1):
            m = re.search(r"// MARK: (\w+)", line)
            if m:
                marks.append(f"-D#{m.group(1)}={number}")
config.substitutions.append(("%{marks}", " ".join(marks)))

# Keep the environment small and deterministic.
config.environment["MAPGUARD_OPTIONS"] = ""
for var in ("HOME",):
    if var in os.environ:
        config.environment[var] = os.environ[var]
