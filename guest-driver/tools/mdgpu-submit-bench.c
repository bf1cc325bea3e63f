// SPDX-License-Identifier: MIT
/*
 * mdgpu-submit-bench: what a tiny submission costs, with a doorbell every time versus the
 * notification protocol (a doorbell only when the device asked for one).
 *
 * Every submission is a SUBMIT with nothing but its completion fence (the next value of a
 * counter in a fence buffer): all that is measured is the path guest -> ring -> device ->
 * fence -> guest.
 *
 *   latency     -n submissions one at a time: publish, then spin on the mapped fence until it
 *               shows the value (falling back to sleeping in WAIT_FENCE after 1 s); median and
 *               99th percentile of publish-to-visible
 *   throughput  -m submissions back to back (waiting only for ring space), then the last
 *               fence; the total time
 *
 * each in mode "doorbell" (MDGPU_QUEUE_FORCE_DOORBELL: one trapped write per submission) and
 * mode "notify". Around each phase it writes phase markers (MDGPU_IOCTL_MARK) so the host can
 * count the trapped accesses of each phase: 0x200 + 2 * phase when a phase starts, 0x201 +
 * 2 * phase when it ends, phases 0 latency/doorbell, 1 latency/notify, 2 throughput/doorbell,
 * 3 throughput/notify; 0x2ff at the very end. Before each phase the queue is left idle for
 * longer than the device's grace period, so every phase starts with the device asleep.
 *
 * Output: a table and one machine line per phase:
 *
 *   MDGPU-SUBMIT mode=<doorbell|notify> test=latency n=<n> ns=<median> p99_ns=<n>
 *                min_ns=<n> doorbells=<n> mark=<0x...>
 *   MDGPU-SUBMIT mode=<doorbell|notify> test=throughput n=<n> ns=<total> per_ns=<n>
 *                doorbells=<n> space_waits=<n> mark=<0x...>
 *   MDGPU-SUBMIT-RESULT ok=1|0
 *
 * Usage: mdgpu-submit-bench [-d /dev/mdgpuN] [-n latency-n] [-m throughput-n] [-q ring-bytes]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mdgpu.h"

#define MARK_BASE 0x200
#define MARK_END 0x2ff

enum { T_LATENCY, T_THROUGHPUT };

struct phase {
	const char *mode;
	const char *test;
	uint64_t n;
	uint64_t ns; /* median (latency) or total (throughput) */
	uint64_t p99_ns;
	uint64_t min_ns;
	uint64_t total_ns;
	uint64_t doorbells;
	uint64_t space_waits;
	uint32_t mark;
	bool ok;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct bench {
	struct mdgpu *dev;
	struct mdgpu_queue *q;
	struct mdgpu_buffer fence;
	uint64_t value;
	struct mdgpu_submission sub;
	uint64_t grace_ns;
};

/* Publish one fence-only submission for the next value. */
static int submit_one(struct bench *b)
{
	mdgpu_sub_begin(&b->sub, b->fence.handle, 0, ++b->value, 0);
	return mdgpu_queue_submit(b->q, &b->sub);
}

/* Spin until the fence shows @value; after 1 s sleep in the driver instead. */
static int spin_fence(struct bench *b, uint64_t value)
{
	uint64_t t0 = now_ns(), v;

	for (;;) {
		v = mdgpu_fence_read(&b->fence, 0);
		if ((v & ~MDGPU_FENCE_ERROR) >= value)
			return v & MDGPU_FENCE_ERROR ? -EIO : 0;
		if (now_ns() - t0 > 1000000000ull)
			return mdgpu_fence_wait_kernel(b->dev, b->fence.handle, 0, value,
						       30000000000ull, NULL);
	}
}

/* Let the device's grace period run out, so the phase starts with the queue asleep. */
static void settle(struct bench *b)
{
	const volatile struct mdgpu_queue_control *ctl = mdgpu_queue_control(b->q);
	struct timespec ts = { 0, 1000000 };
	uint64_t t0 = now_ns();

	while (!ctl->doorbell_needed && now_ns() - t0 < 1000000000ull)
		nanosleep(&ts, NULL);
	ts.tv_nsec = (long)(b->grace_ns < 500000000 ? b->grace_ns : 500000000);
	nanosleep(&ts, NULL);
}

static void run_phase(struct bench *b, struct phase *p, int test, bool force, uint64_t n,
		      unsigned int index)
{
	struct mdgpu_queue_stats s0, s1;
	uint64_t *lat = NULL, i, t0;
	int ret = 0;

	memset(p, 0, sizeof(*p));
	p->mode = force ? "doorbell" : "notify";
	p->test = test == T_LATENCY ? "latency" : "throughput";
	p->n = n;
	p->mark = MARK_BASE + 2 * index;
	mdgpu_queue_set_flags(b->q, force ? MDGPU_QUEUE_FORCE_DOORBELL : 0);
	if (test == T_LATENCY) {
		lat = calloc(n, sizeof(*lat));
		if (!lat)
			return;
	}
	settle(b);
	mdgpu_queue_get_stats(b->q, &s0);
	mdgpu_mark(b->dev, p->mark);
	if (test == T_LATENCY) {
		for (i = 0; i < n && !ret; i++) {
			t0 = now_ns();
			ret = submit_one(b);
			if (!ret)
				ret = spin_fence(b, b->value);
			lat[i] = now_ns() - t0;
			p->total_ns += lat[i];
		}
	} else {
		t0 = now_ns();
		for (i = 0; i < n && !ret; i++)
			ret = submit_one(b);
		if (!ret)
			ret = spin_fence(b, b->value);
		p->ns = now_ns() - t0;
		p->total_ns = p->ns;
	}
	mdgpu_mark(b->dev, p->mark + 1);
	mdgpu_queue_get_stats(b->q, &s1);
	p->doorbells = s1.doorbells - s0.doorbells;
	p->space_waits = s1.space_waits - s0.space_waits;
	p->ok = !ret;
	if (ret)
		fprintf(stderr, "mdgpu-submit-bench: %s/%s: %s (%s), queue error %s\n", p->mode,
			p->test, mdgpu_strerror(ret), mdgpu_errname(ret),
			mdgpu_submit_error_name(mdgpu_queue_control(b->q)->error_code));
	if (lat && !ret) {
		qsort(lat, n, sizeof(*lat), cmp_u64);
		p->ns = lat[n / 2];
		p->p99_ns = lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
		p->min_ns = lat[0];
	}
	free(lat);
}

int main(int argc, char **argv)
{
	uint64_t lat_n = 200, tput_n = 2000, ring = 64u << 10;
	const char *path = MDGPU_DEFAULT_PATH;
	struct mdgpu_compute_info ci;
	struct phase phases[4];
	struct bench b = { 0 };
	unsigned int i;
	bool ok = true;
	int opt, ret, status = 1;
	char *end;

	while ((opt = getopt(argc, argv, "d:n:m:q:")) != -1) {
		uint64_t v = 0;

		if (opt != 'd') {
			errno = 0;
			v = strtoull(optarg, &end, 0);
			if (errno || *end || !v || v > 10000000)
				goto usage;
		}
		switch (opt) {
		case 'd':
			path = optarg;
			break;
		case 'n':
			lat_n = v;
			break;
		case 'm':
			tput_n = v;
			break;
		case 'q':
			ring = v;
			break;
		default:
			goto usage;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	mdgpu_sub_init(&b.sub);

	ret = mdgpu_open(path, &b.dev);
	if (ret) {
		fprintf(stderr, "mdgpu-submit-bench: cannot open %s: %s\n", path,
			mdgpu_strerror(ret));
		return 1;
	}
	ret = mdgpu_get_compute_info(b.dev, &ci);
	if (ret || !ci.has_backend) {
		fprintf(stderr, "mdgpu-submit-bench: %s has no compute backend\n", path);
		goto out_close;
	}
	b.grace_ns = ci.grace_us * 2000; /* twice the grace period */
	ret = mdgpu_queue_create(b.dev, ring, 0, &b.q);
	if (!ret)
		ret = mdgpu_bo_create(b.dev, 4096, 0, 0, &b.fence);
	if (!ret)
		ret = mdgpu_bo_map(b.dev, &b.fence);
	if (ret) {
		fprintf(stderr, "mdgpu-submit-bench: setup: %s\n", mdgpu_strerror(ret));
		goto out_free;
	}
	printf("queue %u, ring %" PRIu64 " bytes, device grace period %" PRIu64 " us\n",
	       mdgpu_queue_id(b.q), ring, (uint64_t)ci.grace_us);

	run_phase(&b, &phases[0], T_LATENCY, true, lat_n, 0);
	run_phase(&b, &phases[1], T_LATENCY, false, lat_n, 1);
	run_phase(&b, &phases[2], T_THROUGHPUT, true, tput_n, 2);
	run_phase(&b, &phases[3], T_THROUGHPUT, false, tput_n, 3);
	mdgpu_mark(b.dev, MARK_END);

	/* us/sub: the median latency, or the mean time per submission back to back. */
	printf("\n%-9s %-10s %8s %10s %10s %10s %10s %6s\n", "mode", "test", "n", "us/sub",
	       "p99 us", "total ms", "doorbells", "mark");
	for (i = 0; i < 4; i++) {
		struct phase *p = &phases[i];
		bool lat = !strcmp(p->test, "latency");
		char p99[32] = "-";

		ok = ok && p->ok;
		if (lat)
			snprintf(p99, sizeof(p99), "%.1f", p->p99_ns / 1e3);
		printf("%-9s %-10s %8" PRIu64 " %10.1f %10s %10.1f %10" PRIu64 " 0x%03x%s\n",
		       p->mode, p->test, p->n, (lat ? p->ns : p->ns / (double)p->n) / 1e3, p99,
		       p->total_ns / 1e6, p->doorbells, p->mark, p->ok ? "" : "  FAILED");
	}
	printf("\n");
	for (i = 0; i < 4; i++) {
		struct phase *p = &phases[i];

		if (!strcmp(p->test, "latency"))
			printf("MDGPU-SUBMIT mode=%s test=latency n=%" PRIu64 " ns=%" PRIu64
			       " p99_ns=%" PRIu64 " min_ns=%" PRIu64 " doorbells=%" PRIu64
			       " mark=0x%03x ok=%d\n",
			       p->mode, p->n, p->ns, p->p99_ns, p->min_ns, p->doorbells, p->mark,
			       p->ok);
		else
			printf("MDGPU-SUBMIT mode=%s test=throughput n=%" PRIu64 " ns=%" PRIu64
			       " per_ns=%" PRIu64 " doorbells=%" PRIu64 " space_waits=%" PRIu64
			       " mark=0x%03x ok=%d\n",
			       p->mode, p->n, p->ns, p->ns / p->n, p->doorbells, p->space_waits,
			       p->mark, p->ok);
	}
	printf("MDGPU-SUBMIT-RESULT ok=%d\n", ok);
	status = ok ? 0 : 1;

out_free:
	if (b.fence.handle) {
		mdgpu_bo_unmap(&b.fence);
		mdgpu_bo_destroy(b.dev, &b.fence);
	}
	mdgpu_queue_destroy(b.q);
out_close:
	mdgpu_sub_fini(&b.sub);
	mdgpu_close(b.dev);
	return status;

usage:
	fprintf(stderr, "usage: %s [-d device] [-n latency-n] [-m throughput-n] [-q ring-bytes]\n",
		argv[0]);
	return 2;
}
