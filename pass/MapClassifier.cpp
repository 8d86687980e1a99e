#include "MapClassifier.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "llvm/Demangle/Demangle.h"

namespace mapguard {
namespace {

const char *const kStandardContainers[] = {
    "std::unordered_map", "std::unordered_multimap", "std::map",      "std::multimap",
    "std::unordered_set", "std::unordered_multiset", "std::set",      "std::multiset",
};

// Members that can change the structure of a standard container. Everything
// else a user calls on one (find, count, at, size, begin, bucket queries...)
// is a read. max_load_factor is a write only in its setter form.
const char *const kStandardWrites[] = {
    "insert",   "emplace", "emplace_hint", "try_emplace", "insert_or_assign", "operator[]",
    "erase",    "clear",   "swap",         "merge",       "extract",          "rehash",
    "reserve",  "operator=", "insert_range",
};

const char *const kBeginCalls[] = {"begin", "cbegin", "rbegin", "crbegin"};

// Members that read nothing another thread's write can change: end() is a
// sentinel (an address or a null node in both libstdc++ and libc++), the rest
// return the container's functors, allocator or fixed limits. Not counting
// them halves the cost of the common `m.find(k) != m.end()`.
const char *const kStandardNonAccesses[] = {"end",           "cend",     "max_size",
                                            "get_allocator", "key_comp", "value_comp",
                                            "hash_function", "key_eq",   "max_bucket_count"};

// Free functions in namespace std that take maps by reference.
const char *const kStdFreeWrites[] = {"erase_if", "swap"};
const char *const kStdFreeReads[] = {
    "begin",      "end",        "cbegin",     "cend",       "rbegin",     "rend",
    "crbegin",    "crend",      "size",       "ssize",      "empty",      "operator==",
    "operator!=", "operator<",  "operator<=", "operator>",  "operator>=", "operator<=>",
};

template <size_t N>
bool inList(const std::string &s, const char *const (&list)[N]) {
  for (const char *e : list)
    if (s == e) return true;
  return false;
}

void eraseAll(std::string &s, const std::string &what) {
  for (size_t p; (p = s.find(what)) != std::string::npos;) s.erase(p, what.size());
}

void replaceAll(std::string &s, const std::string &what, const std::string &with) {
  for (size_t p = 0; (p = s.find(what, p)) != std::string::npos; p += with.size())
    s.replace(p, what.size(), with);
}

std::string trim(const std::string &s) {
  size_t b = s.find_first_not_of(' '), e = s.find_last_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Inline namespaces (libstdc++'s __cxx11, libc++'s __1) and the debug-mode
// ones: with -D_GLIBCXX_DEBUG, std::map is std::__debug::map, a wrapper over
// std::__cxx1998::map; to mapguard both are the same std containers.
std::string dropInlineNamespaces(std::string s) {
  eraseAll(s, "__cxx11::");
  eraseAll(s, "__1::");
  eraseAll(s, "__debug::");
  eraseAll(s, "__cxx1998::");
  return s;
}

// Splits "a<b, c>, d" at the commas of depth 0.
std::vector<std::string> splitTopLevel(const std::string &s) {
  std::vector<std::string> out;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); i++) {
    char c = s[i];
    if (c == '<' || c == '(' || c == '[') depth++;
    else if (c == '>' || c == ')' || c == ']') depth--;
    else if (c == ',' && depth == 0) {
      out.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  std::string last = trim(s.substr(start));
  if (!last.empty()) out.push_back(last);
  return out;
}

bool startsWith(const std::string &s, const char *prefix) {
  return s.compare(0, strlen(prefix), prefix) == 0;
}

bool isDefaultArgument(const std::string &arg) {
  return startsWith(arg, "std::allocator<") || startsWith(arg, "std::hash<") ||
         startsWith(arg, "std::equal_to<") || startsWith(arg, "std::less<") ||
         startsWith(arg, "std::char_traits<") || startsWith(arg, "std::default_delete<");
}

std::string shorten(const std::string &t) {
  size_t open = t.find('<');
  if (open == std::string::npos || startsWith(t, "operator")) return t;
  int depth = 0;
  size_t close = std::string::npos;
  for (size_t i = open; i < t.size(); i++) {
    if (t[i] == '<') depth++;
    else if (t[i] == '>' && --depth == 0) {
      close = i;
      break;
    }
  }
  if (close == std::string::npos) return t;
  std::vector<std::string> args = splitTopLevel(t.substr(open + 1, close - open - 1));
  for (std::string &a : args) a = shorten(a);
  while (!args.empty() && isDefaultArgument(args.back())) args.pop_back();
  std::string out = t.substr(0, open) + "<";
  for (size_t i = 0; i < args.size(); i++) out += (i ? ", " : "") + args[i];
  return out + ">" + shorten(t.substr(close + 1));
}

// The parameter's class and whether the callee may modify it. "T const&" is a
// read; "T&", "T&&" and by-value moves are writes. Pointers and other types
// are not map operands.
std::optional<std::pair<std::string, AccessKind>> parameterMap(std::string p,
                                                               const TrackedClasses &tracked) {
  p = trim(p);
  AccessKind kind;
  if (p.size() > 6 && p.compare(p.size() - 6, 6, "const&") == 0) {
    kind = AccessKind::Read;
    p = trim(p.substr(0, p.size() - 6));
  } else if (p.size() > 2 && p.compare(p.size() - 2, 2, "&&") == 0) {
    kind = AccessKind::Write;
    p = trim(p.substr(0, p.size() - 2));
  } else if (!p.empty() && p.back() == '&') {
    kind = AccessKind::Write;
    p = trim(p.substr(0, p.size() - 1));
  } else {
    return std::nullopt;
  }
  std::string cls = tracked.canonical(normalizeClassName(p));
  if (!tracked.isTracked(cls)) return std::nullopt;
  return std::make_pair(cls, kind);
}

// "std::map<int, int>&" -> "std::map<int, int>" (references and const dropped).
std::string mapTypeOfParameter(std::string p) {
  while (!p.empty() && (p.back() == '&' || p.back() == ' ')) p.pop_back();
  if (p.size() > 6 && p.compare(p.size() - 6, 6, " const") == 0) p.resize(p.size() - 6);
  return p;
}

// "(T&&, X, T0)" with the function name "f<A&, B, C>" -> "(A&, X, B)": a
// parameter that is a bare template parameter (T, T0, T1, ...; Itanium's
// T_, T0_, T1_) becomes the corresponding template argument, references
// collapsed. Anything else is left as it is.
std::string substituteTemplateParameters(const std::string &params, const std::string &name) {
  if (name.empty() || name.back() != '>' || params.size() < 2) return params;
  int depth = 0;
  size_t open = std::string::npos;
  for (size_t i = name.size(); i-- > 0;) {
    if (name[i] == '>') depth++;
    else if (name[i] == '<' && --depth == 0) {
      open = i;
      break;
    }
  }
  if (open == std::string::npos) return params;
  std::vector<std::string> args = splitTopLevel(name.substr(open + 1, name.size() - open - 2));
  std::vector<std::string> list = splitTopLevel(params.substr(1, params.size() - 2));
  bool changed = false;
  for (std::string &p : list) {
    std::string core = p, ref;
    while (!core.empty() && (core.back() == '&' || core.back() == ' ')) {
      if (core.back() == '&') ref += '&';
      core.pop_back();
    }
    if (core.empty() || core[0] != 'T' ||
        core.find_first_not_of("0123456789", 1) != std::string::npos)
      continue;
    size_t index = core.size() == 1 ? 0 : std::strtoul(core.c_str() + 1, nullptr, 10) + 1;
    if (index >= args.size()) continue;
    std::string arg = args[index];
    if (!ref.empty() && !(arg.size() && arg.back() == '&')) arg += ref;  // T&& with T = A: A&&
    p = arg;  // T&& with T = A&: A& (collapsed)
    changed = true;
  }
  if (!changed) return params;
  std::string out = "(";
  for (size_t i = 0; i < list.size(); i++) out += (i ? ", " : "") + list[i];
  return out + ")";
}

struct Demangled {
  std::string context, base, params;
  bool isConst = false;
};

std::optional<Demangled> demangleFunction(const std::string &mangled) {
  if (mangled.compare(0, 2, "_Z") != 0) return std::nullopt;
  llvm::ItaniumPartialDemangler d;
  if (d.partialDemangle(mangled.c_str()) || !d.isFunction()) return std::nullopt;
  Demangled out;
  auto take = [](char *s) {
    std::string r = s ? s : "";
    std::free(s);
    return r;
  };
  out.context = take(d.getFunctionDeclContextName(nullptr, nullptr));
  out.base = take(d.getFunctionBaseName(nullptr, nullptr));
  out.params = take(d.getFunctionParameters(nullptr, nullptr));
  out.isConst = mangled.compare(0, 4, "_ZNK") == 0;
  // LLVM 22's demangler prints a parameter whose type is a constrained
  // template parameter by its name ("(T&&, T0)" for std::ranges algorithms'
  // operator()), where LLVM 19's printed the argument. The arguments are in
  // the function's name: put them back, so every LLVM gives the same text.
  if (out.params.find('T') != std::string::npos)
    out.params = substituteTemplateParameters(out.params, take(d.getFunctionName(nullptr, nullptr)));
  return out;
}

std::vector<std::string> parameterList(const std::string &params) {
  if (params.size() < 2) return {};
  return splitTopLevel(params.substr(1, params.size() - 2));
}

}  // namespace

// "std::ranges::__count_if_fn" -> "count_if"; "std::ranges::__find::__fn"
// -> "find". Empty for anything that is not a ranges algorithm.
std::string rangesAlgorithmName(const std::string &context) {
  static const char *const kAccessCPOs[] = {"begin", "end",  "cbegin", "cend",  "rbegin",
                                            "rend",  "crbegin", "crend", "size", "ssize",
                                            "empty", "data", "cdata",  "iter_move", "iter_swap",
                                            "swap"};
  std::string rest = context.substr(strlen("std::ranges::"));
  if (rest.find("views::") != std::string::npos || rest.find("__cust") != std::string::npos)
    return "";
  std::string name;
  if (rest.size() > 3 && rest.compare(rest.size() - 3, 3, "_fn") == 0 && rest.find("::") == std::string::npos)
    name = rest.substr(0, rest.size() - 3);  // libstdc++
  else if (rest.size() > 6 && rest.compare(rest.size() - 6, 6, "::__fn") == 0)
    name = rest.substr(0, rest.size() - 6);  // libc++
  else
    return "";
  while (!name.empty() && name[0] == '_') name.erase(0, 1);
  if (name.empty() || name.find("::") != std::string::npos || inList(name, kAccessCPOs)) return "";
  return name;
}

TrackedClasses TrackedClasses::withStandardContainers() {
  TrackedClasses t;
  for (const char *c : kStandardContainers) {
    t.names.insert(c);
    t.standardApi.insert(c);
  }
  return t;
}

std::string TrackedClasses::canonical(const std::string &normalized) const {
  if (inlineNamespaces.empty()) return normalized;
  std::string out;
  for (size_t b = 0; b <= normalized.size();) {
    size_t e = normalized.find("::", b);
    if (e == std::string::npos) e = normalized.size();
    std::string segment = normalized.substr(b, e - b);
    // The last segment is the class itself, never dropped.
    if (e == normalized.size() || !inlineNamespaces.count(segment))
      out += (out.empty() ? "" : "::") + segment;
    b = e + 2;
  }
  return out;
}

void TrackedClasses::trackBaseOf(const std::string &derived, const std::string &base) {
  if (isTracked(base) || !isTracked(derived)) return;
  names.insert(base);
  if (standardApi.count(derived)) standardApi.insert(base);
  std::string prefix = derived + "::";
  std::map<std::string, MemberOverride> inherited;
  for (const auto &[key, o] : members)
    if (key.compare(0, prefix.size(), prefix) == 0) inherited[base + "::" + key.substr(prefix.size())] = o;
  members.insert(inherited.begin(), inherited.end());
}

namespace {
// "find,count" -> {"find", "count"}: a catalogue field's member list, empty
// items dropped. (Not splitTopLevel: a member may be `operator<`.)
std::vector<std::string> splitMemberList(const std::string &value) {
  std::vector<std::string> out;
  for (size_t b = 0; b <= value.size();) {
    size_t e = value.find(',', b);
    if (e == std::string::npos) e = value.size();
    if (e > b) out.push_back(value.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

// `sync NAME ROLE[@ARG]=MEMBER,...`: see parseTrackLine.
std::string parseSyncLine(const std::vector<std::string> &words, TrackedClasses &tracked) {
  static const std::pair<const char *, SyncRole> kRoles[] = {
      {"lock", SyncRole::Lock},          {"trylock", SyncRole::TryLock},
      {"unlock", SyncRole::Unlock},      {"shared_lock", SyncRole::SharedLock},
      {"shared_trylock", SyncRole::SharedTryLock}, {"shared_unlock", SyncRole::SharedUnlock},
      {"wait", SyncRole::Wait},          {"release", SyncRole::Release},
      {"acquire", SyncRole::Acquire},    {"acquire_if_true", SyncRole::TryLock},
      {"barrier", SyncRole::Barrier}};
  if (words.size() < 3 || words[1].find('=') != std::string::npos)
    return "expected 'sync CLASS ROLE=MEMBER,...'";
  // `sync - ROLE=FUNCTION,...`: C functions, by their (unmangled) names.
  const bool cFunctions = words[1] == "-";
  std::string cls = cFunctions ? "" : normalizeClassName(words[1]);
  if (cls.empty() && !cFunctions)
    return "expected a class name (or - for C functions) after 'sync', got '" + words[1] + "'";
  std::vector<std::pair<std::string, SyncMember>> members;
  for (size_t i = 2; i < words.size(); i++) {
    const std::string &w = words[i];
    size_t eq = w.find('=');
    if (eq == std::string::npos) return "expected ROLE=MEMBER,... , got '" + w + "'";
    std::string key = w.substr(0, eq), value = w.substr(eq + 1);
    unsigned arg = 0;
    if (size_t at = key.find('@'); at != std::string::npos) {
      std::string digits = key.substr(at + 1);
      if (digits.empty() || digits.size() > 2 ||
          digits.find_first_not_of("0123456789") != std::string::npos)
        return "'" + key + "': expected ROLE@ARGUMENT-NUMBER";
      arg = unsigned(std::stoul(digits));
      key = key.substr(0, at);
    }
    const SyncRole *role = nullptr;
    for (const auto &[name, r] : kRoles)
      if (key == name) role = &r;
    if (!role)
      return "unknown sync role '" + key +
             "' (known: lock, trylock, unlock, shared_lock, shared_trylock, shared_unlock, "
             "wait, release, acquire, acquire_if_true)";
    if (value.empty()) return "'" + key + "=' lists no member";
    for (const std::string &member : splitMemberList(value))
      members.push_back({member, SyncMember{*role, arg}});
  }
  if (cFunctions) {
    for (const auto &[function, m] : members) tracked.syncFunctions[function] = m;
    return "";
  }
  for (const auto &[member, m] : members) tracked.syncMembers[cls + "::" + member] = m;
  std::string last = cls.substr(cls.rfind(':') == std::string::npos ? 0 : cls.rfind(':') + 1);
  tracked.syncNameHints.insert(std::to_string(last.size()) + last);
  return "";
}

// `entry PARAMETER-TYPE acquire=MEMBER,...` and `entry CLASS run=MEMBER,...`:
// see TrackedClasses::entryAcquire and entryRun.
std::string parseEntryLine(const std::vector<std::string> &words, TrackedClasses &tracked) {
  const char *kForms = "expected 'entry PARAMETER-TYPE acquire=MEMBER,...' or 'entry CLASS run=MEMBER,...'";
  if (words.size() != 3) return kForms;
  const std::string &role = words[2];
  if (role.compare(0, 8, "acquire=") == 0 && role.size() > 8) {
    for (const std::string &member : splitMemberList(role.substr(8)))
      tracked.entryAcquire[words[1]].insert(member);
    return "";
  }
  if (role.compare(0, 4, "run=") == 0 && role.size() > 4) {
    std::string cls = normalizeClassName(words[1]);
    if (cls.empty()) return "expected a class name after 'entry', got '" + words[1] + "'";
    for (const std::string &member : splitMemberList(role.substr(4))) tracked.entryRun[cls].insert(member);
    return "";
  }
  return kForms;
}
}  // namespace

void TrackedClasses::addLinesOf(const TrackedClasses &lines) {
  names.insert(lines.names.begin(), lines.names.end());
  standardApi.insert(lines.standardApi.begin(), lines.standardApi.end());
  for (const auto &[key, o] : lines.members) members[key] = o;
  for (const auto &[key, m] : lines.syncMembers) syncMembers[key] = m;
  syncNameHints.insert(lines.syncNameHints.begin(), lines.syncNameHints.end());
  for (const auto &[key, m] : lines.syncFunctions) syncFunctions[key] = m;
  for (const auto &[param, names] : lines.entryAcquire)
    entryAcquire[param].insert(names.begin(), names.end());
  for (const auto &[cls, names] : lines.entryRun) entryRun[cls].insert(names.begin(), names.end());
}

std::string parseTrackLine(const std::string &line, TrackedClasses &tracked) {
  std::string text = line.substr(0, line.find('#'));
  std::vector<std::string> words;
  for (size_t i = 0; i < text.size();) {
    size_t b = text.find_first_not_of(" \t\r", i);
    if (b == std::string::npos) break;
    size_t e = text.find_first_of(" \t\r", b);
    if (e == std::string::npos) e = text.size();
    words.push_back(text.substr(b, e - b));
    i = e;
  }
  if (words.empty()) return "";
  if (words[0] == "sync") return parseSyncLine(words, tracked);
  if (words[0] == "entry") return parseEntryLine(words, tracked);
  std::string cls = normalizeClassName(words[0]);
  if (cls.empty() || words[0].find('=') != std::string::npos)
    return "expected a class name first, got '" + words[0] + "'";
  bool standard = false;
  std::vector<std::pair<std::string, MemberOverride>> overrides;
  for (size_t i = 1; i < words.size(); i++) {
    const std::string &w = words[i];
    size_t eq = w.find('=');
    std::string key = w.substr(0, eq), value = eq == std::string::npos ? "" : w.substr(eq + 1);
    if (key == "api" && value == "std") {
      standard = true;
      continue;
    }
    MemberOverride o;
    if (key == "read") o = MemberOverride::Read;
    else if (key == "write") o = MemberOverride::Write;
    else if (key == "ignore") o = MemberOverride::Ignore;
    else
      return "unknown field '" + w + "' (known: api=std, read=, write=, ignore=)";
    if (value.empty()) return "'" + key + "=' lists no member";
    for (const std::string &member : splitMemberList(value)) overrides.push_back({member, o});
  }
  tracked.names.insert(cls);
  if (standard) tracked.standardApi.insert(cls);
  for (const auto &[member, o] : overrides) tracked.members[cls + "::" + member] = o;
  return "";
}

std::string normalizeClassName(const std::string &demangledType) {
  std::string s = dropInlineNamespaces(demangledType);
  size_t open = s.find('<');
  if (open != std::string::npos) s.resize(open);
  return trim(s);
}

// Library spellings people do not write: inline namespaces, and the full
// template arguments of std::string.
static std::string spellLikeSource(const std::string &demangled) {
  std::string s = dropInlineNamespaces(demangled);
  replaceAll(s, "> >", ">>");
  replaceAll(s, "std::basic_string<char, std::char_traits<char>, std::allocator<char>>",
             "std::string");
  replaceAll(s, "std::basic_string_view<char, std::char_traits<char>>", "std::string_view");
  replaceAll(s, "std::basic_string<char>", "std::string");
  replaceAll(s, "std::basic_string_view<char>", "std::string_view");
  return s;
}

std::string shortTypeName(const std::string &demangledType) {
  return shorten(spellLikeSource(demangledType));
}

std::string prettyFunctionName(const std::string &demangledFunction) {
  std::string s = spellLikeSource(demangledFunction);
  // operator<, operator<<, operator-> ... would confuse the bracket matching.
  if (s.find("operator<") != std::string::npos || s.find("operator>") != std::string::npos ||
      s.find("operator-") != std::string::npos)
    return s;
  return shorten(s);
}

// "std::unordered_map<K, V, std::hash<K>, std::equal_to<K>, std::allocator<...>>"
// and the set and multi forms: the layouts MG_SITE_HASHTABLE_LAYOUT
// describes. A custom hasher or key_equal may hold state, which moves the
// counts in libstdc++; a stateful allocator (std::pmr, an arena) moves the
// list head and the size in libc++.
bool hasStandardHashtableLayout(const std::string &demangledContext) {
  // Debug-mode containers put their safe-iterator bookkeeping first.
  if (demangledContext.find("__debug::") != std::string::npos) return false;
  std::string cls = normalizeClassName(demangledContext);
  bool isMap = cls == "std::unordered_map" || cls == "std::unordered_multimap";
  bool isSet = cls == "std::unordered_set" || cls == "std::unordered_multiset";
  if (!isMap && !isSet) return false;
  std::string t = dropInlineNamespaces(demangledContext);
  size_t open = t.find('<'), close = t.rfind('>');
  if (open == std::string::npos || close == std::string::npos || close < open) return false;
  std::vector<std::string> args = splitTopLevel(t.substr(open + 1, close - open - 1));
  size_t hashArg = isMap ? 2 : 1;
  return args.size() > hashArg + 1 && startsWith(args[hashArg], "std::hash<") &&
         startsWith(args[hashArg + 1], "std::equal_to<") &&
         (args.size() == hashArg + 2 || startsWith(args[hashArg + 2], "std::allocator<"));
}

// A call of member `base` on the tracked class `cls` (`context`: its full
// type as printed, for the report and the layout flags).
static std::optional<Classification> classifyMember(const std::string &context, const std::string &cls,
                                             const std::string &base, bool isConst,
                                             const std::vector<std::string> &params,
                                             const TrackedClasses &tracked) {
  Classification c;
  c.isMember = true;
  c.className = cls;
  c.mapType = shortTypeName(context);
  for (const std::string &ns : tracked.inlineNamespaces) eraseAll(c.mapType, ns + "::");
  c.hashtableLayout = hasStandardHashtableLayout(context);
  c.nodeBased = cls == "std::map" || cls == "std::set" || cls == "std::multimap" ||
                cls == "std::multiset";
  c.op = base;
  std::string shortName = cls.substr(cls.rfind("::") == std::string::npos ? 0 : cls.rfind("::") + 2);
  AccessKind kind;
  bool standard = tracked.standardApi.count(cls) != 0;
  auto member = tracked.members.find(cls + "::" + base);
  if (base == shortName) {
    kind = AccessKind::Construct;
    c.op = "constructor";
  } else if (base == "~" + shortName) {
    kind = AccessKind::Destroy;
    c.op = "destructor";
  } else if (member != tracked.members.end()) {
    if (member->second == MemberOverride::Ignore) return std::nullopt;
    kind = member->second == MemberOverride::Read ? AccessKind::Read : AccessKind::Write;
  } else if (startsWith(cls, "std::") && inList(base, kStandardNonAccesses)) {
    // Only the std containers' end() is known to be a sentinel.
    return std::nullopt;
  } else if (standard) {
    bool write = inList(base, kStandardWrites) ||
                 (base == "max_load_factor" && !params.empty());
    kind = write ? AccessKind::Write : AccessKind::Read;
  } else {
    kind = isConst ? AccessKind::Read : AccessKind::Write;
  }
  c.isBeginCall = kind == AccessKind::Read && inList(base, kBeginCalls);
  c.operands.push_back({0, kind});
  // Other maps passed by reference: copy/move sources, swap, merge.
  for (unsigned i = 0; i < params.size(); i++)
    if (auto pm = parameterMap(params[i], tracked)) c.operands.push_back({i + 1, pm->second});
  return c;
}

namespace {
bool isEntryAcquireFunction(const std::string &mangledFunction, const TrackedClasses &tracked) {
  if (tracked.entryAcquire.empty()) return false;
  // Cheap test first, which also serves names the demangler cannot read (a
  // class templated on a lambda of internal linkage, "Z4mainE3$_0"): the
  // name ends with the parameter's own class name, "14execution_dataE", and
  // holds "7executeER" (the member, then a reference parameter).
  bool spelled = false;
  for (const auto &[param, members] : tracked.entryAcquire) {
    std::string type = param;
    while (!type.empty() && (type.back() == '&' || type.back() == ' ')) type.pop_back();
    std::string last = type.substr(type.rfind(':') == std::string::npos ? 0 : type.rfind(':') + 1);
    std::string tail = std::to_string(last.size()) + last + "E";
    if (mangledFunction.size() < tail.size() ||
        mangledFunction.compare(mangledFunction.size() - tail.size(), tail.size(), tail) != 0)
      continue;
    for (const std::string &m : members)
      if (mangledFunction.find(std::to_string(m.size()) + m + "ER") != std::string::npos) spelled = true;
  }
  if (!spelled) return false;
  std::optional<Demangled> d = demangleFunction(mangledFunction);
  if (!d && !canDemangle(mangledFunction)) return true;  // spelled so, and unreadable
  if (!d || d->context.empty()) return false;
  std::vector<std::string> params = parameterList(d->params);
  if (params.size() != 1) return false;
  auto it = tracked.entryAcquire.find(params[0]);
  return it != tracked.entryAcquire.end() && it->second.count(d->base) != 0;
}

// A `run=` member of CLASS taking no parameter. Its mangled name starts with
// the class's nested name ("_ZNK3tbb6detail2d119task_arena_function") and
// ends with the member's and an empty parameter list ("clEv"), template
// arguments between them; a readable name must also demangle to it (names
// templated on a local lambda, "Z4mainE3$_0", do not demangle).
bool isEntryRunFunction(const std::string &mangledFunction, const TrackedClasses &tracked) {
  for (const auto &[cls, members] : tracked.entryRun) {
    std::string nested;
    for (size_t b = 0; b < cls.size();) {
      size_t e = cls.find("::", b);
      std::string part = cls.substr(b, e == std::string::npos ? std::string::npos : e - b);
      nested += std::to_string(part.size()) + part;
      b = e == std::string::npos ? cls.size() : e + 2;
    }
    // A suffix the compiler adds (".__uniq.<hash>" for internal linkage
    // with -funique-internal-linkage-names, ".cold") is not the name.
    const std::string name = mangledFunction.substr(0, mangledFunction.find('.'));
    size_t at = name.compare(0, 4, "_ZNK") == 0 ? 4 : 3;
    if (name.compare(0, 3, "_ZN") != 0 || name.compare(at, nested.size(), nested) != 0) continue;
    for (const std::string &m : members) {
      std::string tail = (m == "operator()" ? "cl" : std::to_string(m.size()) + m) + "Ev";
      if (name.size() < at + nested.size() + tail.size() ||
          name.compare(name.size() - tail.size(), tail.size(), tail) != 0)
        continue;
      std::optional<Demangled> d = demangleFunction(name);
      if (!d) return !canDemangle(name);
      // The class itself, with or without template arguments; not a class
      // nested in it ("task_arena_function<F, R>::inner").
      const std::string &ctx = d->context;
      if (ctx.empty()) return false;
      bool itself = ctx.back() == '>' ? ctx.find(">::", ctx.find('<')) == std::string::npos
                                      : ctx.find('<') == std::string::npos;
      return parameterList(d->params).empty() && d->base == m && itself &&
             tracked.canonical(normalizeClassName(ctx)) == cls;
    }
  }
  return false;
}
}  // namespace

EntryRole entryRoleOf(const std::string &mangledFunction, const TrackedClasses &tracked) {
  if (isEntryRunFunction(mangledFunction, tracked)) return EntryRole::Run;
  if (isEntryAcquireFunction(mangledFunction, tracked)) return EntryRole::Acquire;
  return EntryRole::None;
}

std::optional<SyncMember> classifySyncCall(const std::string &mangledCallee,
                                           const TrackedClasses &tracked) {
  if (mangledCallee.compare(0, 2, "_Z") != 0) {
    auto it = tracked.syncFunctions.find(mangledCallee);
    if (it == tracked.syncFunctions.end()) return std::nullopt;
    return it->second;
  }
  if (std::none_of(tracked.syncNameHints.begin(), tracked.syncNameHints.end(),
                   [&](const std::string &hint) { return mangledCallee.find(hint) != std::string::npos; }))
    return std::nullopt;
  std::optional<Demangled> d = demangleFunction(mangledCallee);
  if (!d) return std::nullopt;
  auto it = tracked.syncMembers.find(tracked.canonical(normalizeClassName(d->context)) + "::" + d->base);
  if (it == tracked.syncMembers.end()) return std::nullopt;
  return it->second;
}

std::optional<Classification> classifyCall(const std::string &mangledCallee,
                                           const TrackedClasses &tracked) {
  std::optional<Demangled> d = demangleFunction(mangledCallee);
  if (!d) return std::nullopt;
  std::vector<std::string> params = parameterList(d->params);

  std::string cls = tracked.canonical(normalizeClassName(d->context));
  if (tracked.isTracked(cls)) return classifyMember(d->context, cls, d->base, d->isConst, params, tracked);

  // The std::ranges algorithms are function objects: std::ranges::__find_fn
  // (libstdc++) or std::ranges::__find::__fn (libc++), whose operator() takes
  // the range. A map passed to one is iterated for the call's duration; no
  // algorithm can insert into or erase from it. (Customization points such as
  // ranges::begin are function objects too, and are left to the member call
  // they make.)
  if (d->base == "operator()" && startsWith(d->context, "std::ranges::")) {
    std::string algo = rangesAlgorithmName(d->context);
    if (algo.empty()) return std::nullopt;
    Classification c;
    c.op = "std::ranges::" + algo;
    for (unsigned i = 0; i < params.size(); i++) {
      auto pm = parameterMap(params[i], tracked);
      if (!pm) continue;
      if (c.className.empty()) {
        c.className = pm->first;
        c.mapType = shortTypeName(mapTypeOfParameter(params[i]));
      }
      // operand 0 of a member call is `this` (the function object).
      c.operands.push_back({i + 1, AccessKind::Iterate});
    }
    if (c.operands.empty()) return std::nullopt;
    return c;
  }

  if (d->context == "std") {
    bool write = inList(d->base, kStdFreeWrites);
    if (!write && !inList(d->base, kStdFreeReads)) return std::nullopt;
    Classification c;
    c.op = "std::" + d->base;
    for (unsigned i = 0; i < params.size(); i++) {
      auto pm = parameterMap(params[i], tracked);
      if (!pm) continue;
      if (c.className.empty()) {
        c.className = pm->first;
        c.mapType = shortTypeName(mapTypeOfParameter(params[i]));
      }
      c.operands.push_back({i, write ? AccessKind::Write : AccessKind::Read});
    }
    if (c.operands.empty()) return std::nullopt;
    return c;
  }
  return std::nullopt;
}

std::optional<Classification> classifyMemberCall(const MemberCallFacts &facts,
                                                 const TrackedClasses &tracked) {
  std::string cls = tracked.canonical(normalizeClassName(facts.classType));
  if (!tracked.isTracked(cls)) return std::nullopt;
  return classifyMember(facts.classType, cls, facts.method, facts.isConst, facts.params, tracked);
}

bool canDemangle(const std::string &mangled) { return demangleFunction(mangled).has_value(); }

bool isImplementationFunction(const std::string &mangledFunction, const TrackedClasses &tracked) {
  std::optional<Demangled> d = demangleFunction(mangledFunction);
  // A name the demangler cannot read (libc++'s constrained member templates):
  // the standard library's own code is still recognizable by its prefix.
  if (!d)
    return startsWith(mangledFunction, "_ZNSt") || startsWith(mangledFunction, "_ZNKSt") ||
           startsWith(mangledFunction, "_ZSt") || startsWith(mangledFunction, "_ZZNSt") ||
           startsWith(mangledFunction, "_ZZNKSt");
  const std::string &ctx = d->context;
  if (ctx == "std" || startsWith(ctx, "std::") || startsWith(ctx, "__gnu_cxx") ||
      startsWith(ctx, "__cxxabiv1"))
    return true;
  return tracked.isTracked(tracked.canonical(normalizeClassName(ctx)));
}

}  // namespace mapguard
