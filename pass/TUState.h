// What the AST side of the plugin learns about one translation unit and
// hands to the IR side. Class-level annotations and loop shapes never reach
// IR, so they travel through this object. One per cc1 job (the driver may run
// several in one process), owned by the callback that registers the pass.
#ifndef MAPGUARD_PASS_TUSTATE_H
#define MAPGUARD_PASS_TUSTATE_H

#include <map>
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

struct TUState {
  TrackedClasses tracked = TrackedClasses::withStandardContainers();
  // begin() calls that open a loop over a map: the colon of a range-for, or a
  // begin() in the init of a for loop.
  std::set<SourcePos> iterationBegins;
  // What the code calls the map at a member call ("registry.entries_").
  std::map<SourcePos, std::string> mapNames;
  // The map's type as clang prints it, default template arguments left out.
  std::map<SourcePos, std::string> mapTypes;
  bool verbose = false;
};

}  // namespace mapguard

#endif  // MAPGUARD_PASS_TUSTATE_H
