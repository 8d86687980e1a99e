/* mapguard.so, what `-fplugin=` names: a small loader with no undefined
 * compiler symbols, so any compiler can load it and be told in one line
 * whether mapguard fits it, before a real plugin (mapguard-clang<MAJOR>.so,
 * next to this file) binds to clang's symbols.
 *  - GCC (cc1/cc1plus) loads plugins with dlopen(RTLD_NOW): a real plugin
 *    would fail there with an undefined-symbol error that says nothing useful.
 *  - Each clang major version has a C++ API of its own, so each has a real
 *    plugin of its own. Builds for several versions install side by side
 *    (cmake -DMAPGUARD_LLVM_VERSION=N); this loader picks the one built for
 *    the clang it finds itself in, so the same -fplugin= path (pkg-config's,
 *    the CMake package's) serves every installed version. A clang with none
 *    gets one line naming its version, the installed ones, and the fix.
 * In the right clang it loads the real plugin, whose static initializers
 * register it with clang's plugin registry, which clang reads after this
 * library's load returns. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

// The oldest clang mapguard builds for (CMakeLists.txt): LLVM 14 makes typed
// pointers, which the pass does not handle, and its optimizer crashes on
// the opaque ones it could be told to make.
#define MG_OLDEST_LLVM 15

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
  return 1;
}

/* The clang versions with a real plugin in `dir` (which ends in '/'), as
 * "19, 22" into `list`; the newest, or 0 if none. */
static int installed_versions(const char *dir, char *list, size_t size) {
  int versions[64], n = 0, newest = 0;
  list[0] = 0;
  DIR *d = opendir(dir[0] ? dir : ".");
  if (!d) return 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < 64) {
    int v = 0, end = 0;
    if (sscanf(e->d_name, "mapguard-clang%d.so%n", &v, &end) == 1 && e->d_name[end] == 0 && v > 0)
      versions[n++] = v;
  }
  closedir(d);
  for (int i = 0; i < n; i++) /* ascending, for the message */
    for (int j = i + 1; j < n; j++)
      if (versions[j] < versions[i]) {
        int t = versions[i];
        versions[i] = versions[j];
        versions[j] = t;
      }
  for (int i = 0; i < n; i++) {
    size_t used = strlen(list);
    snprintf(list + used, size - used, "%s%d", i ? ", " : "", versions[i]);
    newest = versions[i];
  }
  return newest;
}

__attribute__((constructor)) static void mapguard_load_plugin(void) {
  char msg[3 * PATH_MAX + 512];
  char exe[PATH_MAX] = "the compiler";
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) exe[n] = 0;
  Dl_info self;
  char dir[PATH_MAX], path[PATH_MAX + 64], versions[256];
  if (!dladdr((void *)&mapguard_load_plugin, &self) || !self.dli_fname) {
    say("mapguard: error: cannot tell where mapguard.so was loaded from\n");
    _exit(1);
  }
  snprintf(dir, sizeof dir, "%s", self.dli_fname);
  char *slash = strrchr(dir, '/');
  if (slash) slash[1] = 0;
  else dir[0] = 0;
  int newest = installed_versions(dir, versions, sizeof versions);
  if (!newest) newest = MG_LLVM_MAJOR;
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
               exe, newest);
      say(msg);
      _exit(1);
    } else {
      host.major = MG_LLVM_MAJOR; /* an LLVM that says nothing: assume ours */
    }
  }
  snprintf(path, sizeof path, "%smapguard-clang%d.so", dir, host.major);
  if (access(path, R_OK) != 0 && host.major < MG_OLDEST_LLVM) {
    snprintf(msg, sizeof msg,
             "mapguard: error: clang %d (%s runs %s) is older than mapguard supports (%d to 22; "
             "it has clang %s): compile with clang++-%d\n",
             host.major, exe, host.path[0] ? host.path : "it", MG_OLDEST_LLVM,
             versions[0] ? versions : "none", newest);
    say(msg);
    _exit(1);
  }
  if (access(path, R_OK) != 0) {
    snprintf(msg, sizeof msg,
             "mapguard: error: this mapguard has no plugin for clang %d (%s runs %s); it has "
             "clang %s: compile with clang++-%d, or build mapguard for clang %d "
             "(cmake -DMAPGUARD_LLVM_VERSION=%d) and install it next to this one\n",
             host.major, exe, host.path[0] ? host.path : "it", versions[0] ? versions : "none",
             newest, host.major, host.major);
    say(msg);
    _exit(1);
  }
  /* As clang loads plugins itself (llvm::sys::DynamicLibrary). */
  if (!dlopen(path, RTLD_LAZY | RTLD_GLOBAL)) {
    snprintf(msg, sizeof msg, "mapguard: error: cannot load the plugin %s: %s\n", path, dlerror());
    say(msg);
    _exit(1);
  }
}
