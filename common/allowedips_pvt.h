/* SPDX-License-Identifier: MIT */
/* Allowed-IPs internals shared by the trie (allowedips.c) and jump table (allowedips_slots.c). */
#ifndef WGT_COMMON_ALLOWEDIPS_PVT_H
#define WGT_COMMON_ALLOWEDIPS_PVT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

enum {
	FAM_V4,
	FAM_V6,
	FAM_COUNT,
};

/* Each level of the trie lengthens the prefix, so no path is longer than this. */
#define DEPTH_MAX 130

/* The jump table indexes the first SLOT_BITS bits of an address. */
#define SLOT_BITS 16
#define SLOT_COUNT (1U << SLOT_BITS)

/* A slot with more long prefixes than this points into the trie instead. */
#define BUCKET_MAX 4

struct node {
	/* Writer only: the value's list of nodes. */
	struct node *vnext;
	struct node *vprev;
	/* Read side. key and cidr never change once the node is published. */
	struct node *bit[2];
	void *value;
	uint64_t key[2];
	uint8_t cidr;
	uint8_t fam;
};

/* A lookup touches one cache line per level: keep a node inside one. */
_Static_assert(sizeof(struct node) <= WGT_CACHELINE, "trie node outgrew a cache line");

/*
 * Jump-table slot. `best` is the longest prefix shorter than SLOT_BITS that
 * covers the slot. `child` holds the prefixes of SLOT_BITS or more inside
 * it: 0 (none), an immutable bucket, or (tagged SLOT_TRIE) the topmost trie
 * node of the slot's subtree when there are too many for a bucket or the
 * bucket could not be allocated.
 */
struct slot {
	uintptr_t child;
	void *best;
};

enum {
	SLOT_TRIE = 1,
	SLOT_LEVEL = 2,
	/* A level's bit offset / 8 sits in the tag bits above SLOT_LEVEL. */
	SLOT_OFF_SHIFT = 2,
	SLOT_TAGS = 63,
};

/* One multibit level indexes this many bits. */
#define LEVEL_BITS 8
#define LEVEL_COUNT (1U << LEVEL_BITS)

/*
 * Second and further levels of the jump table, built only where a slot
 * (or a level entry) holds more long prefixes than a bucket. A level
 * indexes the LEVEL_BITS address bits at `off` (a multiple of LEVEL_BITS);
 * every prefix below it shares key's first `off` bits, so levels whose
 * entries would all be alike are skipped (path compression) and a lookup
 * checks those bits against key. Entries work like slots: `best` is the
 * longest prefix of length off..off+7 covering the entry (NULL for none),
 * `child` the prefixes of off+8 or more inside it. `key` and `off` never
 * change once published; the entries are updated in place like slots.
 * The child pointer to a level carries SLOT_LEVEL and off / 8 in its tag
 * bits, so readers index the entries without waiting for the header.
 */
struct level {
	uint64_t key[2];
	uint8_t off;
	struct slot e[] __attribute__((aligned(WGT_CACHELINE)));
};

/* Buckets hold their prefixes longest first, so the first match wins. */
struct bucket4 {
	uint32_t n;
	struct {
		uint32_t key;
		uint32_t mask;
		void *value;
	} e[];
};

/* Lengths sit in the header so two entries share a cache line with it. */
struct bucket6 {
	uint8_t n;
	uint8_t cidr[BUCKET_MAX];
	struct {
		uint64_t key[2];
		void *value;
	} e[];
};

_Static_assert(BUCKET_MAX <= 7, "bucket6 header outgrew its 8 bytes");

/* Every node of one value, so per-peer operations do not scan the trie. */
struct vgroup {
	void *value;
	struct vgroup *hnext;
	struct node *first;
};

struct wgt_allowedips {
	/* Read side: the only field lookups touch; the arrays never move. */
	struct slot *slots[FAM_COUNT];

	/* Writer only, except the relaxed counters readable anywhere. */
	struct node *root[FAM_COUNT];	/* readers enter the trie through slots */
	void (*defer_free)(void *ptr, void (*fn)(void *ptr), void *ctx);
	void *defer_ctx;
	size_t count;
	size_t max;
	uint64_t cap_hits;
	struct vgroup **groups;
	size_t group_buckets;
	size_t group_count;
#ifndef NDEBUG
	bool writer_busy;
#endif
};

/* Mask of the first `bits` (0..64) bits of a host-order word. */
static inline uint64_t mask_bits(unsigned int bits)
{
	return bits ? ~0ULL << (64 - bits) : 0;
}

static inline bool prefix_matches(const struct node *n, uint64_t k0, uint64_t k1)
{
	unsigned int cidr = n->cidr;
	uint64_t m0 = mask_bits(cidr > 64 ? 64 : cidr);
	uint64_t m1 = mask_bits(cidr > 64 ? cidr - 64 : 0);

	return !(((k0 ^ n->key[0]) & m0) | ((k1 ^ n->key[1]) & m1));
}

/* Bit `pos` (0 = most significant, < 128) of the key: which child to take. */
static inline unsigned int bit_at(uint64_t k0, uint64_t k1, unsigned int pos)
{
	return pos < 64 ? (k0 >> (63 - pos)) & 1 : (k1 >> (127 - pos)) & 1;
}

static inline uint32_t slot_of(uint64_t k0)
{
	return (uint32_t)(k0 >> (64 - SLOT_BITS));
}

/*
 * Writer only. Brings the jump table in line with the trie after the
 * prefix key/cidr was added, removed or given another value.
 */
void wgt_allowedips_slots_sync(struct wgt_allowedips *t, unsigned int fam, const uint64_t key[2],
			       unsigned int cidr);

/* Writer only, with no reader left: frees every bucket at once. */
void wgt_allowedips_slots_free(struct wgt_allowedips *t);

#endif
