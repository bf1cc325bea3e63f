// SPDX-License-Identifier: MIT
/*
 * mdgpu-submit-native: the floor of one small submission, submit -> completion seen, on
 * libmdgpu-host with no mdgpu around it. The "native" column of `npm run bench:submit-host`.
 *
 * Batches (the ones bench/submit-host sends through mdgpu):
 *   fill      one FILL of 4 KiB
 *   dispatch  one DISPATCH2 of one workgroup (guest-driver/kernels memcpy: 64 invocations,
 *             two storage descriptors, 4 bytes of push constants)
 *   barrier   one BARRIER: the least a batch can be (a guest's fence-only submission never
 *             reaches the device; this is what the device costs when something does)
 *
 * Paths:
 *   direct    mdgpu_host_submit2, then mdgpu_host_wait on this thread
 *   ring      the ring service (mdgpu_host_ring_create): this thread writes the batch's
 *             records and rings the submit eventfd, the service submits and waits, this
 *             thread sleeps in poll() on the completion eventfd and reads DONE. What the
 *             data path to mdgpu's compute worker costs without any JavaScript.
 *   take      the same ring, but this thread takes the batch itself (mdgpu_host_ring_take:
 *             submit2 on the submitter's thread) and the service only waits: what mdgpu's
 *             in-process path costs without any JavaScript.
 *
 * Memory is a memfd mapped shared and imported zero copy, as mdgpu imports an aperture.
 * Prints a table and one machine line per path and batch:
 *
 *   MDGPU-SUBMIT-NATIVE path=<p> kind=<k> n=<n> median_ns=<ns> p99_ns=<ns>
 *
 *   mdgpu-submit-native [-d DEVICE] [-n ITERS] [--kernels DIR]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "mdgpu_host.h"

#ifndef KERNEL_DIR
#define KERNEL_DIR "guest-driver/kernels/build"
#endif

#define MEM_ID 1
#define KERNEL_ID 2
#define APERTURE (1u << 20)

static uint32_t dev;

static void die(const char *what)
{
	fprintf(stderr, "mdgpu-submit-native: %s: %s\n", what, mdgpu_host_last_error());
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t load_kernel(const char *dir, const char *name, uint32_t bindings, uint32_t push)
{
	struct mdgpu_host_kernel_desc desc;
	char path[1024];
	uint32_t *words, k;
	FILE *f;
	long size;

	snprintf(path, sizeof(path), "%s/%s.spv", dir, name);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr,
			"mdgpu-submit-native: cannot open %s (make -C guest-driver/kernels)\n",
			path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	words = malloc((size_t)size);
	if (!words || fread(words, 1, (size_t)size, f) != (size_t)size)
		exit(1);
	fclose(f);
	desc = (struct mdgpu_host_kernel_desc){ .words = words,
						.word_count = (uint32_t)(size / 4),
						.push_size = push,
						.legacy_bindings = (int32_t)bindings };
	if (mdgpu_host_kernel_create2(dev, &desc, &k, NULL, 0))
		die(name);
	free(words);
	return k;
}

/* One batch as mdgpu_host_submit2 takes it; memory and kernel named by handle or by ring id. */
struct batch {
	const char *kind;
	struct mdgpu_host_cmd2 cmd;
	struct mdgpu_host_descriptor descs[2];
	uint32_t desc_count;
	uint32_t push;
	uint32_t push_size;
};

static struct batch make_batch(const char *kind, uint32_t mem, uint32_t kernel)
{
	struct batch b = { .kind = kind };

	if (!strcmp(kind, "fill")) {
		b.cmd = (struct mdgpu_host_cmd2){ .op = MDGPU_HOST_OP_FILL,
						  .u.fill = { mem, 0x01020304, 0, 4096 } };
	} else if (!strcmp(kind, "dispatch")) {
		b.cmd = (struct mdgpu_host_cmd2){ .op = MDGPU_HOST_OP_DISPATCH2,
						  .u.dispatch2 = { .kernel = kernel,
								   .descriptor_count = 2,
								   .push_size = 4,
								   .groups = { 1, 1, 1 } } };
		b.descs[0] = (struct mdgpu_host_descriptor){ .mem = mem, .range = 256 };
		b.descs[1] = (struct mdgpu_host_descriptor){
			.mem = mem, .binding = 1, .offset = 65536, .range = 256
		};
		b.desc_count = 2;
		b.push = 64;
		b.push_size = 4;
	} else {
		b.cmd = (struct mdgpu_host_cmd2){ .op = MDGPU_HOST_OP_BARRIER };
	}
	return b;
}

static uint64_t run_direct(const struct batch *b)
{
	struct mdgpu_host_status st;
	uint64_t id, t0 = now_ns();

	if (mdgpu_host_submit2(dev, &b->cmd, 1, b->desc_count ? b->descs : NULL, b->desc_count,
			       b->push_size ? &b->push : NULL, b->push_size, &id))
		die("submit2");
	if (mdgpu_host_wait(dev, id, UINT64_MAX, &st) || st.result)
		die("wait");
	return now_ns() - t0;
}

/* ---- the ring, from the submitter's side (as src/backend/ring.ts writes it) ---- */

struct ring {
	uint32_t handle;
	int fd, sev, cev;
	uint8_t *map;
	size_t size;
	struct mdgpu_host_ring_header *hdr;
	uint8_t *sq, *cq;
	uint32_t sq_size, cq_size, sq_tail, cq_head, tag;
};

static void ring_open(struct ring *r, uint32_t mem, uint32_t kernel)
{
	struct mdgpu_host_ring_desc d = { 0 };

	memset(r, 0, sizeof(*r));
	r->sq_size = 1u << 16;
	r->cq_size = 1u << 16;
	r->size = MDGPU_HOST_RING_HEADER_SIZE + r->sq_size + r->cq_size;
	r->fd = memfd_create("mdgpu-submit-native-ring", MFD_CLOEXEC);
	r->sev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r->cev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->fd < 0 || r->sev < 0 || r->cev < 0 || ftruncate(r->fd, (off_t)r->size))
		exit(1);
	r->map = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	if (r->map == MAP_FAILED)
		exit(1);
	r->hdr = (struct mdgpu_host_ring_header *)r->map;
	r->sq = r->map + MDGPU_HOST_RING_HEADER_SIZE;
	r->cq = r->sq + r->sq_size;
	*r->hdr = (struct mdgpu_host_ring_header){ .magic = MDGPU_HOST_RING_MAGIC,
						   .version = MDGPU_HOST_RING_VERSION,
						   .submit_size = r->sq_size,
						   .complete_size = r->cq_size };
	d = (struct mdgpu_host_ring_desc){ .fd = r->fd,
					   .submit_event = r->sev,
					   .complete_event = r->cev };
	if (mdgpu_host_ring_create(dev, &d, &r->handle))
		die("ring_create");
	if (mdgpu_host_ring_bind(r->handle, MDGPU_HOST_RING_MEMORY, MEM_ID, mem) ||
	    mdgpu_host_ring_bind(r->handle, MDGPU_HOST_RING_KERNEL, KERNEL_ID, kernel))
		die("ring_bind");
}

/*
 * Write @b at the tail (a PAD first where it would not fit before the end), ring (or take it
 * here), wait for DONE.
 */
static uint64_t run_ring(struct ring *r, const struct batch *b, bool take)
{
	uint32_t bytes = 32 + 64 + b->desc_count * 40 + ((b->push_size + 7) & ~7u);
	struct mdgpu_host_ring_submit h = { MDGPU_HOST_RING_SUBMIT, bytes,	  ++r->tag, 1,
					    b->desc_count,	    b->push_size, 0,	    0 };
	uint32_t off = r->sq_tail & (r->sq_size - 1), rest = r->sq_size - off;
	uint64_t one = 1, t0 = now_ns();

	/* One batch at a time: the area is empty here, so only the PAD can be needed. */
	if (bytes > rest) {
		struct mdgpu_host_ring_record pad = { MDGPU_HOST_RING_PAD, rest };

		memcpy(r->sq + off, &pad, sizeof(pad));
		r->sq_tail += rest;
		off = 0;
	}
	memset(r->sq + off, 0, bytes);
	memcpy(r->sq + off, &h, sizeof(h));
	memcpy(r->sq + off + 32, &b->cmd, 64);
	memcpy(r->sq + off + 96, b->descs, b->desc_count * 40);
	memcpy(r->sq + off + 96 + b->desc_count * 40, &b->push, b->push_size);
	r->sq_tail += bytes;
	__atomic_store_n(&r->hdr->submit_tail, r->sq_tail, __ATOMIC_RELEASE);
	if (take ? mdgpu_host_ring_take(r->handle) != 0 :
		   write(r->sev, &one, sizeof(one)) != sizeof(one))
		die("doorbell");
	for (;;) {
		uint32_t tail = __atomic_load_n(&r->hdr->complete_tail, __ATOMIC_ACQUIRE);

		while (r->cq_head != tail) {
			struct mdgpu_host_ring_record rec;

			memcpy(&rec, r->cq + (r->cq_head & (r->cq_size - 1)), sizeof(rec));
			r->cq_head += rec.size;
			__atomic_store_n(&r->hdr->complete_head, r->cq_head, __ATOMIC_RELEASE);
			if (rec.type == MDGPU_HOST_RING_DONE)
				return now_ns() - t0;
			if (rec.type == MDGPU_HOST_RING_FAILED ||
			    rec.type == MDGPU_HOST_RING_BROKEN) {
				fprintf(stderr, "mdgpu-submit-native: the ring failed a batch\n");
				exit(1);
			}
		}
		{
			struct pollfd p = { .fd = r->cev, .events = POLLIN };
			uint64_t v;

			poll(&p, 1, -1);
			if (read(r->cev, &v, sizeof(v)) < 0 && errno != EAGAIN)
				die("read");
		}
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const char *const kinds[] = { "fill", "dispatch", "barrier" };
	const char *selector = NULL, *kernel_dir = KERNEL_DIR;
	uint32_t iters = 1000, mem, kernel;
	struct ring ring;
	uint64_t *t;
	uint8_t *base;
	int fd;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-d") && i + 1 < argc) {
			selector = argv[++i];
		} else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			iters = (uint32_t)atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--kernels") && i + 1 < argc) {
			kernel_dir = argv[++i];
		} else {
			fprintf(stderr, "usage: %s [-d DEVICE] [-n ITERS] [--kernels DIR]\n",
				argv[0]);
			return 2;
		}
	}
	if (iters < 10)
		iters = 10;
	if (mdgpu_host_device_open(selector, 0, &dev))
		die("device_open");
	fd = memfd_create("mdgpu-submit-native", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, APERTURE))
		return perror("memfd"), 1;
	base = mmap(NULL, APERTURE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return perror("mmap"), 1;
	if (mdgpu_host_memory_import(dev, base, APERTURE, 0, &mem))
		die("memory_import");
	kernel = load_kernel(kernel_dir, "memcpy", 2, 4);
	ring_open(&ring, mem, kernel);
	t = calloc(iters, sizeof(*t));

	printf("%-8s %-9s %8s %12s %12s\n", "path", "batch", "n", "median us", "p99 us");
	for (int k = 0; k < 3; k++) {
		struct batch direct = make_batch(kinds[k], mem, kernel);
		struct batch by_id = make_batch(kinds[k], MEM_ID, KERNEL_ID);

		for (int path = 0; path < 3; path++) {
			static const char *const names[] = { "direct", "ring", "take" };

			/* Warm up, then time each submission alone. */
			for (uint32_t i = 0; i < 20; i++)
				path ? run_ring(&ring, &by_id, path == 2) : run_direct(&direct);
			for (uint32_t i = 0; i < iters; i++)
				t[i] = path ? run_ring(&ring, &by_id, path == 2) :
					      run_direct(&direct);
			qsort(t, iters, sizeof(*t), cmp_u64);
			printf("%-8s %-9s %8u %12.1f %12.1f\n", names[path], kinds[k], iters,
			       (double)t[iters / 2] / 1e3, (double)t[iters * 99 / 100] / 1e3);
			printf("MDGPU-SUBMIT-NATIVE path=%s kind=%s n=%u median_ns=%llu p99_ns=%llu\n",
			       names[path], kinds[k], iters, (unsigned long long)t[iters / 2],
			       (unsigned long long)t[iters * 99 / 100]);
		}
	}
	free(t);
	/* The ring owns the memory and kernel handles now. */
	if (mdgpu_host_ring_destroy(ring.handle) || mdgpu_host_device_destroy(dev))
		die("destroy");
	munmap(base, APERTURE);
	close(fd);
	return 0;
}
