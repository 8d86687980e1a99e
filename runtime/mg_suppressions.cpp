#include "mg_suppressions.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mg_rt.h"

namespace mapguard {
namespace {

constexpr int kMaxRules = 256;
constexpr int kPatternLen = 256;
struct Rule {
  SuppressionKind kind;
  char pattern[kPatternLen];
  char text[kPatternLen + 8];  // as written, for print_suppressions
  int hits;
};
Rule g_rules[kMaxRules];
int g_rule_count;

[[noreturn]] void BadFile(const char *path, int line, const char *what) {
  char msg[768];
  int n = line ? snprintf(msg, sizeof(msg), "mapguard: error: suppressions file '%s' line %d: %s\n",
                          path, line, what)
               : snprintf(msg, sizeof(msg), "mapguard: error: suppressions file '%s': %s\n", path,
                          what);
  WriteAll(msg, size_t(n) < sizeof(msg) ? size_t(n) : sizeof(msg) - 1);
  _exit(64);
}

// Star-matching on an unanchored, wildcard-free-ends pattern.
bool MatchHere(const char *p, const char *t, bool anchored_end) {
  for (;;) {
    if (*p == 0) return !anchored_end || *t == 0;
    if (*p == '*') {
      while (*p == '*') p++;
      if (*p == 0) return true;
      for (; *t; t++)
        if (MatchHere(p, t, anchored_end)) return true;
      return MatchHere(p, t, anchored_end);
    }
    if (*t == 0 || *p != *t) return false;
    p++;
    t++;
  }
}

}  // namespace

bool TemplateMatch(const char *pattern, const char *text) {
  if (!text) return false;
  char buf[kPatternLen];
  snprintf(buf, sizeof(buf), "%s", pattern);
  bool start = buf[0] == '^';
  char *p = start ? buf + 1 : buf;
  size_t len = strlen(p);
  bool end = len > 0 && p[len - 1] == '$';
  if (end) p[len - 1] = 0;
  if (start) return MatchHere(p, text, end);
  for (const char *t = text;; t++) {
    if (MatchHere(p, t, end)) return true;
    if (!*t) return false;
  }
}

void LoadSuppressions(const char *path) {
  if (!path || !*path) return;
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) BadFile(path, 0, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    BadFile(path, 0, "not a regular file");
  }
  static char content[1 << 16];
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, content + len, sizeof(content) - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) BadFile(path, 0, strerror(errno));
    if (n == 0) break;
    len += size_t(n);
    if (len == sizeof(content) - 1) BadFile(path, 0, "larger than 64 KiB");
  }
  close(fd);
  content[len] = 0;
  int line_no = 0;
  for (char *line = content; line && *line;) {
    char *next = strchr(line, '\n');
    if (next) *next++ = 0;
    line_no++;
    if (char *hash = strchr(line, '#')) *hash = 0;
    while (*line == ' ' || *line == '\t') line++;
    size_t l = strlen(line);
    while (l && (line[l - 1] == ' ' || line[l - 1] == '\t' || line[l - 1] == '\r')) line[--l] = 0;
    if (l == 0) {
      line = next;
      continue;
    }
    char *colon = strchr(line, ':');
    if (!colon) BadFile(path, line_no, "expected KIND:PATTERN (kinds: map, fun, src)");
    *colon = 0;
    SuppressionKind kind;
    if (!strcmp(line, "map")) kind = SuppressionKind::kMap;
    else if (!strcmp(line, "fun")) kind = SuppressionKind::kFun;
    else if (!strcmp(line, "src")) kind = SuppressionKind::kSrc;
    else {
      char what[128];
      snprintf(what, sizeof(what), "unknown kind '%.40s' (kinds: map, fun, src)", line);
      BadFile(path, line_no, what);
    }
    const char *pattern = colon + 1;
    if (!*pattern) BadFile(path, line_no, "empty pattern");
    if (strlen(pattern) >= kPatternLen) BadFile(path, line_no, "pattern longer than 255 characters");
    if (g_rule_count == kMaxRules) BadFile(path, line_no, "more than 256 rules");
    Rule &r = g_rules[g_rule_count++];
    r.kind = kind;
    snprintf(r.pattern, sizeof(r.pattern), "%s", pattern);
    snprintf(r.text, sizeof(r.text), "%s:%s", line, pattern);
    r.hits = 0;
    line = next;
  }
}

int MatchSuppression(SuppressionKind kind, const char *text) {
  for (int i = 0; i < g_rule_count; i++)
    if (g_rules[i].kind == kind && TemplateMatch(g_rules[i].pattern, text)) return i;
  return -1;
}

void CountSuppressionHit(int rule) {
  if (rule >= 0 && rule < g_rule_count) g_rules[rule].hits++;
}

void PrintSuppressionStats() {
  bool any = false;
  for (int i = 0; i < g_rule_count; i++) {
    if (!g_rules[i].hits) continue;
    char line[400];
    int n = snprintf(line, sizeof(line), "%smapguard: suppression %s matched %d report%s\n",
                     any ? "" : "", g_rules[i].text, g_rules[i].hits, g_rules[i].hits == 1 ? "" : "s");
    WriteAll(line, size_t(n) < sizeof(line) ? size_t(n) : sizeof(line) - 1);
    any = true;
  }
  if (!any && g_rule_count) {
    static const char kNone[] = "mapguard: no suppression matched\n";
    WriteAll(kNone, sizeof(kNone) - 1);
  }
}

}  // namespace mapguard
