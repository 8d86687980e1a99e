// Decides, from a callee's Itanium-mangled name, whether a call touches a
// tracked map and how: read, write, constructor, destructor. Pure string
// logic (no IR), so it is unit-tested on its own.
#ifndef MAPGUARD_PASS_MAPCLASSIFIER_H
#define MAPGUARD_PASS_MAPCLASSIFIER_H

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mapguard {

// Mirrors enum mg_access_kind in runtime/include/mapguard/interface.h.
enum class AccessKind { Read = 0, Write = 1, Iterate = 2, Construct = 3, Destroy = 4 };

// Annotation given to a member of a tracked class ("mapguard.read", ...).
enum class MemberOverride { Read, Write, Ignore };

struct TrackedClasses {
  // Qualified class names without template arguments and without the
  // __cxx11 / __1 inline namespaces: "std::unordered_map", "ns::Registry".
  std::set<std::string> names;
  // "ns::Registry::lookup" -> override; static members are Ignore.
  std::map<std::string, MemberOverride> members;
  bool isTracked(const std::string &qualified) const { return names.count(qualified) != 0; }
  static TrackedClasses withStandardContainers();
};

// One map operand of a call: which argument, and what the call does to it.
struct MapOperand {
  unsigned argIndex;  // index among the call's source-level arguments (this = 0)
  AccessKind kind;
};

struct Classification {
  std::string op;         // "insert", "operator[]", "constructor", "std::erase_if"
  std::string className;  // normalized tracked class, "std::map"
  std::string mapType;    // short readable type, "std::map<int, int>"
  bool isMember = false;
  bool isBeginCall = false;  // begin/cbegin/rbegin/crbegin: may start an iteration
  // A standard unordered container with the default hasher and key_equal,
  // whose bucket and element counts sit where mg_site_flags says.
  bool hashtableLayout = false;
  bool nodeBased = false;  // std::map, std::set and their multi forms
  std::vector<MapOperand> operands;  // the map(s) touched, `this` first
};

// Classifies a direct call to `mangledCallee`. Returns nullopt for calls that
// do not touch a tracked map (including calls into the container's internals).
std::optional<Classification> classifyCall(const std::string &mangledCallee,
                                           const TrackedClasses &tracked);

// True when code inside `mangledFunction` belongs to a library or tracked
// class implementation, where calls are not instrumented (only the outermost
// call counts).
bool isImplementationFunction(const std::string &mangledFunction, const TrackedClasses &tracked);

// "std::__cxx11::basic_string<char, ...>" -> "std::string"; drops inline
// namespaces and default arguments (hash, equal_to, less, allocator, traits).
std::string shortTypeName(const std::string &demangledType);

// A demangled function name with library types spelled as in source:
// "add(std::__cxx11::basic_string<char, ...> const&)" -> "add(std::string const&)".
std::string prettyFunctionName(const std::string &demangledFunction);

// "std::map<int, int, std::less<int> >" -> "std::map" (inline namespaces dropped).
std::string normalizeClassName(const std::string &demangledType);

}  // namespace mapguard

#endif  // MAPGUARD_PASS_MAPCLASSIFIER_H
