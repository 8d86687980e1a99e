// Printing a report (mg_report_desc.h): text, JSON (one object per line;
// schema in docs/report-format.md) and SARIF 2.1.0. The printers format what
// the collector gathered and decide nothing.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mg_report_desc.h"

namespace mapguard {

const char *ConflictMessage(ConflictKind kind) {
  switch (kind) {
    case ConflictKind::kWrites:
      return "concurrent map writes";
    case ConflictKind::kReadWrite:
      return "concurrent map read and map write";
    case ConflictKind::kIterationWrite:
      return "concurrent map iteration and map write";
    case ConflictKind::kUnsyncWrites:
      return "unsynchronized map writes";
    case ConflictKind::kUnsyncReadWrite:
      return "unsynchronized map read and map write";
    case ConflictKind::kUnsyncIterationWrite:
      return "unsynchronized map iteration and map write";
  }
  return "concurrent map access";
}

// The report's stable identity: the same whether the two accesses happened
// to overlap ("concurrent ...") or were only unordered ("unsynchronized
// ..."), which depends on timing. Printed in the first line and in SUMMARY,
// and the JSON "rule" and the SARIF ruleId.
const char *RuleId(ConflictKind k) {
  switch (k) {
    case ConflictKind::kWrites:
    case ConflictKind::kUnsyncWrites:
      return "map-writes";
    case ConflictKind::kReadWrite:
    case ConflictKind::kUnsyncReadWrite:
      return "map-read-write";
    case ConflictKind::kIterationWrite:
    case ConflictKind::kUnsyncIterationWrite:
      return "map-iteration-write";
  }
  return "map-access";
}

int RuleIndex(ConflictKind k) { return int(k) % 3; }

namespace {

const char *AccessNoun(const mg_site *site) {
  switch (site->kind) {
    case MG_READ:
      return "Read";
    case MG_WRITE:
      return "Write";
    case MG_ITERATE:
      return "Iteration";
    case MG_CONSTRUCT:
      return "Construction";
    case MG_DESTROY:
      return "Destruction";
  }
  return "Access";
}

}  // namespace

const char *StripPrefix(const char *path) {
  const char *prefix = g_flags.strip_path_prefix;
  size_t n = prefix ? strlen(prefix) : 0;
  if (n && strncmp(path, prefix, n) == 0) return path + n;
  return path;
}

// ---- Text ----

namespace {

void TextSite(Appender &out, const mg_site *site) {
  if (site->file && site->file[0] && site->line)
    out("%s:%u:%u", StripPrefix(site->file), site->line, site->column);
  else
    out("<unknown location>");
  if (site->function && site->function[0]) out(" in %s", site->function);
}

void TextThread(Appender &out, const ThreadInfo &t) {
  out("thread T%u (tid %d", t.number, t.tid);
  if (t.name[0]) out(" \"%s\"", t.name);
  out(")");
}

void TextStack(Appender &out, const SymStack &st) {
  for (int i = 0; i < st.size; i++) {
    const Frame &f = st.frames[i];
    if (!f.function[0] && !f.file[0]) {
      out("    #%d (%s+0x%lx)\n", i, f.module[0] ? f.module : "<unknown module>",
          (unsigned long)f.offset);
      continue;
    }
    out("    #%d %s", i, f.function[0] ? f.function : "??");
    if (f.file[0]) {
      out(" %s:%d", StripPrefix(f.file), f.line);
      if (f.column) out(":%d", f.column);
    } else {
      out(" (%s+0x%lx)", f.module, (unsigned long)f.offset);
    }
    out("\n");
  }
  if (st.size == 0) out("    <no frames in user code>\n");
}

void TextAccess(Appender &out, const Access &a) {
  switch (a.role) {
    case Role::kCurrent:
      out("\n%s (%s) by ", AccessNoun(a.site), a.site->op);
      break;
    case Role::kInProgress:
      out("\n%s (%s) in progress in ", AccessNoun(a.site), a.site->op);
      break;
    case Role::kPrevious:
      out("\nPrevious %s (%s) by ", AccessNoun(a.site), a.site->op);
      break;
  }
  // The previous access's thread may have exited (or its tid been reused):
  // its mapguard number is what identifies it.
  if (a.role == Role::kPrevious)
    out("thread T%u", a.thread.number);
  else
    TextThread(out, a.thread);
  out(" at ");
  TextSite(out, a.site);
  out(":\n");
  if (a.stack)
    TextStack(out, *a.stack);
  else
    out("    <%s>\n", a.no_stack_reason);
}

void TextOrigin(Appender &out, const ThreadInfo &t) {
  if (!t.known) return;
  if (t.number == 0) {
    out("\nThread T0 (tid %d) is the main thread.\n", t.tid);
    return;
  }
  if (!t.has_origin) {
    out("\nThread T%u has exited.\n", t.number);
    return;
  }
  out("\nThread T%u (tid %d) created by thread T%u at:\n", t.number, t.tid, t.parent);
  TextStack(out, *t.origin);
}

}  // namespace

void PrintText(const ReportDesc &d, Appender &out) {
  const char *message = ConflictMessage(d.kind);
  out("==================\n");
  out("fatal error: %s [%s]\n\n", message, RuleId(d.kind));
  out("Map: %s", d.site->map_type && d.site->map_type[0] ? d.site->map_type : "<unknown map type>");
  if (MapName(d)[0]) out(" '%s'", MapName(d));
  out(" at %p\n", d.map);
  if (d.created) {
    out("  created at ");
    TextSite(out, d.created);
    if (d.created_by) out(" by thread T%u", d.created_by - 1);
    out("\n");
  } else {
    out("  created at <not seen: built by uninstrumented code>\n");
  }
  TextAccess(out, d.current);
  if (d.have_other)
    TextAccess(out, d.other);
  else
    out("\n%s\n", d.other_missing ? d.other_missing
                                    : "The other access's thread had already left the map when the "
                                      "report was written.");
  if (d.hint) out("\nHint: %s\n", d.hint);
  if (d.have_other && d.other.role == Role::kPrevious)
    out("\nNo synchronization orders these two accesses (no common lock, join, or atomic\n"
        "release/acquire between them): they race even if they did not overlap in time.\n");
  TextOrigin(out, d.current.thread);
  if (d.have_other) TextOrigin(out, d.other.thread);
  out("\nSUMMARY: mapguard: %s [%s] ", message, RuleId(d.kind));
  TextSite(out, d.current.site);
  out("\n==================\n");
}

// ---- JSON ----

void AppendJsonString(Appender &out, const char *s) {
  out("\"");
  for (; s && *s; s++) {
    unsigned char c = static_cast<unsigned char>(*s);
    if (c == '"' || c == '\\') out("\\%c", c);
    else if (c == '\n') out("\\n");
    else if (c == '\t') out("\\t");
    else if (c < 0x20) out("\\u%04x", c);
    else out("%c", c);
  }
  out("\"");
}

namespace {

const char *KindId(ConflictKind k) {
  switch (k) {
    case ConflictKind::kWrites: return "concurrent-map-writes";
    case ConflictKind::kReadWrite: return "concurrent-map-read-write";
    case ConflictKind::kIterationWrite: return "concurrent-map-iteration-write";
    case ConflictKind::kUnsyncWrites: return "unsynchronized-map-writes";
    case ConflictKind::kUnsyncReadWrite: return "unsynchronized-map-read-write";
    case ConflictKind::kUnsyncIterationWrite: return "unsynchronized-map-iteration-write";
  }
  return "unknown";
}

const char *AccessKindId(const mg_site *site) {
  switch (site->kind) {
    case MG_READ: return "read";
    case MG_WRITE: return "write";
    case MG_ITERATE: return "iteration";
    case MG_CONSTRUCT: return "construction";
    case MG_DESTROY: return "destruction";
  }
  return "unknown";
}

void JsonLocation(Appender &out, const mg_site *site) {
  out("{\"file\":");
  AppendJsonString(out, site->file ? StripPrefix(site->file) : "");
  out(",\"line\":%u,\"column\":%u,\"function\":", site->line, site->column);
  AppendJsonString(out, site->function);
  out("}");
}

void JsonStack(Appender &out, const SymStack *st) {
  out("[");
  for (int i = 0; st && i < st->size; i++) {
    const Frame &f = st->frames[i];
    out(i ? ",{\"function\":" : "{\"function\":");
    AppendJsonString(out, f.function);
    out(",\"file\":");
    AppendJsonString(out, StripPrefix(f.file));
    out(",\"line\":%d,\"column\":%d,\"module\":", f.line, f.column);
    AppendJsonString(out, f.module);
    out(",\"offset\":\"0x%lx\"}", (unsigned long)f.offset);
  }
  out("]");
}

void JsonThread(Appender &out, const ThreadInfo &t) {
  out("{\"id\":\"T%u\",\"tid\":%d,\"name\":", t.number, t.tid);
  AppendJsonString(out, t.name);
  if (t.has_origin) {
    out(",\"created_by\":\"T%u\",\"created_at\":", t.parent);
    JsonStack(out, t.origin);
  }
  out("}");
}

void JsonAccess(Appender &out, const Access &a) {
  static const char *const kRoles[] = {"current", "in_progress", "previous"};
  out("{\"role\":\"%s\",\"kind\":\"%s\",\"op\":", kRoles[int(a.role)], AccessKindId(a.site));
  AppendJsonString(out, a.site->op);
  out(",\"location\":");
  JsonLocation(out, a.site);
  out(",\"thread\":");
  JsonThread(out, a.thread);
  out(",\"stack\":");
  JsonStack(out, a.stack);
  out("}");
}

}  // namespace

void PrintJson(const ReportDesc &d, Appender &out) {
  out("{\"mapguard_report\":1,\"rule\":\"%s\",\"kind\":\"%s\",\"message\":", RuleId(d.kind),
      KindId(d.kind));
  AppendJsonString(out, ConflictMessage(d.kind));
  out(",\"pid\":%d,\"map\":{\"type\":", int(getpid()));
  AppendJsonString(out, d.site->map_type);
  out(",\"name\":");
  AppendJsonString(out, MapName(d));
  out(",\"address\":\"%p\",\"created_at\":", d.map);
  if (d.created) JsonLocation(out, d.created); else out("null");
  out("},\"access\":");
  JsonAccess(out, d.current);
  out(",\"other\":");
  if (d.have_other) JsonAccess(out, d.other); else out("null");
  out(",\"hint\":");
  if (d.hint) AppendJsonString(out, d.hint); else out("null");
  out("}\n");
}

// ---- SARIF 2.1.0 (format=sarif) ----

namespace {

const ConflictKind kAllKinds[] = {ConflictKind::kWrites,         ConflictKind::kReadWrite,
                                  ConflictKind::kIterationWrite, ConflictKind::kUnsyncWrites,
                                  ConflictKind::kUnsyncReadWrite, ConflictKind::kUnsyncIterationWrite};

// The source root SARIF paths are relative to: srcroot=, else the git
// top-level above the working directory, else the working directory. Ends
// with '/'.
const char *SourceRoot() {
  static char root[1024];
  if (root[0]) return root;
  if (g_flags.srcroot && *g_flags.srcroot) {
    snprintf(root, sizeof(root) - 1, "%s", g_flags.srcroot);
  } else if (getcwd(root, sizeof(root) - 1)) {
    char probe[1100];
    for (size_t len = strlen(root); len > 0;) {
      snprintf(probe, sizeof(probe), "%.*s/.git", int(len), root);
      if (access(probe, F_OK) == 0) {
        root[len] = 0;
        break;
      }
      const char *slash = static_cast<const char *>(memrchr(root, '/', len));
      if (!slash || slash == root) break;  // no repository above: keep the cwd
      len = size_t(slash - root);
    }
    if (access(probe, F_OK) != 0 && !getcwd(root, sizeof(root) - 1)) root[0] = 0;
  }
  size_t n = strlen(root);
  if (n == 0 || root[n - 1] != '/') {
    root[n] = '/';
    root[n + 1] = 0;
  }
  return root;
}

}  // namespace

// strip_path_prefix's result if it applies, else the path relative to the
// source root when under it, else the path as it is.
const char *RelativePath(const char *path) {
  if (!path) return "";
  const char *stripped = StripPrefix(path);
  if (stripped != path) return stripped;
  const char *root = SourceRoot();
  size_t n = strlen(root);
  if (n > 1 && strncmp(path, root, n) == 0) return path + n;
  return path;
}

namespace {

void SarifPhysical(Appender &out, const char *file, int line, int column) {
  out("{\"physicalLocation\":{\"artifactLocation\":{\"uri\":");
  const char *rel = RelativePath(file);
  if (rel[0] == '/') {  // outside the repository: an absolute file URI
    char uri[kSymbolLen + 8];
    snprintf(uri, sizeof(uri), "file://%s", rel);
    AppendJsonString(out, uri);
  } else {
    AppendJsonString(out, rel);
    out(",\"uriBaseId\":\"SRCROOT\"");
  }
  out("},\"region\":{\"startLine\":%d", line > 0 ? line : 1);
  if (column > 0) out(",\"startColumn\":%d", column);
  out("}}}");
}

void SarifSiteLocation(Appender &out, const mg_site *site, const char *message) {
  SarifPhysical(out, site->file, int(site->line), int(site->column));
  out.Unappend(1);  // reopen the location object to add a message
  out(",\"message\":{\"text\":");
  AppendJsonString(out, message);
  out("}}");
}

void SarifThreadFlow(Appender &out, const Access &a, const char *what) {
  out("{\"locations\":[");
  char msg[256];
  snprintf(msg, sizeof(msg), "%s: %s (%s) by thread T%u", what, AccessKindId(a.site), a.site->op,
           a.thread.number);
  out("{\"location\":");
  SarifSiteLocation(out, a.site, msg);
  out("}");
  for (int i = 0; a.stack && i < a.stack->size; i++) {
    const Frame &f = a.stack->frames[i];
    if (!f.file[0]) continue;
    out(",{\"location\":");
    SarifPhysical(out, f.file, f.line, f.column);
    out.Unappend(1);
    out(",\"message\":{\"text\":");
    AppendJsonString(out, f.function);
    out("}}}");
  }
  out("]}");
}

}  // namespace

void PrintSarifResult(const ReportDesc &d, bool first, Appender &out) {
  out("%s{\"ruleId\":\"%s\",\"ruleIndex\":%d,\"level\":\"error\",\"message\":{\"text\":",
      first ? "" : ",", RuleId(d.kind), RuleIndex(d.kind));
  char msg[1024];
  snprintf(msg, sizeof(msg), "%s on %s%s%s%s: %s (%s) by thread T%u", ConflictMessage(d.kind),
           d.site->map_type, MapName(d)[0] ? " '" : "", MapName(d),
           MapName(d)[0] ? "'" : "", AccessKindId(d.site), d.site->op,
           d.current.thread.number);
  if (d.have_other) {
    size_t n = strlen(msg);
    snprintf(msg + n, sizeof(msg) - n, "; %s %s (%s) by thread T%u",
             d.other.role == Role::kPrevious ? "previous" : "in progress",
             AccessKindId(d.other.site), d.other.site->op, d.other.thread.number);
  }
  if (d.hint) {
    size_t n = strlen(msg);
    snprintf(msg + n, sizeof(msg) - n, ". Hint: %s", d.hint);
  }
  AppendJsonString(out, msg);
  out("},\"locations\":[");
  SarifPhysical(out, d.current.site->file, int(d.current.site->line), int(d.current.site->column));
  out("]");
  if (d.have_other) {
    out(",\"relatedLocations\":[");
    SarifPhysical(out, d.other.site->file, int(d.other.site->line), int(d.other.site->column));
    out.Unappend(1);
    out(",\"id\":1,\"message\":{\"text\":\"the other access\"}}]");
  }
  out(",\"codeFlows\":[{\"threadFlows\":[");
  SarifThreadFlow(out, d.current, "this access");
  if (d.have_other) {
    out(",");
    SarifThreadFlow(out, d.other, "other access");
  }
  out("]}],\"partialFingerprints\":{\"mapguardConflict/v1\":\"%016llx\"}}",
      (unsigned long long)Fingerprint(d));
}

void PrintSarifHead(Appender &out) {
  out("{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\",\"version\":\"2.1.0\","
      "\"runs\":[{\"tool\":{\"driver\":{\"name\":\"mapguard\",\"version\":\"0.1.0\","
      "\"semanticVersion\":\"0.1.0\",\"informationUri\":\"https://github.com/mapguard/mapguard\","
      "\"rules\":[");
  static const char *const kRuleNames[] = {"MapWrites", "MapReadWrite", "MapIterationWrite"};
  static const char *const kRuleText[] = {"map writes", "map read and map write",
                                          "map iteration and map write"};
  for (int i = 0; i < 3; i++) {
    out("%s{\"id\":\"%s\",\"name\":\"%s\",", i ? "," : "", RuleId(kAllKinds[i]), kRuleNames[i]);
    out("\"shortDescription\":{\"text\":\"%s\"},", kRuleText[i]);
    out("\"fullDescription\":{\"text\":\"%s: two threads access one map, at least one of them "
        "writing, at the same moment (concurrent) or with no synchronization ordering the "
        "accesses (unsynchronized).\"},", kRuleText[i]);
    out("\"defaultConfiguration\":{\"level\":\"error\"},\"helpUri\":"
        "\"https://github.com/mapguard/mapguard/blob/main/docs/report-format.md\"}");
  }
  out("]}},\"originalUriBaseIds\":{\"SRCROOT\":{\"uri\":");
  {
    char uri[1100];
    snprintf(uri, sizeof(uri), "file://%s", SourceRoot());
    AppendJsonString(out, uri);
  }
  out("}},\"results\":[");
}

const char kSarifTail[] = "]}]}\n";

}  // namespace mapguard
