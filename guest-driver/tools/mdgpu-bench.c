// SPDX-License-Identifier: MIT
/*
 * mdgpu-bench: the cost of reaching device memory directly (the aperture mapped into the
 * process: no VM exit) and through the trapped window (every access a VM exit handled by the
 * device).
 *
 * One buffer (-s, default 64 MiB) is written and read through its direct mapping with
 * volatile 8-byte loops and with memcpy; then the first -t bytes (default 1 MiB) are written
 * and read with volatile 8-byte loops through the trapped window, moved page by page across
 * the buffer. Data written one way is checked the other way. Prints a table and one machine
 * line per measurement:
 *
 *   MDGPU-BENCH path=direct|trapped op=write|read|memcpy-write|memcpy-read bytes=<n> ns=<n>
 *
 * Phase markers (MDGPU_IOCTL_MARK: a trapped write of SCRATCH the host observes, so it can
 * count the trapped accesses of each phase): 0x100 when the direct phase starts, 0x101 when
 * the trapped phase starts, 0x1ff when it is over. The direct phase should cost no trapped
 * access at all; the trapped phase costs one per 8 bytes plus the WINDOW_SET of every page.
 *
 * Usage: mdgpu-bench [-d /dev/mdgpuN] [-s size] [-t trapped-bytes]   (sizes take K, M, G)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mdgpu.h"

#define MARK_DIRECT 0x100
#define MARK_TRAPPED 0x101
#define MARK_END 0x1ff

struct result {
	const char *path;
	const char *op;
	uint64_t bytes;
	uint64_t ns;
};

static struct result results[8];
static unsigned int nresults;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void record(const char *path, const char *op, uint64_t bytes, uint64_t ns)
{
	if (nresults < sizeof(results) / sizeof(results[0]))
		results[nresults++] = (struct result){ path, op, bytes, ns ? ns : 1 };
}

static inline uint64_t value_at(uint64_t i)
{
	return i * 0x9e3779b97f4a7c15ull;
}

int main(int argc, char **argv)
{
	uint64_t size = 64ull << 20, trapped = 1ull << 20, t0, i, page, bad;
	const char *path = MDGPU_DEFAULT_PATH;
	volatile uint64_t *direct, *win;
	struct mdgpu_buffer bo;
	volatile uint64_t sink = 0;
	struct mdgpu *dev;
	volatile void *w;
	uint64_t sum;
	void *host;
	int opt, ret, status = 1;
	unsigned int r;

	while ((opt = getopt(argc, argv, "d:s:t:")) != -1) {
		switch (opt) {
		case 'd':
			path = optarg;
			break;
		case 's':
			if (mdgpu_parse_size(optarg, &size) || !size)
				goto usage;
			break;
		case 't':
			if (mdgpu_parse_size(optarg, &trapped))
				goto usage;
			break;
		default:
			goto usage;
		}
	}
	size = (size + MDGPU_WINDOW_SIZE - 1) / MDGPU_WINDOW_SIZE * MDGPU_WINDOW_SIZE;
	trapped = trapped / MDGPU_WINDOW_SIZE * MDGPU_WINDOW_SIZE;
	if (trapped > size)
		trapped = size;
	setvbuf(stdout, NULL, _IOLBF, 0);

	ret = mdgpu_open(path, &dev);
	if (ret) {
		fprintf(stderr, "mdgpu-bench: cannot open %s: %s\n", path, mdgpu_strerror(ret));
		return 1;
	}
	ret = mdgpu_bo_create(dev, size, 0, 0, &bo);
	if (ret) {
		fprintf(stderr, "mdgpu-bench: cannot allocate %" PRIu64 " bytes: %s (%s)\n", size,
			mdgpu_strerror(ret), mdgpu_errname(ret));
		goto out_close;
	}
	ret = mdgpu_bo_map(dev, &bo);
	if (ret) {
		fprintf(stderr, "mdgpu-bench: cannot map the buffer: %s\n", mdgpu_strerror(ret));
		goto out_destroy;
	}
	host = malloc(bo.size);
	if (!host) {
		fprintf(stderr, "mdgpu-bench: out of memory\n");
		goto out_unmap;
	}
	memset(host, 0xa5, bo.size);
	direct = bo.map;
	printf("buffer: %" PRIu64 " bytes at aperture offset 0x%" PRIx64 "\n", bo.size, bo.offset);

	/* Direct: volatile 8-byte loops, then memcpy. */
	mdgpu_mark(dev, MARK_DIRECT);
	t0 = now_ns();
	for (i = 0; i < bo.size / 8; i++)
		direct[i] = value_at(i);
	__sync_synchronize();
	record("direct", "write", bo.size, now_ns() - t0);

	sum = 0;
	t0 = now_ns();
	for (i = 0; i < bo.size / 8; i++)
		sum += direct[i];
	record("direct", "read", bo.size, now_ns() - t0);
	sink = sum;

	t0 = now_ns();
	memcpy((void *)direct, host, bo.size);
	__sync_synchronize();
	record("direct", "memcpy-write", bo.size, now_ns() - t0);

	t0 = now_ns();
	memcpy(host, (const void *)direct, bo.size);
	record("direct", "memcpy-read", bo.size, now_ns() - t0);
	sink += ((uint64_t *)host)[bo.size / 8 - 1];

	/* Trapped: the window moved page by page over the first `trapped` bytes. */
	mdgpu_mark(dev, MARK_TRAPPED);
	if (trapped) {
		ret = mdgpu_window_map(dev, &w);
		if (ret) {
			fprintf(stderr, "mdgpu-bench: cannot map the window: %s\n",
				mdgpu_strerror(ret));
			goto out_free;
		}
		win = w;
		t0 = now_ns();
		for (page = 0; page < trapped; page += MDGPU_WINDOW_SIZE) {
			ret = mdgpu_window_set(dev, bo.offset + page);
			if (ret)
				break;
			for (i = 0; i < MDGPU_WINDOW_SIZE / 8; i++)
				win[i] = value_at(page / 8 + i);
		}
		record("trapped", "write", trapped, now_ns() - t0);
		if (ret) {
			fprintf(stderr, "mdgpu-bench: WINDOW_SET failed: %s\n",
				mdgpu_strerror(ret));
			mdgpu_window_unmap(w);
			goto out_free;
		}
		/* What went through the window must be in the buffer. */
		for (bad = 0, i = 0; i < trapped / 8; i++)
			bad += direct[i] != value_at(i);
		printf("trapped writes seen through the direct mapping: %s (%" PRIu64
		       " words differ)\n",
		       bad ? "NO" : "yes", bad);

		for (i = 0; i < trapped / 8; i++)
			direct[i] = ~value_at(i);
		__sync_synchronize();
		sum = 0;
		bad = 0;
		t0 = now_ns();
		for (page = 0; page < trapped; page += MDGPU_WINDOW_SIZE) {
			mdgpu_window_set(dev, bo.offset + page);
			for (i = 0; i < MDGPU_WINDOW_SIZE / 8; i++) {
				uint64_t v = win[i];

				sum += v;
				bad += v != ~value_at(page / 8 + i);
			}
		}
		record("trapped", "read", trapped, now_ns() - t0);
		sink += sum;
		printf("direct writes seen through the trapped window: %s (%" PRIu64
		       " words differ)\n",
		       bad ? "NO" : "yes", bad);
		mdgpu_window_unmap(w);
		if (bad)
			goto out_free;
	}
	mdgpu_mark(dev, MARK_END);

	printf("\n%-8s %-13s %12s %14s %10s %12s\n", "path", "op", "bytes", "ns", "MB/s",
	       "ns/8 bytes");
	for (r = 0; r < nresults; r++)
		printf("%-8s %-13s %12" PRIu64 " %14" PRIu64 " %10.1f %12.1f\n", results[r].path,
		       results[r].op, results[r].bytes, results[r].ns,
		       results[r].bytes * 1000.0 / results[r].ns,
		       results[r].ns * 8.0 / results[r].bytes);
	printf("\n");
	for (r = 0; r < nresults; r++)
		printf("MDGPU-BENCH path=%s op=%s bytes=%" PRIu64 " ns=%" PRIu64 "\n",
		       results[r].path, results[r].op, results[r].bytes, results[r].ns);
	(void)sink;
	status = 0;

out_free:
	free(host);
out_unmap:
	mdgpu_bo_unmap(&bo);
out_destroy:
	mdgpu_bo_destroy(dev, &bo);
out_close:
	mdgpu_close(dev);
	return status;

usage:
	fprintf(stderr, "usage: %s [-d device] [-s size] [-t trapped-bytes]\n", argv[0]);
	return 2;
}
