// The module pass: per function, the map regions (RegionCollector finds
// them, RegionPlacer brackets them with runtime calls), then the
// happens-before edges of atomics and of prebuilt libraries' locks; per
// module, renamed inline copies, the link check and the fast path.
#include "MapguardPass.h"

#include <set>

#include "InlineCopies.h"
#include "LLVMCompat.h"
#include "PassSteps.h"
#include "RegionCollector.h"
#include "RegionPlacer.h"
#include "SiteTable.h"
#include "llvm/ADT/Statistic.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/Verifier.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

#define DEBUG_TYPE "mapguard"

using namespace llvm;

STATISTIC(NumLifetimeOnly, "Library or tracked-class functions where only map lifetimes are recorded");
STATISTIC(NumSkippedOptOut, "Functions skipped by MAPGUARD_NO_INSTRUMENT");

static cl::opt<bool> ClInstrumentAtomics("mapguard-instrument-atomics", cl::init(true), cl::Hidden,
                                         cl::desc("Record release/acquire edges of atomics"));
static cl::opt<bool> ClRenameInlineCopies(
    "mapguard-rename-inline-copies", cl::init(true), cl::Hidden,
    cl::desc("Give instrumented inline functions names of their own (link order)"));

namespace mapguard {
namespace {

std::set<Function *> optedOutFunctions(Module &M) {
  std::set<Function *> out;
  GlobalVariable *annotations = M.getGlobalVariable("llvm.global.annotations");
  if (!annotations || !annotations->hasInitializer()) return out;
  auto *array = dyn_cast<ConstantArray>(annotations->getInitializer());
  if (!array) return out;
  for (Value *op : array->operands()) {
    auto *entry = dyn_cast<ConstantStruct>(op);
    if (!entry || entry->getNumOperands() < 2) continue;
    auto *fn = dyn_cast<Function>(entry->getOperand(0)->stripPointerCasts());
    auto *strVar = dyn_cast<GlobalVariable>(entry->getOperand(1)->stripPointerCasts());
    if (!fn || !strVar || !strVar->hasInitializer()) continue;
    auto *str = dyn_cast<ConstantDataArray>(strVar->getInitializer());
    if (str && str->isCString() && str->getAsCString() == "mapguard.no_instrument") out.insert(fn);
  }
  return out;
}

}  // namespace

namespace {

// Reports show the stack of an earlier access, and of a thread caught inside
// a map operation, by a frame-pointer walk (runtime/mg_stack.cpp): every
// function the plugin compiles keeps its frame pointer, as
// -fno-omit-frame-pointer would. Set on the IR, not in CodeGenOptions: clang
// 16's code generator copies its options before a plugin's AST action runs,
// so a change there is not seen (its functions came out without one).
bool keepFramePointers(Module &M) {
  bool changed = false;
  for (Function &F : M) {
    if (F.isDeclaration() || F.getFnAttribute("frame-pointer").getValueAsString() == "all")
      continue;
    F.addFnAttr("frame-pointer", "all");
    changed = true;
  }
  if (M.getFramePointer() != FramePointerKind::All) {
    // For functions made later (module constructors). Replaces a flag the
    // target already set (AArch64's non-leaf): setFramePointer would add a
    // second one, which the verifier rejects.
    M.setModuleFlag(Module::Max, "frame-pointer", static_cast<uint32_t>(FramePointerKind::All));
    changed = true;
  }
  return changed;
}

// One function: the happens-before edges of its atomics and of prebuilt
// libraries' locks, then its map regions. True if it changed.
bool instrumentFunction(Function &F, const Runtime &rt, const TUState &state, SiteTable &sites,
                        const std::vector<MemberPointerTarget> &memberTargets) {
  bool touched = false;
  if (ClInstrumentAtomics) touched |= instrumentAtomics(F, rt);
  touched |= instrumentSyncCalls(F, rt, state.tracked);
  touched |= instrumentEntry(F, rt, state.tracked);
  bool implementation = isImplementationFunction(F.getName().str(), state.tracked);
  if (implementation) ++NumLifetimeOnly;
  FunctionRegions regions = RegionCollector(F, state, sites, memberTargets, implementation).collect();
  touched |= RegionPlacer(F, rt).place(regions);
  return touched;
}

// The functions the plugin instruments: defined here, not the runtime's
// inlined fast path, not opted out with MAPGUARD_NO_INSTRUMENT.
std::vector<Function *> functionsToInstrument(Module &M) {
  std::set<Function *> optedOut = optedOutFunctions(M);
  std::vector<Function *> out;
  for (Function &F : M) {
    if (F.isDeclaration() || compat::startsWith(F.getName(), "__mapguard")) continue;
    if (optedOut.count(&F))
      ++NumSkippedOptOut;
    else
      out.push_back(&F);
  }
  return out;
}

void verifyOrDie(Module &M) {
  std::string problems;
  raw_string_ostream os(problems);
  if (verifyModule(M, &os))
    report_fatal_error(Twine("mapguard: instrumented module '") + M.getName() +
                       "' fails the LLVM verifier:\n" + os.str());
}

}  // namespace

PreservedAnalyses MapguardPass::run(Module &M, ModuleAnalysisManager &) {
  bool framesKept = keepFramePointers(M);  // before the fast path's functions join
  Runtime rt(M);
  SiteTable sites(M, rt, *state_);
  std::vector<MemberPointerTarget> memberTargets = memberPointerTargets(M, state_->tracked);
  std::set<Function *> instrumented;
  for (Function *F : functionsToInstrument(M))
    if (instrumentFunction(*F, rt, *state_, sites, memberTargets)) instrumented.insert(F);
  bool changed = !instrumented.empty();
  if (ClRenameInlineCopies) changed |= renameInstrumentedInlineCopies(M, instrumented);
  if (changed) addLinkCheck(M);
  if (changed && optimizing_ && state_->fastPathBitcode)
    linkFastPath(M, *state_->fastPathBitcode, state_->fastPathFile);
  if (state_->verifyIR) verifyOrDie(M);
  return changed || framesKept ? PreservedAnalyses::none() : PreservedAnalyses::all();
}

}  // namespace mapguard
