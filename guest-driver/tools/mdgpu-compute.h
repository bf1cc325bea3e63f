/* SPDX-License-Identifier: MIT */
/*
 * The compute workloads mdgpu-run checks and mdgpu-compute-bench times: the SPIR-V kernels
 * (guest-driver/kernels/README.md), their inputs, and a device context with one queue, a fence
 * buffer and the kernels loaded. A header of static functions because each tool is built from
 * its own tools/<name>.c and libmdgpu (src/guest/build.ts).
 *
 * The inputs are small integers (and quarters), so every float result is exact whatever the
 * order of additions, and a result can be compared with a CPU reference bit for bit.
 */
#ifndef MDGPU_COMPUTE_H
#define MDGPU_COMPUTE_H

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mdgpu.h"

/* Slots in the fence buffer (one page). */
#define FENCE_AT 0 /* submission fences */
#define TS_BEGIN_AT 64 /* TIMESTAMP before the work */
#define TS_END_AT 72 /* and after */
#define FLAG_AT 128 /* mdgpu-run's irq-wait check: the flag a WAIT waits for */

enum { K_SAXPY, K_GEMM, K_REDUCE, K_MEMCPY, K_COUNT };

/* What each kernel binds and takes as push constants (its .comp). */
static const struct {
	const char *name;
	uint32_t bindings;
	uint32_t push_bytes;
} kernel_defs[K_COUNT] = {
	[K_SAXPY] = { "saxpy", 2, 8 },
	[K_GEMM] = { "gemm", 3, 12 },
	[K_REDUCE] = { "reduce", 2, 4 },
	[K_MEMCPY] = { "memcpy", 2, 4 },
};

/* A device context with a queue, a fence buffer and the kernels: what both tools run on. */
struct compute {
	const char *tool; /* for messages */
	struct mdgpu *dev;
	struct mdgpu_queue *q;
	struct mdgpu_buffer fence;
	uint64_t fence_value;
	struct mdgpu_submission sub;
	uint32_t kernel[K_COUNT];
	uint64_t timeout_ns;
};

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A mapped buffer of at least @size bytes; on failure a message and a negative errno. */
static inline int buffer(struct compute *c, uint64_t size, struct mdgpu_buffer *bo)
{
	int ret;

	ret = mdgpu_bo_create(c->dev, size ? size : 4, 0, 0, bo);
	if (ret) {
		fprintf(stderr, "%s: cannot allocate %" PRIu64 " bytes: %s (%s)\n", c->tool, size,
			mdgpu_strerror(ret), mdgpu_errname(ret));
		return ret;
	}
	ret = mdgpu_bo_map(c->dev, bo);
	if (ret) {
		fprintf(stderr, "%s: cannot map a buffer: %s\n", c->tool, mdgpu_strerror(ret));
		mdgpu_bo_destroy(c->dev, bo);
	}
	return ret;
}

static inline void buffer_free(struct compute *c, struct mdgpu_buffer *bo)
{
	if (!bo->handle)
		return;
	mdgpu_bo_unmap(bo);
	mdgpu_bo_destroy(c->dev, bo);
	bo->handle = 0;
}

/* Start a submission whose completion fence is the next value, with an interrupt. */
static inline void begin(struct compute *c)
{
	mdgpu_sub_begin(&c->sub, c->fence.handle, FENCE_AT, ++c->fence_value, MDGPU_CMD_FLAG_IRQ);
}

/* Publish the submission and wait for its fence; the wall time from publish to fence. */
static inline int submit_wait(struct compute *c, uint64_t *ns)
{
	uint64_t t0 = now_ns();
	int ret;

	ret = mdgpu_queue_submit(c->q, &c->sub);
	if (!ret)
		ret = mdgpu_fence_wait(c->dev, &c->fence, FENCE_AT, c->fence_value, c->timeout_ns);
	if (ns)
		*ns = now_ns() - t0;
	return ret;
}

/* TIMESTAMP end - begin, or 0 if the device did not write them. */
static inline uint64_t device_ns(struct compute *c)
{
	uint64_t b = mdgpu_fence_read(&c->fence, TS_BEGIN_AT);
	uint64_t e = mdgpu_fence_read(&c->fence, TS_END_AT);

	return e > b ? e - b : 0;
}

/* Workgroups for @n invocations of 64, as a 2D grid when x would pass 65535. */
static inline void grid64(uint64_t n, uint32_t *gx, uint32_t *gy)
{
	uint64_t total = (n + 63) / 64;

	*gx = total > 65535 ? 65535 : (uint32_t)(total ? total : 1);
	*gy = (uint32_t)((total + *gx - 1) / *gx);
	if (!*gy)
		*gy = 1;
}

/* reduce: partial sums of 64 elements each, at most 1024 workgroups (reduce.comp). */
static inline uint32_t reduce_groups(uint64_t n)
{
	uint64_t groups = (n + 63) / 64;

	return groups > 1024 ? 1024 : groups ? (uint32_t)groups : 1;
}

/* The inputs, element i. */
static inline float saxpy_x(uint64_t i)
{
	return (float)(i % 1024) * 0.25f;
}

static inline float saxpy_y(uint64_t i)
{
	return (float)(i % 777);
}

/* The saxpy factor: 2.5 * k/4 has few bits, and so has the sum with a small integer. */
#define SAXPY_A 2.5f

/* A (row-major M x K) and B (K x N) of gemm: integers in -3..3. */
static inline float gemm_a(uint64_t i)
{
	return (float)((int)((i * 7) % 5) - 2);
}

static inline float gemm_b(uint64_t i)
{
	return (float)((int)((i * 3) % 7) - 3);
}

static inline float reduce_in(uint64_t i)
{
	return (float)(i % 5);
}

/* memcpy and COPY sources. */
static inline uint32_t word_at(uint64_t i)
{
	return (uint32_t)(i * 2654435761u) ^ 0x5a5a5a5au;
}

/* The sum reduce must find: exact while it stays below 2^24, within 1e-6 beyond. */
static inline bool reduce_ok(double got, double ref)
{
	return ref < 16777216.0 ? got == ref : (got > ref ? got - ref : ref - got) <= ref * 1e-6;
}

/*
 * Open the device, check it can compute, load the kernels from @kdir and create a queue of
 * @ring bytes and the fence buffer; prints what it found. 0, or a negative errno after a
 * message on stderr (compute_close() still frees what was set up).
 */
static inline int compute_open(struct compute *c, const char *path, const char *kdir, uint64_t ring)
{
	struct mdgpu_compute_info ci;
	char file[512];
	unsigned int i;
	int ret;

	mdgpu_sub_init(&c->sub);
	ret = mdgpu_open(path, &c->dev);
	if (ret) {
		fprintf(stderr, "%s: cannot open %s: %s\n", c->tool, path, mdgpu_strerror(ret));
		return ret;
	}
	ret = mdgpu_get_compute_info(c->dev, &ci);
	if (ret || !ci.has_backend) {
		fprintf(stderr, "%s: %s has no compute backend (%s)\n", c->tool, path,
			ret ? mdgpu_strerror(ret) : "QUERY HAS_BACKEND is 0");
		return ret ? ret : -EOPNOTSUPP;
	}
	printf("device: %u queues, %u kernels, submissions up to %" PRIu64 " bytes, grace %" PRIu64
	       " us, %u MSI-X vectors\n",
	       ci.max_queues, ci.max_kernels, (uint64_t)ci.max_submission, (uint64_t)ci.grace_us,
	       ci.irq_vectors);
	for (i = 0; i < K_COUNT; i++) {
		snprintf(file, sizeof(file), "%s/%s.spv", kdir, kernel_defs[i].name);
		ret = mdgpu_kernel_load(c->dev, file, kernel_defs[i].bindings,
					kernel_defs[i].push_bytes, &c->kernel[i]);
		if (ret) {
			fprintf(stderr, "%s: kernel %s: %s (%s)\n", c->tool, file,
				mdgpu_strerror(ret), mdgpu_errname(ret));
			return ret;
		}
	}
	ret = mdgpu_queue_create(c->dev, ring, 0, &c->q);
	if (!ret)
		ret = buffer(c, 4096, &c->fence);
	if (ret) {
		fprintf(stderr, "%s: cannot set up the queue: %s\n", c->tool, mdgpu_strerror(ret));
		return ret;
	}
	printf("queue %u: ring of %" PRIu64 " bytes, kernels loaded from %s\n",
	       mdgpu_queue_id(c->q), ring, kdir);
	return 0;
}

/* Free everything compute_open() set up, in reverse. */
static inline void compute_close(struct compute *c)
{
	unsigned int i;

	buffer_free(c, &c->fence);
	mdgpu_queue_destroy(c->q);
	c->q = NULL;
	for (i = 0; i < K_COUNT; i++)
		if (c->kernel[i])
			mdgpu_kernel_destroy(c->dev, c->kernel[i]);
	mdgpu_sub_fini(&c->sub);
	mdgpu_close(c->dev);
	c->dev = NULL;
}

#endif /* MDGPU_COMPUTE_H */
