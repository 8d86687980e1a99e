/* mapguard.so, what `-fplugin=` names: a small loader with no undefined
 * compiler symbols, so any compiler can load it and be told in one line
 * whether it is the right one, before the real plugin
 * (mapguard-clang<MAJOR>.so, next to this file) binds to clang's symbols.
 *  - GCC (cc1/cc1plus) loads plugins with dlopen(RTLD_NOW): the real plugin
 *    would fail there with an undefined-symbol error that says nothing useful.
 *  - A clang of another major version would fail the same way, or worse,
 *    load and misbehave: LLVM's C++ API differs between versions.
 * In the right clang it loads the real plugin, whose static initializers
 * register it with clang's plugin registry, which clang reads after this
 * library's load returns. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef MG_LLVM_MAJOR
#error "MG_LLVM_MAJOR must be defined (pass/CMakeLists.txt)"
#endif

static void say(const char *msg) {
  size_t len = strlen(msg);
  while (len > 0) {
    ssize_t n = write(2, msg, len);
    if (n <= 0) return;
    msg += n;
    len -= (size_t)n;
  }
}

/* The LLVM library the host compiler runs (Debian's clang links
 * libclang-cpp.so.N and libLLVM-N.so): its major version, or 0 if none. */
struct host_llvm {
  int major;
  char path[PATH_MAX];
};
static int find_llvm(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  struct host_llvm *host = (struct host_llvm *)data;
  const char *name = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;
  name = name ? name + 1 : info->dlpi_name;
  if (!name) return 0;
  const char *version = NULL;
  if (!strncmp(name, "libLLVM-", 8)) version = name + 8;
  else if (!strncmp(name, "libLLVM.so.", 11)) version = name + 11;
  else if (!strncmp(name, "libclang-cpp.so.", 16)) version = name + 16;
  if (!version || atoi(version) <= 0) return 0;
  host->major = atoi(version);
  snprintf(host->path, sizeof host->path, "%s", info->dlpi_name);
  return host->major != MG_LLVM_MAJOR; /* a foreign one decides */
}

__attribute__((constructor)) static void mapguard_load_plugin(void) {
  char msg[2 * PATH_MAX + 512];
  char exe[PATH_MAX] = "the compiler";
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) exe[n] = 0;
  struct host_llvm host = {0, ""};
  dl_iterate_phdr(find_llvm, &host);
  if (!host.major) {
    /* No shared LLVM: a statically linked clang says its version through
     * LLVM's C API (LLVM 16 and later), if it exports it; GCC has neither. */
    void (*llvm_version)(unsigned *, unsigned *, unsigned *) =
        (void (*)(unsigned *, unsigned *, unsigned *))dlsym(RTLD_DEFAULT, "LLVMGetVersion");
    if (llvm_version) {
      unsigned major = 0, minor = 0, patch = 0;
      llvm_version(&major, &minor, &patch);
      host.major = (int)major;
      snprintf(host.path, sizeof host.path, "LLVM %u", major);
    } else if (!dlsym(RTLD_DEFAULT, "_ZN4llvm11LLVMContextC1Ev")) {
      snprintf(msg, sizeof msg,
               "mapguard: error: mapguard.so is a clang plugin and cannot be loaded into %s "
               "(GCC?): compile with clang++-%d\n",
               exe, MG_LLVM_MAJOR);
      say(msg);
      _exit(1);
    }
  }
  if (host.major && host.major != MG_LLVM_MAJOR) {
    snprintf(msg, sizeof msg,
             "mapguard: error: mapguard.so was built for clang %d, but %s runs %s; compile with "
             "clang++-%d\n",
             MG_LLVM_MAJOR, exe, host.path, MG_LLVM_MAJOR);
    say(msg);
    _exit(1);
  }
  Dl_info self;
  char path[PATH_MAX];
  if (!dladdr((void *)&mapguard_load_plugin, &self) || !self.dli_fname) {
    say("mapguard: error: cannot tell where mapguard.so was loaded from\n");
    _exit(1);
  }
  snprintf(path, sizeof path, "%s", self.dli_fname);
  char *slash = strrchr(path, '/');
  size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
  snprintf(path + dir, sizeof path - dir, "%s", MG_REAL_PLUGIN);
  /* As clang loads plugins itself (llvm::sys::DynamicLibrary). */
  if (!dlopen(path, RTLD_LAZY | RTLD_GLOBAL)) {
    snprintf(msg, sizeof msg, "mapguard: error: cannot load the plugin %s: %s\n", path, dlerror());
    say(msg);
    _exit(1);
  }
}
