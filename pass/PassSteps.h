// The module pass's steps besides the map regions (RegionCollector,
// RegionPlacer), each in a file of its own.
#ifndef MAPGUARD_PASS_PASSSTEPS_H
#define MAPGUARD_PASS_PASSSTEPS_H

#include <string>

#include "MapClassifier.h"
#include "RuntimeCalls.h"
#include "llvm/IR/Function.h"
#include "llvm/IR/Module.h"

namespace mapguard {

// AtomicEdges.cpp: atomics and fences become happens-before edges.
bool instrumentAtomics(llvm::Function &F, const Runtime &rt);
// SyncCalls.cpp: calls to the synchronization classes of prebuilt libraries
// (the catalogue's sync lines) and the task bodies their schedulers run
// (entry lines) become edges on the lock or task.
bool instrumentSyncCalls(llvm::Function &F, const Runtime &rt, const TrackedClasses &tracked);
bool instrumentEntry(llvm::Function &F, const Runtime &rt, const TrackedClasses &tracked);
// FastPathLink.cpp: the owned fast path's bitcode linked in to be inlined,
// and the symbol that makes a link without the runtime name it.
void linkFastPath(llvm::Module &M, const std::string &bitcode, const std::string &file);
void addLinkCheck(llvm::Module &M);

}  // namespace mapguard

#endif  // MAPGUARD_PASS_PASSSTEPS_H
