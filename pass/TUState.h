// What the AST side of the plugin learns about one translation unit and
// hands to the IR side. Class-level annotations and loop shapes never reach
// IR, so they travel through this object. One per cc1 job (the driver may run
// several in one process), owned by the callback that registers the pass.
#ifndef MAPGUARD_PASS_TUSTATE_H
#define MAPGUARD_PASS_TUSTATE_H

#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>

#include "MapClassifier.h"

namespace mapguard {

// A source position as debug locations spell it.
struct SourcePos {
  std::string file;
  unsigned line = 0, column = 0;
  bool operator<(const SourcePos &o) const {
    return std::tie(line, column, file) < std::tie(o.line, o.column, o.file);
  }
};

// How an identifier appears in an Itanium mangled name ("find_if" ->
// "7find_if"): enough to tell which of the calls at one source position is
// the one meant.
inline std::string mangledIdentifier(const std::string &id) { return std::to_string(id.size()) + id; }

// A map a call reaches only through another call: the map is argument
// `argIndex` (0 = `this` of a member call) of the call at `source`.
struct DerivedRegion {
  AccessKind kind;
  std::string op;  // what the report calls the access: "std::find_if"
  // mangledIdentifier() of the call that gets the region ("7find_if") and of
  // the call that took the map ("5begin", "8inserter", "6ranges"): several
  // calls can share a position (a macro), and only those may be meant.
  std::string userMark;
  std::string sourceMark;
  SourcePos source;
  unsigned argIndex = 0;
  bool sourceIsUser = false;  // the map is the call's own argument (std::invoke)
};

struct TUState {
  TrackedClasses tracked = TrackedClasses::withStandardContainers();
  // begin() calls that open a loop over a map: the colon of a range-for, or a
  // begin() in the init of a for loop.
  std::set<SourcePos> iterationBegins;
  // What the code calls the map at a member call ("registry.entries_").
  std::map<SourcePos, std::string> mapNames;
  // The map's type as clang prints it, default template arguments left out.
  std::map<SourcePos, std::string> mapTypes;
  // Calls in namespace std that iterate a map through iterators from it
  // (std::find_if(m.begin(), m.end(), p)) or write it through
  // std::inserter(m, ...): keyed by the call's position.
  std::map<SourcePos, std::vector<DerivedRegion>> derivedRegions;
  // Range-for loops over a view of a map (m | std::views::keys): keyed by
  // the colon, where the view's begin() is called.
  std::map<SourcePos, DerivedRegion> derivedIterations;
  // Member calls on tracked maps as the AST saw them, for callees whose
  // mangled names the demangler cannot read: keyed by the call's position.
  std::map<SourcePos, MemberCallFacts> memberCalls;
  bool verbose = false;
  // -fplugin-arg-mapguard-verify: the pass checks its output with the LLVM
  // verifier (release clang does not), as every end-to-end test asks.
  bool verifyIR = false;
  // mapguard_fast_path.bc (runtime/mg_fast_path.cpp), read once per process:
  // at -O1 and above the pass links it into the module so the owned fast
  // path runs inline. Null with fast-path=off.
  std::shared_ptr<const std::string> fastPathBitcode;
  std::string fastPathFile;
};

}  // namespace mapguard

#endif  // MAPGUARD_PASS_TUSTATE_H
