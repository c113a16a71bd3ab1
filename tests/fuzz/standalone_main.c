/* SPDX-License-Identifier: MIT */
/* A main() for fuzz harnesses without libFuzzer: replays the corpus, then deterministic random and mutated inputs. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define RANDOM_INPUTS 4000
#define MAX_FILE_LEN (1U << 20)
#define MAX_INPUTS 256

/* Inputs to mutate: the harness's seeds and every corpus file. */
struct pool {
	uint8_t *data[MAX_INPUTS];
	size_t len[MAX_INPUTS];
	size_t n;
};

static uint64_t rng = 0x2545f4914f6cdd1dULL;

/* xorshift64*: a fixed sequence, so a failure reproduces by rerunning. */
static uint64_t next_u64(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

static size_t below(size_t n)
{
	return n ? (size_t)(next_u64() % n) : 0;
}

static void pool_add(struct pool *p, const uint8_t *data, size_t len)
{
	uint8_t *copy;

	if (p->n >= MAX_INPUTS)
		return;
	copy = malloc(len ? len : 1);
	if (!copy)
		return;
	memcpy(copy, data, len);
	p->data[p->n] = copy;
	p->len[p->n] = len;
	p->n++;
}

static void pool_free(struct pool *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		free(p->data[i]);
}

/* Runs one input from an exact-size heap copy, as libFuzzer does. */
static void run(const uint8_t *data, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		abort();
	memcpy(copy, data, len);
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
}

/* Reads a whole regular file. Returns 0 or -errno. */
static int read_file(const char *path, uint8_t **ret_data, size_t *ret_len)
{
	uint8_t *data;
	size_t len;
	FILE *f;
	long end;
	int ret = 0;

	f = fopen(path, "rb");
	if (!f)
		return -errno;
	if (fseek(f, 0, SEEK_END) || (end = ftell(f)) < 0 || (unsigned long)end > MAX_FILE_LEN ||
	    fseek(f, 0, SEEK_SET)) {
		fclose(f);
		return -EFBIG;
	}
	len = (size_t)end;
	data = malloc(len ? len : 1);
	if (!data) {
		fclose(f);
		return -ENOMEM;
	}
	if (fread(data, 1, len, f) != len)
		ret = -EIO;
	fclose(f);
	if (ret) {
		free(data);
		return ret;
	}
	*ret_data = data;
	*ret_len = len;
	return 0;
}

/* Runs every regular file in `dir` and adds it to the pool. Returns the count or -errno. */
static int run_dir(const char *dir, struct pool *p)
{
	struct dirent *de;
	int count = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[4096];
		struct stat st;
		uint8_t *data = NULL;
		size_t len = 0;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		if (read_file(path, &data, &len)) {
			fprintf(stderr, "standalone: cannot read %s\n", path);
			continue;
		}
		run(data, len);
		pool_add(p, data, len);
		free(data);
		count++;
	}
	closedir(d);
	return count;
}

/* One mutation of a pool input, in the spirit of libFuzzer's: flips, stores, cuts, growth. */
static size_t mutate(uint8_t *out, size_t cap, const uint8_t *in, size_t len)
{
	static const uint8_t interesting[] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x7f, 0x80, 0xff };
	size_t i, n;

	len = len < cap ? len : cap;
	memcpy(out, in, len);
	switch (below(6)) {
	case 0: /* flip a few bits */
		for (n = 1 + below(4); n-- && len;)
			out[below(len)] ^= (uint8_t)(1U << below(8));
		break;
	case 1: /* store interesting bytes */
		for (n = 1 + below(3); n-- && len;)
			out[below(len)] = interesting[below(sizeof(interesting))];
		break;
	case 2: /* truncate */
		len = below(len + 1);
		break;
	case 3: /* append random bytes */
		for (n = below(64); n-- && len < cap;)
			out[len++] = (uint8_t)next_u64();
		break;
	case 4: /* zero a 32-byte window: all-zero keys are the low-order point */
		if (len) {
			i = below(len);
			memset(out + i, 0, WGT_MIN(32, len - i));
		}
		break;
	default: /* randomise a window */
		if (len) {
			i = below(len);
			for (n = WGT_MIN(1 + below(16), len - i); n--; i++)
				out[i] = (uint8_t)next_u64();
		}
		break;
	}
	return len;
}

/*
 * The committed seeds are only useful while they match the fixture (keys,
 * ephemerals and cookie secret come from its deterministic RAND stream):
 * say so when one no longer does. A warning, not a failure: the harness
 * still runs the fresh seeds from memory.
 */
static void check_seeds(const char *dir, const struct fuzz_seed *seeds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char path[4096];
		uint8_t *data = NULL;
		size_t len = 0;

		snprintf(path, sizeof(path), "%s/%s", dir, seeds[i].name);
		if (read_file(path, &data, &len)) {
			printf("warning: seed %s is missing\n", path);
			continue;
		}
		if (len != seeds[i].len || memcmp(data, seeds[i].data, len))
			printf("warning: seed %s is stale; regenerate with --write-corpus %s\n",
			       path, dir);
		free(data);
	}
}

static int write_corpus(const char *dir, struct fuzz_seed *seeds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, seeds[i].name);
		f = fopen(path, "wb");
		if (!f || fwrite(seeds[i].data, 1, seeds[i].len, f) != seeds[i].len) {
			fprintf(stderr, "standalone: cannot write %s: %s\n", path, strerror(errno));
			if (f)
				fclose(f);
			return 1;
		}
		if (fclose(f))
			return 1;
		printf("wrote %s (%zu bytes)\n", path, seeds[i].len);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static uint8_t buf[70000];
	struct fuzz_seed seeds[FUZZ_MAX_SEEDS];
	struct pool pool = { .n = 0 };
	size_t nseeds, i, len;
	int ret, from_files = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	nseeds = fuzz_seeds(seeds);

	if (argc == 3 && !strcmp(argv[1], "--write-corpus")) {
		ret = write_corpus(argv[2], seeds, nseeds);
		fuzz_seeds_free(seeds, nseeds);
		return ret;
	}
	if (argc > 1 && argv[1][0] == '-') {
		fprintf(stderr, "usage: %s [CORPUS_DIR...] | --write-corpus DIR\n", argv[0]);
		fuzz_seeds_free(seeds, nseeds);
		return 2;
	}

	for (i = 0; i < nseeds; i++) {
		run(seeds[i].data, seeds[i].len);
		pool_add(&pool, seeds[i].data, seeds[i].len);
	}
	if (argc > 1)
		check_seeds(argv[1], seeds, nseeds);
	fuzz_seeds_free(seeds, nseeds);
	for (i = 1; i < (size_t)argc; i++) {
		ret = run_dir(argv[i], &pool);
		if (ret < 0) {
			fprintf(stderr, "standalone: %s: %s\n", argv[i], strerror(-ret));
			pool_free(&pool);
			return 1;
		}
		from_files += ret;
	}

	for (i = 0; i < RANDOM_INPUTS; i++) {
		if (pool.n && below(4)) {
			size_t k = below(pool.n);

			len = mutate(buf, sizeof(buf), pool.data[k], pool.len[k]);
		} else {
			size_t j;

			/* Mostly short, some around the message sizes, a few huge. */
			len = below(8) ? below(200) : below(sizeof(buf));
			for (j = 0; j < len; j++)
				buf[j] = (uint8_t)next_u64();
		}
		run(buf, len);
	}
	printf("%zu seeds, %d corpus files, %d random and mutated inputs: no failure\n", nseeds,
	       from_files, RANDOM_INPUTS);
	pool_free(&pool);
	return 0;
}
