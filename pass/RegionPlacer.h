// Where the runtime calls go in one function: a begin before each call that
// touches a map and an end after it, on the normal path and on the unwind
// path; for a loop over a map, a begin before its begin() call and an end on
// each exit, split around co_await; a stack slot per region holding the map
// while the region is active and null otherwise, so an end may sit on any
// path (loop exits, landing pads, the function's cleanup pad) and is a no-op
// where the region never began; calls that may throw while a region is open
// become invokes of a cleanup pad that ends every open region.
#ifndef MAPGUARD_PASS_REGIONPLACER_H
#define MAPGUARD_PASS_REGIONPLACER_H

#include "Regions.h"
#include "RuntimeCalls.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/IR/IRBuilder.h"

namespace mapguard {

class RegionPlacer {
 public:
  RegionPlacer(llvm::Function &F, const Runtime &rt) : F(F), rt(rt) {}
  // True if the function changed.
  bool place(FunctionRegions &regions);

 private:
  llvm::Function &F;
  const Runtime &rt;
  llvm::BasicBlock *cleanupPad = nullptr;
  // Calls that may throw while a region is open; turned into invokes of the
  // cleanup pad last, after every other change, because the conversion
  // replaces the call instruction.
  llvm::SetVector<llvm::CallInst *> toConvert;

  bool functionMayUnwind() const { return !F.doesNotThrow(); }
  llvm::AllocaInst *newSlot();
  void emitEndFromSlot(llvm::IRBuilder<> &b, const Region &r);
  llvm::BasicBlock *getCleanupPad();
  void routeThroughCleanup(llvm::CallInst *ci);
  void addToCleanup(const Region &r);
  void emitEnds(llvm::IRBuilder<> &b, std::vector<Region> &regions);
  void emitBegin(llvm::Instruction *at, const Region &r);
  void instrumentCall(InstrumentedCall &ic);
  void instrumentIteration(IterationRegion &it);
  void splitAtSuspend(const Region &r, llvm::AllocaInst *parked, llvm::IntrinsicInst *suspend);
};

}  // namespace mapguard

#endif  // MAPGUARD_PASS_REGIONPLACER_H
