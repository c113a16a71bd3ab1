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

/*
 * Writer only. The topmost node whose subtree holds exactly the slot's
 * prefixes of SLOT_BITS or more, or NULL when it has none.
 */
static struct node *trie_slot_root(const struct wgt_allowedips *t, unsigned int fam, uint32_t idx)
{
	uint64_t k0 = (uint64_t)idx << (64 - SLOT_BITS);
	struct node *n = t->root[fam];

	while (n && n->cidr < SLOT_BITS) {
		if (!prefix_matches(n, k0, 0))
			return NULL;
		n = n->bit[bit_at(k0, 0, n->cidr)];
	}
	return n && slot_of(n->key[0]) == idx ? n : NULL;
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

/*
 * Writer only. Rebuilds the slot's long prefixes from the trie. Cannot
 * fail: without memory for a bucket the slot points into the trie, which
 * is always correct, only slower.
 */
static void slot_sync_child(struct wgt_allowedips *t, unsigned int fam, uint32_t idx)
{
	struct slot *s = &t->slots[fam][idx];
	struct node *nodes[BUCKET_MAX + 1];
	struct node *sub = trie_slot_root(t, fam, idx);
	unsigned int n = trie_collect(sub, nodes, BUCKET_MAX + 1);
	uintptr_t old = s->child, fresh = 0;

	if (n > BUCKET_MAX || (n && !(fresh = bucket_new(fam, nodes, n))))
		fresh = (uintptr_t)sub | SLOT_TRIE;
	if (fresh == old)
		return;
	/* R3: pairs with the acquire load of the slot's child in the lookups. */
	__atomic_store_n(&s->child, fresh, __ATOMIC_RELEASE);
	/* Unpublished above; readers that still hold it are what defer_free waits for. */
	if (old && !(old & SLOT_TRIE))
		t->defer_free((void *)old, free, t->defer_ctx);
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
		slot_sync_child(t, fam, slot_of(key[0]));
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
			if (!(t->slots[fam][i].child & SLOT_TRIE))
				free((void *)t->slots[fam][i].child);
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

/* Any thread, inside a read-side critical section; lock-free. */
static inline void *lookup4(const struct slot *slots, uint32_t k)
{
	const struct slot *s = &slots[k >> (32 - SLOT_BITS)];
	/* R2, R3: pair with slots_set_best() and slot_sync_child(); buckets are immutable. */
	void *best = __atomic_load_n(&s->best, __ATOMIC_ACQUIRE);
	uintptr_t c = __atomic_load_n(&s->child, __ATOMIC_ACQUIRE);
	const struct bucket4 *b = (const struct bucket4 *)c;

	if (unlikely(c & SLOT_TRIE))
		return trie_lookup((const struct node *)(c - SLOT_TRIE), (uint64_t)k << 32, 0,
				   false, best);
	if (c)
		for (uint32_t i = 0; i < b->n; i++)
			if (!((k ^ b->e[i].key) & b->e[i].mask))
				return b->e[i].value;
	return best;
}

/* Any thread, inside a read-side critical section; lock-free. */
static inline void *lookup6(const struct slot *slots, uint64_t k0, uint64_t k1)
{
	const struct slot *s = &slots[slot_of(k0)];
	/* R2, R3: pair with slots_set_best() and slot_sync_child(); buckets are immutable. */
	void *best = __atomic_load_n(&s->best, __ATOMIC_ACQUIRE);
	uintptr_t c = __atomic_load_n(&s->child, __ATOMIC_ACQUIRE);
	const struct bucket6 *b = (const struct bucket6 *)c;

	if (unlikely(c & SLOT_TRIE))
		return trie_lookup((const struct node *)(c - SLOT_TRIE), k0, k1, true, best);
	if (c) {
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
