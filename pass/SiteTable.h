// The constants the instrumentation hands the runtime: one struct mg_site per
// distinct access site (kind, operation, source position, function, map type
// and name, flags) and the strings they point to, shared across a module.
#ifndef MAPGUARD_PASS_SITETABLE_H
#define MAPGUARD_PASS_SITETABLE_H

#include <map>
#include <string>

#include "MapClassifier.h"
#include "RuntimeCalls.h"
#include "TUState.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/IR/DebugLoc.h"
#include "llvm/IR/Function.h"

namespace mapguard {

// The file name and position of a debug location (the AST side's key).
SourcePos positionOf(const llvm::DebugLoc &dl);
// The location's file with its directory.
std::string fullFileName(const llvm::DebugLoc &dl);

class SiteTable {
 public:
  SiteTable(llvm::Module &M, const Runtime &rt, const TUState &state) : M(M), rt(rt), state(state) {}
  // The site of an access in `F` at `dl`.
  llvm::Constant *site(llvm::Function &F, AccessKind kind, llvm::StringRef op,
                       const llvm::DebugLoc &dl, const std::string &mapType,
                       const std::string &mapName, unsigned flags = 0);
  // The map's type and name as the AST saw them at `dl`.
  std::string mapTypeAt(const llvm::DebugLoc &dl, const std::string &fallback) const;
  std::string mapNameAt(const llvm::DebugLoc &dl) const;
  // A map that is a global variable is named by it ("registry", "ns::table").
  static std::string globalName(llvm::Value *map);

 private:
  llvm::Constant *string(llvm::StringRef s);
  llvm::Module &M;
  const Runtime &rt;
  const TUState &state;
  llvm::StringMap<llvm::Constant *> strings;
  std::map<std::string, llvm::Constant *> sites;
  const llvm::Function *namedFunction = nullptr;  // whose pretty name is functionName
  std::string functionName;
};

}  // namespace mapguard

#endif  // MAPGUARD_PASS_SITETABLE_H
