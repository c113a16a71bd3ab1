/* SPDX-License-Identifier: MIT */
/* libFuzzer harness for the replay window: every verdict against a naive list of accepted counters. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "crypto/replay.h"
#include "fuzz.h"

#define W WGT_REPLAY_WINDOW
#define REJ WGT_REJECT_AFTER_MESSAGES
#define MAX_OPS 1024

/*
 * Input: one byte choosing the base (0: counter 0, 1: the next 8 bytes,
 * otherwise just below the reject limit), then 3-byte operations: an op
 * byte and a 16-bit argument, each giving one counter relative to the
 * highest accepted so far (or to the base before anything is accepted).
 */
enum op {
	OP_FORWARD,      /* highest + arg */
	OP_BACK,         /* highest - arg */
	OP_EDGE,         /* highest - W - 2 + (arg & 3): at and beside the edge */
	OP_JUMP,         /* highest + arg * 64: across ring turns */
	OP_DUPLICATE,    /* a counter sent before */
	OP_COUNT,
};

/* The deliberately naive reference: every accepted counter in a list. */
struct naive {
	uint64_t accepted[MAX_OPS];
	size_t n;
	uint64_t highest;
};

static bool naive_seen(const struct naive *ref, uint64_t counter)
{
	size_t i;

	for (i = 0; i < ref->n; i++)
		if (ref->accepted[i] == counter)
			return true;
	return false;
}

/* Accept iff below the reject limit, not seen, and not more than W below the highest accepted. */
static bool naive_check(struct naive *ref, uint64_t counter)
{
	if (counter >= REJ || naive_seen(ref, counter) || (ref->n && counter + W < ref->highest))
		return false;
	ref->accepted[ref->n++] = counter;
	if (ref->n == 1 || counter > ref->highest)
		ref->highest = counter;
	return true;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
	return a < b ? 0 : a - b;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct naive ref;
	uint64_t sent[MAX_OPS];
	struct wgt_replay r;
	uint64_t base = 0;
	size_t nsent = 0;

	if (size < 1)
		return 0;
	if (data[0] == 1 && size >= 9) {
		memcpy(&base, data + 1, sizeof(base));
		data += 8;
		size -= 8;
	} else if (data[0] > 1) {
		base = REJ - 3 * W;
	}
	data++;
	size--;

	memset(&ref, 0, sizeof(ref));
	wgt_replay_init(&r);
	for (; size >= 3 && nsent < MAX_OPS; data += 3, size -= 3) {
		uint64_t arg = (uint64_t)data[1] | (uint64_t)data[2] << 8;
		uint64_t top = ref.n ? ref.highest : base;
		uint64_t counter;
		bool want, got;

		switch (data[0] % OP_COUNT) {
		case OP_FORWARD:
			counter = sat_add(top, arg);
			break;
		case OP_BACK:
			counter = sat_sub(top, arg);
			break;
		case OP_EDGE:
			counter = sat_add(sat_sub(top, W + 2), arg & 3);
			break;
		case OP_JUMP:
			counter = sat_add(top, arg * 64);
			break;
		default:
			counter = nsent ? sent[arg % nsent] : base;
			break;
		}
		want = naive_check(&ref, counter);
		got = wgt_replay_check_and_update(&r, counter);
		FUZZ_CHECK(got == want);
		sent[nsent++] = counter;
	}
	return 0;
}

size_t fuzz_seeds(struct fuzz_seed *seeds)
{
	/* In order, a duplicate, reordering, the edge, a jump over the ring, the reject limit. */
	static const uint8_t in_order[] = { OP_FORWARD, 0, 0, OP_FORWARD, 1, 0, OP_FORWARD, 1, 0,
					    OP_DUPLICATE, 1, 0, OP_BACK, 1, 0 };
	static const uint8_t reorder[] = { OP_FORWARD, 9, 0, OP_BACK, 1, 0, OP_BACK, 2, 0,
					   OP_BACK, 2, 0, OP_FORWARD, 0xc1, 0x1f, OP_BACK, 0xc0, 0x1f,
					   OP_BACK, 0xc1, 0x1f };
	static const uint8_t edge[] = { OP_FORWARD, 0, 0x40, OP_EDGE, 0, 0, OP_EDGE, 1, 0,
					OP_EDGE, 2, 0, OP_EDGE, 3, 0, OP_DUPLICATE, 2, 0 };
	static const uint8_t jump[] = { OP_FORWARD, 5, 0, OP_JUMP, 0x80, 0, OP_BACK, 0xff, 0,
					OP_JUMP, 0xff, 0xff, OP_BACK, 0x40, 0, OP_DUPLICATE, 0, 0 };
	static const uint8_t based[] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00,
					 OP_FORWARD, 0, 0, OP_BACK, 1, 0, OP_JUMP, 2, 0 };
	static const uint8_t limit[] = { OP_FORWARD, 0xff, 0xff, OP_JUMP, 0xff, 0xff,
					 OP_FORWARD, 0xff, 0xff, OP_BACK, 1, 0, OP_DUPLICATE, 0, 0 };
	size_t n = 0;

	if (fuzz_seed_add(seeds, &n, "in-order", 0, in_order, sizeof(in_order)) ||
	    fuzz_seed_add(seeds, &n, "reorder", 0, reorder, sizeof(reorder)) ||
	    fuzz_seed_add(seeds, &n, "edge", 0, edge, sizeof(edge)) ||
	    fuzz_seed_add(seeds, &n, "jump", 0, jump, sizeof(jump)) ||
	    fuzz_seed_add(seeds, &n, "base", 1, based, sizeof(based)) ||
	    fuzz_seed_add(seeds, &n, "reject-limit", 2, limit, sizeof(limit)))
		fuzz_fail(__FILE__, __LINE__, "seeds");
	return n;
}
