/* SPDX-License-Identifier: MIT */
/* Allowed-IPs jump table: built from the trie by the writer, read lock-free by lookups. */
#include "common/allowedips.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/allowedips_pvt.h"
#include "common/compiler.h"

/* Writer only. */
static void slots_set_best(struct slot *slots, uint32_t lo, uint32_t hi, void *best)
{
	for (uint32_t i = lo; i < hi; i++)
		if (slots[i].best != best)
			__atomic_store_n(&slots[i].best, best, __ATOMIC_RELEASE); /* R2 */
}

/* First and one-past-last slot under the prefix q/qc (qc <= SLOT_BITS). */
static void slot_range(uint64_t q0, unsigned int qc, uint32_t *ret_lo, uint32_t *ret_hi)
{
	*ret_lo = slot_of(q0 & mask_bits(qc));
	*ret_hi = *ret_lo + (1U << (SLOT_BITS - qc));
}

/*
 * Writer only. Sets `best` of every slot under q/qc (qc <= SLOT_BITS) from
 * the prefixes shorter than SLOT_BITS. n is the trie node on q's path below
 * everything already folded into `best`. One pass over the range and the
 * short nodes inside it, instead of a walk from the root per slot.
 */
static void fill_best(struct slot *slots, const struct node *n, uint64_t q0, unsigned int qc,
		      void *best)
{
	uint32_t lo, hi, n_lo, n_hi;

	/* Nodes above q: fold them in on the way down. */
	while (n && n->cidr < qc) {
		if (!prefix_matches(n, q0, 0)) {
			n = NULL;
			break;
		}
		if (n->value)
			best = n->value;
		n = n->bit[bit_at(q0, 0, n->cidr)];
	}
	slot_range(q0, qc, &lo, &hi);
	/* Only nodes shorter than SLOT_BITS and inside q/qc refine the answer. */
	if (!n || n->cidr >= SLOT_BITS || ((n->key[0] ^ q0) & mask_bits(qc))) {
		slots_set_best(slots, lo, hi, best);
		return;
	}
	slot_range(n->key[0], n->cidr, &n_lo, &n_hi);
	slots_set_best(slots, lo, n_lo, best);
	slots_set_best(slots, n_hi, hi, best);
	if (n->value)
		best = n->value;
	fill_best(slots, n->bit[0], n->key[0], n->cidr + 1, best);
	fill_best(slots, n->bit[1], n->key[0] | (1ULL << (63 - n->cidr)), n->cidr + 1, best);
}

/* Whether a and (k0, k1) agree on their first `bits` (0..128) bits. */
static inline bool key_matches(const uint64_t a[2], uint64_t k0, uint64_t k1, unsigned int bits)
{
	uint64_t m0 = mask_bits(bits > 64 ? 64 : bits);
	uint64_t m1 = mask_bits(bits > 64 ? bits - 64 : 0);

	return !(((k0 ^ a[0]) & m0) | ((k1 ^ a[1]) & m1));
}

/* The LEVEL_BITS bits of (k0, k1) at `off`, a multiple of LEVEL_BITS below 128. */
static inline unsigned int level_index(uint64_t k0, uint64_t k1, unsigned int off)
{
	return off < 64 ? (unsigned int)(k0 >> (64 - LEVEL_BITS - off)) & (LEVEL_COUNT - 1)
			: (unsigned int)(k1 >> (128 - LEVEL_BITS - off)) & (LEVEL_COUNT - 1);
}

static inline struct level *level_of(uintptr_t c)
{
	return (struct level *)(c & ~(uintptr_t)SLOT_TAGS);
}

static inline unsigned int level_off(uintptr_t c)
{
	return (unsigned int)((c >> SLOT_OFF_SHIFT) & 15) * LEVEL_BITS;
}

/*
 * Writer only. The topmost node under n whose subtree holds exactly the
 * prefixes of qlen or more inside key/qlen, or NULL when there are none.
 */
static struct node *region_root(struct node *n, const uint64_t key[2], unsigned int qlen)
{
	while (n && n->cidr < qlen) {
		if (!prefix_matches(n, key[0], key[1]))
			return NULL;
		n = n->bit[bit_at(key[0], key[1], n->cidr)];
	}
	return n && key_matches(n->key, key[0], key[1], qlen) ? n : NULL;
}

/* Writer only. The longest valued prefix shorter than `end` on key's path below n. */
static void *entry_best(const struct node *n, const uint64_t key[2], unsigned int end)
{
	void *best = NULL;

	while (n && n->cidr < end) {
		if (!prefix_matches(n, key[0], key[1]))
			break;
		if (n->value)
			best = n->value;
		/* A /128 has no children, and bit 128 does not exist. */
		if (n->cidr == 128)
			break;
		n = n->bit[bit_at(key[0], key[1], n->cidr)];
	}
	return best;
}

/*
 * The last level of a family (off + LEVEL_BITS is the address length)
 * keeps its host routes in `best`: the region of an entry there can only
 * hold the entry's own host route, so its child stays 0.
 */
static inline unsigned int best_end(unsigned int fam, unsigned int end)
{
	return end == (fam == FAM_V4 ? 32U : 128U) ? end + 1 : end;
}

/* The key of entry i of a level at `off` whose first `off` bits are key's. */
static void entry_key(const uint64_t key[2], unsigned int off, unsigned int i, uint64_t out[2])
{
	out[0] = key[0];
	out[1] = key[1];
	if (off < 64)
		out[0] |= (uint64_t)i << (64 - LEVEL_BITS - off);
	else
		out[1] |= (uint64_t)i << (128 - LEVEL_BITS - off);
}

/*
 * Writer only. Gives up a child that is no longer reachable: its buckets
 * and levels (with everything below) go to defer_free, or straight to
 * free() when no reader can be left (`now`). Trie pointers own nothing.
 */
static void child_release(struct wgt_allowedips *t, uintptr_t c, bool now)
{
	void *ptr = (void *)c;

	if (!c || (c & SLOT_TRIE))
		return;
	if (c & SLOT_LEVEL) {
		struct level *l = level_of(c);

		for (unsigned int i = 0; i < LEVEL_COUNT; i++)
			child_release(t, l->e[i].child, now);
		ptr = l;
	}
	if (now)
		free(ptr);
	else
		t->defer_free(ptr, free, t->defer_ctx);
}

/* Writer only. Up to `limit` valued nodes of n's subtree; returns how many. */
static unsigned int trie_collect(struct node *n, struct node **out, unsigned int limit)
{
	struct node *stack[DEPTH_MAX + 1];
	unsigned int sp = 0, count = 0;

	/* Depth first: the stack never holds more than depth + 1 nodes. */
	if (n)
		stack[sp++] = n;
	while (sp && count < limit) {
		n = stack[--sp];
		if (n->value)
			out[count++] = n;
		if (n->bit[0])
			stack[sp++] = n->bit[0];
		if (n->bit[1])
			stack[sp++] = n->bit[1];
	}
	return count;
}

/* Writer only. An immutable bucket of the given valued nodes, or 0 when out of memory. */
static uintptr_t bucket_new(unsigned int fam, struct node **nodes, unsigned int n)
{
	size_t size;

	/* Longest first, so a lookup can stop at the first match. */
	for (unsigned int i = 1; i < n; i++)
		for (unsigned int j = i; j && nodes[j - 1]->cidr < nodes[j]->cidr; j--) {
			struct node *tmp = nodes[j];

			nodes[j] = nodes[j - 1];
			nodes[j - 1] = tmp;
		}
	if (fam == FAM_V4) {
		struct bucket4 *b;

		size = sizeof(*b) + n * sizeof(b->e[0]);
		b = aligned_alloc(WGT_CACHELINE, WGT_ALIGN_UP(size, WGT_CACHELINE));
		if (!b)
			return 0;
		b->n = n;
		for (unsigned int i = 0; i < n; i++) {
			b->e[i].key = (uint32_t)(nodes[i]->key[0] >> 32);
			b->e[i].mask = (uint32_t)(mask_bits(nodes[i]->cidr) >> 32);
			b->e[i].value = nodes[i]->value;
		}
		return (uintptr_t)b;
	} else {
		struct bucket6 *b;

		size = sizeof(*b) + n * sizeof(b->e[0]);
		b = aligned_alloc(WGT_CACHELINE, WGT_ALIGN_UP(size, WGT_CACHELINE));
		if (!b)
			return 0;
		b->n = (uint8_t)n;
		for (unsigned int i = 0; i < n; i++) {
			b->cidr[i] = nodes[i]->cidr;
			b->e[i].key[0] = nodes[i]->key[0];
			b->e[i].key[1] = nodes[i]->key[1];
			b->e[i].value = nodes[i]->value;
		}
		return (uintptr_t)b;
	}
}

static void region_sync(struct wgt_allowedips *t, unsigned int fam, uintptr_t *childp,
			struct node *from, const uint64_t qkey[2], unsigned int qlen,
			const uint64_t pkey[2], unsigned int pcidr);

/*
 * Writer only. A private level at `off` for the subtree `sub` (more than
 * BUCKET_MAX prefixes, sub->cidr >= off), built completely before the
 * caller publishes it; 0 when out of memory.
 */
static uintptr_t level_new(struct wgt_allowedips *t, unsigned int fam, struct node *sub,
			   unsigned int off)
{
	size_t size = sizeof(struct level) + LEVEL_COUNT * sizeof(struct slot);
	struct level *l = aligned_alloc(WGT_CACHELINE, WGT_ALIGN_UP(size, WGT_CACHELINE));

	if (!l)
		return 0;
	l->key[0] = sub->key[0] & mask_bits(off > 64 ? 64 : off);
	l->key[1] = sub->key[1] & mask_bits(off > 64 ? off - 64 : 0);
	l->off = (uint8_t)off;
	for (unsigned int i = 0; i < LEVEL_COUNT; i++) {
		uint64_t ekey[2];

		entry_key(l->key, off, i, ekey);
		l->e[i].best = entry_best(sub, ekey, best_end(fam, off + LEVEL_BITS));
		l->e[i].child = 0;
		if (best_end(fam, off + LEVEL_BITS) == off + LEVEL_BITS)
			region_sync(t, fam, &l->e[i].child, sub, ekey, off + LEVEL_BITS, NULL, 0);
	}
	return (uintptr_t)l | SLOT_LEVEL | (uintptr_t)(off / LEVEL_BITS) << SLOT_OFF_SHIFT;
}

/*
 * Writer only. Brings a published level in line after pkey/pcidr, one of
 * its prefixes, changed; its key and offset are still right. A prefix
 * shorter than off + LEVEL_BITS changes the `best` of the entries it
 * covers, a longer one the child of its entry.
 */
static void level_update(struct wgt_allowedips *t, unsigned int fam, struct level *l,
			 struct node *sub, const uint64_t pkey[2], unsigned int pcidr)
{
	unsigned int off = l->off, end = off + LEVEL_BITS, bend = best_end(fam, end);
	uint64_t ekey[2];

	if (pcidr < bend) {
		unsigned int lo = 0, count = LEVEL_COUNT;

		/* pcidr < off cannot happen with the offset unchanged; redo all then. */
		if (pcidr >= off) {
			count = 1U << (end - (pcidr < end ? pcidr : end));
			lo = level_index(pkey[0], pkey[1], off) & ~(count - 1);
		}
		for (unsigned int i = lo; i < lo + count; i++) {
			void *v;

			entry_key(l->key, off, i, ekey);
			v = entry_best(sub, ekey, bend);
			if (l->e[i].best != v)
				__atomic_store_n(&l->e[i].best, v, __ATOMIC_RELEASE); /* R2 */
		}
		return;
	}
	entry_key(l->key, off, level_index(pkey[0], pkey[1], off), ekey);
	region_sync(t, fam, &l->e[level_index(pkey[0], pkey[1], off)].child, sub, ekey, end,
		    pkey, pcidr);
}

/*
 * Writer only. Rebuilds *childp, the prefixes of qlen or more inside
 * qkey/qlen (a slot or a level entry), from the trie below `from`, after
 * pkey/pcidr changed (pkey NULL: *childp is new and 0). Nothing to a
 * bucket, more to a level, updated in place when its offset and key still
 * fit. Cannot fail: without memory the child points into the trie, which
 * is always correct, only slower.
 */
static void region_sync(struct wgt_allowedips *t, unsigned int fam, uintptr_t *childp,
			struct node *from, const uint64_t qkey[2], unsigned int qlen,
			const uint64_t pkey[2], unsigned int pcidr)
{
	struct node *nodes[BUCKET_MAX + 1];
	struct node *sub = region_root(from, qkey, qlen);
	unsigned int n = trie_collect(sub, nodes, BUCKET_MAX + 1);
	uintptr_t old = *childp, fresh = 0;

	if (n > BUCKET_MAX) {
		/* sub has children, so sub->cidr < 32 (IPv4) or 128: the level fits. */
		unsigned int off = sub->cidr & ~(LEVEL_BITS - 1U);

		if (pkey && (old & SLOT_LEVEL) && level_off(old) == off &&
		    key_matches(level_of(old)->key, sub->key[0], sub->key[1], off)) {
			level_update(t, fam, level_of(old), sub, pkey, pcidr);
			return;
		}
		fresh = level_new(t, fam, sub, off);
		if (!fresh)
			fresh = (uintptr_t)sub | SLOT_TRIE;
	} else if (n && !(fresh = bucket_new(fam, nodes, n))) {
		fresh = (uintptr_t)sub | SLOT_TRIE;
	}
	if (fresh == old)
		return;
	/* R3: pairs with the acquire loads of child pointers in the lookups. */
	__atomic_store_n(childp, fresh, __ATOMIC_RELEASE);
	/* Unpublished above; readers that still hold it are what defer_free waits for. */
	child_release(t, old, false);
}

/*
 * Writer only. Syncing just the changed prefix's slots is enough: a change
 * in a slot's trie shape always involves a prefix of that slot, since an
 * inner node shorter than SLOT_BITS is never a slot's child.
 */
void wgt_allowedips_slots_sync(struct wgt_allowedips *t, unsigned int fam, const uint64_t key[2],
			       unsigned int cidr)
{
	if (cidr >= SLOT_BITS) {
		region_sync(t, fam, &t->slots[fam][slot_of(key[0])].child, t->root[fam], key,
			    SLOT_BITS, key, cidr);
		return;
	}
	/* A short prefix only changes the `best` of the slots it covers (all of them for /0). */
	fill_best(t->slots[fam], t->root[fam], key[0], cidr, NULL);
}

/* Writer only, with no reader left. */
void wgt_allowedips_slots_free(struct wgt_allowedips *t)
{
	for (unsigned int fam = 0; fam < FAM_COUNT; fam++) {
		for (uint32_t i = 0; t->slots[fam] && i < SLOT_COUNT; i++)
			child_release(t, t->slots[fam][i].child, true);
		free(t->slots[fam]);
	}
}

/*
 * Any thread, inside a read-side critical section; lock-free. The slow
 * path for crowded slots: walk the trie from the slot's subtree.
 * `v6` is a constant at each call site so each family gets its own loop.
 */
static inline void *trie_lookup(const struct node *n, uint64_t k0, uint64_t k1, bool v6,
				void *best)
{
	while (n) {
		unsigned int cidr = n->cidr;
		void *v;

		if (v6) {
			if (!prefix_matches(n, k0, k1))
				break;
		} else if ((k0 ^ n->key[0]) & mask_bits(cidr)) {
			break;
		}
		/* R2: pairs with the release stores of n->value in allowedips.c. */
		v = __atomic_load_n(&n->value, __ATOMIC_ACQUIRE);
		if (v)
			best = v;
		if (v6) {
			/* A /128 has no children, and bit 128 does not exist. */
			if (cidr == 128)
				break;
			/* R1: pairs with publish() in allowedips.c. */
			n = __atomic_load_n(&n->bit[bit_at(k0, k1, cidr)], __ATOMIC_ACQUIRE);
		} else {
			/* R1: pairs with publish(). A /32 reads bit 32 (always 0) of a leaf. */
			n = __atomic_load_n(&n->bit[(k0 >> (63 - cidr)) & 1], __ATOMIC_ACQUIRE);
		}
	}
	return best;
}

/*
 * Any thread, inside a read-side critical section; lock-free. Finishes a
 * lookup from a slot's child: down the levels, then a bucket or the trie.
 * `v6` is a constant at each call site so each family gets its own loop.
 */
static inline void *lookup_child(uintptr_t c, uint64_t k0, uint64_t k1, bool v6, void *best)
{
	/* The path so far has fixed the first `fixed` bits of the address. */
	unsigned int fixed = SLOT_BITS;

	while (c & SLOT_LEVEL) {
		const struct level *l = level_of(c);
		unsigned int off = level_off(c);
		const struct slot *e = &l->e[level_index(k0, k1, off)];
		void *v;

		/* Check the bits a skipping level passed over; key is immutable, published by R3. */
		if (off != fixed) {
			if (v6) {
				if (!key_matches(l->key, k0, k1, off))
					return best;
			} else if ((k0 ^ l->key[0]) & mask_bits(off)) {
				return best;
			}
		}
		fixed = off + LEVEL_BITS;
		/* R2, R3: pair with level_update() and region_sync(). */
		v = __atomic_load_n(&e->best, __ATOMIC_ACQUIRE);
		if (v)
			best = v;
		c = __atomic_load_n(&e->child, __ATOMIC_ACQUIRE);
	}
	if (unlikely(c & SLOT_TRIE))
		return trie_lookup((const struct node *)(c - SLOT_TRIE), k0, k1, v6, best);
	if (!c)
		return best;
	if (!v6) {
		const struct bucket4 *b = (const struct bucket4 *)c;
		uint32_t k = (uint32_t)(k0 >> 32);

		for (uint32_t i = 0; i < b->n; i++)
			if (!((k ^ b->e[i].key) & b->e[i].mask))
				return b->e[i].value;
	} else {
		const struct bucket6 *b = (const struct bucket6 *)c;

		for (uint32_t i = 0; i < b->n; i++) {
			unsigned int cidr = b->cidr[i];
			uint64_t m0 = mask_bits(cidr > 64 ? 64 : cidr);
			uint64_t m1 = mask_bits(cidr > 64 ? cidr - 64 : 0);

			if (!(((k0 ^ b->e[i].key[0]) & m0) | ((k1 ^ b->e[i].key[1]) & m1)))
				return b->e[i].value;
		}
	}
	return best;
}

/* Any thread, inside a read-side critical section; lock-free. */
static inline void *lookup4(const struct slot *slots, uint32_t k)
{
	const struct slot *s = &slots[k >> (32 - SLOT_BITS)];
	/* R2, R3: pair with slots_set_best() and region_sync(); buckets are immutable. */
	void *best = __atomic_load_n(&s->best, __ATOMIC_ACQUIRE);
	uintptr_t c = __atomic_load_n(&s->child, __ATOMIC_ACQUIRE);

	return lookup_child(c, (uint64_t)k << 32, 0, false, best);
}

/* Any thread, inside a read-side critical section; lock-free. */
static inline void *lookup6(const struct slot *slots, uint64_t k0, uint64_t k1)
{
	const struct slot *s = &slots[slot_of(k0)];
	/* R2, R3: pair with slots_set_best() and region_sync(); buckets are immutable. */
	void *best = __atomic_load_n(&s->best, __ATOMIC_ACQUIRE);
	uintptr_t c = __atomic_load_n(&s->child, __ATOMIC_ACQUIRE);

	return lookup_child(c, k0, k1, true, best);
}

/* Any thread, inside a read-side critical section; lock-free. */
void *wgt_allowedips_lookup(const struct wgt_allowedips *t, int family, const void *addr)
{
	if (likely(family == AF_INET)) {
		uint32_t a;

		memcpy(&a, addr, 4);
		return lookup4(t->slots[FAM_V4], be32toh(a));
	}
	if (family == AF_INET6) {
		uint64_t a[2];

		memcpy(a, addr, 16);
		return lookup6(t->slots[FAM_V6], be64toh(a[0]), be64toh(a[1]));
	}
	return NULL;
}
