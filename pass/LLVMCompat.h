// Everything that differs between the LLVM/clang versions mapguard builds
// against (15 to 22, chosen by MAPGUARD_LLVM_VERSION), in one place: the
// plugin's code calls these, never a version check of its own.
#ifndef MAPGUARD_LLVM_COMPAT_H
#define MAPGUARD_LLVM_COMPAT_H

#include <functional>

#include "clang/AST/ASTContext.h"
#include "clang/AST/DeclCXX.h"
#include "clang/Basic/CodeGenOptions.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Passes/PassBuilder.h"
#if LLVM_VERSION_MAJOR >= 16
#include "llvm/TargetParser/Triple.h"
#else
#include "llvm/ADT/Triple.h"  // moved to TargetParser in LLVM 16
#endif
#if LLVM_VERSION_MAJOR >= 17
#include "llvm/IR/EHPersonalities.h"
#else
#include "llvm/Analysis/EHPersonalities.h"  // moved to IR in LLVM 17
#endif

namespace mapguard::compat {

// The canonical type of a class. clang 22 deleted TypeDecl::getTypeForDecl()
// (and ASTContext::getRecordType for tag declarations) when it reworked tag
// types; getCanonicalTagType is its replacement.
inline clang::QualType canonicalRecordType(const clang::ASTContext &ctx,
                                           const clang::CXXRecordDecl *record) {
#if LLVM_VERSION_MAJOR >= 22
  return ctx.getCanonicalTagType(record);
#else
  return clang::QualType(record->getTypeForDecl(), 0).getCanonicalType();
#endif
}

// StringRef's prefix and suffix tests are starts_with/ends_with from LLVM 16
// and startswith/endswith before (removed in 19): spelled here once.
inline bool startsWith(llvm::StringRef s, llvm::StringRef prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

inline bool endsWith(llvm::StringRef s, llvm::StringRef suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Debug-info levels (clang::codegenoptions until clang 17 moved them to llvm).
#if LLVM_VERSION_MAJOR >= 17
namespace debug_info = llvm::codegenoptions;
#else
namespace debug_info = clang::codegenoptions;
#endif

// Whether clang's code generator sees CodeGenOptions a plugin's AST action
// sets. Before clang 17 it copies its options when the main action's consumer
// is made, before any plugin's, so a line-table request from the plugin (for
// reports' source positions without -g) is lost there: the plugin tells the
// user instead. Frame pointers are set on the IR for every version.
constexpr bool kCodeGenSeesPluginOptions = LLVM_VERSION_MAJOR >= 17;

// Runs `callback` on the PassBuilder clang makes for this compile, so the
// plugin can add its IR pass. clang 17 and later take the callback itself
// (CodeGenOptions::PassBuilderCallbacks); clang 16 only loads pass plugins by
// path, so there (14 to 16) the plugin names its own file, and its exported
// llvmGetPassPluginInfo runs the callback (LLVMCompat.cpp). 17, 18, 20 and 21
// are not packaged for Debian 12 and untested.
void addPassBuilderCallback(clang::CodeGenOptions &cg,
                            std::function<void(llvm::PassBuilder &)> callback);

// Adds a module pass at the end of the optimizer (every level, -O0 and the
// LTO pre-link pipelines too). LLVM 20 gave the callback the LTO phase.
template <typename Pass>
void addPassAtOptimizerLast(llvm::PassBuilder &PB, std::function<Pass()> make) {
#if LLVM_VERSION_MAJOR >= 20
  PB.registerOptimizerLastEPCallback(
      [make](llvm::ModulePassManager &MPM, llvm::OptimizationLevel, llvm::ThinOrFullLTOPhase) {
        MPM.addPass(make());
      });
#else
  PB.registerOptimizerLastEPCallback(
      [make](llvm::ModulePassManager &MPM, llvm::OptimizationLevel) { MPM.addPass(make()); });
#endif
}

}  // namespace mapguard::compat

#endif
