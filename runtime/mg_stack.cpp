// Stack capture (libgcc's unwinder, which also walks through signal frames),
// the signal handshake that lets a reporting thread get another thread's
// stack, and symbolization through an llvm-symbolizer child process.
#include "mg_stack.h"

#include "mg_arena.h"
#include "mg_loaded.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <time.h>
#include <unistd.h>
#include <unwind.h>

extern char **environ;

namespace mapguard {

namespace {

struct UnwindArg {
  StackTrace *out;
  int skip;
};

_Unwind_Reason_Code UnwindStep(struct _Unwind_Context *ctx, void *arg) {
  UnwindArg *a = static_cast<UnwindArg *>(arg);
  int before_insn = 0;
  uintptr_t pc = _Unwind_GetIPInfo(ctx, &before_insn);
  if (pc == 0) return _URC_END_OF_STACK;
  if (a->skip > 0) {
    a->skip--;
    return _URC_NO_REASON;
  }
  if (a->out->size >= kMaxFrames) return _URC_END_OF_STACK;
  // A return address points after the call; step back into it so the
  // symbolizer names the call's line. A signal frame's pc is exact.
  a->out->pc[a->out->size++] = before_insn ? pc : pc - 1;
  return _URC_NO_REASON;
}

// Appends the return addresses of the frame-pointer chain starting at `fp`,
// within the thread's stack [lo, hi). No calls, no locks: also used in the
// stack-request signal handler.
inline void WalkFramePointers(uintptr_t fp, uintptr_t lo, uintptr_t hi, StackTrace *out,
                              int max_frames) {
  while (out->size < max_frames) {
    if (fp < lo || fp + 2 * sizeof(uintptr_t) > hi || (fp & (sizeof(uintptr_t) - 1))) break;
    uintptr_t next = reinterpret_cast<uintptr_t *>(fp)[0];
    uintptr_t ret = reinterpret_cast<uintptr_t *>(fp)[1];
    if (ret < 4096) break;
    out->pc[out->size++] = ret - 1;
    if (next <= fp) break;  // frames grow towards higher addresses
    fp = next;
  }
}

// The signal a reporting thread sends to make another thread capture its own
// stack. Only a report that is about to stop the process sends it (a program
// that keeps running is never interrupted), and only to a thread that does
// not block it and while no handler of the program's own is installed for it.
int StackSignal() { return SIGRTMIN + 7; }

// Async-signal-safe: a frame-pointer walk from the interrupted context, no
// unwinder, no locks, no allocation. User code is compiled with frame
// pointers; a leaf in a library without them still has the caller's frame
// pointer in rbp (callee-saved), so the walk skips only such leaves.
void StackSignalHandler(int, siginfo_t *, void *ctx) {
  int saved_errno = errno;
  ThreadState *thr = t_thread;
  if (thr && thr->stack_request.load(std::memory_order_acquire) == 1) {
    const ucontext_t *uc = static_cast<const ucontext_t *>(ctx);
    StackTrace *out = &thr->requested_stack;
    out->size = 0;
    out->pc[out->size++] = uintptr_t(uc->uc_mcontext.gregs[REG_RIP]);
    uintptr_t fp = uintptr_t(uc->uc_mcontext.gregs[REG_RBP]);
    uintptr_t sp = uintptr_t(uc->uc_mcontext.gregs[REG_RSP]);
    uintptr_t lo = thr->stack_lo, hi = thr->stack_hi;
    thr->requested_nwords = 0;
    if (sp >= lo && sp < fp && fp <= hi)
      for (uintptr_t p = sp; p < fp && thr->requested_nwords < ThreadState::kLeafWords;
           p += sizeof(uintptr_t))
        thr->requested_words[thr->requested_nwords++] = *reinterpret_cast<uintptr_t *>(p);
    WalkFramePointers(fp, lo, hi, out, kMaxFrames);
    thr->stack_request.store(2, std::memory_order_release);
  }
  errno = saved_errno;
}

// Whether thread `tid` blocks signal `sig` (SigBlk in /proc): such a thread
// would not answer, and a sigwait() there would receive the runtime's signal.
bool ThreadBlocks(pid_t tid, int sig) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/task/%d/status", int(tid));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return true;
  buf[n] = 0;
  const char *p = strstr(buf, "SigBlk:");
  if (!p) return true;
  unsigned long long mask = strtoull(p + 7, nullptr, 16);
  return (mask >> (sig - 1)) & 1;
}

// Installs the handler unless the program has one of its own for the signal.
bool InstallStackSignalHandler() {
  struct sigaction old;
  if (sigaction(StackSignal(), nullptr, &old) != 0) return false;
  if (old.sa_flags & SA_SIGINFO) {
    if (old.sa_sigaction == StackSignalHandler) return true;
  }
  if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler != SIG_DFL) return false;
  if ((old.sa_flags & SA_SIGINFO) && old.sa_sigaction != StackSignalHandler) return false;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = StackSignalHandler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  return sigaction(StackSignal(), &sa, nullptr) == 0;
}

}  // namespace

MG_NOINLINE void CaptureStack(StackTrace *out, int skip) {
  out->size = 0;
  UnwindArg arg{out, skip};
  ThreadState *thr = t_thread;
  if (thr) thr->ignore_sync++;
  _Unwind_Backtrace(UnwindStep, &arg);
  if (thr) thr->ignore_sync--;
}

MG_NOINLINE void CaptureStackFast(ThreadState *thr, StackTrace *out, int max_frames) {
  out->size = 0;
  uintptr_t lo = thr->stack_lo, hi = thr->stack_hi;
  uintptr_t fp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  if (max_frames > kMaxFrames) max_frames = kMaxFrames;
  WalkFramePointers(fp, lo, hi, out, max_frames);
}

namespace {
struct CodeLookup {
  uintptr_t addr;
  bool found;
};
int FindCode(struct dl_phdr_info *info, size_t, void *arg) {
  CodeLookup *c = static_cast<CodeLookup *>(arg);
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) &ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    // Room for the longest call instruction before the return address.
    if (c->addr >= lo + 7 && c->addr < lo + ph.p_memsz) {
      c->found = true;
      return 1;
    }
  }
  return 0;
}

// A return address: in executable code, right after a call instruction.
bool LooksLikeReturnAddress(uintptr_t a) {
  CodeLookup c{a, false};
  dl_iterate_phdr(FindCode, &c);
  if (!c.found) return false;
  const unsigned char *p = reinterpret_cast<const unsigned char *>(a);
  if (p[-5] == 0xe8) return true;                                   // call rel32
  if (p[-2] == 0xff && (p[-1] & 0xf8) == 0xd0) return true;          // call *%reg
  if (p[-3] == 0xff && (p[-2] & 0xf8) == 0x50) return true;          // call *disp8(%reg)
  if (p[-6] == 0xff && (p[-5] == 0x15 || (p[-5] & 0xf8) == 0x90)) return true;  // rip/disp32
  return false;
}

// The frame walk in the handler starts at the innermost function with a
// frame pointer, without its own pc (it was calling into a library without
// frame pointers). Its return address is the highest call-return word
// between the stack pointer and the frame pointer.
void RecoverLeafCaller(ThreadState *thr, StackTrace *st) {
  for (int i = thr->requested_nwords - 1; i >= 0; i--) {
    uintptr_t w = thr->requested_words[i];
    if (w < 4096 || !LooksLikeReturnAddress(w)) continue;
    if (st->size >= kMaxFrames) st->size = kMaxFrames - 1;
    memmove(&st->pc[2], &st->pc[1], (st->size - 1) * sizeof(uintptr_t));
    st->pc[1] = w - 1;
    st->size++;
    return;
  }
}
}  // namespace

bool RequestStackOf(ThreadState *thr, StackTrace *out) {
  if (!g_flags.halt_on_error) return false;  // the program goes on: never interrupt it
  pid_t tid = thr->os_tid;
  if (ThreadBlocks(tid, StackSignal()) || !InstallStackSignalHandler()) return false;
  thr->requested_stack.size = 0;
  thr->stack_request.store(1, std::memory_order_release);
  // tgkill, not pthread_kill: the thread may have exited since it was looked
  // up, and pthread_kill on a dead thread's handle is undefined.
  if (syscall(SYS_tgkill, getpid(), tid, StackSignal()) != 0) {
    thr->stack_request.store(0, std::memory_order_relaxed);
    return false;
  }
  uint64_t deadline = MonotonicMicros() + uint64_t(g_flags.report_wait_ms) * 1000;
  while (MonotonicMicros() < deadline) {
    if (thr->stack_request.load(std::memory_order_acquire) == 2) {
      *out = thr->requested_stack;
      RecoverLeafCaller(thr, out);
      thr->stack_request.store(0, std::memory_order_relaxed);
      return true;
    }
    SleepMicrosNoCancel(200);
  }
  thr->stack_request.store(0, std::memory_order_relaxed);
  return false;
}

// ---- Stack depot ----
// Traces live in arena memory, found again through an open-addressing table
// of 2^20 entries keyed by the trace's hash; ids index a parallel array.
namespace {
constexpr uint32_t kDepotSlots = 1u << 20;
struct StoredTrace {
  uint64_t hash;
  int size;
  uintptr_t pc[1];
};
std::atomic<StoredTrace *> g_depot[kDepotSlots];

uint64_t HashTrace(const StackTrace &st) {
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < st.size; i++) h = (h ^ st.pc[i]) * 1099511628211ull;
  return h | 1;
}
}  // namespace

uint32_t StackDepotPut(const StackTrace &st) {
  if (st.size == 0) return 0;
  uint64_t h = HashTrace(st);
  for (uint32_t probe = 0; probe < 64; probe++) {
    uint32_t i = uint32_t((h + probe) & (kDepotSlots - 1));
    if (i == 0) continue;  // id 0 means "none"
    StoredTrace *t = g_depot[i].load(std::memory_order_acquire);
    if (!t) {
      size_t bytes = sizeof(StoredTrace) + (st.size - 1) * sizeof(uintptr_t);
      StoredTrace *fresh = static_cast<StoredTrace *>(ArenaAlloc(bytes));
      fresh->hash = h;
      fresh->size = st.size;
      memcpy(fresh->pc, st.pc, st.size * sizeof(uintptr_t));
      if (g_depot[i].compare_exchange_strong(t, fresh, std::memory_order_acq_rel)) return i;
      ArenaFree(fresh, bytes);
    }
    if (t->hash == h && t->size == st.size &&
        memcmp(t->pc, st.pc, st.size * sizeof(uintptr_t)) == 0)
      return i;
  }
  return 0;  // table crowded: the report will say the stack was not kept
}

uint32_t StackDepotPutHistory(ThreadState *thr, const StackTrace &st) {
  // A signal handler that records an access while this thread is in here
  // goes to the depot directly: the cache may be half written.
  if (thr->history_busy || st.size > ThreadState::kHistoryFrames) return StackDepotPut(st);
  thr->history_busy = 1;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  bool same = st.size == thr->history_size;
  for (int i = 0; same && i < st.size; i++) same = st.pc[i] == thr->history_pc[i];
  if (!same) {
    thr->history_id = StackDepotPut(st);
    thr->history_size = st.size;
    for (int i = 0; i < st.size; i++) thr->history_pc[i] = st.pc[i];
  }
  uint32_t id = thr->history_id;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  thr->history_busy = 0;
  return id;
}

bool StackDepotGet(uint32_t id, StackTrace *out) {
  if (id == 0 || id >= kDepotSlots) return false;
  StoredTrace *t = g_depot[id].load(std::memory_order_acquire);
  if (!t) return false;
  out->size = t->size;
  memcpy(out->pc, t->pc, t->size * sizeof(uintptr_t));
  return true;
}

// ---- Symbolization ----

namespace {

// The link unit that holds `pc` (LinkUnitOf), named by its file; the main
// executable, which the loader lists without a name, by /proc/self/exe.
bool ModuleOf(uintptr_t pc, uintptr_t *base, char *name, size_t name_size) {
  if (!LinkUnitOf(reinterpret_cast<const void *>(pc), base, name, name_size)) return false;
  if (!name[0]) {
    ssize_t n = readlink("/proc/self/exe", name, name_size - 1);
    name[n > 0 ? n : 0] = 0;
  }
  return true;
}

#ifdef MG_STATIC_RUNTIME
// The static archive's objects have their .text renamed mapguard_text
// (cmake/StaticRuntime.cmake), so the linker gathers the runtime's code in one
// output section and defines its bounds. Template instances the runtime
// shares with the program stay in .text; the report hides them by name.
extern "C" __attribute__((weak)) const char __start_mapguard_text[];
extern "C" __attribute__((weak)) const char __stop_mapguard_text[];
bool InRuntime(uintptr_t pc, uintptr_t) {
  return pc >= uintptr_t(__start_mapguard_text) && pc < uintptr_t(__stop_mapguard_text);
}
#else
// The runtime's own module, to hide its frames.
bool InRuntime(uintptr_t, uintptr_t module_base) {
  static uintptr_t base = [] {
    Dl_info info;
    return dladdr(reinterpret_cast<void *>(&CaptureStack), &info) ? uintptr_t(info.dli_fbase)
                                                                  : uintptr_t(0);
  }();
  return base && module_base == base;
}
#endif

bool IsSystemLibrary(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  static const char *const kPrefixes[] = {"libc.so", "libstdc++.so", "libc++.so", "libc++abi.so",
                                          "libgcc_s.so", "ld-linux", "libm.so", "libunwind.so"};
  for (const char *p : kPrefixes)
    if (strncmp(base, p, strlen(p)) == 0) return true;
  return false;
}

// A long-lived llvm-symbolizer child: one request line in, frames out, an
// empty line ends each answer.
struct SymbolizerProcess {
  bool tried = false;
  pid_t pid = -1;
  int to_child = -1, from_child = -1;
  char buf[1 << 16];
  size_t buffered = 0;
};
SymbolizerProcess g_sym;

bool Executable(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

bool FindOnPath(const char *name, char *out, size_t len) {
  const char *path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  while (*path) {
    const char *colon = strchr(path, ':');
    size_t n = colon ? size_t(colon - path) : strlen(path);
    snprintf(out, len, "%.*s/%s", int(n), path, name);
    if (n && Executable(out)) return true;
    if (!colon) break;
    path = colon + 1;
  }
  return false;
}

// Order: external_symbolizer_path; llvm-symbolizer-19 on PATH;
// /usr/lib/llvm-19/bin/llvm-symbolizer; llvm-symbolizer on PATH.
bool FindSymbolizer(char *out, size_t len) {
  const char *flag = g_flags.external_symbolizer_path;
  if (flag && *flag) {
    snprintf(out, len, "%s", flag);
    return Executable(out);
  }
  if (FindOnPath("llvm-symbolizer-19", out, len)) return true;
  snprintf(out, len, "/usr/lib/llvm-19/bin/llvm-symbolizer");
  if (Executable(out)) return true;
  return FindOnPath("llvm-symbolizer", out, len);
}

bool StartSymbolizer() {
  if (g_sym.tried) return g_sym.pid > 0;
  g_sym.tried = true;
  char path[kSymbolLen];
  if (!FindSymbolizer(path, sizeof(path))) {
    if (g_flags.external_symbolizer_path && *g_flags.external_symbolizer_path) {
      static const char kMsg[] = "mapguard: warning: external_symbolizer_path is not an executable file; stacks show module+offset\n";
      WriteAll(kMsg, sizeof(kMsg) - 1);
    }
    return false;
  }
  // The request channel is a socket, written with MSG_NOSIGNAL: a symbolizer
  // that exits early gives EPIPE (stacks fall back to module+offset), never
  // a SIGPIPE that would kill the program before its report.
  int in[2], out[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) return false;
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return false;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  char *argv[] = {path, const_cast<char *>("--inlines"), const_cast<char *>("--demangle"),
                  const_cast<char *>("--functions=linkage"), nullptr};
  // The child must not inherit LD_PRELOAD tricks or our options' side effects.
  pid_t pid;
  int rc = posix_spawn(&pid, path, &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  if (rc != 0) {
    close(in[1]);
    close(out[0]);
    return false;
  }
  g_sym.pid = pid;
  g_sym.to_child = in[1];
  g_sym.from_child = out[0];
  return true;
}

// Reads one answer (up to the empty line) into g_sym.buf; returns its length
// or -1 when the child died or took longer than 10 s.
ssize_t ReadAnswer() {
  g_sym.buffered = 0;
  for (;;) {
    if (g_sym.buffered >= 2 && memcmp(g_sym.buf + g_sym.buffered - 2, "\n\n", 2) == 0)
      return ssize_t(g_sym.buffered);
    if (g_sym.buffered == 1 && g_sym.buf[0] == '\n') return 1;
    if (g_sym.buffered + 1 >= sizeof(g_sym.buf)) return -1;
    struct pollfd p = {g_sym.from_child, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) return -1;
    ssize_t n = read(g_sym.from_child, g_sym.buf + g_sym.buffered,
                     sizeof(g_sym.buf) - 1 - g_sym.buffered);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    g_sym.buffered += size_t(n);
  }
}

void StopSymbolizer() {
  if (g_sym.pid > 0) {
    close(g_sym.to_child);
    close(g_sym.from_child);
    kill(g_sym.pid, SIGKILL);
    waitpid(g_sym.pid, nullptr, 0);
  }
  g_sym.pid = -1;
}

// The plugin gives an instrumented inline function its own name, NAME.mapguard
// (pass/InlineCopies.cpp); without debug info the symbol table's name is
// what the symbolizer demangles, "f() (.mapguard)". Users wrote f().
void DropInstrumentedCopySuffix(char *function) {
  static const char kSuffix[] = " (.mapguard)";
  size_t n = strlen(function), k = sizeof(kSuffix) - 1;
  if (n >= k && !strcmp(function + n - k, kSuffix)) function[n - k] = 0;
  else if (char *p = strstr(function, ".mapguard")) {  // not demangled: _Z...mapguard
    if (!p[9]) *p = 0;
  }
}

bool SymbolizeWithTool(SymbolizedPC *out) {
  if (!StartSymbolizer()) return false;
  char req[kSymbolLen + 64];
  int n = snprintf(req, sizeof(req), "CODE \"%s\" 0x%lx\n", out->module,
                   static_cast<unsigned long>(out->offset));
  if (n <= 0 || size_t(n) >= sizeof(req)) return false;
  for (ssize_t off = 0; off < n;) {
    ssize_t w = send(g_sym.to_child, req + off, size_t(n - off), MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      StopSymbolizer();
      return false;
    }
    off += w;
  }
  ssize_t len = ReadAnswer();
  if (len < 0) {
    StopSymbolizer();
    return false;
  }
  g_sym.buf[len] = 0;
  // Pairs of lines: function, then file:line:column.
  char *line = g_sym.buf;
  out->nframes = 0;
  while (*line && *line != '\n' && out->nframes < kMaxInlined) {
    char *fn_end = strchr(line, '\n');
    if (!fn_end) break;
    *fn_end = 0;
    char *loc = fn_end + 1;
    char *loc_end = strchr(loc, '\n');
    if (!loc_end) break;
    *loc_end = 0;
    SourceFrame &f = out->frames[out->nframes];
    snprintf(f.function, sizeof(f.function), "%s", line);
    DropInstrumentedCopySuffix(f.function);
    // file:line:column, where the file itself may contain ':'.
    f.line = f.column = 0;
    char *c2 = strrchr(loc, ':');
    char *c1 = nullptr;
    if (c2) {
      *c2 = 0;
      c1 = strrchr(loc, ':');
      if (c1) {
        *c1 = 0;
        f.line = atoi(c1 + 1);
        f.column = atoi(c2 + 1);
      } else {
        f.line = atoi(c2 + 1);
      }
    }
    snprintf(f.file, sizeof(f.file), "%s", strcmp(loc, "??") == 0 ? "" : loc);
    if (strcmp(f.function, "??") != 0 || f.file[0]) out->nframes++;
    line = loc_end + 1;
  }
  return out->nframes > 0;
}

}  // namespace

bool PcInRuntime(uintptr_t pc) {
  uintptr_t base;
  char name[kSymbolLen];
  return ModuleOf(pc, &base, name, sizeof(name)) && InRuntime(pc, base);
}

void SymbolizePC(uintptr_t pc, SymbolizedPC *out) {
  memset(out, 0, offsetof(SymbolizedPC, frames));
  out->pc = pc;
  uintptr_t base = 0;
  char name[kSymbolLen];
  const bool found = ModuleOf(pc, &base, name, sizeof(name));
  if (found) {
    snprintf(out->module, sizeof(out->module), "%s", name);
    out->offset = pc - base;
    out->in_runtime = InRuntime(pc, base);
    out->in_system_library = IsSystemLibrary(name);
  }
  if (g_flags.symbolize && found && SymbolizeWithTool(out)) return;
  // Fallback: the nearest dynamic symbol, if any.
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(pc), &info) && info.dli_sname) {
    snprintf(out->frames[0].function, kSymbolLen, "%s", info.dli_sname);
    DropInstrumentedCopySuffix(out->frames[0].function);
    out->frames[0].file[0] = 0;
    out->nframes = 1;
  }
}

bool IsLibraryImplementationFrame(const SourceFrame &f) {
  bool std_name = strncmp(f.function, "std::", 5) == 0 ||
                  strncmp(f.function, "__gnu_cxx::", 11) == 0 ||
                  strncmp(f.function, "void std::", 10) == 0 ||
                  strstr(f.function, "> std::") != nullptr;  // "std::pair<...> std::_Rb_tree..."
  bool system_header = strncmp(f.file, "/usr/include/", 13) == 0 ||
                       strncmp(f.file, "/usr/lib/llvm-", 14) == 0 ||
                       strstr(f.file, "/include/c++/") != nullptr;
  // Without debug info (no file, or line 0) the symbol alone decides: the
  // standard library's internals (std::thread's _State_impl, std::__invoke,
  // _Rb_tree, _Hashtable) are hidden just as with -g.
  bool no_line_info = !f.file[0] || f.line == 0;
  if (no_line_info) return std_name;
  return system_header && (std_name || f.function[0] == '_' || strstr(f.function, " std::"));
}

}  // namespace mapguard
