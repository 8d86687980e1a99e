// The runtime's entry points as the pass calls them
// (runtime/include/mapguard/interface.h), declared in the module being
// instrumented, and the constants of struct mg_site.
#ifndef MAPGUARD_PASS_RUNTIMECALLS_H
#define MAPGUARD_PASS_RUNTIMECALLS_H

#include "MapClassifier.h"
#include "llvm/IR/DerivedTypes.h"
#include "llvm/IR/Module.h"

namespace mapguard {

// Mirrors struct mg_site in runtime/include/mapguard/interface.h.
constexpr unsigned kAbiVersion = 2;
constexpr unsigned kSiteHashtableLayout = 1;  // MG_SITE_HASHTABLE_LAYOUT
constexpr unsigned kSiteNodeBased = 2;        // MG_SITE_NODE_BASED
constexpr unsigned kSiteCallerLocation = 4;   // MG_SITE_CALLER_LOCATION

struct Runtime {
  llvm::StructType *siteTy;
  llvm::FunctionCallee readBegin, readEnd, writeBegin, writeEnd, iterBegin, iterEnd, construct,
      destroyBegin, destroyEnd;
  llvm::FunctionCallee atomicAcquire, atomicRelease, fenceAcquire, fenceRelease;
  llvm::FunctionCallee atomicRelaxedRead, atomicRelaxedWrite;
  llvm::FunctionCallee happensBefore, happensAfter, syncWaitBegin, syncWaitEnd;
  llvm::FunctionCallee atexitMap;

  explicit Runtime(llvm::Module &M);
  llvm::FunctionCallee begin(AccessKind k) const;
  llvm::FunctionCallee end(AccessKind k) const;
};

}  // namespace mapguard

#endif  // MAPGUARD_PASS_RUNTIMECALLS_H
