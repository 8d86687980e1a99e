// Suppressions: a file of `kind:pattern` lines that silence matching reports.
//   map:PATTERN   the map's type          ("std::unordered_map<std::string, int>")
//   fun:PATTERN   any function in either access's location or stack
//   src:PATTERN   any source file in either access's location or stack
// `#` starts a comment; `*` matches any run of characters; `^` and `$`
// anchor the pattern at the start and end; otherwise it may match anywhere.
#ifndef MAPGUARD_SUPPRESSIONS_H
#define MAPGUARD_SUPPRESSIONS_H

namespace mapguard {

enum class SuppressionKind { kMap, kFun, kSrc };

// Loads suppressions=FILE; on a problem prints one line and exits 64.
void LoadSuppressions(const char *path);
// The index of the first rule that matches `text` for `kind`, or -1.
int MatchSuppression(SuppressionKind kind, const char *text);
void CountSuppressionHit(int rule);
// print_suppressions=1: the rules that matched, with counts, at exit.
void PrintSuppressionStats();
// Pattern matching as described above; exposed for unit tests.
bool TemplateMatch(const char *pattern, const char *text);

}  // namespace mapguard

#endif
