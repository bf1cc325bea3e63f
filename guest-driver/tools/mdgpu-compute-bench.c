// SPDX-License-Identifier: MIT
/*
 * mdgpu-compute-bench: one compute kernel over and over through an mdgpu queue, for the
 * benchmarks (npm run bench:compute compares it with the same kernel run natively on the host;
 * bench:multi-vm runs it in several guests at once).
 *
 * The kernel (saxpy, gemm, reduce or memcpy, with mdgpu-run's inputs: mdgpu-compute.h) runs on
 * the same buffers, each submission waited for before the next, until -n submissions or -T
 * seconds (default 10 s), whichever comes first. The first result is checked against the CPU
 * (gemm: 64 sampled elements); the rest measure the warm steady state, the way the native
 * benchmark does (one run, then the timed ones). Output (the line names are mdgpu-run's loop
 * mode's, which this was, so the benchmarks' parsers read both):
 *
 *   MDGPU-RUN-LOOP-START kernel=<k> size=<s>
 *   MDGPU-RUN-LOOP kernel=<k> size=<s> ok=1|0 n=<submissions> ns=<wall ns, whole loop>
 *                  dev_ns=<device ns, sum> median_ns=<n> p99_ns=<n> min_ns=<n> max_ns=<n>
 *                  dev_median_ns=<n>
 *
 * (median/p99/min/max: publish to fence, per submission, over the first 1M submissions.)
 * Exit status 0 when the loop ran and its first result was right.
 *
 * Phase markers (MDGPU_IOCTL_MARK): 0x400 + i when the loop of kernel i starts (saxpy 0, gemm 1,
 * reduce 2, memcpy 3), 0x4ff when it ends.
 *
 * Usage: mdgpu-compute-bench [-d /dev/mdgpuN] [-k kernel-dir] [-s saxpy-n] [-g gemm-dim]
 *                            [-r reduce-n] [-m memcpy-bytes] [-q ring-bytes] [-t timeout-s]
 *                            [-n count] [-T seconds] saxpy|gemm|reduce|memcpy
 *
 * The size options are mdgpu-run's, so one set of sizes serves both; only the kernel's is used.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mdgpu-compute.h"

#define MARK_LOOP 0x400
#define MARK_END 0x4ff

#define LOOP_MAX_SAMPLES (1u << 20)

/* What the loop submits for one kernel: its buffers, bindings and push constants. */
struct loop_work {
	struct mdgpu_buffer bo[3];
	struct mdgpu_binding bind[3];
	uint32_t push[3];
	uint32_t gx, gy; /* workgroups of the (first) dispatch */
	uint64_t n; /* elements: saxpy, reduce; words: memcpy; M = N = K: gemm */
	char size[32];
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Buffers with inputs written by the CPU, as mdgpu-run fills them. */
static int loop_setup(struct compute *c, int k, struct loop_work *w)
{
	uint64_t i, n = w->n, elems = n * n;
	float a = SAXPY_A;

	switch (k) {
	case K_SAXPY:
		snprintf(w->size, sizeof(w->size), "%" PRIu64, n);
		if (buffer(c, n * 4, &w->bo[0]) || buffer(c, n * 4, &w->bo[1]))
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
		if (buffer(c, elems * 4, &w->bo[0]) || buffer(c, elems * 4, &w->bo[1]) ||
		    buffer(c, elems * 4, &w->bo[2]))
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
		/* As mdgpu-run: G partial sums, then one workgroup over them. */
		w->gx = reduce_groups(n);
		w->gy = 1;
		if (buffer(c, n * 4, &w->bo[0]) || buffer(c, (uint64_t)w->gx * 4, &w->bo[1]) ||
		    buffer(c, 4, &w->bo[2]))
			return -1;
		for (i = 0; i < n; i++)
			((float *)w->bo[0].map)[i] = reduce_in(i);
		w->push[0] = (uint32_t)n;
		w->push[1] = w->gx;
		break;
	default: /* K_MEMCPY */
		snprintf(w->size, sizeof(w->size), "%" PRIu64, n * 4);
		if (buffer(c, n * 4, &w->bo[0]) || buffer(c, n * 4, &w->bo[1]))
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
static void loop_commands(struct compute *c, int k, struct loop_work *w)
{
	switch (k) {
	case K_SAXPY:
		mdgpu_sub_dispatch(&c->sub, c->kernel[k], w->gx, w->gy, 1, w->bind, 2, w->push, 8);
		break;
	case K_GEMM:
		mdgpu_sub_dispatch(&c->sub, c->kernel[k], w->gx, w->gy, 1, w->bind, 3, w->push, 12);
		break;
	case K_REDUCE:
		mdgpu_sub_dispatch(&c->sub, c->kernel[k], w->gx, 1, 1, w->bind, 2, &w->push[0], 4);
		mdgpu_sub_barrier(&c->sub);
		mdgpu_sub_dispatch(&c->sub, c->kernel[k], 1, 1, 1, &w->bind[1], 2, &w->push[1], 4);
		break;
	default:
		mdgpu_sub_dispatch(&c->sub, c->kernel[k], w->gx, w->gy, 1, w->bind, 2, w->push, 4);
		break;
	}
}

/* Wrong elements of the first result (gemm: of 64 sampled ones; reduce: 0 or 1). */
static uint64_t loop_check(int k, const struct loop_work *w)
{
	uint64_t i, bad = 0, n = w->n;
	double ref = 0;

	switch (k) {
	case K_SAXPY: /* saxpy accumulates into y: only the first result is known */
		for (i = 0; i < n; i++)
			bad += ((float *)w->bo[1].map)[i] != SAXPY_A * saxpy_x(i) + saxpy_y(i);
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
		bad = !reduce_ok(((float *)w->bo[2].map)[0], ref);
		break;
	default:
		for (i = 0; i < n; i++)
			bad += ((uint32_t *)w->bo[1].map)[i] != word_at(i);
		break;
	}
	return bad;
}

/*
 * One submission at a time until @max_n of them or @seconds passed, on the same buffers. The
 * first result is checked. True when the loop ran and that result was right.
 */
static bool run_loop(struct compute *c, int k, uint64_t n, uint64_t max_n, uint64_t seconds)
{
	struct loop_work w = { .n = n };
	uint64_t *lat = NULL, *dev = NULL, done = 0, dev_total = 0, t0, wall, deadline, i, bad = 0;
	uint64_t ns = 0, dev_ns,
		 samples = max_n && max_n < LOOP_MAX_SAMPLES ? max_n : LOOP_MAX_SAMPLES;
	bool ok = false;
	int ret = 0;

	if (loop_setup(c, k, &w))
		goto out;
	lat = malloc(samples * sizeof(*lat));
	dev = malloc(samples * sizeof(*dev));
	if (!lat || !dev)
		goto out;
	mdgpu_mark(c->dev, MARK_LOOP + k);
	printf("MDGPU-RUN-LOOP-START kernel=%s size=%s\n", kernel_defs[k].name, w.size);
	t0 = now_ns();
	deadline = seconds ? t0 + seconds * 1000000000ull : UINT64_MAX;
	while ((!max_n || done < max_n) && now_ns() < deadline) {
		begin(c);
		mdgpu_sub_timestamp(&c->sub, c->fence.handle, TS_BEGIN_AT);
		loop_commands(c, k, &w);
		mdgpu_sub_timestamp(&c->sub, c->fence.handle, TS_END_AT);
		ret = submit_wait(c, &ns);
		if (ret) {
			fprintf(stderr, "%s: loop submission %" PRIu64 ": %s (%s)\n", c->tool, done,
				mdgpu_strerror(ret), mdgpu_errname(ret));
			break;
		}
		dev_ns = device_ns(c);
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
	mdgpu_mark(c->dev, MARK_END);
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
	free(lat);
	free(dev);
	for (i = 0; i < 3; i++)
		buffer_free(c, &w.bo[i]);
	return ok;
}

int main(int argc, char **argv)
{
	uint64_t saxpy_n = 1u << 20, reduce_n = 1u << 20, copy_bytes = 4u << 20, ring = 64u << 10;
	uint64_t gemm_dim = 256, timeout_s = 60, v, loop_n = 0, loop_s = 0, n;
	const char *path = MDGPU_DEFAULT_PATH, *kdir = "/usr/share/mdgpu";
	struct compute c = { .tool = "mdgpu-compute-bench" };
	bool ok = false;
	int opt, k = -1, i;

	while ((opt = getopt(argc, argv, "d:k:s:g:r:m:q:t:n:T:")) != -1) {
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
	if (gemm_dim > 4096 || copy_bytes < 4 || optind != argc - 1)
		goto usage;
	for (i = 0; i < K_COUNT && k < 0; i++)
		if (!strcmp(argv[optind], kernel_defs[i].name))
			k = i;
	if (k < 0)
		goto usage;
	if (!loop_n && !loop_s)
		loop_s = 10;
	n = k == K_SAXPY  ? saxpy_n :
	    k == K_GEMM	  ? gemm_dim :
	    k == K_REDUCE ? reduce_n :
			    copy_bytes / 4;
	setvbuf(stdout, NULL, _IOLBF, 0);
	c.timeout_ns = timeout_s * 1000000000ull;

	if (!compute_open(&c, path, kdir, ring))
		ok = run_loop(&c, k, n, loop_n, loop_s);
	compute_close(&c);
	return ok ? 0 : 1;

usage:
	fprintf(stderr,
		"usage: %s [-d device] [-k kernel-dir] [-s saxpy-n] [-g gemm-dim] [-r reduce-n] [-m memcpy-bytes] [-q ring-bytes] [-t timeout-s] [-n count] [-T seconds] saxpy|gemm|reduce|memcpy\n",
		argv[0]);
	return 2;
}
