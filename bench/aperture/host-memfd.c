// SPDX-License-Identifier: MIT
/*
 * The physical limit for the aperture benchmark: the same loops as the guest's mdgpu-bench
 * (volatile 8-byte stores and loads, then memcpy), run on the host over a memfd mapping like
 * mdgpu's aperture. Prints MDGPU-BENCH lines in the guest tool's format, with path=host.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t value_at(uint64_t i)
{
	return i * 0x9e3779b97f4a7c15ull;
}

static void report(const char *op, uint64_t bytes, uint64_t ns)
{
	printf("MDGPU-BENCH path=host op=%s bytes=%" PRIu64 " ns=%" PRIu64 "\n", op, bytes,
	       ns ? ns : 1);
}

int main(int argc, char **argv)
{
	uint64_t size = argc > 1 ? strtoull(argv[1], NULL, 0) : 64ull << 20, i, t0, sum = 0;
	volatile uint64_t *direct;
	volatile uint64_t sink;
	void *host;
	int fd;

	/* memfd_create: the same kind of shared mapping mdgpu's aperture is. */
	fd = memfd_create("aperture-bench", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		perror("memfd");
		return 1;
	}
	direct = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	host = malloc(size);
	if (direct == MAP_FAILED || !host) {
		perror("mmap");
		return 1;
	}
	memset(host, 0x5a, size);

	t0 = now_ns();
	for (i = 0; i < size / 8; i++)
		direct[i] = value_at(i);
	__sync_synchronize();
	report("write", size, now_ns() - t0);

	t0 = now_ns();
	for (i = 0; i < size / 8; i++)
		sum += direct[i];
	report("read", size, now_ns() - t0);
	sink = sum;

	t0 = now_ns();
	memcpy((void *)direct, host, size);
	__sync_synchronize();
	report("memcpy-write", size, now_ns() - t0);

	t0 = now_ns();
	memcpy(host, (const void *)direct, size);
	report("memcpy-read", size, now_ns() - t0);
	sink += ((uint64_t *)host)[size / 8 - 1];
	(void)sink;
	return 0;
}
