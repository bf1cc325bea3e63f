// SPDX-License-Identifier: MIT
/*
 * mdgpu-run: compute through an mdgpu queue, checked against the CPU.
 *
 * Loads the SPIR-V kernels (saxpy, gemm, reduce, memcpy: guest-driver/kernels/README.md) from
 * /usr/share/mdgpu (-k), runs each through one queue on buffers filled by the CPU, waits for the
 * submission's fence (spinning briefly, then sleeping in the driver, woken by the FENCE
 * interrupt) and compares every result with a reference computed here. The inputs are small
 * integers so the float results are exact whatever the order of additions. A COPY command is
 * checked the same way. Then two checks of the device's side of the contract:
 *
 *   hostile   submissions naming a freed buffer handle (COPY) and another context's buffer
 *             (DISPATCH binding) complete with an error fence (bit 63), WAIT_FENCE says -EIO,
 *             the control block says BAD_BUFFER at the offending command, and the next valid
 *             submission works
 *   irq-wait  a submission WAITs on a value a child process writes 100 ms after the parent
 *             is asleep in WAIT_FENCE; the parent is woken by the FENCE interrupt (the driver's
 *             interrupt and wakeup counters rise; as root, the driver's fallback poll is off
 *             meanwhile, so nothing else can end the wait)
 *
 * Output: a table, then one machine line per kernel and check and a summary:
 *
 *   MDGPU-RUN kernel=<k> size=<s> ok=1|0 ns=<wall ns, submit to fence> dev_ns=<device ns>
 *   MDGPU-RUN check=hostile|irq-wait ok=1|0 ...
 *   MDGPU-RUN-RESULT pass=<n> fail=<n>
 *
 * Phase markers (MDGPU_IOCTL_MARK, for the host's per-phase counts of trapped accesses):
 * 0x300 + i when kernel i starts (saxpy 0, gemm 1, reduce 2, memcpy 3, copy 4), 0x310 the
 * hostile check, 0x311 the irq-wait check, 0x3ff the end.
 *
 * Loop mode (-L saxpy|gemm|reduce|memcpy, for benchmarks): instead of all of the above, the one
 * kernel over and over on the same buffers (size from -s, -g, -r or -m), each submission waited
 * for before the next, until -n submissions or -T seconds (default 10 s), whichever comes first.
 * The first result is checked against the CPU (gemm: 64 sampled elements). Output:
 *
 *   MDGPU-RUN-LOOP-START kernel=<k> size=<s>
 *   MDGPU-RUN-LOOP kernel=<k> size=<s> ok=1|0 n=<submissions> ns=<wall ns, whole loop>
 *                  dev_ns=<device ns, sum> median_ns=<n> p99_ns=<n> min_ns=<n> max_ns=<n>
 *                  dev_median_ns=<n>
 *   MDGPU-RUN-RESULT pass=<n> fail=<n>
 *
 * (median/p99/min/max: publish to fence, per submission, over the first 1M submissions.)
 *
 * Usage: mdgpu-run [-d /dev/mdgpuN] [-k kernel-dir] [-s saxpy-n] [-g gemm-dim] [-r reduce-n]
 *                  [-m memcpy-bytes] [-q ring-bytes] [-t timeout-s]       (sizes take K, M, G)
 *                  [-L saxpy|gemm|reduce|memcpy [-n count] [-T seconds]] [-H]
 *
 * Hang mode (-H): instead of all of the above, one kernel that would run for hours (spin.spv);
 * the device must stop it at its time limit and lose this context:
 *
 *   MDGPU-RUN check=hang ok=1|0 wait=EIO fence=<error fence> error=CONTEXT_LOST turns=<n>
 *                        ns=<submit to error fence> after=EIO
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mdgpu.h"

#define MARK_KERNEL 0x300
#define MARK_HOSTILE 0x310
#define MARK_IRQ_WAIT 0x311
#define MARK_END 0x3ff

/* Slots in the fence buffer. */
#define FENCE_AT 0 /* submission fences */
#define TS_BEGIN_AT 64 /* TIMESTAMP before the work */
#define TS_END_AT 72 /* and after */
#define FLAG_AT 128 /* the irq-wait check's flag */
#define IRQ_WAIT_AFTER_NS 100000000ull /* the flag is set this long after the parent sleeps */

enum { K_SAXPY, K_GEMM, K_REDUCE, K_MEMCPY, K_COUNT };

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

struct row {
	const char *kernel;
	char size[32];
	bool ok;
	uint64_t ns;
	uint64_t dev_ns;
	uint64_t cpu_ns;
	char detail[96];
};

struct run {
	struct mdgpu *dev;
	struct mdgpu_queue *q;
	struct mdgpu_buffer fence;
	uint64_t fence_value;
	struct mdgpu_submission sub;
	uint32_t kernel[K_COUNT];
	uint64_t timeout_ns;
	unsigned int pass, fail;
	struct row rows[8];
	unsigned int nrows;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void result(struct run *r, bool ok)
{
	if (ok)
		r->pass++;
	else
		r->fail++;
}

/* A mapped buffer of at least @size bytes; on failure a message and a negative errno. */
static int buffer(struct run *r, uint64_t size, struct mdgpu_buffer *bo)
{
	int ret;

	ret = mdgpu_bo_create(r->dev, size ? size : 4, 0, 0, bo);
	if (ret) {
		fprintf(stderr, "mdgpu-run: cannot allocate %" PRIu64 " bytes: %s (%s)\n", size,
			mdgpu_strerror(ret), mdgpu_errname(ret));
		return ret;
	}
	ret = mdgpu_bo_map(r->dev, bo);
	if (ret) {
		fprintf(stderr, "mdgpu-run: cannot map a buffer: %s\n", mdgpu_strerror(ret));
		mdgpu_bo_destroy(r->dev, bo);
	}
	return ret;
}

static void buffer_free(struct run *r, struct mdgpu_buffer *bo)
{
	if (!bo->handle)
		return;
	mdgpu_bo_unmap(bo);
	mdgpu_bo_destroy(r->dev, bo);
	bo->handle = 0;
}

/* Start a submission whose completion fence is the next value, with an interrupt. */
static void begin(struct run *r)
{
	mdgpu_sub_begin(&r->sub, r->fence.handle, FENCE_AT, ++r->fence_value, MDGPU_CMD_FLAG_IRQ);
}

/* Publish the submission and wait for its fence; the wall time from publish to fence. */
static int submit_wait(struct run *r, uint64_t *ns)
{
	uint64_t t0 = now_ns();
	int ret;

	ret = mdgpu_queue_submit(r->q, &r->sub);
	if (!ret)
		ret = mdgpu_fence_wait(r->dev, &r->fence, FENCE_AT, r->fence_value, r->timeout_ns);
	if (ns)
		*ns = now_ns() - t0;
	return ret;
}

/* TIMESTAMP end - begin, or 0 if the device did not write them. */
static uint64_t device_ns(struct run *r)
{
	uint64_t b = mdgpu_fence_read(&r->fence, TS_BEGIN_AT);
	uint64_t e = mdgpu_fence_read(&r->fence, TS_END_AT);

	return e > b ? e - b : 0;
}

/* Workgroups for @n invocations of 64, as a 2D grid when x would pass 65535. */
static void grid64(uint64_t n, uint32_t *gx, uint32_t *gy)
{
	uint64_t total = (n + 63) / 64;

	*gx = total > 65535 ? 65535 : (uint32_t)(total ? total : 1);
	*gy = (uint32_t)((total + *gx - 1) / *gx);
	if (!*gy)
		*gy = 1;
}

static struct row *new_row(struct run *r, const char *kernel)
{
	struct row *row = &r->rows[r->nrows++];

	memset(row, 0, sizeof(*row));
	row->kernel = kernel;
	return row;
}

static void report_failure(struct run *r, struct row *row, const char *what, int ret)
{
	const volatile struct mdgpu_queue_control *ctl = mdgpu_queue_control(r->q);

	snprintf(row->detail, sizeof(row->detail), "%s: %s (%s), queue error %s at %u", what,
		 mdgpu_strerror(ret), mdgpu_errname(ret), mdgpu_submit_error_name(ctl->error_code),
		 ctl->error_at);
}

/*
 * The inputs, element i, the same in single runs and loop mode. Small integers (and quarters)
 * keep every float result exact whatever the order of additions.
 */
static inline float saxpy_x(uint64_t i)
{
	return (float)(i % 1024) * 0.25f;
}

static inline float saxpy_y(uint64_t i)
{
	return (float)(i % 777);
}

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

static void run_saxpy(struct run *r, uint64_t n)
{
	struct row *row = new_row(r, "saxpy");
	struct mdgpu_buffer x = { 0 }, y = { 0 };
	const float a = 2.5f;
	struct {
		uint32_t n;
		float a;
	} push = { (uint32_t)n, a };
	struct mdgpu_binding b[2];
	uint64_t i, bad = 0, t0;
	uint32_t gx, gy;
	float *ref, *out;
	int ret;

	snprintf(row->size, sizeof(row->size), "%" PRIu64, n);
	mdgpu_mark(r->dev, MARK_KERNEL + K_SAXPY);
	ref = malloc(n * sizeof(float));
	out = malloc(n * sizeof(float));
	if (!ref || !out || buffer(r, n * 4, &x) || buffer(r, n * 4, &y)) {
		snprintf(row->detail, sizeof(row->detail), "setup failed");
		goto out;
	}
	/* Exact in f32: 2.5 * k/4 has few bits, and so has the sum with a small integer. */
	for (i = 0; i < n; i++) {
		((float *)x.map)[i] = saxpy_x(i);
		((float *)y.map)[i] = saxpy_y(i);
	}
	t0 = now_ns();
	for (i = 0; i < n; i++)
		ref[i] = a * saxpy_x(i) + saxpy_y(i);
	row->cpu_ns = now_ns() - t0;

	b[0] = (struct mdgpu_binding){ .handle = x.handle, .size = n * 4 };
	b[1] = (struct mdgpu_binding){ .handle = y.handle, .size = n * 4 };
	grid64(n, &gx, &gy);
	begin(r);
	mdgpu_sub_timestamp(&r->sub, r->fence.handle, TS_BEGIN_AT);
	mdgpu_sub_dispatch(&r->sub, r->kernel[K_SAXPY], gx, gy, 1, b, 2, &push, sizeof(push));
	mdgpu_sub_timestamp(&r->sub, r->fence.handle, TS_END_AT);
	ret = submit_wait(r, &row->ns);
	if (ret) {
		report_failure(r, row, "submission", ret);
		goto out;
	}
	row->dev_ns = device_ns(r);
	memcpy(out, y.map, n * 4);
	for (i = 0; i < n; i++)
		bad += out[i] != ref[i];
	row->ok = !bad;
	if (bad)
		snprintf(row->detail, sizeof(row->detail), "%" PRIu64 " of %" PRIu64 " differ", bad,
			 n);
out:
	buffer_free(r, &x);
	buffer_free(r, &y);
	free(ref);
	free(out);
}

static void run_gemm(struct run *r, uint32_t dim)
{
	struct row *row = new_row(r, "gemm");
	struct mdgpu_buffer a = { 0 }, b = { 0 }, c = { 0 };
	const uint32_t m = dim, n = dim, k = dim;
	struct {
		uint32_t m, n, k;
	} push = { m, n, k };
	float *ha = NULL, *hb = NULL, *ref = NULL, *out = NULL;
	struct mdgpu_binding bind[3];
	uint64_t i, j, l, bad = 0, t0;
	int ret;

	snprintf(row->size, sizeof(row->size), "%ux%u", dim, dim);
	mdgpu_mark(r->dev, MARK_KERNEL + K_GEMM);
	ha = malloc((size_t)m * k * 4);
	hb = malloc((size_t)k * n * 4);
	ref = malloc((size_t)m * n * 4);
	out = malloc((size_t)m * n * 4);
	if (!ha || !hb || !ref || !out || buffer(r, (uint64_t)m * k * 4, &a) ||
	    buffer(r, (uint64_t)k * n * 4, &b) || buffer(r, (uint64_t)m * n * 4, &c)) {
		snprintf(row->detail, sizeof(row->detail), "setup failed");
		goto out;
	}
	/* Integers in -3..3: every partial sum is an integer far below 2^24, so exact. */
	for (i = 0; i < (uint64_t)m * k; i++)
		ha[i] = gemm_a(i);
	for (i = 0; i < (uint64_t)k * n; i++)
		hb[i] = gemm_b(i);
	memcpy(a.map, ha, (size_t)m * k * 4);
	memcpy(b.map, hb, (size_t)k * n * 4);
	t0 = now_ns();
	for (i = 0; i < m; i++) {
		for (j = 0; j < n; j++) {
			float acc = 0;

			for (l = 0; l < k; l++)
				acc += ha[i * k + l] * hb[l * n + j];
			ref[i * n + j] = acc;
		}
	}
	row->cpu_ns = now_ns() - t0;

	bind[0] = (struct mdgpu_binding){ .handle = a.handle, .size = (uint64_t)m * k * 4 };
	bind[1] = (struct mdgpu_binding){ .handle = b.handle, .size = (uint64_t)k * n * 4 };
	bind[2] = (struct mdgpu_binding){ .handle = c.handle, .size = (uint64_t)m * n * 4 };
	begin(r);
	mdgpu_sub_timestamp(&r->sub, r->fence.handle, TS_BEGIN_AT);
	mdgpu_sub_dispatch(&r->sub, r->kernel[K_GEMM], (n + 15) / 16, (m + 15) / 16, 1, bind, 3,
			   &push, sizeof(push));
	mdgpu_sub_timestamp(&r->sub, r->fence.handle, TS_END_AT);
	ret = submit_wait(r, &row->ns);
	if (ret) {
		report_failure(r, row, "submission", ret);
		goto out;
	}
	row->dev_ns = device_ns(r);
	memcpy(out, c.map, (size_t)m * n * 4);
	for (i = 0; i < (uint64_t)m * n; i++)
		bad += out[i] != ref[i];
	row->ok = !bad;
	if (bad)
		snprintf(row->detail, sizeof(row->detail), "%" PRIu64 " of %" PRIu64 " differ", bad,
			 (uint64_t)m * n);
out:
	buffer_free(r, &a);
	buffer_free(r, &b);
	buffer_free(r, &c);
	free(ha);
	free(hb);
	free(ref);
	free(out);
}

static void run_reduce(struct run *r, uint64_t n)
{
	struct row *row = new_row(r, "reduce");
	struct mdgpu_buffer in = { 0 }, part = { 0 }, res = { 0 };
	uint32_t groups = (uint32_t)((n + 63) / 64 > 1024 ? 1024 : (n + 63) / 64);
	uint32_t push1 = (uint32_t)n, push2 = groups;
	struct mdgpu_binding b1[2], b2[2];
	double ref = 0, got;
	uint64_t i, t0;
	int ret;

	snprintf(row->size, sizeof(row->size), "%" PRIu64, n);
	mdgpu_mark(r->dev, MARK_KERNEL + K_REDUCE);
	if (!groups)
		groups = push2 = 1;
	if (buffer(r, n * 4, &in) || buffer(r, (uint64_t)groups * 4, &part) || buffer(r, 4, &res)) {
		snprintf(row->detail, sizeof(row->detail), "setup failed");
		goto out;
	}
	for (i = 0; i < n; i++)
		((float *)in.map)[i] = reduce_in(i);
	t0 = now_ns();
	for (i = 0; i < n; i++)
		ref += (double)reduce_in(i);
	row->cpu_ns = now_ns() - t0;

	/* Pass 1: G partial sums; barrier; pass 2: one workgroup over them (reduce.comp). */
	b1[0] = (struct mdgpu_binding){ .handle = in.handle, .size = n * 4 };
	b1[1] = (struct mdgpu_binding){ .handle = part.handle, .size = (uint64_t)groups * 4 };
	b2[0] = b1[1];
	b2[1] = (struct mdgpu_binding){ .handle = res.handle, .size = 4 };
	begin(r);
	mdgpu_sub_timestamp(&r->sub, r->fence.handle, TS_BEGIN_AT);
	mdgpu_sub_dispatch(&r->sub, r->kernel[K_REDUCE], groups, 1, 1, b1, 2, &push1, 4);
	mdgpu_sub_barrier(&r->sub);
	mdgpu_sub_dispatch(&r->sub, r->kernel[K_REDUCE], 1, 1, 1, b2, 2, &push2, 4);
	mdgpu_sub_timestamp(&r->sub, r->fence.handle, TS_END_AT);
	ret = submit_wait(r, &row->ns);
	if (ret) {
		report_failure(r, row, "submission", ret);
		goto out;
	}
	row->dev_ns = device_ns(r);
	got = ((float *)res.map)[0];
	/* Exact while the sum stays below 2^24 (n up to ~8M here); a tolerance beyond. */
	row->ok = ref < 16777216.0 ? got == ref : (got > ref ? got - ref : ref - got) <= ref * 1e-6;
	snprintf(row->detail, sizeof(row->detail), "sum %.1f, expected %.1f", got, ref);
out:
	buffer_free(r, &in);
	buffer_free(r, &part);
	buffer_free(r, &res);
}

/* memcpy kernel (kernel_name "memcpy") or the COPY command ("copy"). */
static void run_copy(struct run *r, uint64_t bytes, bool kernel)
{
	struct row *row = new_row(r, kernel ? "memcpy" : "copy");
	struct mdgpu_buffer src = { 0 }, dst = { 0 };
	uint64_t words = bytes / 4, i, bad = 0;
	uint32_t push = (uint32_t)words, gx, gy, *out = NULL;
	struct mdgpu_binding b[2];
	int ret;

	snprintf(row->size, sizeof(row->size), "%" PRIu64, words * 4);
	mdgpu_mark(r->dev, MARK_KERNEL + (kernel ? K_MEMCPY : K_COUNT));
	out = malloc(words * 4);
	if (!out || buffer(r, words * 4, &src) || buffer(r, words * 4, &dst)) {
		snprintf(row->detail, sizeof(row->detail), "setup failed");
		goto out;
	}
	for (i = 0; i < words; i++)
		((uint32_t *)src.map)[i] = word_at(i);

	/*
	 * FILL first, so a result can only come from the copy that follows; in a submission of its
	 * own, so the time measured is the copy's alone (what the native benchmark times).
	 */
	begin(r);
	mdgpu_sub_fill(&r->sub, dst.handle, 0, words * 4, 0xdeadbeef);
	ret = submit_wait(r, NULL);
	if (ret) {
		report_failure(r, row, "fill", ret);
		goto out;
	}
	begin(r);
	mdgpu_sub_timestamp(&r->sub, r->fence.handle, TS_BEGIN_AT);
	if (kernel) {
		b[0] = (struct mdgpu_binding){ .handle = src.handle, .size = words * 4 };
		b[1] = (struct mdgpu_binding){ .handle = dst.handle, .size = words * 4 };
		grid64(words, &gx, &gy);
		mdgpu_sub_dispatch(&r->sub, r->kernel[K_MEMCPY], gx, gy, 1, b, 2, &push, 4);
	} else {
		mdgpu_sub_copy(&r->sub, src.handle, 0, dst.handle, 0, words * 4);
	}
	mdgpu_sub_timestamp(&r->sub, r->fence.handle, TS_END_AT);
	ret = submit_wait(r, &row->ns);
	if (ret) {
		report_failure(r, row, "submission", ret);
		goto out;
	}
	row->dev_ns = device_ns(r);
	memcpy(out, dst.map, words * 4);
	for (i = 0; i < words; i++)
		bad += out[i] != word_at(i);
	row->ok = !bad;
	if (bad)
		snprintf(row->detail, sizeof(row->detail),
			 "%" PRIu64 " of %" PRIu64 " words differ", bad, words);
out:
	buffer_free(r, &src);
	buffer_free(r, &dst);
	free(out);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#define LOOP_MAX_SAMPLES (1u << 20)

/* What loop mode submits for one kernel: its buffers, bindings and push constants. */
struct loop_work {
	struct mdgpu_buffer bo[3];
	struct mdgpu_binding bind[3];
	uint32_t push[3];
	uint32_t gx, gy; /* workgroups of the (first) dispatch */
	uint64_t n; /* elements: saxpy, reduce; words: memcpy; M = N = K: gemm */
	char size[32];
};

/* Buffers with inputs written by the CPU, as the single runs above fill them. */
static int loop_setup(struct run *r, int k, struct loop_work *w)
{
	uint64_t i, n = w->n, elems = n * n;
	float a = 2.5f;

	switch (k) {
	case K_SAXPY:
		snprintf(w->size, sizeof(w->size), "%" PRIu64, n);
		if (buffer(r, n * 4, &w->bo[0]) || buffer(r, n * 4, &w->bo[1]))
			return -1;
		for (i = 0; i < n; i++) {
			((float *)w->bo[0].map)[i] = saxpy_x(i);
			((float *)w->bo[1].map)[i] = saxpy_y(i);
		}
		w->push[0] = (uint32_t)n;
		memcpy(&w->push[1], &a, 4);
		grid64(n, &w->gx, &w->gy);
		break;
	case K_GEMM:
		snprintf(w->size, sizeof(w->size), "%" PRIu64 "x%" PRIu64, n, n);
		if (buffer(r, elems * 4, &w->bo[0]) || buffer(r, elems * 4, &w->bo[1]) ||
		    buffer(r, elems * 4, &w->bo[2]))
			return -1;
		for (i = 0; i < elems; i++) {
			((float *)w->bo[0].map)[i] = gemm_a(i);
			((float *)w->bo[1].map)[i] = gemm_b(i);
		}
		w->push[0] = w->push[1] = w->push[2] = (uint32_t)n;
		w->gx = w->gy = (uint32_t)((n + 15) / 16);
		break;
	case K_REDUCE:
		snprintf(w->size, sizeof(w->size), "%" PRIu64, n);
		/* As run_reduce: G partial sums, then one workgroup over them. */
		w->gx = (uint32_t)((n + 63) / 64 > 1024 ? 1024 : (n + 63) / 64);
		w->gy = 1;
		if (buffer(r, n * 4, &w->bo[0]) || buffer(r, (uint64_t)w->gx * 4, &w->bo[1]) ||
		    buffer(r, 4, &w->bo[2]))
			return -1;
		for (i = 0; i < n; i++)
			((float *)w->bo[0].map)[i] = reduce_in(i);
		w->push[0] = (uint32_t)n;
		w->push[1] = w->gx;
		break;
	default: /* K_MEMCPY */
		snprintf(w->size, sizeof(w->size), "%" PRIu64, n * 4);
		if (buffer(r, n * 4, &w->bo[0]) || buffer(r, n * 4, &w->bo[1]))
			return -1;
		for (i = 0; i < n; i++)
			((uint32_t *)w->bo[0].map)[i] = word_at(i);
		w->push[0] = (uint32_t)n;
		grid64(n, &w->gx, &w->gy);
		break;
	}
	for (i = 0; i < 3; i++)
		w->bind[i] =
			(struct mdgpu_binding){ .handle = w->bo[i].handle, .size = w->bo[i].size };
	return 0;
}

/* The kernel's commands between the two TIMESTAMPs. */
static void loop_commands(struct run *r, int k, struct loop_work *w)
{
	switch (k) {
	case K_SAXPY:
		mdgpu_sub_dispatch(&r->sub, r->kernel[k], w->gx, w->gy, 1, w->bind, 2, w->push, 8);
		break;
	case K_GEMM:
		mdgpu_sub_dispatch(&r->sub, r->kernel[k], w->gx, w->gy, 1, w->bind, 3, w->push, 12);
		break;
	case K_REDUCE:
		mdgpu_sub_dispatch(&r->sub, r->kernel[k], w->gx, 1, 1, w->bind, 2, &w->push[0], 4);
		mdgpu_sub_barrier(&r->sub);
		mdgpu_sub_dispatch(&r->sub, r->kernel[k], 1, 1, 1, &w->bind[1], 2, &w->push[1], 4);
		break;
	default:
		mdgpu_sub_dispatch(&r->sub, r->kernel[k], w->gx, w->gy, 1, w->bind, 2, w->push, 4);
		break;
	}
}

/* Wrong elements of the first result (gemm: of 64 sampled ones; reduce: 0 or 1). */
static uint64_t loop_check(int k, const struct loop_work *w)
{
	uint64_t i, bad = 0, n = w->n;
	double ref = 0, got;

	switch (k) {
	case K_SAXPY: /* saxpy accumulates into y: only the first result is known */
		for (i = 0; i < n; i++)
			bad += ((float *)w->bo[1].map)[i] != 2.5f * saxpy_x(i) + saxpy_y(i);
		break;
	case K_GEMM:
		for (i = 0; i < 64; i++) {
			uint64_t row = (i * 37) % n, col = (i * 101) % n, l;
			float acc = 0;

			for (l = 0; l < n; l++)
				acc += gemm_a(row * n + l) * gemm_b(l * n + col);
			bad += ((float *)w->bo[2].map)[row * n + col] != acc;
		}
		break;
	case K_REDUCE:
		for (i = 0; i < n; i++)
			ref += (double)reduce_in(i);
		got = ((float *)w->bo[2].map)[0];
		bad = ref < 16777216.0 ? got != ref :
					 (got > ref ? got - ref : ref - got) > ref * 1e-6;
		break;
	default:
		for (i = 0; i < n; i++)
			bad += ((uint32_t *)w->bo[1].map)[i] != word_at(i);
		break;
	}
	return bad;
}

/*
 * Loop mode: -L kernel, one submission at a time until @max_n of them or @seconds passed, on
 * the same buffers. The first result is checked; the rest measure the warm steady state, the
 * way the native benchmark does (one run, then the timed ones).
 */
static void run_loop(struct run *r, int k, uint64_t n, uint64_t max_n, uint64_t seconds)
{
	struct loop_work w = { .n = n };
	uint64_t *lat = NULL, *dev = NULL, done = 0, dev_total = 0, t0, wall, deadline, i, bad = 0;
	uint64_t ns = 0, dev_ns,
		 samples = max_n && max_n < LOOP_MAX_SAMPLES ? max_n : LOOP_MAX_SAMPLES;
	bool ok = false;
	int ret = 0;

	if (loop_setup(r, k, &w))
		goto out;
	lat = malloc(samples * sizeof(*lat));
	dev = malloc(samples * sizeof(*dev));
	if (!lat || !dev)
		goto out;
	mdgpu_mark(r->dev, MARK_KERNEL + k);
	printf("MDGPU-RUN-LOOP-START kernel=%s size=%s\n", kernel_defs[k].name, w.size);
	t0 = now_ns();
	deadline = seconds ? t0 + seconds * 1000000000ull : UINT64_MAX;
	while ((!max_n || done < max_n) && now_ns() < deadline) {
		begin(r);
		mdgpu_sub_timestamp(&r->sub, r->fence.handle, TS_BEGIN_AT);
		loop_commands(r, k, &w);
		mdgpu_sub_timestamp(&r->sub, r->fence.handle, TS_END_AT);
		ret = submit_wait(r, &ns);
		if (ret) {
			fprintf(stderr, "mdgpu-run: loop submission %" PRIu64 ": %s (%s)\n", done,
				mdgpu_strerror(ret), mdgpu_errname(ret));
			break;
		}
		dev_ns = device_ns(r);
		if (done < LOOP_MAX_SAMPLES) {
			lat[done] = ns;
			dev[done] = dev_ns;
		}
		done++;
		dev_total += dev_ns;
		if (done == 1)
			bad = loop_check(k, &w);
	}
	wall = now_ns() - t0;
	mdgpu_mark(r->dev, MARK_END);
	ok = !ret && done > 0 && !bad;
	{
		uint64_t s = done < LOOP_MAX_SAMPLES ? done : LOOP_MAX_SAMPLES;

		if (s) {
			qsort(lat, s, sizeof(*lat), cmp_u64);
			qsort(dev, s, sizeof(*dev), cmp_u64);
		}
		printf("MDGPU-RUN-LOOP kernel=%s size=%s ok=%d n=%" PRIu64 " ns=%" PRIu64
		       " dev_ns=%" PRIu64 " median_ns=%" PRIu64 " p99_ns=%" PRIu64
		       " min_ns=%" PRIu64 " max_ns=%" PRIu64 " dev_median_ns=%" PRIu64 "%s\n",
		       kernel_defs[k].name, w.size, ok, done, wall, dev_total, s ? lat[s / 2] : 0,
		       s ? lat[(s * 99) / 100] : 0, s ? lat[0] : 0, s ? lat[s - 1] : 0,
		       s ? dev[s / 2] : 0, bad ? " wrong-result" : "");
	}
out:
	result(r, ok);
	free(lat);
	free(dev);
	for (i = 0; i < 3; i++)
		buffer_free(r, &w.bo[i]);
}

/*
 * A submission that must fail with BAD_BUFFER at byte 32 (its first command): error fence,
 * -EIO from the wait, the error record in the control block. Returns a description in @what.
 */
static bool expect_bad_buffer(struct run *r, const char *name, char *what, size_t len)
{
	const volatile struct mdgpu_queue_control *ctl = mdgpu_queue_control(r->q);
	uint64_t errors = ctl->errors, fence;
	uint32_t code, at;
	int ret;

	ret = submit_wait(r, NULL);
	fence = mdgpu_fence_read(&r->fence, FENCE_AT);
	code = ctl->error_code;
	at = ctl->error_at;
	snprintf(what, len, "%s_wait=%s %s_fence=0x%" PRIx64 " %s_error=%s %s_at=%u", name,
		 mdgpu_errname(ret), name, fence, name, mdgpu_submit_error_name(code), name, at);
	return ret == -EIO && fence == (r->fence_value | MDGPU_FENCE_ERROR) &&
	       ctl->error_fence == fence && code == MDGPU_SUBMIT_BAD_BUFFER &&
	       at == MDGPU_CMD_SUBMIT_SIZE && ctl->errors == errors + 1;
}

static void check_hostile(struct run *r, const char *path)
{
	struct mdgpu_buffer valid = { 0 }, freed = { 0 }, theirs = { 0 };
	char freed_what[160] = "", other_what[160] = "";
	bool ok_freed = false, ok_other = false, ok_after = false;
	struct mdgpu *other = NULL;
	struct mdgpu_binding b[2];
	uint32_t freed_handle, push = 1024, i;
	int ret;

	mdgpu_mark(r->dev, MARK_HOSTILE);
	if (buffer(r, 4096, &valid))
		goto out;

	/* A handle this file had, freed: the device must not find it. */
	if (mdgpu_bo_create(r->dev, 4096, 0, 0, &freed))
		goto out;
	freed_handle = freed.handle;
	if (mdgpu_bo_destroy(r->dev, &freed))
		goto out;
	begin(r);
	mdgpu_sub_copy(&r->sub, valid.handle, 0, freed_handle, 0, 4096);
	ok_freed = expect_bad_buffer(r, "freed", freed_what, sizeof(freed_what));

	/* A live buffer of another context (another open file), as a DISPATCH binding. */
	ret = mdgpu_open(path, &other);
	if (!ret)
		ret = mdgpu_bo_create(other, 4096, 0, 0, &theirs);
	if (ret) {
		snprintf(other_what, sizeof(other_what), "other_setup=%s", mdgpu_errname(ret));
	} else {
		b[0] = (struct mdgpu_binding){ .handle = theirs.handle, .size = 4096 };
		b[1] = (struct mdgpu_binding){ .handle = valid.handle, .size = 4096 };
		begin(r);
		mdgpu_sub_dispatch(&r->sub, r->kernel[K_MEMCPY], 16, 1, 1, b, 2, &push, 4);
		ok_other = expect_bad_buffer(r, "other", other_what, sizeof(other_what));
	}

	/* The queue goes on: a valid submission right after works. */
	begin(r);
	mdgpu_sub_fill(&r->sub, valid.handle, 0, 4096, 0x600dcafe);
	ret = submit_wait(r, NULL);
	ok_after = !ret;
	for (i = 0; ok_after && i < 1024; i++)
		ok_after = ((volatile uint32_t *)valid.map)[i] == 0x600dcafe;
out:
	result(r, ok_freed && ok_other && ok_after);
	printf("MDGPU-RUN check=hostile ok=%d %s %s after=%s errors=%" PRIu64 "\n",
	       ok_freed && ok_other && ok_after, freed_what, other_what, ok_after ? "ok" : "FAIL",
	       (uint64_t)mdgpu_queue_control(r->q)->errors);
	if (theirs.handle)
		mdgpu_bo_destroy(other, &theirs);
	mdgpu_close(other);
	buffer_free(r, &valid);
}

/*
 * The driver's fallback poll (module parameter fence_poll_ms) also ends fence waits, and a
 * poll that lands between the device's fence write and its interrupt ends the wait before the
 * interrupt is counted. The irq-wait check turns the poll off while it runs (root only; the old
 * value is put back) so that the interrupt is the only thing that can end its wait early.
 */
#define FENCE_POLL_PARAM "/sys/module/mdgpu/parameters/fence_poll_ms"

/* Read the poll setting into @old and set it to @value; false if that is not allowed here. */
static bool fence_poll_set(const char *value, char *old, size_t old_size)
{
	FILE *f = fopen(FENCE_POLL_PARAM, "r+");
	bool ok;

	if (!f)
		return false;
	ok = !old || (fgets(old, (int)old_size, f) != NULL && fseek(f, 0, SEEK_SET) == 0);
	ok = ok && fputs(value, f) >= 0;
	ok = (fclose(f) == 0) && ok;
	return ok;
}

static void check_irq_wait(struct run *r)
{
	struct mdgpu_compute_info c0, c1, cc;
	struct mdgpu_info i0, i1;
	uint64_t seen = 0, t0, slept;
	char poll_old[32] = "";
	bool ok, poll_off;
	pid_t child;
	int ret, status, i;

	mdgpu_mark(r->dev, MARK_IRQ_WAIT);
	((volatile uint64_t *)r->fence.map)[FLAG_AT / 8] = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (mdgpu_get_info(r->dev, &i0) || mdgpu_get_compute_info(r->dev, &c0)) {
		printf("MDGPU-RUN check=irq-wait ok=0 info failed\n");
		result(r, false);
		return;
	}
	poll_off = fence_poll_set("0", poll_old, sizeof(poll_old));
	/* The device holds the submission until the flag is set: the fence cannot be early. */
	begin(r);
	mdgpu_sub_wait(&r->sub, r->fence.handle, FLAG_AT, 1, 10000000000ull);
	ret = mdgpu_queue_submit(r->q, &r->sub);
	child = ret ? -1 : fork();
	if (child == 0) {
		/*
		 * Set the flag only once the parent is asleep in WAIT_FENCE (the driver counts the
		 * sleep first), and IRQ_WAIT_AFTER_NS after that: however late the parent is
		 * scheduled, the fence cannot be done before it sleeps.
		 */
		for (i = 0; i < 10000; i++) {
			if (!mdgpu_get_compute_info(r->dev, &cc) &&
			    cc.fence_sleeps > c0.fence_sleeps)
				break;
			usleep(1000);
		}
		usleep(IRQ_WAIT_AFTER_NS / 1000);
		((volatile uint64_t *)r->fence.map)[FLAG_AT / 8] = 1;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		_exit(0);
	}
	t0 = now_ns();
	if (child > 0)
		ret = mdgpu_fence_wait_kernel(r->dev, r->fence.handle, FENCE_AT, r->fence_value,
					      r->timeout_ns, &seen);
	slept = now_ns() - t0;
	if (child > 0)
		waitpid(child, &status, 0);
	if (poll_off)
		fence_poll_set(poll_old, NULL, 0);
	if (mdgpu_get_info(r->dev, &i1) || mdgpu_get_compute_info(r->dev, &c1))
		ret = ret ? ret : -EIO;
	/* With the poll on (not root), a wakeup by the poll is not the interrupt's fault. */
	ok = !ret && child > 0 && i1.irq_count > i0.irq_count && c1.irq_fence > c0.irq_fence &&
	     c1.fence_sleeps > c0.fence_sleeps &&
	     (!poll_off || c1.fence_irq_wakeups > c0.fence_irq_wakeups) &&
	     slept >= IRQ_WAIT_AFTER_NS;
	result(r, ok);
	printf("MDGPU-RUN check=irq-wait ok=%d wait=%s slept_ns=%" PRIu64 " irqs=%" PRIu64
	       " fence_irqs=%" PRIu64 " sleeps=%" PRIu64 " irq_wakeups=%" PRIu64 " poll=%s\n",
	       ok, mdgpu_errname(ret), slept, (uint64_t)(i1.irq_count - i0.irq_count),
	       (uint64_t)(c1.irq_fence - c0.irq_fence),
	       (uint64_t)(c1.fence_sleeps - c0.fence_sleeps),
	       (uint64_t)(c1.fence_irq_wakeups - c0.fence_irq_wakeups), poll_off ? "off" : "on");
}

/*
 * Hang mode (-H): what a faulty or hostile program does to a shared device, a kernel that would
 * run for hours (spin.spv on 4096 x 4096 workgroups). The device must stop it at its time
 * limit: the wait says -EIO, the fence has the error bit, the control block says CONTEXT_LOST,
 * and this context is lost for good (the next submission fails too).
 */
static void run_hang(struct run *r, const char *kdir)
{
	const volatile struct mdgpu_queue_control *ctl = mdgpu_queue_control(r->q);
	struct mdgpu_buffer flag = { 0 };
	struct mdgpu_binding b;
	uint32_t kernel = 0, want = 1, code = 0;
	uint64_t ns = 0, fence = 0, expected = 0;
	char file[512];
	int ret, after = 0;
	bool ok = false;

	snprintf(file, sizeof(file), "%s/spin.spv", kdir);
	ret = mdgpu_kernel_load(r->dev, file, 1, 4, &kernel);
	if (!ret)
		ret = buffer(r, 4096, &flag);
	if (ret) {
		printf("MDGPU-RUN check=hang ok=0 setup=%s\n", mdgpu_errname(ret));
		goto out;
	}
	b = (struct mdgpu_binding){ .handle = flag.handle, .size = 4096 };
	begin(r);
	expected = r->fence_value | MDGPU_FENCE_ERROR;
	mdgpu_sub_dispatch(&r->sub, kernel, 4096, 4096, 1, &b, 1, &want, sizeof(want));
	ret = submit_wait(r, &ns);
	fence = mdgpu_fence_read(&r->fence, FENCE_AT);
	code = ctl->error_code;
	begin(r);
	mdgpu_sub_barrier(&r->sub);
	after = submit_wait(r, NULL);
	ok = ret == -EIO && fence == expected && code == MDGPU_SUBMIT_CONTEXT_LOST &&
	     after == -EIO && ((volatile uint32_t *)flag.map)[1] > 0;
	printf("MDGPU-RUN check=hang ok=%d wait=%s fence=0x%" PRIx64
	       " error=%s turns=%u ns=%" PRIu64 " after=%s\n",
	       ok, mdgpu_errname(ret), fence, mdgpu_submit_error_name(code),
	       ((volatile uint32_t *)flag.map)[1], ns, mdgpu_errname(after));
out:
	result(r, ok);
	buffer_free(r, &flag);
	if (kernel)
		mdgpu_kernel_destroy(r->dev, kernel);
}

int main(int argc, char **argv)
{
	uint64_t saxpy_n = 1u << 20, reduce_n = 1u << 20, copy_bytes = 4u << 20, ring = 64u << 10;
	uint64_t gemm_dim = 256, timeout_s = 60, v, loop_n = 0, loop_s = 0;
	const char *path = MDGPU_DEFAULT_PATH, *kdir = "/usr/share/mdgpu", *loop = NULL;
	bool hang = false;
	int loop_k = -1;
	struct mdgpu_compute_info ci;
	struct mdgpu_queue_stats qs;
	struct run r = { 0 };
	char file[512];
	unsigned int i;
	int opt, ret;

	while ((opt = getopt(argc, argv, "d:k:s:g:r:m:q:t:L:n:T:H")) != -1) {
		uint64_t *dst = NULL;

		switch (opt) {
		case 'd':
			path = optarg;
			continue;
		case 'k':
			kdir = optarg;
			continue;
		case 's':
			dst = &saxpy_n;
			break;
		case 'g':
			dst = &gemm_dim;
			break;
		case 'r':
			dst = &reduce_n;
			break;
		case 'm':
			dst = &copy_bytes;
			break;
		case 'q':
			dst = &ring;
			break;
		case 't':
			dst = &timeout_s;
			break;
		case 'L':
			loop = optarg;
			continue;
		case 'H':
			hang = true;
			continue;
		case 'n':
			dst = &loop_n;
			break;
		case 'T':
			dst = &loop_s;
			break;
		default:
			goto usage;
		}
		if (mdgpu_parse_size(optarg, &v) || !v || v > (1ull << 30))
			goto usage;
		*dst = v;
	}
	if (gemm_dim > 4096 || copy_bytes < 4)
		goto usage;
	if (loop) {
		for (i = 0; i < K_COUNT && loop_k < 0; i++)
			if (!strcmp(loop, kernel_defs[i].name))
				loop_k = (int)i;
		if (loop_k < 0)
			goto usage;
		if (!loop_n && !loop_s)
			loop_s = 10;
	} else if (loop_n || loop_s) {
		goto usage;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	r.timeout_ns = timeout_s * 1000000000ull;
	mdgpu_sub_init(&r.sub);

	ret = mdgpu_open(path, &r.dev);
	if (ret) {
		fprintf(stderr, "mdgpu-run: cannot open %s: %s\n", path, mdgpu_strerror(ret));
		return 1;
	}
	ret = mdgpu_get_compute_info(r.dev, &ci);
	if (ret || !ci.has_backend) {
		fprintf(stderr, "mdgpu-run: %s has no compute backend (%s)\n", path,
			ret ? mdgpu_strerror(ret) : "QUERY HAS_BACKEND is 0");
		printf("MDGPU-RUN-RESULT pass=0 fail=1\n");
		goto out_close;
	}
	printf("device: %u queues, %u kernels, submissions up to %" PRIu64 " bytes, grace %" PRIu64
	       " us, %u MSI-X vectors\n",
	       ci.max_queues, ci.max_kernels, (uint64_t)ci.max_submission, (uint64_t)ci.grace_us,
	       ci.irq_vectors);

	for (i = 0; i < K_COUNT; i++) {
		snprintf(file, sizeof(file), "%s/%s.spv", kdir, kernel_defs[i].name);
		ret = mdgpu_kernel_load(r.dev, file, kernel_defs[i].bindings,
					kernel_defs[i].push_bytes, &r.kernel[i]);
		if (ret) {
			fprintf(stderr, "mdgpu-run: kernel %s: %s (%s)\n", file,
				mdgpu_strerror(ret), mdgpu_errname(ret));
			printf("MDGPU-RUN-RESULT pass=0 fail=1\n");
			goto out_kernels;
		}
	}
	ret = mdgpu_queue_create(r.dev, ring, 0, &r.q);
	if (!ret)
		ret = buffer(&r, 4096, &r.fence);
	if (ret) {
		fprintf(stderr, "mdgpu-run: cannot set up the queue: %s\n", mdgpu_strerror(ret));
		printf("MDGPU-RUN-RESULT pass=0 fail=1\n");
		goto out_queue;
	}
	printf("queue %u: ring of %" PRIu64 " bytes, kernels loaded from %s\n", mdgpu_queue_id(r.q),
	       ring, kdir);

	if (hang) {
		run_hang(&r, kdir);
		printf("MDGPU-RUN-RESULT pass=%u fail=%u\n", r.pass, r.fail);
		goto out_queue;
	}
	if (loop_k >= 0) {
		run_loop(&r, loop_k,
			 loop_k == K_SAXPY  ? saxpy_n :
			 loop_k == K_GEMM   ? gemm_dim :
			 loop_k == K_REDUCE ? reduce_n :
					      copy_bytes / 4,
			 loop_n, loop_s);
		printf("MDGPU-RUN-RESULT pass=%u fail=%u\n", r.pass, r.fail);
		goto out_queue;
	}

	run_saxpy(&r, saxpy_n);
	run_gemm(&r, (uint32_t)gemm_dim);
	run_reduce(&r, reduce_n);
	run_copy(&r, copy_bytes, true);
	run_copy(&r, copy_bytes, false);

	printf("\n%-8s %12s %4s %12s %12s %12s  %s\n", "kernel", "size", "ok", "wall ms",
	       "device ms", "cpu ref ms", "");
	for (i = 0; i < r.nrows; i++) {
		struct row *row = &r.rows[i];

		result(&r, row->ok);
		printf("%-8s %12s %4s %12.3f %12.3f %12.3f  %s\n", row->kernel, row->size,
		       row->ok ? "yes" : "NO", row->ns / 1e6, row->dev_ns / 1e6, row->cpu_ns / 1e6,
		       row->detail);
	}
	printf("\n");
	for (i = 0; i < r.nrows; i++)
		printf("MDGPU-RUN kernel=%s size=%s ok=%d ns=%" PRIu64 " dev_ns=%" PRIu64 "\n",
		       r.rows[i].kernel, r.rows[i].size, r.rows[i].ok, r.rows[i].ns,
		       r.rows[i].dev_ns);

	check_hostile(&r, path);
	check_irq_wait(&r);
	mdgpu_mark(r.dev, MARK_END);

	mdgpu_queue_get_stats(r.q, &qs);
	printf("queue: %" PRIu64 " submissions, %" PRIu64 " bytes, %" PRIu64 " doorbells, %" PRIu64
	       " waits for ring space; device: %" PRIu64 " completed, %" PRIu64 " failed\n",
	       qs.submissions, qs.bytes, qs.doorbells, qs.space_waits,
	       (uint64_t)mdgpu_queue_control(r.q)->completed,
	       (uint64_t)mdgpu_queue_control(r.q)->errors);
	printf("MDGPU-RUN-RESULT pass=%u fail=%u\n", r.pass, r.fail);

out_queue:
	buffer_free(&r, &r.fence);
	mdgpu_queue_destroy(r.q);
out_kernels:
	for (i = 0; i < K_COUNT; i++)
		if (r.kernel[i])
			mdgpu_kernel_destroy(r.dev, r.kernel[i]);
out_close:
	mdgpu_sub_fini(&r.sub);
	mdgpu_close(r.dev);
	return r.fail || !r.pass ? 1 : 0;

usage:
	fprintf(stderr,
		"usage: %s [-d device] [-k kernel-dir] [-s saxpy-n] [-g gemm-dim] [-r reduce-n] [-m memcpy-bytes] [-q ring-bytes] [-t timeout-s] [-L saxpy|gemm|reduce|memcpy [-n count] [-T seconds]] [-H]\n",
		argv[0]);
	return 2;
}
