// What the instrumentation places for one function: the regions (one map
// touched by one call, or by a loop) that RegionCollector finds and
// RegionPlacer brackets with the runtime's begin and end calls.
#ifndef MAPGUARD_PASS_REGIONS_H
#define MAPGUARD_PASS_REGIONS_H

#include <utility>
#include <vector>

#include "MapClassifier.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/IR/Instructions.h"
#include "llvm/IR/IntrinsicInst.h"

namespace mapguard {

// One map touched by one call.
struct Region {
  AccessKind kind;
  llvm::Value *map;  // null at run time when `guard` is false: ends ignore a null map
  llvm::Constant *site;
  llvm::AllocaInst *slot = nullptr;  // set when an end may run on an unwind path
  llvm::Value *guard = nullptr;      // begins only where this i1 is true (a member pointer's target)
};

// A call with the regions it opens.
struct InstrumentedCall {
  llvm::CallBase *call;
  std::vector<Region> regions;
};

// A begin() call that opens a loop: one iteration region up to the loop's exits.
struct IterationRegion {
  llvm::CallBase *beginCall;
  Region region;
  llvm::SmallVector<llvm::BasicBlock *, 8> exits;
  llvm::SmallVector<llvm::CallInst *, 16> mayThrowInBody;  // calls that may leave the loop by unwinding
  llvm::SmallVector<llvm::IntrinsicInst *, 2> suspends;     // co_await inside the loop (llvm.coro.suspend)
};

// Everything one function gets.
struct FunctionRegions {
  std::vector<InstrumentedCall> calls;
  std::vector<IterationRegion> iterations;
  // Destructors of static-storage maps registered with __cxa_atexit: at exit
  // they destroy the map, a write like any other. The call and its site.
  std::vector<std::pair<llvm::CallInst *, llvm::Constant *>> atexits;
  bool empty() const { return calls.empty() && iterations.empty() && atexits.empty(); }
};

}  // namespace mapguard

#endif  // MAPGUARD_PASS_REGIONS_H
