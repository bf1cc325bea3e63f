// SPDX-License-Identifier: MIT
/*
 * mdgpu-membench: CPU reads and writes of device memory mapped write-combined (the default) and
 * write-back (MDGPU_BO_CACHED, contract 1.3), next to the process's own memory, in the guest.
 * This is what the Vulkan driver's two memory types are (HOST_COHERENT, and HOST_COHERENT |
 * HOST_CACHED): a program that reads results on the CPU picks the cached one.
 *
 * For each kind a buffer of -s bytes (default 16 MiB) is written with volatile 8-byte stores,
 * read back with volatile 8-byte loads (checked), and copied out with memcpy, -n times (default
 * 3; the best time is kept). Prints a table and one line per measurement:
 *
 *   MDGPU-MEMBENCH type=wc|cached|ram op=write|read|memcpy-read bytes=<n> ns=<best> mbs=<MB/s>
 *
 * and, when debugfs is mounted, the memory type x86 PAT gave each mapping:
 *
 *   MDGPU-MEMBENCH-PAT type=wc|cached pat=<write-combining|write-back|uncached-minus|...>
 *
 * Usage: mdgpu-membench [-d /dev/mdgpuN] [-s size] [-n runs]   (sizes take K, M, G)
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mdgpu.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double mbs_of(uint64_t bytes, uint64_t ns)
{
	return ns ? (double)bytes / ((double)ns / 1e9) / 1e6 : 0;
}

static void report(const char *type, const char *op, uint64_t bytes, uint64_t ns)
{
	double mbs = mbs_of(bytes, ns);

	printf("MDGPU-MEMBENCH type=%s op=%s bytes=%" PRIu64 " ns=%" PRIu64 " mbs=%.0f\n", type, op,
	       bytes, ns, mbs);
}

/* Best-of-@runs times of writing, reading and copying out @size bytes at @p, into @best. */
static int measure(const char *type, volatile uint64_t *p, uint64_t size, unsigned int runs,
		   void *scratch, uint64_t best[3])
{
	uint64_t n = size / 8, best_w = UINT64_MAX, best_r = UINT64_MAX, best_c = UINT64_MAX;
	int bad = 0;

	for (unsigned int r = 0; r < runs; r++) {
		uint64_t t0 = now_ns(), sum = 0, want = 0;

		for (uint64_t i = 0; i < n; i++)
			p[i] = i * 0x9e3779b97f4a7c15ull + r;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (now_ns() - t0 < best_w)
			best_w = now_ns() - t0;
		t0 = now_ns();
		for (uint64_t i = 0; i < n; i++)
			sum += p[i];
		if (now_ns() - t0 < best_r)
			best_r = now_ns() - t0;
		for (uint64_t i = 0; i < n; i++)
			want += i * 0x9e3779b97f4a7c15ull + r;
		bad |= sum != want;
		t0 = now_ns();
		memcpy(scratch, (const void *)p, size);
		if (now_ns() - t0 < best_c)
			best_c = now_ns() - t0;
	}
	report(type, "write", size, best_w);
	report(type, "read", size, best_r);
	report(type, "memcpy-read", size, best_c);
	best[0] = best_w;
	best[1] = best_r;
	best[2] = best_c;
	return bad;
}

/* The PAT memory type of the mapping at @addr, from debugfs (if it is mounted). */
static void pat_type(const char *type, const struct mdgpu_buffer *bo, uint64_t phys_base)
{
	char line[256], want[64];
	FILE *f = fopen("/sys/kernel/debug/x86/pat_memtype_list", "r");

	if (!f)
		return;
	snprintf(want, sizeof(want), "PAT: [mem 0x%016" PRIx64, phys_base + bo->offset);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, want, strlen(want))) {
			char *t = strrchr(line, ' ');

			if (t)
				t[strcspn(t, "\n")] = 0;
			printf("MDGPU-MEMBENCH-PAT type=%s pat=%s\n", type, t ? t + 1 : "?");
		}
	fclose(f);
}

/* BAR0's physical address, from sysfs (for matching the PAT list). */
static uint64_t bar0_phys(void)
{
	char path[128], line[128];
	uint64_t start = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/misc/mdgpu0/device/resource");
	f = fopen(path, "r");
	if (f && fgets(line, sizeof(line), f))
		start = strtoull(line, NULL, 0);
	if (f)
		fclose(f);
	return start;
}

int main(int argc, char **argv)
{
	const char *path = MDGPU_DEFAULT_PATH;
	uint64_t size = 16ull << 20;
	unsigned int runs = 3;
	struct mdgpu_buffer wc, cached;
	struct mdgpu *dev;
	void *ram, *scratch;
	int opt, ret, bad = 0;

	while ((opt = getopt(argc, argv, "d:s:n:")) != -1) {
		switch (opt) {
		case 'd':
			path = optarg;
			break;
		case 's':
			if (mdgpu_parse_size(optarg, &size) || size < 4096 || size % 8) {
				fprintf(stderr, "bad size %s\n", optarg);
				return 2;
			}
			break;
		case 'n':
			runs = (unsigned int)strtoul(optarg, NULL, 0);
			if (!runs)
				runs = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-d dev] [-s size] [-n runs]\n", argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	ret = mdgpu_open(path, &dev);
	if (ret) {
		fprintf(stderr, "%s: %s\n", path, mdgpu_strerror(ret));
		return 1;
	}
	ret = mdgpu_bo_create(dev, size, 0, 0, &wc);
	if (!ret)
		ret = mdgpu_bo_map(dev, &wc);
	if (!ret)
		ret = mdgpu_bo_create(dev, size, 0, MDGPU_BO_CACHED, &cached);
	if (!ret)
		ret = mdgpu_bo_map(dev, &cached);
	ram = aligned_alloc(4096, size);
	scratch = aligned_alloc(4096, size);
	if (ret || !ram || !scratch) {
		fprintf(stderr, "buffers: %s\n", ret ? mdgpu_strerror(ret) : "out of memory");
		return 1;
	}
	memset(ram, 0, size);
	memset(scratch, 0, size);
	static const char *const kinds[3] = { "wc", "cached", "ram" };
	uint64_t best[3][3];

	bad |= measure("wc", wc.map, size, runs, scratch, best[0]);
	bad |= measure("cached", cached.map, size, runs, scratch, best[1]);
	bad |= measure("ram", ram, size, runs, scratch, best[2]);
	pat_type("wc", &wc, bar0_phys());
	pat_type("cached", &cached, bar0_phys());
	printf("\n%-8s %12s %12s %12s   (MB/s, best of %u, %" PRIu64 " MiB)\n", "memory", "write",
	       "read", "memcpy-read", runs, size >> 20);
	for (int k = 0; k < 3; k++)
		printf("%-8s %12.0f %12.0f %12.0f\n", kinds[k], mbs_of(size, best[k][0]),
		       mbs_of(size, best[k][1]), mbs_of(size, best[k][2]));
	printf("MDGPU-MEMBENCH-RESULT ok=%d\n", !bad);
	mdgpu_bo_unmap(&wc);
	mdgpu_bo_unmap(&cached);
	mdgpu_bo_destroy(dev, &wc);
	mdgpu_bo_destroy(dev, &cached);
	mdgpu_close(dev);
	free(ram);
	free(scratch);
	return bad;
}
