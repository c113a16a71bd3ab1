/* SPDX-License-Identifier: MIT */
/* WireGuard allowed IPs: longest-prefix match from an inner address to the peer that owns it. */
#ifndef WGT_COMMON_ALLOWEDIPS_H
#define WGT_COMMON_ALLOWEDIPS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Design note
 *
 * The source of truth is one path-compressed binary trie per family. Every
 * node carries its whole masked prefix (IPv4 in the top 32 bits of key[0],
 * IPv6 as two host-order 64-bit words) and its length `cidr`; a walk tests
 * the bit at position `cidr` of the address to pick a child and remembers
 * the last matching node that carries a value:
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
 * A walk from the root costs one dependent cache miss per level (about 17
 * levels at 100k prefixes), so lookups start from a jump table indexed by
 * the first 16 bits of the address. Each slot holds the value of the
 * longest prefix shorter than /16 covering it, and for the prefixes of /16
 * or longer inside it either an immutable bucket of up to 4 entries, sorted
 * longest first, or, when there are more, a level: 256 entries indexing
 * the 8 address bits at offset `off`, each entry again a `best` (longest
 * prefix of length off..off+7 over it) and a child (nothing, bucket or
 * further level). Levels exist only where prefixes are dense, e.g. many
 * peers' /32s in one /16. A level starts at the multiple of 8 where its
 * prefixes diverge, so a run of identical bytes (a /64 of /128s) costs no
 * levels; the skipped bits are checked against the level's key. The last
 * level of a family holds host routes in `best`. A typical lookup is a
 * slot and one bucket: two cache lines; a dense one adds one per level.
 * Only if a bucket or level cannot be allocated does a child point into
 * the trie (SLOT_TRIE), which is always correct, only slower.
 *
 *     slots[addr >> 16] = { best: A, child: bucket [10.0.3.0/24 (D), 10.0.0.0/16 (B)] }
 *                       | { best: A, child: level off 16 -> level off 24 -> ... }
 *
 * The table costs 1 MiB per family (zero pages until used); a /0 change
 * rewrites all 65536 `best` fields, which is fine on the control path. A
 * level is 4 KiB and needs more than 4 prefixes below it. Levels are
 * updated in place per entry; when a change moves the offset where a
 * region's prefixes diverge, the region's levels are rebuilt from the trie
 * (cost proportional to the prefixes in it) and the old ones retired.
 *
 * Concurrency (one writer, any number of readers):
 *   - wgt_allowedips_lookup() takes no lock. It may run on any thread,
 *     concurrently with one writer, inside a read-side critical section of
 *     whatever scheme the reclamation hook below waits for (e.g. liburcu).
 *   - Every other function is "writer": the caller serialises them (in the
 *     gateway, the control thread only).
 *   - The writer never changes a published node's key or cidr, nor any
 *     part of a published bucket, nor a level's key or offset. It builds
 *     a node, bucket or level completely, then publishes it with one
 *     release store of a child, root or slot pointer; readers load those
 *     with acquire, so they see either the old or the new object, never a
 *     half-built one. Values, a slot's `best` and a level entry's fields
 *     are replaced with one release store each, so a reader returns an old
 *     or a new peer, never anything else. A reader racing several updates
 *     may combine fields from different moments, as with any RCU walk.
 *   - A node, bucket or level the writer unlinks may still be under a
 *     reader, so it is not freed: once it is unreachable from the trie and
 *     the jump table it goes to the defer_free hook, which must call fn(ptr) once no
 *     reader can hold ptr any more (after an RCU grace period; liburcu's
 *     defer_rcu(fn, ptr) has exactly this shape). The default hook calls
 *     fn(ptr) at once, which is right only when lookups and the writer run
 *     on the same thread.
 *   - Values are opaque. A reader that got a value back must not use it
 *     after its read-side section unless the owner of the value keeps it
 *     alive (peers are freed through the same grace period).
 *
 * Capacity: at most `max` prefixes (default and ceiling WGT_ALLOWEDIPS_MAX);
 * a new prefix past that is refused with -ENOSPC and counted. Inner nodes
 * and buckets are bounded by the prefix count, so memory is bounded too.
 */

#define WGT_ALLOWEDIPS_MAX (1U << 22) /* 4 per peer at the gateway's 2^20 peers */

struct wgt_allowedips;

/* Returns NULL when out of memory. */
struct wgt_allowedips *wgt_allowedips_new(void);

/*
 * Frees the table and every node at once, without going through the
 * reclamation hook: no reader may still be inside. Accepts NULL.
 */
void wgt_allowedips_free(struct wgt_allowedips *t);

/*
 * Route unlinked nodes and buckets through `defer_free` (NULL restores the
 * immediate default). Set it before the first reader starts.
 */
void wgt_allowedips_set_defer_free(struct wgt_allowedips *t,
				   void (*defer_free)(void *ptr, void (*fn)(void *ptr), void *ctx),
				   void *ctx);

/*
 * Sets the prefix cap; prefixes already above a lowered cap stay.
 * Returns 0, or -EINVAL for 0 or more than WGT_ALLOWEDIPS_MAX.
 */
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
				 int (*cb)(void *ctx, int family, const uint8_t *addr,
					   uint8_t cidr),
				 void *ctx);

/* Number of prefixes (IPv4 and IPv6). Any thread: a relaxed snapshot. */
size_t wgt_allowedips_count(const struct wgt_allowedips *t);

/* How many inserts the cap has refused since the table was made. Any thread, relaxed. */
uint64_t wgt_allowedips_cap_hits(const struct wgt_allowedips *t);

#endif
