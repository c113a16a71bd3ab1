/* SPDX-License-Identifier: MIT */
/* Allowed-IPs trie: the source of truth, the writer's API and the per-value index. */
#include "common/allowedips.h"

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/allowedips_pvt.h"
#include "common/compiler.h"

/* Debug check of the single-writer contract: overlapping writers trip it. */
static void writer_enter(struct wgt_allowedips *t)
{
#ifndef NDEBUG
	bool was = __atomic_exchange_n(&t->writer_busy, true, __ATOMIC_ACQUIRE);

	WGT_ASSERT(!was);
#endif
}

static void writer_exit(struct wgt_allowedips *t)
{
#ifndef NDEBUG
	__atomic_store_n(&t->writer_busy, false, __ATOMIC_RELEASE);
#endif
}

static void defer_free_now(void *ptr, void (*fn)(void *ptr), void *ctx)
{
	fn(ptr);
}

/* Length of the common prefix of two keys, 0..128. */
static unsigned int common_bits(const uint64_t a[2], const uint64_t b[2])
{
	uint64_t x0 = a[0] ^ b[0], x1 = a[1] ^ b[1];

	if (x0)
		return (unsigned int)__builtin_clzll(x0);
	if (x1)
		return 64 + (unsigned int)__builtin_clzll(x1);
	return 128;
}

static void mask_key(uint64_t key[2], unsigned int cidr)
{
	key[0] &= mask_bits(cidr > 64 ? 64 : cidr);
	key[1] &= mask_bits(cidr > 64 ? cidr - 64 : 0);
}

/* Family to trie index and prefix length limit; false for an unknown family. */
static bool family_info(int family, unsigned int *ret_fam, unsigned int *ret_bits)
{
	if (family == AF_INET) {
		*ret_fam = FAM_V4;
		*ret_bits = 32;
		return true;
	}
	if (family == AF_INET6) {
		*ret_fam = FAM_V6;
		*ret_bits = 128;
		return true;
	}
	return false;
}

/* Network-order address to the trie's host-order key (IPv4 in the top bits). */
static inline void load_key(unsigned int fam, const void *addr, uint64_t key[2])
{
	if (fam == FAM_V4) {
		uint32_t a;

		memcpy(&a, addr, 4);
		key[0] = (uint64_t)be32toh(a) << 32;
		key[1] = 0;
	} else {
		uint64_t a[2];

		memcpy(a, addr, 16);
		key[0] = be64toh(a[0]);
		key[1] = be64toh(a[1]);
	}
}

static void store_key(unsigned int fam, const uint64_t key[2], uint8_t *addr)
{
	if (fam == FAM_V4) {
		uint32_t a = htobe32((uint32_t)(key[0] >> 32));

		memcpy(addr, &a, 4);
	} else {
		uint64_t a[2] = { htobe64(key[0]), htobe64(key[1]) };

		memcpy(addr, a, 16);
	}
}

/* Publishes a fully built node (or NULL). R1: pairs with the acquire loads in trie_lookup(). */
static void publish(struct node **link, struct node *n)
{
	__atomic_store_n(link, n, __ATOMIC_RELEASE);
}

/* Writer only: the node is private until publish(). */
static struct node *node_new(unsigned int fam, const uint64_t key[2], unsigned int cidr)
{
	struct node *n = aligned_alloc(WGT_CACHELINE, WGT_ALIGN_UP(sizeof(*n), WGT_CACHELINE));

	if (!n)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->key[0] = key[0];
	n->key[1] = key[1];
	mask_key(n->key, cidr);
	n->cidr = (uint8_t)cidr;
	n->fam = (uint8_t)fam;
	return n;
}

/* Writer only, once n is unreachable from the trie and every slot. */
static void node_retire(struct wgt_allowedips *t, struct node *n)
{
	t->defer_free(n, free, t->defer_ctx);
}

static size_t group_hash(const struct wgt_allowedips *t, const void *value)
{
	/* Values are our own heap pointers, not attacker input: a multiplicative hash is enough. */
	return (size_t)(((uintptr_t)value * 0x9e3779b97f4a7c15ULL) >> 32) & (t->group_buckets - 1);
}

/* Writer only. */
static struct vgroup *group_find(const struct wgt_allowedips *t, const void *value)
{
	struct vgroup *g;

	if (!t->group_buckets)
		return NULL;
	for (g = t->groups[group_hash(t, value)]; g; g = g->hnext)
		if (g->value == value)
			return g;
	return NULL;
}

/* Writer only. Doubles the hash array; on failure the old one stays usable. */
static int groups_grow(struct wgt_allowedips *t)
{
	size_t old_n = t->group_buckets, new_n = old_n ? old_n * 2 : 16;
	struct vgroup **old = t->groups;
	struct vgroup **fresh = calloc(new_n, sizeof(*fresh));

	if (!fresh)
		return -ENOMEM;
	t->groups = fresh;
	t->group_buckets = new_n;
	for (size_t i = 0; i < old_n; i++) {
		struct vgroup *g = old[i], *next;

		for (; g; g = next) {
			size_t h = group_hash(t, g->value);

			next = g->hnext;
			g->hnext = fresh[h];
			fresh[h] = g;
		}
	}
	free(old);
	return 0;
}

/* Writer only. Finds or creates the group of `value`. Returns 0 or -ENOMEM. */
static int group_get(struct wgt_allowedips *t, void *value, struct vgroup **ret_group)
{
	struct vgroup *g = group_find(t, value);
	size_t h;

	if (g)
		goto out;
	if (t->group_count >= t->group_buckets && groups_grow(t) < 0 && !t->group_buckets)
		return -ENOMEM;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->value = value;
	h = group_hash(t, value);
	g->hnext = t->groups[h];
	t->groups[h] = g;
	t->group_count++;
out:
	*ret_group = g;
	return 0;
}

/* Writer only. Drops an empty group. */
static void group_put(struct wgt_allowedips *t, struct vgroup *g)
{
	struct vgroup **pp;

	if (g->first)
		return;
	for (pp = &t->groups[group_hash(t, g->value)]; *pp != g; pp = &(*pp)->hnext)
		;
	*pp = g->hnext;
	t->group_count--;
	free(g);
}

static void group_link(struct vgroup *g, struct node *n)
{
	n->vprev = NULL;
	n->vnext = g->first;
	if (g->first)
		g->first->vprev = n;
	g->first = n;
}

static void group_unlink(struct vgroup *g, struct node *n)
{
	if (n->vprev)
		n->vprev->vnext = n->vnext;
	else
		g->first = n->vnext;
	if (n->vnext)
		n->vnext->vprev = n->vprev;
	n->vnext = n->vprev = NULL;
}

/* Any thread: the table is private to its creator until shared. */
struct wgt_allowedips *wgt_allowedips_new(void)
{
	struct wgt_allowedips *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	for (unsigned int fam = 0; fam < FAM_COUNT; fam++) {
		/* 1 MiB each, zero pages until a slot is written. */
		t->slots[fam] = calloc(SLOT_COUNT, sizeof(*t->slots[fam]));
		if (!t->slots[fam])
			goto err;
	}
	t->defer_free = defer_free_now;
	t->max = WGT_ALLOWEDIPS_MAX;
	return t;
err:
	wgt_allowedips_free(t);
	return NULL;
}

/* Writer only, with no reader left. */
void wgt_allowedips_free(struct wgt_allowedips *t)
{
	struct node *stack[DEPTH_MAX + 1];

	if (!t)
		return;
	wgt_allowedips_slots_free(t);
	for (unsigned int fam = 0; fam < FAM_COUNT; fam++) {
		size_t sp = 0;

		/* Depth first: the stack never holds more than depth + 1 nodes. */
		if (t->root[fam])
			stack[sp++] = t->root[fam];
		while (sp) {
			struct node *n = stack[--sp];

			if (n->bit[0])
				stack[sp++] = n->bit[0];
			if (n->bit[1])
				stack[sp++] = n->bit[1];
			free(n);
		}
	}
	for (size_t i = 0; i < t->group_buckets; i++) {
		struct vgroup *g = t->groups[i], *next;

		for (; g; g = next) {
			next = g->hnext;
			free(g);
		}
	}
	free(t->groups);
	free(t);
}

/* Writer only, before readers exist. */
void wgt_allowedips_set_defer_free(struct wgt_allowedips *t,
				   void (*defer_free)(void *ptr, void (*fn)(void *ptr), void *ctx),
				   void *ctx)
{
	t->defer_free = defer_free ? defer_free : defer_free_now;
	t->defer_ctx = defer_free ? ctx : NULL;
}

/* Writer only. */
int wgt_allowedips_set_max(struct wgt_allowedips *t, size_t max)
{
	if (!max || max > WGT_ALLOWEDIPS_MAX)
		return -EINVAL;
	t->max = max;
	return 0;
}

/* Writer only. Room for one more prefix, counting refusals. */
static int reserve_entry(struct wgt_allowedips *t)
{
	if (t->count < t->max)
		return 0;
	__atomic_store_n(&t->cap_hits, t->cap_hits + 1, __ATOMIC_RELAXED);
	return -ENOSPC;
}

static void count_add(struct wgt_allowedips *t, long delta)
{
	__atomic_store_n(&t->count, t->count + (size_t)delta, __ATOMIC_RELAXED);
}

/* Writer only. Gives an existing node (maybe an intermediate one) the value `value`. */
static int set_value(struct wgt_allowedips *t, struct node *n, void *value)
{
	struct vgroup *g, *old = NULL;
	int r;

	if (n->value == value)
		return 0;
	if (!n->value) {
		r = reserve_entry(t);
		if (r < 0)
			return r;
	}
	r = group_get(t, value, &g);
	if (r < 0)
		return r;
	if (n->value) {
		old = group_find(t, n->value);
		WGT_ASSERT(old);
		group_unlink(old, n);
		group_put(t, old);
	} else {
		count_add(t, 1);
	}
	/* R2: pairs with the acquire load of n->value in trie_lookup(). */
	__atomic_store_n(&n->value, value, __ATOMIC_RELEASE);
	group_link(g, n);
	wgt_allowedips_slots_sync(t, n->fam, n->key, n->cidr);
	return 0;
}

/* Writer only. */
int wgt_allowedips_insert(struct wgt_allowedips *t, int family, const void *addr,
			  uint8_t cidr, void *value)
{
	struct node **link, *n, *leaf = NULL, *mid = NULL;
	unsigned int fam, bits, common;
	struct vgroup *g;
	uint64_t key[2];
	int r;

	if (!family_info(family, &fam, &bits) || cidr > bits || !addr || !value)
		return -EINVAL;
	writer_enter(t);
	load_key(fam, addr, key);
	mask_key(key, cidr);

	/* Walk down while the node's prefix contains ours. */
	for (link = &t->root[fam]; (n = *link); link = &n->bit[bit_at(key[0], key[1], n->cidr)]) {
		if (n->cidr > cidr || !prefix_matches(n, key[0], key[1]))
			break;
		if (n->cidr == cidr) {
			r = set_value(t, n, value);
			goto out;
		}
	}

	r = reserve_entry(t);
	if (r < 0)
		goto out;
	r = -ENOMEM;
	leaf = node_new(fam, key, cidr);
	if (!leaf)
		goto out;
	leaf->value = value;
	if (n) {
		/* n is either below our prefix or beside it; the shared part decides. */
		common = WGT_MIN(common_bits(key, n->key), WGT_MIN((unsigned int)cidr, n->cidr));
		if (common == cidr) {
			leaf->bit[bit_at(n->key[0], n->key[1], cidr)] = n;
		} else {
			mid = node_new(fam, key, common);
			if (!mid)
				goto out;
			mid->bit[bit_at(n->key[0], n->key[1], common)] = n;
			mid->bit[bit_at(key[0], key[1], common)] = leaf;
		}
	}
	r = group_get(t, value, &g);
	if (r < 0)
		goto out;

	publish(link, mid ? mid : leaf);
	group_link(g, leaf);
	count_add(t, 1);
	wgt_allowedips_slots_sync(t, fam, key, cidr);
	leaf = mid = NULL;
	r = 0;
out:
	/* Only unpublished nodes remain here: nobody else can have seen them. */
	free(leaf);
	free(mid);
	writer_exit(t);
	return r;
}

/*
 * Writer only. Finds the node holding exactly key/cidr and the links that
 * point to it and to its parent (NULL at the top). NULL if absent.
 */
static struct node *find_exact(struct wgt_allowedips *t, unsigned int fam, const uint64_t key[2],
			       unsigned int cidr, struct node ***ret_link,
			       struct node ***ret_parent_link)
{
	struct node **link = &t->root[fam], **parent_link = NULL, *n;

	while ((n = *link) && n->cidr <= cidr && prefix_matches(n, key[0], key[1])) {
		if (n->cidr == cidr) {
			*ret_link = link;
			*ret_parent_link = parent_link;
			return n;
		}
		parent_link = link;
		link = &n->bit[bit_at(key[0], key[1], n->cidr)];
	}
	return NULL;
}

/*
 * Writer only. Takes the value off n (already unlinked from its group),
 * restores the invariant and brings the jump table along: n stays as an
 * intermediate node if it has two children; otherwise its child takes its
 * place, and a valueless parent left with one child is spliced out too.
 * Unlinked nodes are retired only once no slot points to them either.
 */
static void remove_node(struct wgt_allowedips *t, struct node *n, struct node **link,
			struct node **parent_link)
{
	struct node *child, *parent, *dead[2] = { NULL, NULL };

	__atomic_store_n(&n->value, NULL, __ATOMIC_RELEASE); /* R2 */
	count_add(t, -1);
	if (n->bit[0] && n->bit[1])
		goto out;
	child = n->bit[0] ? n->bit[0] : n->bit[1];
	publish(link, child);
	dead[0] = n;
	if (child || !parent_link)
		goto out;
	parent = *parent_link;
	if (parent->value)
		goto out;
	/* link was one of parent's two children and is now NULL. */
	publish(parent_link, parent->bit[0] ? parent->bit[0] : parent->bit[1]);
	dead[1] = parent;
out:
	wgt_allowedips_slots_sync(t, n->fam, n->key, n->cidr);
	for (unsigned int i = 0; i < 2; i++)
		if (dead[i])
			node_retire(t, dead[i]);
}

/* Writer only. */
int wgt_allowedips_remove(struct wgt_allowedips *t, int family, const void *addr,
			  uint8_t cidr, void *value)
{
	struct node **link, **parent_link, *n;
	unsigned int fam, bits;
	struct vgroup *g;
	uint64_t key[2];
	int r = -ENOENT;

	if (!family_info(family, &fam, &bits) || cidr > bits || !addr || !value)
		return -EINVAL;
	writer_enter(t);
	load_key(fam, addr, key);
	mask_key(key, cidr);
	n = find_exact(t, fam, key, cidr, &link, &parent_link);
	if (!n || n->value != value)
		goto out;
	g = group_find(t, value);
	WGT_ASSERT(g);
	group_unlink(g, n);
	group_put(t, g);
	remove_node(t, n, link, parent_link);
	r = 0;
out:
	writer_exit(t);
	return r;
}

/* Writer only. */
void wgt_allowedips_remove_by_value(struct wgt_allowedips *t, void *value)
{
	struct vgroup *g;
	struct node *n;

	writer_enter(t);
	g = group_find(t, value);
	if (!g)
		goto out;
	while ((n = g->first)) {
		struct node **link, **parent_link;
		struct node *found;

		group_unlink(g, n);
		found = find_exact(t, n->fam, n->key, n->cidr, &link, &parent_link);
		WGT_ASSERT(found == n);
		(void)found;
		remove_node(t, n, link, parent_link);
	}
	group_put(t, g);
out:
	writer_exit(t);
}

static int node_cmp(const void *pa, const void *pb)
{
	const struct node *a = *(const struct node *const *)pa;
	const struct node *b = *(const struct node *const *)pb;

	if (a->fam != b->fam)
		return a->fam < b->fam ? -1 : 1;
	if (a->key[0] != b->key[0])
		return a->key[0] < b->key[0] ? -1 : 1;
	if (a->key[1] != b->key[1])
		return a->key[1] < b->key[1] ? -1 : 1;
	return (int)a->cidr - (int)b->cidr;
}

/* Writer only (the control thread answering `wg show`). */
int wgt_allowedips_walk_by_value(const struct wgt_allowedips *t, void *value,
				 int (*cb)(void *ctx, int family, const uint8_t *addr,
					   uint8_t cidr),
				 void *ctx)
{
	const struct vgroup *g;
	struct node **nodes = NULL;
	size_t n = 0, i = 0;
	struct node *it;
	int r = 0;

#ifndef NDEBUG
	WGT_ASSERT(!__atomic_load_n(&t->writer_busy, __ATOMIC_RELAXED));
#endif
	g = group_find(t, value);
	if (!g)
		goto out;
	for (it = g->first; it; it = it->vnext)
		n++;
	/* Sorted copy so the output does not reveal or depend on insertion order. */
	nodes = malloc(n * sizeof(*nodes));
	if (!nodes) {
		r = -ENOMEM;
		goto out;
	}
	for (it = g->first; it; it = it->vnext)
		nodes[i++] = it;
	qsort(nodes, n, sizeof(*nodes), node_cmp);
	for (i = 0; i < n; i++) {
		uint8_t addr[16];

		store_key(nodes[i]->fam, nodes[i]->key, addr);
		r = cb(ctx, nodes[i]->fam == FAM_V4 ? AF_INET : AF_INET6, addr, nodes[i]->cidr);
		if (r)
			goto out;
	}
out:
	free(nodes);
	return r;
}

/* Any thread: a relaxed snapshot. */
size_t wgt_allowedips_count(const struct wgt_allowedips *t)
{
	return __atomic_load_n(&t->count, __ATOMIC_RELAXED);
}

/* Any thread: a relaxed snapshot. */
uint64_t wgt_allowedips_cap_hits(const struct wgt_allowedips *t)
{
	return __atomic_load_n(&t->cap_hits, __ATOMIC_RELAXED);
}
