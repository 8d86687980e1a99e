// Slow paths of the access hot path and the ownership protocol, shared with
// the report, thread and interceptor code.
#ifndef MAPGUARD_ACCESS_H
#define MAPGUARD_ACCESS_H

#include "mg_rt.h"
#include "mg_shadow.h"

namespace mapguard {

// The live thread other than `me` with an active region on `map` whose kind
// is in `kinds` (a bit set of 1 << mg_access_kind) and, if `mode` is not
// negative, whose mode is `mode`; and that region's site. For reports, and
// for a writer's scan for announced reads (W3: each depth is a seq_cst load).
ThreadState *FindThreadInRegion(ThreadState *me, void *map, unsigned kinds,
                                const mg_site **site_out, int mode = -1);
void WaitWhileFrozen(MapShadow *s);
bool ReadBeginSlow(ThreadState *thr, MapShadow *s, void *map, const mg_site *site, uint64_t old);
bool WriteBeginSlow(ThreadState *thr, MapShadow *s, void *map, const mg_site *site);
// Gives back a counted region's share of the state word (a unit, or the
// writer field if this thread holds it).
void UncountRegion(ThreadState *thr, MapShadow *s, uint32_t kind);
// Ends the thread's innermost regions that a longjmp or the thread's exit
// abandoned: those at index >= `from_depth`, and of those only the ones
// opened by frames below `above_sp` (0: whatever frame opened them).
void CloseAbandonedRegions(ThreadState *thr, uintptr_t above_sp, int from_depth);

// Iterations of node-based maps (std::map, std::set, multi forms) are
// suspended while the thread releases a lock inside the loop body and resumed
// at its next lock acquire: other elements may be inserted and erased
// meanwhile under that lock without invalidating the loop's iterator, and
// each iterator step runs with the lock held again. Called by the lock
// interceptors; cheap when the thread iterates nothing.
void SuspendNodeIterations(ThreadState *thr);
void ResumeNodeIterations(ThreadState *thr);

// Every lock interceptor (and OpenMP's mutex callbacks) after taking and
// before giving up a lock; `exclusive`: not a reader lock.
void LockAcquired(bool exclusive);
void LockReleased(bool exclusive);

// ---- A map's life: its shadow slot reset ----
// Everything a new map at this slot's address must not inherit: the last
// writer, its creation, its happens-before history, its statistics. The
// state word and the owner are the caller's (construction, destruction).
void ForgetMapHistory(MapShadow *s);
// The memory of `s`'s granule was freed (mg_free.cpp): back to a new slot,
// unless a thread is inside a region on it or a report or revocation is
// under way. True if the slot is as new afterwards (a synchronization
// object's SyncVar stays, with its clock emptied).
bool ResetFreedShadow(MapShadow *s);
// Every slot of [begin, begin + bytes) that is in use (mg_free.cpp).
void ResetFreedRange(const void *begin, size_t bytes);

// ---- Ownership (mg_ownership.cpp; the protocol is described there) ----
// Maps can be owned: the kernel offers the asymmetric fence the protocol
// needs (membarrier). Otherwise every map is shared from its first access.
extern bool g_ownership;
void InitOwnership();
// `thr` is about to use a map owned by `owner` (slot + 1, or kOwnerRevoking):
// returns once the map is shared, with the owner's open regions counted.
void RevokeOwner(ThreadState *thr, MapShadow *s, const void *map, uint32_t owner);
// The owner field of a map `thr` builds at construction site `created`:
// `thr` (slot + 1), or kOwnerShared when most maps built there are taken over
// by a second thread (SiteHandOffs), or 0 without ownership.
uint32_t OwnerOfNewMap(ThreadState *thr, const mg_site *created);
// The map built at `created` is destroyed by the thread that owns it: it
// never changed hands (SiteHandOffs' evidence against building it shared).
void NoteDestroyedByOwner(const mg_site *created);
// print_stats: how many maps changed hands, and the sites whose maps are
// built shared.
void PrintOwnershipStats(bool json, void (*emit)(const char *, size_t));
// Waits until no revocation of `s` is under way (bounded).
void WaitRevocationOver(MapShadow *s);
// The owner's begin (B3) or end (E3) saw that a revocation started. Begin:
// returns true if the revoker already counted region `index` (else it is
// marked counted and the caller counts it). End: gives back what the
// revoker counted for region `index`, if anything.
bool SettleOwnedBegin(ThreadState *thr, MapShadow *s, int index);
void SettleOwnedEnd(ThreadState *thr, MapShadow *s, int index, uint32_t kind);
// In a fork child: regions and revocations of threads that do not exist
// there are forgotten (their shares of state words given back).
void OwnershipAfterForkInChild(ThreadState *me);

}  // namespace mapguard

#endif  // MAPGUARD_ACCESS_H
