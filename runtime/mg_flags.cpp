// MAPGUARD_OPTIONS parsing. Order: built-in defaults, then the program's
// __mapguard_default_options(), then the environment. Bad input is never
// ignored: one line naming the problem, then exit with kBadOptionsExit.
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mg_rt.h"

extern "C" __attribute__((weak)) const char *__mapguard_default_options() { return ""; }

namespace mapguard {

// Statically initialized with the defaults, so a map used by another
// library's constructor before ours has run still sees sane options.
Flags g_flags = {
#define MG_FLAG(type, name, def, desc) def,
#include "mg_flags.inc"
#undef MG_FLAG
};
bool g_detect_hb = true;
extern bool g_print_stats;
// (declared in mg_rt.h)

namespace {

enum class FlagType { kBool, kInt, kString };

struct FlagInfo {
  const char *name;
  FlagType type;
  void *value;
  const char *default_text;
  const char *description;
};

#define MG_FLAG_KIND_bool FlagType::kBool
#define MG_FLAG_KIND_int FlagType::kInt
#define MG_FLAG_KIND_string FlagType::kString

const FlagInfo kFlagTable[] = {
#define MG_FLAG(type, name, def, desc) {#name, MG_FLAG_KIND_##type, &g_flags.name, #def, desc},
#include "mg_flags.inc"
#undef MG_FLAG
};

void SetDefaults() {
#define MG_FLAG(type, name, def, desc) g_flags.name = def;
#include "mg_flags.inc"
#undef MG_FLAG
}

[[noreturn]] void BadOption(const char *source, const char *fmt, const char *a, const char *b) {
  char msg[512];
  int n = snprintf(msg, sizeof(msg), "mapguard: error: ");
  n += snprintf(msg + n, sizeof(msg) - size_t(n), fmt, a, b);
  snprintf(msg + n, sizeof(msg) - size_t(n), " (in %s); MAPGUARD_OPTIONS=help=1 lists the options\n",
           source);
  WriteAll(msg, strlen(msg));
  _exit(kBadOptionsExit);
}

// Values live for the whole run: string options point into this copy.
char g_option_storage[2][4096];

void ParseOptions(const char *text, const char *source, char *storage, size_t storage_len) {
  if (!text) return;
  if (strlen(text) >= storage_len) BadOption(source, "options string is longer than %s bytes%s", "4095", "");
  strcpy(storage, text);
  char *p = storage;
  for (;;) {
    while (*p == ':' || *p == ',' || isspace(static_cast<unsigned char>(*p))) p++;
    if (!*p) break;
    char *key = p;
    while (*p && *p != '=' && *p != ':' && *p != ',' && !isspace(static_cast<unsigned char>(*p))) p++;
    if (*p != '=') {
      char saved = *p;
      *p = 0;
      BadOption(source, "option '%s' has no value (expected %s=VALUE)", key, key);
      (void)saved;
    }
    *p++ = 0;
    char *value = p;
    while (*p && *p != ':' && *p != ',' && !isspace(static_cast<unsigned char>(*p))) p++;
    bool end = !*p;
    *p = 0;
    const FlagInfo *flag = nullptr;
    for (const FlagInfo &f : kFlagTable)
      if (strcmp(f.name, key) == 0) flag = &f;
    if (!flag) BadOption(source, "unknown option '%s'%s", key, "");
    switch (flag->type) {
      case FlagType::kBool:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes"))
          *static_cast<bool *>(flag->value) = true;
        else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no"))
          *static_cast<bool *>(flag->value) = false;
        else
          BadOption(source, "option '%s' is a boolean: 1/0, true/false or yes/no, got '%s'", key, value);
        break;
      case FlagType::kInt: {
        errno = 0;
        char *endp = nullptr;
        long v = strtol(value, &endp, 10);
        if (!*value || *endp || errno || v < -2147483647L || v > 2147483647L)
          BadOption(source, "option '%s' needs an integer, got '%s'", key, value);
        *static_cast<int *>(flag->value) = int(v);
        break;
      }
      case FlagType::kString:
        *static_cast<const char **>(flag->value) = value;
        break;
    }
    if (end) break;
    p++;
  }
}

void CheckRanges(const char *source) {
  if (g_flags.stats_maps < 0)
    BadOption(source, "option '%s' must be 0 (all maps) or more%s", "stats_maps", "");
  if (g_flags.stack_depth < 1 || g_flags.stack_depth > kMaxFrames)
    BadOption(source, "option '%s' must be between 1 and 128%s", "stack_depth", "");
  if (g_flags.exitcode < 0 || g_flags.exitcode > 255)
    BadOption(source, "option '%s' must be between 0 and 255%s", "exitcode", "");
  if (strcmp(g_flags.detect, "hb") != 0 && strcmp(g_flags.detect, "overlap") != 0)
    BadOption(source, "option 'detect' must be hb or overlap, got '%s'%s", g_flags.detect, "");
  g_detect_hb = strcmp(g_flags.detect, "hb") == 0;
  g_print_stats = g_flags.print_stats;
  if (strcmp(g_flags.format, "text") != 0 && strcmp(g_flags.format, "json") != 0 &&
      strcmp(g_flags.format, "sarif") != 0)
    BadOption(source, "option 'format' must be text, json or sarif, got '%s'%s", g_flags.format, "");
  if (g_flags.usdt_read_sample < 1)
    BadOption(source, "option '%s' must be at least 1%s", "usdt_read_sample", "");
  if (g_flags.usdt_map_sample < 0)
    BadOption(source, "option '%s' must be at least 0%s", "usdt_map_sample", "");
  if (g_flags.usdt_trace_budget < 0)
    BadOption(source, "option '%s' must be at least 0%s", "usdt_trace_budget", "");
  if (g_flags.report_wait_ms < 0)
    BadOption(source, "option '%s' must not be negative%s", "report_wait_ms", "");
}

void PrintHelp() {
  char line[768];
  static const char kHead[] = "mapguard options (MAPGUARD_OPTIONS=key=value:key=value):\n";
  WriteAll(kHead, sizeof(kHead) - 1);
  for (const FlagInfo &f : kFlagTable) {
    int n = snprintf(line, sizeof(line), "  %-26s default %-6s %s\n", f.name,
                     f.default_text[0] == '"' && f.default_text[1] == '"' ? "\"\"" : f.default_text,
                     f.description);
    WriteAll(line, size_t(n) < sizeof(line) ? size_t(n) : sizeof(line) - 1);
  }
}

}  // namespace

void InitFlags() {
  SetDefaults();
  ParseOptions(__mapguard_default_options(), "__mapguard_default_options()", g_option_storage[0],
               sizeof(g_option_storage[0]));
  ParseOptions(getenv("MAPGUARD_OPTIONS"), "MAPGUARD_OPTIONS", g_option_storage[1],
               sizeof(g_option_storage[1]));
  CheckRanges("MAPGUARD_OPTIONS");
  if (g_flags.help) PrintHelp();
}

}  // namespace mapguard
