// Whether a report is printed, and the hint it carries (mg_report_desc.h):
// suppressions, dedup=1, the pairs of sites already decided (looked up
// before anything is captured), AnnotateIgnore* brackets, and the hints for
// classic mistakes (a write under a reader lock, check-then-insert).
#include <stdio.h>
#include <string.h>

#include <initializer_list>

#include "mg_report_desc.h"
#include "mg_suppressions.h"

namespace mapguard {

namespace {

int MatchStack(SuppressionKind kind, const SymStack *st) {
  for (int i = 0; st && i < st->size; i++) {
    int r = MatchSuppression(kind, kind == SuppressionKind::kFun ? st->frames[i].function
                                                                  : st->frames[i].file);
    if (r >= 0) return r;
  }
  return -1;
}

int MatchAccess(const Access &a) {
  int r = MatchSuppression(SuppressionKind::kFun, a.site->function);
  if (r < 0) r = MatchSuppression(SuppressionKind::kSrc, a.site->file);
  if (r < 0) r = MatchStack(SuppressionKind::kFun, a.stack);
  if (r < 0) r = MatchStack(SuppressionKind::kSrc, a.stack);
  return r;
}

int Suppressed(const ReportDesc &d) {
  int r = MatchSuppression(SuppressionKind::kMap, d.site->map_type);
  if (r < 0) r = MatchAccess(d.current);
  if (r < 0 && d.have_other) r = MatchAccess(d.other);
  return r;
}

uint64_t g_seen_fingerprints[4096];
int g_seen_count;

// dedup=1: by the pair's fingerprint (rule and both source locations as the
// report prints them), so two user lines that reach a map through the same
// library instantiation (std::bind, std::function) are two reports.
bool SeenBefore(uint64_t fingerprint) {
  if (!g_flags.dedup) return false;
  for (int i = 0; i < g_seen_count; i++)
    if (g_seen_fingerprints[i] == fingerprint) return true;
  if (g_seen_count < 4096) g_seen_fingerprints[g_seen_count++] = fingerprint;
  return false;
}

}  // namespace

// Stable across runs: the kind and the unordered pair of source locations.
uint64_t Fingerprint(const ReportDesc &d) {
  auto hash_site = [](const mg_site *site) {
    uint64_t h = 1469598103934665603ull;
    const char *parts[] = {RelativePath(site->file), site->function, site->op};
    for (const char *p : parts)
      for (; p && *p; p++) h = (h ^ static_cast<unsigned char>(*p)) * 1099511628211ull;
    return (h ^ site->line) * 1099511628211ull;
  };
  uint64_t a = hash_site(d.current.site), b = d.have_other ? hash_site(d.other.site) : 0;
  if (a > b) {
    uint64_t t = a;
    a = b;
    b = t;
  }
  // By rule, not kind: the same race fingerprints alike whatever its timing.
  return (a * 31 + b) ^ (uint64_t(RuleIndex(d.kind)) * 0x9e3779b97f4a7c15ull);
}

namespace {

// Pairs of sites whose report was suppressed or already printed (dedup):
// remembered by the pair, so a later conflict between the same two sites
// costs a lookup, not a stack capture, a symbolization and the report lock.
// Written under the report lock, read without it (a stale miss only means
// the slow path once more). Each entry: the two sites and the suppression
// rule (-1 for a duplicate), for print_suppressions' counts.
struct QuietPairEntry {
  std::atomic<const mg_site *> a, b;
  int rule;
};
constexpr int kQuietPairs = 4096;
QuietPairEntry g_quiet[kQuietPairs];
std::atomic<int> g_quiet_count{0};

void OrderPair(const mg_site *&a, const mg_site *&b) {
  if (a > b) {
    const mg_site *t = a;
    a = b;
    b = t;
  }
}

}  // namespace

void RememberQuietPair(const mg_site *a, const mg_site *b, int rule) {
  // A site inside the library's invoke machinery stands for every user line
  // that calls through it: deciding by the pair of sites would silence the
  // others, so such pairs are decided after symbolization, each time.
  for (const mg_site *site : {a, b})
    if (site && (site->flags & MG_SITE_CALLER_LOCATION)) return;
  OrderPair(a, b);
  int n = g_quiet_count.load(std::memory_order_relaxed);
  if (n >= kQuietPairs) return;
  g_quiet[n].rule = rule;
  g_quiet[n].a.store(a, std::memory_order_relaxed);
  g_quiet[n].b.store(b, std::memory_order_relaxed);
  g_quiet_count.store(n + 1, std::memory_order_release);
}

// A pair already suppressed or reported: counted, nothing else.
bool QuietPair(const mg_site *a, const mg_site *b) {
  OrderPair(a, b);
  int n = g_quiet_count.load(std::memory_order_acquire);
  for (int i = 0; i < n; i++)
    if (g_quiet[i].a.load(std::memory_order_relaxed) == a &&
        g_quiet[i].b.load(std::memory_order_relaxed) == b) {
      if (g_quiet[i].rule >= 0) CountSuppressionHit(g_quiet[i].rule);
      return true;
    }
  return false;
}

// Whether `t`'s access at `site` is inside AnnotateIgnoreReads/Writes
// brackets (dynamic annotations): such an access is not reported.
bool InIgnoredBracket(ThreadState *t, const mg_site *site) {
  if (!site) return false;
  if (site->kind == MG_READ || site->kind == MG_ITERATE) return t->ignore_reads > 0;
  if (site->kind == MG_WRITE || site->kind == MG_DESTROY) return t->ignore_writes > 0;
  return false;
}

namespace {

bool HoldsSharedLock(const ThreadState *t) {
  for (const auto &slot : t->shared_locks)
    if (slot.load(std::memory_order_relaxed)) return true;
  return false;
}

// operator[] inserts when the key is missing: under a reader lock it is a
// write that the lock does not exclude.
// `t` is the thread of an access in progress; `held` says it for an earlier
// access (recorded when it was made).
}  // namespace

const char *SharedLockHint(const mg_site *site, const ThreadState *t, bool held) {
  if (!site || site->kind != MG_WRITE || !(held || (t && HoldsSharedLock(t)))) return nullptr;
  if (!strcmp(site->op, "operator[]"))
    return "operator[] inserts when the key is missing, so it is a write, but this thread holds "
           "only a shared (reader) lock; use find() under the shared lock, or take the exclusive "
           "lock to insert";
  return "this write runs while its thread holds only a shared (reader) lock, which does not "
         "exclude other readers or writers; take the exclusive lock";
}

namespace {

bool OpIn(const char *op, std::initializer_list<const char *> names) {
  for (const char *n : names)
    if (!strcmp(op, n)) return true;
  return false;
}

// A lookup and then an insert on the same map by the same thread: the
// classic check-then-act. The pair is only atomic if one exclusive lock
// covers both; a lock held for the lookup alone ("partial lock") is not
// enough. Names both call sites, so the hint lives in a runtime buffer.
char g_hint_buf[768];
bool IsLookup(const mg_site *s) {
  return s && s->kind == MG_READ && OpIn(s->op, {"count", "find", "contains"});
}

bool IsInsert(const mg_site *s) {
  return s && s->kind == MG_WRITE &&
         OpIn(s->op, {"insert", "emplace", "try_emplace", "operator[]", "insert_or_assign",
                      "emplace_hint"});
}

}  // namespace

// `racing` is the other thread's access: the pattern is only the likely
// cause when that access is itself a lookup or an insert (the other half of
// the same check-then-insert); an iteration or an erase racing with an insert
// is another bug.
const char *CheckThenInsertHint(const mg_site *write_site, const ThreadState *t, void *map,
                                const mg_site *racing) {
  if (!t || !IsInsert(write_site)) return nullptr;
  if (racing && !IsLookup(racing) && !IsInsert(racing)) return nullptr;
  if (t->last_read_map.load(std::memory_order_relaxed) != map) return nullptr;
  const mg_site *lookup = t->last_read_site.load(std::memory_order_relaxed);
  if (!IsLookup(lookup)) return nullptr;
  // One exclusive lock held from the lookup to now (no release in between):
  // the pair was atomic, the race is elsewhere.
  if ((t->last_read_lock_state & 1) && t->last_read_lock_state == t->lock_state) return nullptr;
  snprintf(g_hint_buf, sizeof(g_hint_buf),
           "check-then-insert: thread T%u looked the key up with %s() at %s:%u and then called "
           "%s at %s:%u; unless one exclusive lock covers both calls, another thread can use the "
           "map in between. Hold one std::unique_lock across the lookup and the insert, or drop "
           "the lookup and use what insert()/try_emplace() returns",
           t->number, lookup->op, StripPrefix(lookup->file), lookup->line, write_site->op,
           StripPrefix(write_site->file), write_site->line);
  return g_hint_buf;
}

Verdict Decide(const ReportDesc &d) {
  Verdict v;
  v.rule = Suppressed(d);
  v.duplicate = v.rule < 0 && SeenBefore(Fingerprint(d));
  return v;
}

}  // namespace mapguard
