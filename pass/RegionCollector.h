// What to instrument in one function: the calls that touch a tracked map
// (MapClassifier, and the AST's view of calls the demangler cannot read or
// that reach a map through another call), the loops a begin() opens, calls
// through member pointers, and static maps' destructors registered at exit.
#ifndef MAPGUARD_PASS_REGIONCOLLECTOR_H
#define MAPGUARD_PASS_REGIONCOLLECTOR_H

#include <map>
#include <optional>
#include <vector>

#include "Regions.h"
#include "SiteTable.h"
#include "TUState.h"
#include "llvm/Analysis/LoopInfo.h"
#include "llvm/IR/Dominators.h"

namespace mapguard {

// A map member whose address the module takes (&std::map<K, V>::size): a
// call through a member pointer may reach it, from user code or from the
// library's invoke machinery (std::invoke, std::bind, std::function,
// std::mem_fn all end in `(obj.*pm)(args...)`).
struct MemberPointerTarget {
  llvm::Function *fn;
  Classification c;
};

// The addressed map members of `M`. A call through a member pointer then
// compares the pointer with each (of the call's function type), and opens
// that member's region where one matches: exact, and free in modules that
// take no map member's address.
std::vector<MemberPointerTarget> memberPointerTargets(llvm::Module &M, const TrackedClasses &tracked);

class RegionCollector {
 public:
  // lifetimeOnly: library and tracked-class implementation code, where only
  // constructions and destructions of maps are recorded (make_unique,
  // vector<map>...), so a map built at a reused address starts with a clean
  // history.
  RegionCollector(llvm::Function &F, const TUState &state, SiteTable &sites,
                  const std::vector<MemberPointerTarget> &memberTargets, bool lifetimeOnly)
      : F(F), state(state), sites(sites), memberTargets(memberTargets), lifetimeOnly(lifetimeOnly) {}
  FunctionRegions collect();

 private:
  llvm::Function &F;
  const TUState &state;
  SiteTable &sites;
  const std::vector<MemberPointerTarget> &memberTargets;
  bool lifetimeOnly;
  FunctionRegions out;
  // Calls by source position, for the AST's derived regions (TUState).
  std::map<SourcePos, llvm::SmallVector<llvm::CallBase *, 2>> callsAt;

  llvm::Constant *site(AccessKind kind, llvm::StringRef op, const llvm::DebugLoc &dl,
                       const std::string &mapType, const std::string &mapName, unsigned flags = 0) {
    return sites.site(F, kind, op, dl, mapType, mapName, flags);
  }
  void collectAtExit(llvm::CallBase *cb);
  std::optional<Classification> classifyFromAST(llvm::CallBase *cb, llvm::Function *callee);
  llvm::Value *derivedMap(llvm::CallBase *user, const DerivedRegion &d, llvm::DominatorTree &DT);
  void collectDerived(llvm::CallBase *cb, llvm::Function *callee, llvm::DominatorTree &DT,
                      llvm::LoopInfo &LI);
  void collectMemberPointerCall(llvm::CallBase *cb);
};

}  // namespace mapguard

#endif  // MAPGUARD_PASS_REGIONCOLLECTOR_H
