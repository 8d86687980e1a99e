// Stack capture and symbolization for reports (cold code only).
#ifndef MAPGUARD_STACK_H
#define MAPGUARD_STACK_H

#include "mg_rt.h"

namespace mapguard {

constexpr int kMaxInlined = 32;  // inlined frames kept per machine frame
constexpr int kSymbolLen = 512;

// One source-level frame; a machine frame may expand to several when calls
// were inlined (innermost first).
struct SourceFrame {
  char function[kSymbolLen];
  char file[kSymbolLen];
  int line, column;
};

struct SymbolizedPC {
  uintptr_t pc;
  char module[kSymbolLen];  // path of the object that holds pc
  uintptr_t offset;         // pc relative to the object's load address
  bool in_runtime;          // inside libmapguard_rt itself
  bool in_system_library;   // libc, libstdc++, libgcc, the dynamic loader
  int nframes;              // 0: nothing known beyond module+offset
  SourceFrame frames[kMaxInlined];
};

// Whether pc is in the runtime's own code (whose frames reports hide).
bool PcInRuntime(uintptr_t pc);
// Fills `out` for `pc`. Uses llvm-symbolizer when symbolize=1 and one is
// found, else dladdr. Never allocates from the program's heap.
void SymbolizePC(uintptr_t pc, SymbolizedPC *out);

// True for frames of the standard library's own implementation: functions in
// namespace std / __gnu_cxx whose source is a system header.
bool IsLibraryImplementationFrame(const SourceFrame &f);

// Stores a stack once and names it by a small id (0 is "none"); lock-free.
uint32_t StackDepotPut(const StackTrace &st);
bool StackDepotGet(uint32_t id, StackTrace *out);
// StackDepotPut for a history stack of the calling thread `thr` (at most
// ThreadState::kHistoryFrames), through its one-entry cache.
uint32_t StackDepotPutHistory(ThreadState *thr, const StackTrace &st);

}  // namespace mapguard

#endif  // MAPGUARD_STACK_H
