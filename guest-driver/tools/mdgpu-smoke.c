// SPDX-License-Identifier: MIT
/*
 * mdgpu-smoke: exercise the guest driver end to end and print one line per check:
 *
 *   MDGPU-SMOKE <name> ok|FAIL <detail>
 *   MDGPU-SMOKE-PATTERN offset=0x<aperture offset> size=<bytes> seed=<n>
 *   MDGPU-SMOKE-RESULT pass=<n> fail=<n>
 *
 * A PATTERN line promises that, when that buffer is freed, its bytes are the pattern
 * u32 word i = (seed * 0x9e3779b1 + i) mod 2^32, little-endian: the host checks them in its
 * memfd (the device's onRelease hook), which proves the guest's stores through the direct
 * mapping landed at the allocator's offsets. Seeds are unique per buffer.
 *
 * With -u, instead: hot-unplug the device under an open file with live mappings and a process
 * asleep in MDGPU_IOCTL_WAIT_FENCE on one of its buffers (through sysfs), check that the file is
 * revoked (-ENODEV, SIGBUS on the old mappings) and the waiter woken with -ENODEV, rescan the
 * bus and check that the device comes back clean.
 *
 * Usage: mdgpu-smoke [-d /dev/mdgpuN] [-u]. Exit status 0 when every check passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mdgpu.h"

#define KiB (1024ull)
#define MiB (1024ull * 1024)
#define PATTERN_MUL 0x9e3779b1u

static const char *path = MDGPU_DEFAULT_PATH;
static unsigned int passed, failed;
static uint32_t next_seed = 1;

static bool check(const char *name, bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("MDGPU-SMOKE %s %s ", name, ok ? "ok" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (ok)
		passed++;
	else
		failed++;
	return ok;
}

/* Did a call fail with exactly -@want? Also builds the detail text. */
static bool expect_err(const char *name, int ret, int want, const char *what)
{
	return check(name, ret == -want, "%s -> %s (want %s)", what,
		     ret ? mdgpu_errname(ret) : "success", mdgpu_errname(want));
}

static inline uint32_t pattern_word(uint32_t seed, uint64_t i)
{
	return seed * PATTERN_MUL + (uint32_t)i;
}

static void pattern_fill(struct mdgpu_buffer *bo, uint32_t seed)
{
	volatile uint32_t *p = bo->map;
	uint64_t i;

	for (i = 0; i < bo->size / 4; i++)
		p[i] = pattern_word(seed, i);
	__sync_synchronize();
}

/* Index of the first word that differs from the pattern, or -1. */
static int64_t pattern_check(const struct mdgpu_buffer *bo, uint32_t seed)
{
	const volatile uint32_t *p = bo->map;
	uint64_t i;

	for (i = 0; i < bo->size / 4; i++)
		if (p[i] != pattern_word(seed, i))
			return (int64_t)i;
	return -1;
}

static int64_t zero_check(const struct mdgpu_buffer *bo)
{
	const volatile uint64_t *p = bo->map;
	uint64_t i;

	for (i = 0; i < bo->size / 8; i++)
		if (p[i])
			return (int64_t)i;
	return -1;
}

static void print_pattern(const struct mdgpu_buffer *bo, uint32_t seed)
{
	printf("MDGPU-SMOKE-PATTERN offset=0x%" PRIx64 " size=%" PRIu64 " seed=%u\n", bo->offset,
	       bo->size, seed);
	fflush(stdout);
}

static uint64_t used_now(struct mdgpu *dev, struct mdgpu_info *out)
{
	struct mdgpu_info info;

	if (mdgpu_get_info(dev, &info))
		return UINT64_MAX;
	if (out)
		*out = info;
	return info.used;
}

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

struct smoke_buf {
	uint64_t size;
	uint32_t align_log2;
	struct mdgpu_buffer bo;
	uint32_t seed;
	bool live;
};

/* Several sizes from 4 KiB to a few MiB, one odd size, one with a large alignment. */
static struct smoke_buf bufs[] = {
	{ .size = 4 * KiB },
	{ .size = 12345 },
	{ .size = 1 * MiB },
	{ .size = 3 * MiB + 4 * KiB },
	{ .size = 2 * MiB, .align_log2 = 21 },
};
#define NBUFS (sizeof(bufs) / sizeof(bufs[0]))

static void test_buffers(struct mdgpu *dev, const struct mdgpu_info *info, uint64_t base_used)
{
	uint64_t total = 0, used;
	unsigned int i, j;
	char name[32];
	int ret;

	for (i = 0; i < NBUFS; i++) {
		struct smoke_buf *b = &bufs[i];
		uint64_t align = b->align_log2 ? 1ull << b->align_log2 : 4 * KiB;

		snprintf(name, sizeof(name), "alloc-%u", i);
		ret = mdgpu_bo_create(dev, b->size, b->align_log2, 0, &b->bo);
		if (!check(name, ret == 0, "size=%" PRIu64 " align_log2=%u -> %s", b->size,
			   b->align_log2, ret ? mdgpu_errname(ret) : "created"))
			continue;
		b->live = true;
		total += b->bo.size;
		snprintf(name, sizeof(name), "shape-%u", i);
		check(name,
		      b->bo.size == round_up(b->size, info->min_align) &&
			      b->bo.offset >= info->alloc_base && b->bo.offset % align == 0 &&
			      b->bo.offset + b->bo.size <= info->aperture_size && b->bo.handle != 0,
		      "buffer %u: handle %u offset 0x%" PRIx64 " size %" PRIu64, i, b->bo.handle,
		      b->bo.offset, b->bo.size);
	}
	for (i = 0; i < NBUFS; i++)
		for (j = i + 1; j < NBUFS; j++)
			if (bufs[i].live && bufs[j].live &&
			    bufs[i].bo.offset < bufs[j].bo.offset + bufs[j].bo.size &&
			    bufs[j].bo.offset < bufs[i].bo.offset + bufs[i].bo.size)
				check("no-overlap", false, "buffers %u and %u overlap", i, j);
	used = used_now(dev, NULL);
	check("used-after-alloc", used == base_used + total,
	      "used %" PRIu64 " = %" PRIu64 " before + %" PRIu64 " allocated", used, base_used,
	      total);

	for (i = 0; i < NBUFS; i++) {
		struct smoke_buf *b = &bufs[i];
		int64_t bad;

		if (!b->live)
			continue;
		snprintf(name, sizeof(name), "map-%u", i);
		ret = mdgpu_bo_map(dev, &b->bo);
		if (!check(name, ret == 0, "mmap offset 0x%" PRIx64 " -> %s", b->bo.offset,
			   ret ? mdgpu_errname(ret) : "mapped"))
			continue;
		bad = zero_check(&b->bo);
		snprintf(name, sizeof(name), "zeroed-%u", i);
		check(name, bad < 0, "new buffer reads as zeros (first nonzero u64: %" PRId64 ")",
		      bad);
		b->seed = next_seed++;
		pattern_fill(&b->bo, b->seed);
		bad = pattern_check(&b->bo, b->seed);
		snprintf(name, sizeof(name), "pattern-%u", i);
		check(name, bad < 0,
		      "%" PRIu64 " bytes written and read back (first bad word: %" PRId64 ")",
		      b->bo.size, bad);
	}
}

/* Read and write buffer 2 through the trapped window and compare with the direct mapping. */
static void test_window(struct mdgpu *dev, const struct mdgpu_info *info)
{
	struct smoke_buf *b = &bufs[2];
	volatile uint32_t *win, *direct;
	volatile void *w;
	uint64_t page = 3, i, bad = 0;
	uint32_t saved;
	int ret;

	if (!b->live || !b->bo.map) {
		check("window", false, "buffer 2 is not there");
		return;
	}
	ret = mdgpu_window_map(dev, &w);
	if (!check("window-map", ret == 0, "mmap offset 0 (trapped page) -> %s",
		   ret ? mdgpu_errname(ret) : "mapped"))
		return;
	win = w;
	direct = (volatile uint32_t *)b->bo.map + page * MDGPU_WINDOW_SIZE / 4;

	ret = mdgpu_window_set(dev, b->bo.offset + page * MDGPU_WINDOW_SIZE);
	if (check("window-set", ret == 0, "window at 0x%" PRIx64 " -> %s",
		  b->bo.offset + page * MDGPU_WINDOW_SIZE, ret ? mdgpu_errname(ret) : "set")) {
		for (i = 0; i < MDGPU_WINDOW_SIZE / 4; i++)
			if (win[i] != pattern_word(b->seed, page * MDGPU_WINDOW_SIZE / 4 + i))
				bad++;
		check("window-read", bad == 0,
		      "%u trapped reads match the direct mapping (%" PRIu64 " differ)",
		      MDGPU_WINDOW_SIZE / 4, bad);
		saved = direct[7];
		win[7] = 0xfeedf00d;
		check("window-write", direct[7] == 0xfeedf00d,
		      "trapped write seen through the direct mapping (0x%08x)", direct[7]);
		direct[7] = saved;
		check("window-sees-direct", win[7] == saved,
		      "direct write seen through the window (0x%08x)", win[7]);
	}
	expect_err("window-unaligned", mdgpu_window_set(dev, b->bo.offset + 8), EINVAL,
		   "window at a non-page-aligned offset");
	expect_err("window-outside", mdgpu_window_set(dev, info->aperture_size - MDGPU_WINDOW_SIZE),
		   EINVAL, "window at the last aperture page (not a buffer of ours)");
	mdgpu_window_unmap(w);
}

static void test_mmap_limits(struct mdgpu *dev, const struct mdgpu_info *info)
{
	struct smoke_buf *b = &bufs[2];
	void *p;
	int ret;

	p = mmap(NULL, b->bo.size + 4 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, mdgpu_fd(dev),
		 (off_t)b->bo.offset);
	ret = p == MAP_FAILED ? -errno : 0;
	if (!ret)
		munmap(p, b->bo.size + 4 * KiB);
	expect_err("mmap-beyond", ret, EINVAL, "mmap one page past the end of a buffer");

	p = mmap(NULL, 4 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, mdgpu_fd(dev),
		 (off_t)(b->bo.offset + 4 * KiB));
	ret = p == MAP_FAILED ? -errno : 0;
	if (!ret)
		munmap(p, 4 * KiB);
	expect_err("mmap-inside", ret, EINVAL, "mmap starting inside a buffer");

	p = mmap(NULL, 4 * KiB, PROT_READ | PROT_WRITE, MAP_PRIVATE, mdgpu_fd(dev),
		 (off_t)b->bo.offset);
	ret = p == MAP_FAILED ? -errno : 0;
	if (!ret)
		munmap(p, 4 * KiB);
	expect_err("mmap-private", ret, EINVAL, "MAP_PRIVATE mapping of a buffer");

	p = mmap(NULL, 4 * KiB, PROT_READ, MAP_SHARED, mdgpu_fd(dev),
		 (off_t)(info->aperture_size - 4 * KiB));
	ret = p == MAP_FAILED ? -errno : 0;
	if (!ret)
		munmap(p, 4 * KiB);
	expect_err("mmap-not-a-buffer", ret, EINVAL, "mmap of the last aperture page");

	p = mmap(NULL, 2 * MDGPU_WINDOW_SIZE, PROT_READ, MAP_SHARED, mdgpu_fd(dev), 0);
	ret = p == MAP_FAILED ? -errno : 0;
	if (!ret)
		munmap(p, 2 * MDGPU_WINDOW_SIZE);
	expect_err("mmap-window-size", ret, EINVAL, "mmap of two pages at the window offset");
}

static void test_bad_args(struct mdgpu *dev)
{
	struct mdgpu_bo_create create;
	struct mdgpu_bo_destroy destroy;
	struct mdgpu_window_set win;
	struct mdgpu_buffer bo;
	int fd = mdgpu_fd(dev), ret;

	expect_err("create-size-0", mdgpu_bo_create(dev, 0, 0, 0, &bo), EINVAL, "size 0");
	expect_err("create-flags", mdgpu_bo_create(dev, 4096, 0, ~MDGPU_BO_FLAGS_KNOWN, &bo),
		   EINVAL, "flags the uapi does not define");
	/* Contract 1.3: a write-back mapping; the data is the same whichever way it is mapped. */
	ret = mdgpu_bo_create(dev, 8192, 0, MDGPU_BO_CACHED, &bo);
	if (check("create-cached", !ret, "MDGPU_BO_CACHED -> %s", mdgpu_errname(ret))) {
		ret = mdgpu_bo_map(dev, &bo);
		if (check("map-cached", !ret, "%s", mdgpu_errname(ret))) {
			pattern_fill(&bo, 0xcafe);
			check("cached-readback", pattern_check(&bo, 0xcafe) < 0,
			      "a pattern written through the write-back mapping reads back");
			mdgpu_bo_unmap(&bo);
		}
		expect_err("destroy-cached", mdgpu_bo_destroy(dev, &bo), 0, "the cached buffer");
	}
	expect_err("create-align-small", mdgpu_bo_create(dev, 4096, 5, 0, &bo), EINVAL,
		   "align_log2 5");
	expect_err("create-align-large", mdgpu_bo_create(dev, 4096, 31, 0, &bo), EINVAL,
		   "align_log2 31");
	expect_err("create-huge", mdgpu_bo_create(dev, UINT64_MAX - 4095, 0, 0, &bo), EINVAL,
		   "size 2^64 - 4096");

	memset(&create, 0, sizeof(create));
	create.size = 4096;
	create.pad = 1;
	ret = ioctl(fd, MDGPU_IOCTL_BO_CREATE, &create) ? -errno : 0;
	expect_err("create-pad", ret, EINVAL, "BO_CREATE with pad 1");

	memset(&destroy, 0, sizeof(destroy));
	destroy.handle = bufs[0].bo.handle;
	destroy.pad = 1;
	ret = ioctl(fd, MDGPU_IOCTL_BO_DESTROY, &destroy) ? -errno : 0;
	expect_err("destroy-pad", ret, EINVAL, "BO_DESTROY with pad 1");

	memset(&destroy, 0, sizeof(destroy));
	ret = ioctl(fd, MDGPU_IOCTL_BO_DESTROY, &destroy) ? -errno : 0;
	expect_err("destroy-handle-0", ret, ENOENT, "BO_DESTROY of handle 0");

	memset(&win, 0, sizeof(win));
	win.offset = bufs[2].bo.offset;
	win.flags = 1;
	ret = ioctl(fd, MDGPU_IOCTL_WINDOW_SET, &win) ? -errno : 0;
	expect_err("window-flags", ret, EINVAL, "WINDOW_SET with flags 1");

	ret = ioctl(fd, _IOWR(MDGPU_IOCTL_BASE, 0x7f, struct mdgpu_bo_destroy), &destroy);
	ret = ret ? -errno : 0;
	expect_err("unknown-ioctl", ret, ENOTTY, "ioctl 0x7f");
}

static void test_free(struct mdgpu *dev, uint64_t base_used)
{
	struct smoke_buf *b0 = &bufs[0];
	unsigned int i;
	uint64_t used;
	int ret;

	if (b0->live)
		expect_err("destroy-mapped", mdgpu_bo_destroy(dev, &b0->bo), EBUSY,
			   "BO_DESTROY of a mapped buffer");

	/* The patterns are final from here: print them, then free. */
	for (i = 0; i < NBUFS; i++) {
		struct smoke_buf *b = &bufs[i];
		char name[32];

		if (!b->live)
			continue;
		if (b->bo.map) {
			snprintf(name, sizeof(name), "intact-%u", i);
			if (check(name, pattern_check(&b->bo, b->seed) < 0,
				  "pattern unchanged before the free"))
				print_pattern(&b->bo, b->seed);
			mdgpu_bo_unmap(&b->bo);
		}
		snprintf(name, sizeof(name), "free-%u", i);
		ret = mdgpu_bo_destroy(dev, &b->bo);
		check(name, ret == 0, "BO_DESTROY handle %u -> %s", b->bo.handle,
		      ret ? mdgpu_errname(ret) : "freed");
		b->live = ret != 0;
	}
	used = used_now(dev, NULL);
	check("used-after-free", used == base_used, "used %" PRIu64 " (before: %" PRIu64 ")", used,
	      base_used);
	expect_err("double-free", mdgpu_bo_destroy(dev, &b0->bo), ENOENT,
		   "second BO_DESTROY of a buffer");
}

/* Allocate the same sizes again: the allocator reuses the offsets the patterns were in. */
static void test_realloc_zeroed(struct mdgpu *dev)
{
	unsigned int i, j, reused = 0, zeroed = 0, n = 0;
	struct mdgpu_buffer bo;
	uint32_t seed;
	int ret;

	for (i = 0; i < NBUFS; i++) {
		ret = mdgpu_bo_create(dev, bufs[i].size, bufs[i].align_log2, 0, &bo);
		if (ret) {
			check("realloc", false, "buffer %u: %s", i, mdgpu_errname(ret));
			continue;
		}
		n++;
		for (j = 0; j < NBUFS; j++)
			if (bo.offset < bufs[j].bo.offset + bufs[j].bo.size &&
			    bufs[j].bo.offset < bo.offset + bo.size) {
				reused++;
				break;
			}
		if (mdgpu_bo_map(dev, &bo) == 0) {
			zeroed += zero_check(&bo) < 0;
			seed = next_seed++;
			pattern_fill(&bo, seed);
			if (pattern_check(&bo, seed) < 0)
				print_pattern(&bo, seed);
			mdgpu_bo_unmap(&bo);
		}
		mdgpu_bo_destroy(dev, &bo);
	}
	check("realloc-zeroed", n == NBUFS && zeroed == n,
	      "%u of %u re-allocated buffers read as zeros, %u of them over a freed pattern",
	      zeroed, n, reused);
}

static void test_quota(struct mdgpu *dev)
{
	struct mdgpu_buffer sentinel, fill, extra;
	struct mdgpu_info before, after;
	uint64_t remaining;
	uint32_t seed;
	int64_t bad;
	int ret;

	ret = mdgpu_bo_create(dev, 64 * KiB, 0, 0, &sentinel);
	if (!check("quota-sentinel", ret == 0 && mdgpu_bo_map(dev, &sentinel) == 0,
		   "64 KiB buffer to watch -> %s", ret ? mdgpu_errname(ret) : "mapped"))
		return;
	seed = next_seed++;
	pattern_fill(&sentinel, seed);

	used_now(dev, &before);
	remaining = before.quota - before.used;
	ret = mdgpu_bo_create(dev, remaining + 4 * KiB, 0, 0, &extra);
	expect_err("quota-exceed", ret, EDQUOT, "allocating quota - used + 4 KiB");
	used_now(dev, &after);
	bad = pattern_check(&sentinel, seed);
	check("quota-undisturbed",
	      after.used == before.used && after.buffers == before.buffers && bad < 0,
	      "used %" PRIu64 " -> %" PRIu64 ", buffers %u -> %u, sentinel intact: %s", before.used,
	      after.used, before.buffers, after.buffers, bad < 0 ? "yes" : "no");

	ret = remaining ? mdgpu_bo_create(dev, remaining, 0, 0, &fill) : -ENOSPC;
	if (check("quota-fill", ret == 0,
		  "allocating exactly the rest of the quota (%" PRIu64 " bytes) -> %s", remaining,
		  ret ? mdgpu_errname(ret) : "created")) {
		ret = mdgpu_bo_create(dev, 4 * KiB, 0, 0, &extra);
		expect_err("quota-full", ret, EDQUOT, "4 KiB more with the quota used up");
		if (!ret)
			mdgpu_bo_destroy(dev, &extra);
		mdgpu_bo_destroy(dev, &fill);
	}
	if (pattern_check(&sentinel, seed) < 0)
		print_pattern(&sentinel, seed);
	mdgpu_bo_unmap(&sentinel);
	mdgpu_bo_destroy(dev, &sentinel);
}

/* Another open file is another context: its buffers are invisible to this one. */
static void test_other_context(struct mdgpu *dev)
{
	struct mdgpu_buffer theirs;
	struct mdgpu_info info;
	struct mdgpu *other;
	uint64_t before;
	void *p;
	int ret;

	before = used_now(dev, NULL);
	ret = mdgpu_open(path, &other);
	if (!check("second-open", ret == 0, "second open file -> %s",
		   ret ? mdgpu_errname(ret) : "opened"))
		return;
	ret = mdgpu_bo_create(other, 128 * KiB, 0, 0, &theirs);
	if (check("other-alloc", ret == 0, "buffer in the second context -> %s",
		  ret ? mdgpu_errname(ret) : "created")) {
		expect_err("other-destroy", mdgpu_bo_destroy(dev, &theirs), ENOENT,
			   "BO_DESTROY of the other context's handle");
		p = mmap(NULL, theirs.size, PROT_READ, MAP_SHARED, mdgpu_fd(dev),
			 (off_t)theirs.offset);
		ret = p == MAP_FAILED ? -errno : 0;
		if (!ret)
			munmap(p, theirs.size);
		expect_err("other-mmap", ret, EINVAL, "mmap of the other context's buffer");
		expect_err("other-window", mdgpu_window_set(dev, theirs.offset), EINVAL,
			   "window onto the other context's buffer");
		/* This file owns the window (test_window): the other one may not move it. */
		expect_err("window-busy", mdgpu_window_set(other, theirs.offset), EBUSY,
			   "the other context setting the window");
	}
	mdgpu_close(other);
	used_now(dev, &info);
	check("other-close", info.used == before,
	      "closing the second file freed its buffer: used %" PRIu64 " (before %" PRIu64 ")",
	      info.used, before);
}

/* A child process allocates and exits without freeing: the driver must free its buffers. */
static void test_fork_cleanup(struct mdgpu *dev)
{
	struct mdgpu_info before, during, after;
	int to_parent[2], to_child[2], status;
	uint64_t child_bytes = 0;
	pid_t pid;
	char c;

	used_now(dev, &before);
	if (pipe(to_parent) || pipe(to_child)) {
		check("fork-cleanup", false, "pipe: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid < 0) {
		check("fork-cleanup", false, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		struct mdgpu_buffer a, b;
		struct mdgpu *mine;
		uint64_t bytes = 0;

		/* Our copy of the parent's write end would keep read() below from seeing EOF. */
		close(to_child[1]);
		close(to_parent[0]);
		if (mdgpu_open(path, &mine) == 0 && mdgpu_bo_create(mine, 1 * MiB, 0, 0, &a) == 0 &&
		    mdgpu_bo_create(mine, 256 * KiB, 0, 0, &b) == 0 &&
		    mdgpu_bo_map(mine, &a) == 0) {
			memset(a.map, 0x5a, a.size);
			bytes = a.size + b.size;
		}
		if (write(to_parent[1], &bytes, sizeof(bytes)) != sizeof(bytes))
			_exit(1);
		/* Wait for the parent to look, then exit: no unmap, no free, no close. */
		if (read(to_child[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(to_parent[1]);
	close(to_child[0]);
	if (read(to_parent[0], &child_bytes, sizeof(child_bytes)) != sizeof(child_bytes))
		child_bytes = 0;
	used_now(dev, &during);
	check("fork-child-alloc",
	      child_bytes && during.used == before.used + child_bytes &&
		      during.contexts == before.contexts + 1,
	      "child allocated %" PRIu64 " bytes: used %" PRIu64 " -> %" PRIu64
	      ", contexts %u -> %u",
	      child_bytes, before.used, during.used, before.contexts, during.contexts);
	close(to_child[1]);
	waitpid(pid, &status, 0);
	close(to_parent[0]);
	used_now(dev, &after);
	check("fork-cleanup",
	      after.used == before.used && after.contexts == before.contexts &&
		      after.buffers == before.buffers,
	      "child exited without freeing: used %" PRIu64
	      ", contexts %u, buffers %u (before: %" PRIu64 ", %u, %u)",
	      after.used, after.contexts, after.buffers, before.used, before.contexts,
	      before.buffers);
}

/* A raw ioctl: 0 or -errno (no retry, no library checks in the way). */
static int raw(struct mdgpu *dev, unsigned long cmd, void *arg)
{
	return ioctl(mdgpu_fd(dev), cmd, arg) ? -errno : 0;
}

/*
 * Contract 1.1 and 1.3 ioctls: every argument check (unknown flags and padding -EINVAL, handles
 * of other files -ENOENT), queue and kernel lifetimes, fence waits the CPU signals, marks, the
 * capability record. Needs no compute backend: nothing here executes on the device.
 */
static void test_compute_uapi(struct mdgpu *dev)
{
	struct mdgpu_buffer qbo = { 0 }, bad_ring = { 0 }, fence = { 0 }, theirs = { 0 };
	struct mdgpu_queue_create qc;
	struct mdgpu_queue_destroy qd;
	struct mdgpu_queue_doorbell db;
	struct mdgpu_kernel_create kc;
	struct mdgpu_kernel_create2 kc2;
	struct mdgpu_caps_read cr;
	struct mdgpu_kernel_destroy kd;
	struct mdgpu_wait_fence wf;
	struct mdgpu_compute_info ci;
	struct mdgpu_info di;
	uint32_t info_version;
	struct mdgpu_mark mk;
	struct mdgpu *other = NULL;
	uint32_t queue = 0, their_queue = 0;
	uint64_t t0, seen = 0;
	struct timespec ts;
	int ret, want;

	ret = mdgpu_get_compute_info(dev, &ci);
	if (!check("compute-info",
		   ret == 0 && ci.irq_vectors >= 1 && ci.queues == 0 && ci.kernels == 0,
		   "-> %s: backend %u, %u MSI-X vectors, max %u queues, %u kernels, submission %" PRIu64,
		   ret ? mdgpu_errname(ret) : "ok", ci.has_backend, ci.irq_vectors, ci.max_queues,
		   ci.max_kernels, (uint64_t)ci.max_submission))
		return;
	info_version = mdgpu_get_info(dev, &di) ? 0 : di.version;
	if (mdgpu_bo_create(dev, MDGPU_QUEUE_CONTROL_SIZE + 4096, 0, 0, &qbo) ||
	    mdgpu_bo_create(dev, 16384, 0, 0, &bad_ring) ||
	    mdgpu_bo_create(dev, 4096, 0, 0, &fence) || mdgpu_bo_map(dev, &fence) ||
	    mdgpu_open(path, &other) || mdgpu_bo_create(other, 8192, 0, 0, &theirs)) {
		check("compute-setup", false, "buffers and a second file");
		goto out;
	}

	/* QUEUE_CREATE */
	qc = (struct mdgpu_queue_create){ .handle = qbo.handle, .flags = 1 };
	expect_err("queue-create-flags", raw(dev, MDGPU_IOCTL_QUEUE_CREATE, &qc), EINVAL,
		   "flags 1");
	qc = (struct mdgpu_queue_create){ .handle = qbo.handle, .priority = 4 };
	expect_err("queue-create-priority", raw(dev, MDGPU_IOCTL_QUEUE_CREATE, &qc), EINVAL,
		   "priority 4");
	qc = (struct mdgpu_queue_create){ .handle = theirs.handle };
	expect_err("queue-create-other", raw(dev, MDGPU_IOCTL_QUEUE_CREATE, &qc), ENOENT,
		   "another file's buffer");
	qc = (struct mdgpu_queue_create){ .handle = bad_ring.handle };
	expect_err("queue-create-ring", raw(dev, MDGPU_IOCTL_QUEUE_CREATE, &qc), EINVAL,
		   "a 16 KiB buffer (12 KiB ring, not a power of two)");
	qc = (struct mdgpu_queue_create){ .handle = qbo.handle, .priority = 3 };
	ret = raw(dev, MDGPU_IOCTL_QUEUE_CREATE, &qc);
	queue = ret ? 0 : qc.queue;
	if (!check("queue-create", ret == 0 && queue != 0,
		   "8 KiB buffer, priority 3 -> %s, queue %u", ret ? mdgpu_errname(ret) : "ok",
		   queue))
		goto out;
	expect_err("queue-create-busy", raw(dev, MDGPU_IOCTL_QUEUE_CREATE, &qc), EBUSY,
		   "the same buffer again");
	expect_err("queue-bo-busy", mdgpu_bo_destroy(dev, &qbo), EBUSY,
		   "BO_DESTROY of the queue's buffer");
	qc = (struct mdgpu_queue_create){ .handle = theirs.handle };
	if (!raw(other, MDGPU_IOCTL_QUEUE_CREATE, &qc))
		their_queue = qc.queue;

	/* QUEUE_DOORBELL */
	db = (struct mdgpu_queue_doorbell){ .queue = queue, .flags = 1 };
	expect_err("doorbell-flags", raw(dev, MDGPU_IOCTL_QUEUE_DOORBELL, &db), EINVAL, "flags 1");
	db = (struct mdgpu_queue_doorbell){ .queue = their_queue };
	expect_err("doorbell-other", raw(dev, MDGPU_IOCTL_QUEUE_DOORBELL, &db), ENOENT,
		   "another file's queue");
	db = (struct mdgpu_queue_doorbell){ .queue = queue };
	expect_err("doorbell", raw(dev, MDGPU_IOCTL_QUEUE_DOORBELL, &db), 0, "an empty queue");

	/* KERNEL_CREATE: argument checks, then SPIR-V that is not (the device refuses it). */
	kc = (struct mdgpu_kernel_create){ .handle = fence.handle, .size = 64, .flags = 1 };
	expect_err("kernel-create-flags", raw(dev, MDGPU_IOCTL_KERNEL_CREATE, &kc), EINVAL,
		   "flags 1");
	kc = (struct mdgpu_kernel_create){ .handle = fence.handle, .size = 64, .pad = 1 };
	expect_err("kernel-create-pad", raw(dev, MDGPU_IOCTL_KERNEL_CREATE, &kc), EINVAL, "pad 1");
	kc = (struct mdgpu_kernel_create){ .handle = fence.handle, .size = 62 };
	expect_err("kernel-create-size", raw(dev, MDGPU_IOCTL_KERNEL_CREATE, &kc), EINVAL,
		   "size 62");
	kc = (struct mdgpu_kernel_create){ .handle = fence.handle, .size = 64, .offset = 4064 };
	expect_err("kernel-create-bounds", raw(dev, MDGPU_IOCTL_KERNEL_CREATE, &kc), EINVAL,
		   "64 bytes at 4064 of a 4 KiB buffer");
	kc = (struct mdgpu_kernel_create){ .handle = fence.handle, .size = 64, .bindings = 17 };
	expect_err("kernel-create-bindings", raw(dev, MDGPU_IOCTL_KERNEL_CREATE, &kc), EINVAL,
		   "17 bindings");
	kc = (struct mdgpu_kernel_create){ .handle = fence.handle, .size = 64, .push_bytes = 132 };
	expect_err("kernel-create-push", raw(dev, MDGPU_IOCTL_KERNEL_CREATE, &kc), EINVAL,
		   "132 push-constant bytes");
	kc = (struct mdgpu_kernel_create){ .handle = theirs.handle, .size = 64 };
	expect_err("kernel-create-other", raw(dev, MDGPU_IOCTL_KERNEL_CREATE, &kc), ENOENT,
		   "another file's buffer");
	/* The fence buffer is zeroed: no SPIR-V magic. */
	want = ci.has_backend ? EINVAL : EOPNOTSUPP;
	kc = (struct mdgpu_kernel_create){ .handle = fence.handle, .size = 64 };
	expect_err("kernel-create-not-spirv", raw(dev, MDGPU_IOCTL_KERNEL_CREATE, &kc), want,
		   ci.has_backend ? "64 zero bytes (BAD_KERNEL)" :
				    "no compute backend (UNSUPPORTED)");
	/* KERNEL_CREATE2 (contract 1.3): the driver's checks, then a record the device refuses. */
	kc2 = (struct mdgpu_kernel_create2){ .handle = fence.handle, .size = 64, .flags = 1 };
	expect_err("kernel-create2-flags", raw(dev, MDGPU_IOCTL_KERNEL_CREATE2, &kc2), EINVAL,
		   "flags 1");
	kc2 = (struct mdgpu_kernel_create2){ .handle = fence.handle, .size = 63 };
	expect_err("kernel-create2-small", raw(dev, MDGPU_IOCTL_KERNEL_CREATE2, &kc2), EINVAL,
		   "a 63-byte record");
	kc2 = (struct mdgpu_kernel_create2){ .handle = fence.handle, .size = 4097 };
	expect_err("kernel-create2-large", raw(dev, MDGPU_IOCTL_KERNEL_CREATE2, &kc2), EINVAL,
		   "a 4097-byte record");
	kc2 = (struct mdgpu_kernel_create2){ .handle = fence.handle, .size = 64, .offset = 4 };
	expect_err("kernel-create2-align", raw(dev, MDGPU_IOCTL_KERNEL_CREATE2, &kc2), EINVAL,
		   "offset 4");
	kc2 = (struct mdgpu_kernel_create2){ .handle = fence.handle, .size = 64, .offset = 4040 };
	expect_err("kernel-create2-bounds", raw(dev, MDGPU_IOCTL_KERNEL_CREATE2, &kc2), EINVAL,
		   "a record at 4040 of a 4 KiB buffer");
	kc2 = (struct mdgpu_kernel_create2){ .handle = theirs.handle, .size = 64 };
	expect_err("kernel-create2-other", raw(dev, MDGPU_IOCTL_KERNEL_CREATE2, &kc2), ENOENT,
		   "another file's buffer");
	/* A zeroed record names no SPIR-V. A device before 1.3 does not know the operation. */
	want = ci.has_backend && (info_version & 0xffff) >= 3 ? EINVAL : EOPNOTSUPP;
	kc2 = (struct mdgpu_kernel_create2){ .handle = fence.handle, .size = 64, .offset = 64 };
	expect_err("kernel-create2-empty", raw(dev, MDGPU_IOCTL_KERNEL_CREATE2, &kc2), want,
		   "a zeroed record (no SPIR-V)");

	/* CAPS_READ (contract 1.3): the driver's checks, then the record itself. */
	cr = (struct mdgpu_caps_read){ .handle = fence.handle, .flags = 1 };
	expect_err("caps-read-flags", raw(dev, MDGPU_IOCTL_CAPS_READ, &cr), EINVAL, "flags 1");
	cr = (struct mdgpu_caps_read){ .handle = fence.handle, .pad = 1 };
	expect_err("caps-read-pad", raw(dev, MDGPU_IOCTL_CAPS_READ, &cr), EINVAL, "pad 1");
	cr = (struct mdgpu_caps_read){ .handle = fence.handle, .offset = 4 };
	expect_err("caps-read-align", raw(dev, MDGPU_IOCTL_CAPS_READ, &cr), EINVAL, "offset 4");
	if ((info_version & 0xffff) >= 3) {
		cr = (struct mdgpu_caps_read){ .handle = fence.handle, .offset = 4096 - 8 };
		expect_err("caps-read-bounds", raw(dev, MDGPU_IOCTL_CAPS_READ, &cr), EINVAL,
			   "no room for the record at the end of a 4 KiB buffer");
		cr = (struct mdgpu_caps_read){ .handle = theirs.handle };
		expect_err("caps-read-other", raw(dev, MDGPU_IOCTL_CAPS_READ, &cr), ENOENT,
			   "another file's buffer");
	}
	cr = (struct mdgpu_caps_read){ .handle = fence.handle, .offset = 1024 };
	ret = raw(dev, MDGPU_IOCTL_CAPS_READ, &cr);
	if (ci.has_backend && (info_version & 0xffff) >= 3) {
		const struct mdgpu_caps *caps = (const void *)((const uint8_t *)fence.map + 1024);

		check("caps-read",
		      !ret && cr.size == MDGPU_CAPS_SIZE && caps->version == MDGPU_CAPS_VERSION &&
			      caps->size == MDGPU_CAPS_SIZE,
		      "-> %s, %u bytes, version %u", mdgpu_errname(ret), cr.size,
		      ret ? 0 : caps->version);
		memset((uint8_t *)fence.map + 1024, 0, MDGPU_CAPS_SIZE);
	} else {
		expect_err("caps-read-none", ret, EOPNOTSUPP,
			   "no record without a compute backend or before contract 1.3");
	}

	kd = (struct mdgpu_kernel_destroy){ .kernel = 1, .pad = 1 };
	expect_err("kernel-destroy-pad", raw(dev, MDGPU_IOCTL_KERNEL_DESTROY, &kd), EINVAL,
		   "pad 1");
	kd = (struct mdgpu_kernel_destroy){ .kernel = 12345 };
	expect_err("kernel-destroy-unknown", raw(dev, MDGPU_IOCTL_KERNEL_DESTROY, &kd), ENOENT,
		   "a kernel this file never had");

	/* WAIT_FENCE on a fence the CPU writes. */
	wf = (struct mdgpu_wait_fence){ .handle = fence.handle, .value = 1, .flags = 1 };
	expect_err("wait-flags", raw(dev, MDGPU_IOCTL_WAIT_FENCE, &wf), EINVAL, "flags 1");
	wf = (struct mdgpu_wait_fence){ .handle = fence.handle, .value = 1, .offset = 4 };
	expect_err("wait-align", raw(dev, MDGPU_IOCTL_WAIT_FENCE, &wf), EINVAL, "offset 4");
	wf = (struct mdgpu_wait_fence){ .handle = fence.handle, .value = 1, .offset = 4096 };
	expect_err("wait-bounds", raw(dev, MDGPU_IOCTL_WAIT_FENCE, &wf), EINVAL,
		   "offset 4096 of a 4 KiB buffer");
	wf = (struct mdgpu_wait_fence){ .handle = fence.handle, .value = MDGPU_FENCE_ERROR | 1 };
	expect_err("wait-error-value", raw(dev, MDGPU_IOCTL_WAIT_FENCE, &wf), EINVAL,
		   "a value with bit 63");
	wf = (struct mdgpu_wait_fence){ .handle = theirs.handle, .value = 1 };
	expect_err("wait-other", raw(dev, MDGPU_IOCTL_WAIT_FENCE, &wf), ENOENT,
		   "another file's buffer");
	((volatile uint64_t *)fence.map)[1] = 7;
	__sync_synchronize();
	wf = (struct mdgpu_wait_fence){ .handle = fence.handle, .offset = 8, .value = 7 };
	ret = raw(dev, MDGPU_IOCTL_WAIT_FENCE, &wf);
	check("wait-signalled", ret == 0 && wf.seen == 7,
	      "fence 7, wait for 7 -> %s, seen %" PRIu64, ret ? mdgpu_errname(ret) : "0",
	      (uint64_t)wf.seen);
	wf = (struct mdgpu_wait_fence){ .handle = fence.handle, .offset = 8, .value = 8 };
	ret = raw(dev, MDGPU_IOCTL_WAIT_FENCE, &wf);
	check("wait-poll", ret == -ETIME && wf.seen == 7, "fence 7, wait for 8, timeout 0 -> %s",
	      ret ? mdgpu_errname(ret) : "0");
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = ts.tv_sec * 1000000000ull + ts.tv_nsec;
	ret = mdgpu_fence_wait_kernel(dev, fence.handle, 8, 8, 30000000, &seen);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = ts.tv_sec * 1000000000ull + ts.tv_nsec - t0;
	check("wait-timeout", ret == -ETIME && t0 >= 30000000,
	      "wait for 8, 30 ms -> %s after %" PRIu64 " us", ret ? mdgpu_errname(ret) : "0",
	      t0 / 1000);
	/* An error fence for 9: waits for 9 and below fail, a later value still waits. */
	((volatile uint64_t *)fence.map)[1] = MDGPU_FENCE_ERROR | 9;
	__sync_synchronize();
	expect_err("wait-error-fence", mdgpu_fence_wait_kernel(dev, fence.handle, 8, 9, 0, NULL),
		   EIO, "error fence for 9, wait for 9");
	expect_err("wait-error-later", mdgpu_fence_wait_kernel(dev, fence.handle, 8, 10, 0, NULL),
		   ETIME, "error fence for 9, wait for 10 (not reached yet)");
	expect_err("wait-error-lib", mdgpu_fence_wait(dev, &fence, 8, 9, 1000000), EIO,
		   "libmdgpu: error fence for 9, wait for 9");

	/* QUEUE_DESTROY, then the buffer is free again. */
	qd = (struct mdgpu_queue_destroy){ .queue = queue, .pad = 1 };
	expect_err("queue-destroy-pad", raw(dev, MDGPU_IOCTL_QUEUE_DESTROY, &qd), EINVAL, "pad 1");
	qd = (struct mdgpu_queue_destroy){ .queue = their_queue };
	expect_err("queue-destroy-other", raw(dev, MDGPU_IOCTL_QUEUE_DESTROY, &qd), ENOENT,
		   "another file's queue");
	qd = (struct mdgpu_queue_destroy){ .queue = queue };
	expect_err("queue-destroy", raw(dev, MDGPU_IOCTL_QUEUE_DESTROY, &qd), 0, "its queue");
	expect_err("queue-destroy-again", raw(dev, MDGPU_IOCTL_QUEUE_DESTROY, &qd), ENOENT,
		   "the same queue again");
	ret = mdgpu_bo_destroy(dev, &qbo);
	check("queue-bo-free", ret == 0, "BO_DESTROY of the former queue buffer -> %s",
	      ret ? mdgpu_errname(ret) : "ok");
	if (!ret)
		qbo.handle = 0;

	/* MARK */
	mk = (struct mdgpu_mark){ .value = 0x5eed, .pad = 1 };
	expect_err("mark-pad", raw(dev, MDGPU_IOCTL_MARK, &mk), EINVAL, "pad 1");
	expect_err("mark", mdgpu_mark(dev, 0x5eed), 0, "SCRATCH = 0x5eed");
out:
	if (qbo.handle)
		mdgpu_bo_destroy(dev, &qbo);
	if (bad_ring.handle)
		mdgpu_bo_destroy(dev, &bad_ring);
	if (fence.handle) {
		mdgpu_bo_unmap(&fence);
		mdgpu_bo_destroy(dev, &fence);
	}
	/* Closing the other file stops its queue and frees its buffer. */
	mdgpu_close(other);
}

static sigjmp_buf sigbus_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(sigbus_jmp, sig);
}

/* Read one word of a mapping; true when that raised SIGBUS. */
static bool read_faults(const volatile uint32_t *p)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	volatile bool faulted = false;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(sigbus_jmp, 1) == 0)
		(void)*p;
	else
		faulted = true;
	sigaction(SIGBUS, &old, NULL);
	return faulted;
}

static int write_sysfs(const char *file, const char *value)
{
	int fd, ret = 0;

	fd = open(file, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, value, strlen(value)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Remove the PCI device under an open file with live mappings, then rescan the bus. */
static void test_unplug(void)
{
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	struct mdgpu_compute_info c0, c1;
	struct mdgpu_info info;
	struct mdgpu_buffer bo, other;
	volatile void *win = NULL;
	char remove[256];
	struct mdgpu *dev;
	struct stat st;
	uint32_t seed;
	int ret, i, status = 0;
	pid_t waiter = -1;

	snprintf(remove, sizeof(remove), "/sys/class/misc/%s/device/remove", name);
	ret = mdgpu_open(path, &dev);
	if (!check("unplug-open", ret == 0, "%s -> %s", path, ret ? mdgpu_errname(ret) : "opened"))
		return;
	ret = mdgpu_bo_create(dev, 64 * KiB, 0, 0, &bo);
	if (!ret)
		ret = mdgpu_bo_map(dev, &bo);
	if (!ret)
		ret = mdgpu_window_map(dev, &win);
	if (!ret)
		ret = mdgpu_window_set(dev, bo.offset);
	if (!check("unplug-setup", ret == 0, "buffer mapped, window mapped onto it -> %s",
		   ret ? mdgpu_errname(ret) : "ok")) {
		mdgpu_close(dev);
		return;
	}
	seed = next_seed++;
	pattern_fill(&bo, seed);
	check("unplug-window-before", *(volatile uint32_t *)win == pattern_word(seed, 0),
	      "window shows the buffer before the unplug");
	/* Freed by the driver's remove (context destroyed): the host still sees the pattern. */
	print_pattern(&bo, seed);

	/*
	 * A child asleep in WAIT_FENCE on the buffer, for a value the pattern never reaches:
	 * remove must wake it (-ENODEV) and wait for it before it unmaps the aperture.
	 */
	if (!mdgpu_get_compute_info(dev, &c0)) {
		waiter = fork();
		if (waiter == 0) {
			ret = mdgpu_fence_wait_kernel(dev, bo.handle, 0, ~MDGPU_FENCE_ERROR,
						      30000000000ull, NULL);
			_exit(ret < 0 && -ret < 256 ? -ret : 255);
		}
		for (i = 0; waiter > 0 && i < 200; i++) {
			if (!mdgpu_get_compute_info(dev, &c1) && c1.fence_sleeps > c0.fence_sleeps)
				break;
			usleep(10000);
		}
	}

	ret = write_sysfs(remove, "1");
	if (!check("unplug-remove", ret == 0, "echo 1 > %s -> %s", remove,
		   ret ? strerror(-ret) : "removed")) {
		mdgpu_close(dev);
		return;
	}
	check("unplug-node-gone", stat(path, &st) != 0, "%s is gone", path);
	if (waiter > 0)
		waitpid(waiter, &status, 0);
	check("unplug-fence-wait", waiter > 0 && WIFEXITED(status) && WEXITSTATUS(status) == ENODEV,
	      "a WAIT_FENCE asleep on the buffer -> %s (want ENODEV)",
	      waiter <= 0	  ? "not started" :
	      !WIFEXITED(status)  ? "killed" :
	      WEXITSTATUS(status) ? mdgpu_errname(-(int)WEXITSTATUS(status)) :
				    "success");
	expect_err("unplug-info", mdgpu_get_info(dev, &info), ENODEV, "GET_INFO on the open file");
	expect_err("unplug-create", mdgpu_bo_create(dev, 4096, 0, 0, &other), ENODEV,
		   "BO_CREATE on the open file");
	expect_err("unplug-destroy", mdgpu_bo_destroy(dev, &bo), ENODEV,
		   "BO_DESTROY on the open file");
	other = bo;
	other.map = NULL;
	expect_err("unplug-mmap", mdgpu_bo_map(dev, &other), ENODEV, "a new mmap of the buffer");
	check("unplug-sigbus", read_faults(bo.map), "the old buffer mapping is revoked (SIGBUS)");
	check("unplug-window-sigbus", read_faults(win),
	      "the old window mapping is revoked (SIGBUS)");
	mdgpu_bo_unmap(&bo);
	mdgpu_window_unmap(win);
	mdgpu_close(dev);

	ret = write_sysfs("/sys/bus/pci/rescan", "1");
	for (i = 0; i < 100 && stat(path, &st) != 0; i++)
		usleep(10000);
	if (!check("rescan", ret == 0 && stat(path, &st) == 0, "echo 1 > /sys/bus/pci/rescan -> %s",
		   ret ? strerror(-ret) : "device back"))
		return;
	ret = mdgpu_open(path, &dev);
	if (!check("rescan-open", ret == 0, "%s -> %s", path, ret ? mdgpu_errname(ret) : "opened"))
		return;
	ret = mdgpu_get_info(dev, &info);
	check("rescan-clean", ret == 0 && info.used == 0 && info.buffers == 0 && info.contexts == 1,
	      "after the unplug: used %" PRIu64 ", buffers %u, contexts %u (this one)",
	      (uint64_t)info.used, info.buffers, info.contexts);
	mdgpu_close(dev);
}

int main(int argc, char **argv)
{
	struct mdgpu_info info, end;
	uint64_t base_used;
	bool unplug = false;
	struct mdgpu *dev;
	int opt, ret;

	while ((opt = getopt(argc, argv, "d:u")) != -1) {
		if (opt == 'd') {
			path = optarg;
		} else if (opt == 'u') {
			unplug = true;
		} else {
			fprintf(stderr, "usage: %s [-d device] [-u]\n", argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (unplug) {
		/* Seeds stay unique across the two runs the host checks together. */
		next_seed = 1001;
		test_unplug();
		goto out;
	}

	ret = mdgpu_open(path, &dev);
	if (!check("open", ret == 0, "%s -> %s", path, ret ? mdgpu_strerror(ret) : "opened"))
		goto out;
	ret = mdgpu_get_info(dev, &info);
	if (!check("info",
		   ret == 0 && info.version >> 16 == 1 && info.vendor_id == 0x4d44 &&
			   info.device_id == 0x4750,
		   "contract %u.%u, %04x:%04x, aperture %" PRIu64 ", quota %" PRIu64
		   ", used %" PRIu64,
		   info.version >> 16, info.version & 0xffff, info.vendor_id, info.device_id,
		   (uint64_t)info.aperture_size, (uint64_t)info.quota, (uint64_t)info.used)) {
		mdgpu_close(dev);
		goto out;
	}
	base_used = info.used;

	test_buffers(dev, &info, base_used);
	test_window(dev, &info);
	test_mmap_limits(dev, &info);
	test_bad_args(dev);
	test_free(dev, base_used);
	test_realloc_zeroed(dev);
	test_quota(dev);
	test_other_context(dev);
	test_fork_cleanup(dev);
	test_compute_uapi(dev);

	used_now(dev, &end);
	check("irq", end.irq_count > info.irq_count,
	      "%" PRIu64 " MSI-X interrupts taken during the run (mailbox completions)",
	      (uint64_t)(end.irq_count - info.irq_count));
	mdgpu_close(dev);

	ret = mdgpu_open(path, &dev);
	if (ret == 0) {
		ret = mdgpu_get_info(dev, &end);
		mdgpu_close(dev);
	}
	check("final-used", ret == 0 && end.used == base_used,
	      "after closing everything: used %" PRIu64 " (at start %" PRIu64 ")",
	      (uint64_t)end.used, base_used);
out:
	printf("MDGPU-SMOKE-RESULT pass=%u fail=%u\n", passed, failed);
	return failed ? 1 : 0;
}
