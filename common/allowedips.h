/* SPDX-License-Identifier: MIT */
/* WireGuard allowed IPs: longest-prefix match from an inner address to the peer that owns it. */
#ifndef WGT_COMMON_ALLOWEDIPS_H
#define WGT_COMMON_ALLOWEDIPS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Design note
 *
 * One path-compressed binary trie per family. Every node carries the whole
 * masked prefix (IPv4 in the top 32 bits of key[0], IPv6 as two host-order
 * 64-bit words) and its length `cidr`; a lookup descends by testing the bit
 * at position `cidr` of the searched address and remembers the last node on
 * the way whose prefix matches and that carries a value:
 *
 *              0.0.0.0/0 (A)
 *              /          \
 *     10.0.0.0/8 (B)    192.168.0.0/16 (-)      <- "-": intermediate node,
 *         \               /          \             exactly two children
 *    10.128.0.0/9 (C)  .1.0/24 (D)  .128.0/17 (E)
 *
 * Invariant: a node either carries a value or has exactly two children, so
 * the shape depends only on the set of prefixes, not on insertion history.
 *
 * Concurrency (one writer, any number of readers):
 *   - wgt_allowedips_lookup() takes no lock. It may run on any thread,
 *     concurrently with one writer, inside a read-side critical section of
 *     whatever scheme the reclamation hook below waits for (e.g. liburcu).
 *   - Every other function is "writer": the caller serialises them (in the
 *     gateway, the control thread only).
 *   - The writer never changes a published node's key or cidr. It builds a
 *     new node completely, then publishes it with a release store of one
 *     child or root pointer; readers load those pointers with acquire (R1),
 *     so they see either the old or the new subtree, never a half-built
 *     node. A value is replaced with one release store (R2), so a reader
 *     returns the old or the new peer, never anything else.
 *   - A node the writer unlinks may still be under a reader, so it is not
 *     freed: it goes to the defer_free hook, which must call fn(ptr) once no
 *     reader can hold ptr any more (after an RCU grace period). The default
 *     hook calls fn(ptr) at once, which is right only when lookups and the
 *     writer run on the same thread. Once handed over, the first
 *     WGT_ALLOWEDIPS_DEFER_SCRATCH bytes of ptr are never read again, by
 *     lookups or anyone else, so the hook may overlay its own bookkeeping
 *     there (a liburcu struct rcu_head fits) instead of allocating.
 *   - Values are opaque. A reader that got a value back must not use it
 *     after its read-side section unless the owner of the value keeps it
 *     alive (peers are freed through the same grace period).
 *
 * Capacity: at most `max` prefixes (default and ceiling WGT_ALLOWEDIPS_MAX);
 * a new prefix past that is refused with -ENOSPC and counted. Intermediate
 * nodes are bounded by the prefix count, so memory is bounded too.
 */

#define WGT_ALLOWEDIPS_MAX (1U << 20)
#define WGT_ALLOWEDIPS_DEFER_SCRATCH 16

struct wgt_allowedips;

/* Returns NULL when out of memory. */
struct wgt_allowedips *wgt_allowedips_new(void);

/*
 * Frees the table and every node at once, without going through the
 * reclamation hook: no reader may still be inside. Accepts NULL.
 */
void wgt_allowedips_free(struct wgt_allowedips *t);

/*
 * Route unlinked nodes through `defer_free` (NULL restores the immediate
 * default). Set it before the first reader starts.
 */
void wgt_allowedips_set_defer_free(struct wgt_allowedips *t,
				   void (*defer_free)(void *ptr, void (*fn)(void *ptr), void *ctx),
				   void *ctx);

/* Lowers the prefix cap. Returns 0, or -EINVAL for 0 or more than WGT_ALLOWEDIPS_MAX. */
int wgt_allowedips_set_max(struct wgt_allowedips *t, size_t max);

/*
 * Maps addr/cidr (network byte order, 4 or 16 bytes) to `value`; host bits
 * past cidr are ignored. An existing prefix is moved to `value`.
 * Returns 0, -EINVAL (family, cidr or NULL value), -ENOSPC (cap reached,
 * counted) or -ENOMEM.
 */
int wgt_allowedips_insert(struct wgt_allowedips *t, int family, const void *addr,
			  uint8_t cidr, void *value);

/* Removes exactly addr/cidr if it maps to `value`. Returns 0, -EINVAL or -ENOENT. */
int wgt_allowedips_remove(struct wgt_allowedips *t, int family, const void *addr,
			  uint8_t cidr, void *value);

/* Removes every prefix that maps to `value`. */
void wgt_allowedips_remove_by_value(struct wgt_allowedips *t, void *value);

/*
 * Longest match for addr (network byte order), or NULL. Any thread; see the
 * design note. An unknown family finds nothing.
 */
void *wgt_allowedips_lookup(const struct wgt_allowedips *t, int family, const void *addr);

/*
 * Calls cb for each prefix of `value`, IPv4 before IPv6, then by address,
 * then shorter cidr first, whatever the insertion order. `addr` is network
 * byte order, valid during the call only. A non-zero return from cb stops
 * the walk and is returned; otherwise 0, or -ENOMEM. cb must not modify the
 * table.
 */
int wgt_allowedips_walk_by_value(const struct wgt_allowedips *t, void *value,
				 int (*cb)(void *ctx, int family, const uint8_t *addr, uint8_t cidr),
				 void *ctx);

/* Number of prefixes (IPv4 and IPv6). */
size_t wgt_allowedips_count(const struct wgt_allowedips *t);

/* How many inserts the cap has refused since the table was made. */
uint64_t wgt_allowedips_cap_hits(const struct wgt_allowedips *t);

#endif
