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

// What a call to a member of a synchronization class in a prebuilt library
// does to its lock (a "sync" line of the catalogue): the plugin cannot see
// the synchronization inside such a library (absl::Mutex waits in futex
// system calls), so it puts the edge around the call instead.
enum class SyncRole {
  Lock,          // exclusive: acquires after the call
  TryLock,       // acquires after the call if it returned true (also
                 // acquire_if_true: Notification::HasBeenNotified)
  Unlock,        // releases before the call
  SharedLock,    // a reader lock: acquires after the call
  SharedTryLock, // acquires after the call if it returned true
  SharedUnlock,  // releases before the call
  Wait,          // releases before the call and acquires after (a wait
                 // that gives the lock up and takes it back)
  Release,       // releases before the call (Notification::Notify)
  Acquire,       // acquires after the call (Notification::WaitForNotification)
  Barrier,       // releases before the call and acquires after, on an object
                 // not held after it that the last party out may free
                 // (absl::Barrier::Block): the runtime pins its clock
};
struct SyncMember {
  SyncRole role;
  unsigned argIndex;  // the lock or object among the call's arguments (this = 0)
};

struct TrackedClasses {
  // Qualified class names without template arguments and without the
  // __cxx11 / __1 inline namespaces: "std::unordered_map", "ns::Registry".
  std::set<std::string> names;
  // Classes whose members read or write as the standard containers' do
  // (insert, erase, operator[]... write; anything else reads), whatever their
  // constness: a non-const find() is still a read. The std containers, and
  // catalogue entries with `api=std`. Others: const members read, the rest write.
  std::set<std::string> standardApi;
  // "ns::Registry::lookup" -> override; static members are Ignore.
  std::map<std::string, MemberOverride> members;
  // "absl::Mutex::Lock" -> its role (sync lines of the catalogue).
  std::map<std::string, SyncMember> syncMembers;
  // Each sync class's own name as a mangled name spells it ("5Mutex"): a
  // callee without one of these is not demangled to be looked up.
  std::set<std::string> syncNameHints;
  // "g_mutex_lock" -> its role: C functions (`sync - ...` lines).
  std::map<std::string, SyncMember> syncFunctions;
  // `entry` lines: a member function of any class, named one of these and
  // taking exactly this one parameter, is entered from a prebuilt library
  // that handed `this` over (a task scheduler running a spawned task): it
  // acquires on `this` at its entry. Parameter type as the demangler spells
  // it ("tbb::detail::d1::execution_data&") -> member names.
  std::map<std::string, std::set<std::string>> entryAcquire;
  // `entry CLASS run=MEMBER,...` lines: a member of CLASS (any template
  // arguments) taking no parameter, which a prebuilt library calls to run
  // work a waiting thread handed over and waits for (oneTBB's
  // task_arena::execute when the caller cannot join the arena): it acquires
  // on `this` at its entry and releases on `this` at every exit, normal or
  // unwinding, pairing with a `wait` role at the call that handed it over.
  // Class as normalizeClassName spells it -> member names.
  std::map<std::string, std::set<std::string>> entryRun;
  // Inline namespaces the translation unit declares (Abseil's
  // absl::debian3, libc++'s __1...): a library's versioning, not part of the
  // names above. Mangled names spell them like any namespace.
  std::set<std::string> inlineNamespaces;
  // `normalized` (see normalizeClassName) without the inline namespaces.
  std::string canonical(const std::string &normalized) const;
  bool isTracked(const std::string &qualified) const { return names.count(qualified) != 0; }
  // `base` declares members that a call on the tracked class `derived` reaches
  // (absl::flat_hash_map's find is raw_hash_set's): track it with the same rules.
  void trackBaseOf(const std::string &derived, const std::string &base);
  static TrackedClasses withStandardContainers();
  // Adds what the catalogue's and track-files' lines set in `lines` (parsed
  // with parseTrackLine): the one place that knows every such field.
  void addLinesOf(const TrackedClasses &lines);
};

// Adds one line of a catalogue or track-file to `tracked`:
//   NAME [api=std] [read=MEMBER,...] [write=MEMBER,...] [ignore=MEMBER,...]
//   sync NAME ROLE[@ARG]=MEMBER,... ...
//   entry PARAMETER-TYPE acquire=MEMBER,...
// (ROLE: lock, trylock, unlock, shared_lock, shared_trylock, shared_unlock,
// wait, release, acquire, acquire_if_true; ARG: the argument that is the
// lock, this = 0)
// ('#' starts a comment; blank lines are fine). Returns an error message
// naming what is wrong, or an empty string.
std::string parseTrackLine(const std::string &line, TrackedClasses &tracked);

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

// "std::ranges::__count_if_fn" -> "count_if"; "std::ranges::__find::__fn"
// -> "find": the algorithm a std::ranges function object's class is, or
// empty (views, customization points such as ranges::begin, other classes).
std::string rangesAlgorithmName(const std::string &context);

// Classifies a direct call to `mangledCallee`. Returns nullopt for calls that
// do not touch a tracked map (including calls into the container's internals).
std::optional<Classification> classifyCall(const std::string &mangledCallee,
                                           const TrackedClasses &tracked);

// What the AST saw at a member call on a tracked map, for a callee whose
// mangled name the demangler cannot read (libc++'s constrained member
// templates, e.g. std::map::insert_range in C++23).
struct MemberCallFacts {
  std::string classType;  // "std::map<int, int>"
  std::string method;     // "insert_range"
  bool isConst = false;
  std::vector<std::string> params;  // other map operands are not looked for
};
std::optional<Classification> classifyMemberCall(const MemberCallFacts &facts,
                                                 const TrackedClasses &tracked);
bool canDemangle(const std::string &mangled);
// What an `entry` line makes of the function defined under
// `mangledFunction`: nothing, an acquire on `this` (argument 0) at its entry
// (`acquire=`), or that and a release on `this` at its exits (`run=`).
enum class EntryRole { None, Acquire, Run };
EntryRole entryRoleOf(const std::string &mangledFunction, const TrackedClasses &tracked);
// A call to a member of a sync class: its role and the lock's argument.
std::optional<SyncMember> classifySyncCall(const std::string &mangledCallee,
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
