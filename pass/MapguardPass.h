// The IR side of mapguard: brackets every call from user code to a tracked
// map's members with runtime calls (read/write/iteration regions, creation,
// destruction). The rest is handled by the runtime library.
#ifndef MAPGUARD_PASS_MAPGUARDPASS_H
#define MAPGUARD_PASS_MAPGUARDPASS_H

#include <memory>

#include "TUState.h"
#include "llvm/IR/PassManager.h"

namespace mapguard {

class MapguardPass : public llvm::PassInfoMixin<MapguardPass> {
 public:
  // optimizing: -O1 and above, where the fast path is linked in to be inlined.
  MapguardPass(std::shared_ptr<TUState> state, bool optimizing)
      : state_(std::move(state)), optimizing_(optimizing) {}
  llvm::PreservedAnalyses run(llvm::Module &M, llvm::ModuleAnalysisManager &MAM);
  // Runs at -O0 too, and never skipped by optnone.
  static bool isRequired() { return true; }

 private:
  std::shared_ptr<TUState> state_;
  bool optimizing_;
};

}  // namespace mapguard

#endif  // MAPGUARD_PASS_MAPGUARDPASS_H
