// SPDX-License-Identifier: MIT
/*
 * mdgpu-run: compute through an mdgpu queue, checked against the CPU.
 *
 * Loads the SPIR-V kernels (saxpy, gemm, reduce, memcpy: guest-driver/kernels/README.md) from
 * /usr/share/mdgpu (-k), runs each through one queue on buffers filled by the CPU, waits for the
 * submission's fence (spinning briefly, then sleeping in the driver, woken by the FENCE
 * interrupt) and compares every result with a reference computed here. The inputs are small
 * integers so the float results are exact whatever the order of additions (mdgpu-compute.h,
 * shared with mdgpu-compute-bench, which times the same kernels in a loop). A COPY command is
 * checked the same way. Then two checks of what the device does with the submissions it runs
 * (they need a compute backend, so they are here rather than in mdgpu-smoke):
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
 * Usage: mdgpu-run [-d /dev/mdgpuN] [-k kernel-dir] [-s saxpy-n] [-g gemm-dim] [-r reduce-n]
 *                  [-m memcpy-bytes] [-q ring-bytes] [-t timeout-s] [-H]  (sizes take K, M, G)
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

#include "mdgpu-compute.h"

#define MARK_KERNEL 0x300
#define MARK_HOSTILE 0x310
#define MARK_IRQ_WAIT 0x311
#define MARK_END 0x3ff

#define IRQ_WAIT_AFTER_NS 100000000ull /* the flag is set this long after the parent sleeps */

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
	struct compute c;
	unsigned int pass, fail;
	struct row rows[8];
	unsigned int nrows;
};

static void result(struct run *r, bool ok)
{
	if (ok)
		r->pass++;
	else
		r->fail++;
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
	const volatile struct mdgpu_queue_control *ctl = mdgpu_queue_control(r->c.q);

	snprintf(row->detail, sizeof(row->detail), "%s: %s (%s), queue error %s at %u", what,
		 mdgpu_strerror(ret), mdgpu_errname(ret), mdgpu_submit_error_name(ctl->error_code),
		 ctl->error_at);
}

static void run_saxpy(struct run *r, uint64_t n)
{
	struct row *row = new_row(r, "saxpy");
	struct mdgpu_buffer x = { 0 }, y = { 0 };
	const float a = SAXPY_A;
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
	mdgpu_mark(r->c.dev, MARK_KERNEL + K_SAXPY);
	ref = malloc(n * sizeof(float));
	out = malloc(n * sizeof(float));
	if (!ref || !out || buffer(&r->c, n * 4, &x) || buffer(&r->c, n * 4, &y)) {
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
	begin(&r->c);
	mdgpu_sub_timestamp(&r->c.sub, r->c.fence.handle, TS_BEGIN_AT);
	mdgpu_sub_dispatch(&r->c.sub, r->c.kernel[K_SAXPY], gx, gy, 1, b, 2, &push, sizeof(push));
	mdgpu_sub_timestamp(&r->c.sub, r->c.fence.handle, TS_END_AT);
	ret = submit_wait(&r->c, &row->ns);
	if (ret) {
		report_failure(r, row, "submission", ret);
		goto out;
	}
	row->dev_ns = device_ns(&r->c);
	memcpy(out, y.map, n * 4);
	for (i = 0; i < n; i++)
		bad += out[i] != ref[i];
	row->ok = !bad;
	if (bad)
		snprintf(row->detail, sizeof(row->detail), "%" PRIu64 " of %" PRIu64 " differ", bad,
			 n);
out:
	buffer_free(&r->c, &x);
	buffer_free(&r->c, &y);
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
	mdgpu_mark(r->c.dev, MARK_KERNEL + K_GEMM);
	ha = malloc((size_t)m * k * 4);
	hb = malloc((size_t)k * n * 4);
	ref = malloc((size_t)m * n * 4);
	out = malloc((size_t)m * n * 4);
	if (!ha || !hb || !ref || !out || buffer(&r->c, (uint64_t)m * k * 4, &a) ||
	    buffer(&r->c, (uint64_t)k * n * 4, &b) || buffer(&r->c, (uint64_t)m * n * 4, &c)) {
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
	begin(&r->c);
	mdgpu_sub_timestamp(&r->c.sub, r->c.fence.handle, TS_BEGIN_AT);
	mdgpu_sub_dispatch(&r->c.sub, r->c.kernel[K_GEMM], (n + 15) / 16, (m + 15) / 16, 1, bind, 3,
			   &push, sizeof(push));
	mdgpu_sub_timestamp(&r->c.sub, r->c.fence.handle, TS_END_AT);
	ret = submit_wait(&r->c, &row->ns);
	if (ret) {
		report_failure(r, row, "submission", ret);
		goto out;
	}
	row->dev_ns = device_ns(&r->c);
	memcpy(out, c.map, (size_t)m * n * 4);
	for (i = 0; i < (uint64_t)m * n; i++)
		bad += out[i] != ref[i];
	row->ok = !bad;
	if (bad)
		snprintf(row->detail, sizeof(row->detail), "%" PRIu64 " of %" PRIu64 " differ", bad,
			 (uint64_t)m * n);
out:
	buffer_free(&r->c, &a);
	buffer_free(&r->c, &b);
	buffer_free(&r->c, &c);
	free(ha);
	free(hb);
	free(ref);
	free(out);
}

static void run_reduce(struct run *r, uint64_t n)
{
	struct row *row = new_row(r, "reduce");
	struct mdgpu_buffer in = { 0 }, part = { 0 }, res = { 0 };
	uint32_t groups = reduce_groups(n);
	uint32_t push1 = (uint32_t)n, push2 = groups;
	struct mdgpu_binding b1[2], b2[2];
	double ref = 0, got;
	uint64_t i, t0;
	int ret;

	snprintf(row->size, sizeof(row->size), "%" PRIu64, n);
	mdgpu_mark(r->c.dev, MARK_KERNEL + K_REDUCE);
	if (buffer(&r->c, n * 4, &in) || buffer(&r->c, (uint64_t)groups * 4, &part) ||
	    buffer(&r->c, 4, &res)) {
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
	begin(&r->c);
	mdgpu_sub_timestamp(&r->c.sub, r->c.fence.handle, TS_BEGIN_AT);
	mdgpu_sub_dispatch(&r->c.sub, r->c.kernel[K_REDUCE], groups, 1, 1, b1, 2, &push1, 4);
	mdgpu_sub_barrier(&r->c.sub);
	mdgpu_sub_dispatch(&r->c.sub, r->c.kernel[K_REDUCE], 1, 1, 1, b2, 2, &push2, 4);
	mdgpu_sub_timestamp(&r->c.sub, r->c.fence.handle, TS_END_AT);
	ret = submit_wait(&r->c, &row->ns);
	if (ret) {
		report_failure(r, row, "submission", ret);
		goto out;
	}
	row->dev_ns = device_ns(&r->c);
	got = ((float *)res.map)[0];
	/* Exact while the sum stays below 2^24 (n up to ~8M here); a tolerance beyond. */
	row->ok = reduce_ok(got, ref);
	snprintf(row->detail, sizeof(row->detail), "sum %.1f, expected %.1f", got, ref);
out:
	buffer_free(&r->c, &in);
	buffer_free(&r->c, &part);
	buffer_free(&r->c, &res);
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
	mdgpu_mark(r->c.dev, MARK_KERNEL + (kernel ? K_MEMCPY : K_COUNT));
	out = malloc(words * 4);
	if (!out || buffer(&r->c, words * 4, &src) || buffer(&r->c, words * 4, &dst)) {
		snprintf(row->detail, sizeof(row->detail), "setup failed");
		goto out;
	}
	for (i = 0; i < words; i++)
		((uint32_t *)src.map)[i] = word_at(i);

	/*
	 * FILL first, so a result can only come from the copy that follows; in a submission of its
	 * own, so the time measured is the copy's alone (what the native benchmark times).
	 */
	begin(&r->c);
	mdgpu_sub_fill(&r->c.sub, dst.handle, 0, words * 4, 0xdeadbeef);
	ret = submit_wait(&r->c, NULL);
	if (ret) {
		report_failure(r, row, "fill", ret);
		goto out;
	}
	begin(&r->c);
	mdgpu_sub_timestamp(&r->c.sub, r->c.fence.handle, TS_BEGIN_AT);
	if (kernel) {
		b[0] = (struct mdgpu_binding){ .handle = src.handle, .size = words * 4 };
		b[1] = (struct mdgpu_binding){ .handle = dst.handle, .size = words * 4 };
		grid64(words, &gx, &gy);
		mdgpu_sub_dispatch(&r->c.sub, r->c.kernel[K_MEMCPY], gx, gy, 1, b, 2, &push, 4);
	} else {
		mdgpu_sub_copy(&r->c.sub, src.handle, 0, dst.handle, 0, words * 4);
	}
	mdgpu_sub_timestamp(&r->c.sub, r->c.fence.handle, TS_END_AT);
	ret = submit_wait(&r->c, &row->ns);
	if (ret) {
		report_failure(r, row, "submission", ret);
		goto out;
	}
	row->dev_ns = device_ns(&r->c);
	memcpy(out, dst.map, words * 4);
	for (i = 0; i < words; i++)
		bad += out[i] != word_at(i);
	row->ok = !bad;
	if (bad)
		snprintf(row->detail, sizeof(row->detail),
			 "%" PRIu64 " of %" PRIu64 " words differ", bad, words);
out:
	buffer_free(&r->c, &src);
	buffer_free(&r->c, &dst);
	free(out);
}

/*
 * A submission that must fail with BAD_BUFFER at byte 32 (its first command): error fence,
 * -EIO from the wait, the error record in the control block. Returns a description in @what.
 */
static bool expect_bad_buffer(struct run *r, const char *name, char *what, size_t len)
{
	const volatile struct mdgpu_queue_control *ctl = mdgpu_queue_control(r->c.q);
	uint64_t errors = ctl->errors, fence;
	uint32_t code, at;
	int ret;

	ret = submit_wait(&r->c, NULL);
	fence = mdgpu_fence_read(&r->c.fence, FENCE_AT);
	code = ctl->error_code;
	at = ctl->error_at;
	snprintf(what, len, "%s_wait=%s %s_fence=0x%" PRIx64 " %s_error=%s %s_at=%u", name,
		 mdgpu_errname(ret), name, fence, name, mdgpu_submit_error_name(code), name, at);
	return ret == -EIO && fence == (r->c.fence_value | MDGPU_FENCE_ERROR) &&
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

	mdgpu_mark(r->c.dev, MARK_HOSTILE);
	if (buffer(&r->c, 4096, &valid))
		goto out;

	/* A handle this file had, freed: the device must not find it. */
	if (mdgpu_bo_create(r->c.dev, 4096, 0, 0, &freed))
		goto out;
	freed_handle = freed.handle;
	if (mdgpu_bo_destroy(r->c.dev, &freed))
		goto out;
	begin(&r->c);
	mdgpu_sub_copy(&r->c.sub, valid.handle, 0, freed_handle, 0, 4096);
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
		begin(&r->c);
		mdgpu_sub_dispatch(&r->c.sub, r->c.kernel[K_MEMCPY], 16, 1, 1, b, 2, &push, 4);
		ok_other = expect_bad_buffer(r, "other", other_what, sizeof(other_what));
	}

	/* The queue goes on: a valid submission right after works. */
	begin(&r->c);
	mdgpu_sub_fill(&r->c.sub, valid.handle, 0, 4096, 0x600dcafe);
	ret = submit_wait(&r->c, NULL);
	ok_after = !ret;
	for (i = 0; ok_after && i < 1024; i++)
		ok_after = ((volatile uint32_t *)valid.map)[i] == 0x600dcafe;
out:
	result(r, ok_freed && ok_other && ok_after);
	printf("MDGPU-RUN check=hostile ok=%d %s %s after=%s errors=%" PRIu64 "\n",
	       ok_freed && ok_other && ok_after, freed_what, other_what, ok_after ? "ok" : "FAIL",
	       (uint64_t)mdgpu_queue_control(r->c.q)->errors);
	if (theirs.handle)
		mdgpu_bo_destroy(other, &theirs);
	mdgpu_close(other);
	buffer_free(&r->c, &valid);
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

	mdgpu_mark(r->c.dev, MARK_IRQ_WAIT);
	((volatile uint64_t *)r->c.fence.map)[FLAG_AT / 8] = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (mdgpu_get_info(r->c.dev, &i0) || mdgpu_get_compute_info(r->c.dev, &c0)) {
		printf("MDGPU-RUN check=irq-wait ok=0 info failed\n");
		result(r, false);
		return;
	}
	poll_off = fence_poll_set("0", poll_old, sizeof(poll_old));
	/* The device holds the submission until the flag is set: the fence cannot be early. */
	begin(&r->c);
	mdgpu_sub_wait(&r->c.sub, r->c.fence.handle, FLAG_AT, 1, 10000000000ull);
	ret = mdgpu_queue_submit(r->c.q, &r->c.sub);
	child = ret ? -1 : fork();
	if (child == 0) {
		/*
		 * Set the flag only once the parent is asleep in WAIT_FENCE (the driver counts the
		 * sleep first), and IRQ_WAIT_AFTER_NS after that: however late the parent is
		 * scheduled, the fence cannot be done before it sleeps.
		 */
		for (i = 0; i < 10000; i++) {
			if (!mdgpu_get_compute_info(r->c.dev, &cc) &&
			    cc.fence_sleeps > c0.fence_sleeps)
				break;
			usleep(1000);
		}
		usleep(IRQ_WAIT_AFTER_NS / 1000);
		((volatile uint64_t *)r->c.fence.map)[FLAG_AT / 8] = 1;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		_exit(0);
	}
	t0 = now_ns();
	if (child > 0)
		ret = mdgpu_fence_wait_kernel(r->c.dev, r->c.fence.handle, FENCE_AT,
					      r->c.fence_value, r->c.timeout_ns, &seen);
	slept = now_ns() - t0;
	if (child > 0)
		waitpid(child, &status, 0);
	if (poll_off)
		fence_poll_set(poll_old, NULL, 0);
	if (mdgpu_get_info(r->c.dev, &i1) || mdgpu_get_compute_info(r->c.dev, &c1))
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
	const volatile struct mdgpu_queue_control *ctl = mdgpu_queue_control(r->c.q);
	struct mdgpu_buffer flag = { 0 };
	struct mdgpu_binding b;
	uint32_t kernel = 0, want = 1, code = 0;
	uint64_t ns = 0, fence = 0, expected = 0;
	char file[512];
	int ret, after = 0;
	bool ok = false;

	snprintf(file, sizeof(file), "%s/spin.spv", kdir);
	ret = mdgpu_kernel_load(r->c.dev, file, 1, 4, &kernel);
	if (!ret)
		ret = buffer(&r->c, 4096, &flag);
	if (ret) {
		printf("MDGPU-RUN check=hang ok=0 setup=%s\n", mdgpu_errname(ret));
		goto out;
	}
	b = (struct mdgpu_binding){ .handle = flag.handle, .size = 4096 };
	begin(&r->c);
	expected = r->c.fence_value | MDGPU_FENCE_ERROR;
	mdgpu_sub_dispatch(&r->c.sub, kernel, 4096, 4096, 1, &b, 1, &want, sizeof(want));
	ret = submit_wait(&r->c, &ns);
	fence = mdgpu_fence_read(&r->c.fence, FENCE_AT);
	code = ctl->error_code;
	begin(&r->c);
	mdgpu_sub_barrier(&r->c.sub);
	after = submit_wait(&r->c, NULL);
	ok = ret == -EIO && fence == expected && code == MDGPU_SUBMIT_CONTEXT_LOST &&
	     after == -EIO && ((volatile uint32_t *)flag.map)[1] > 0;
	printf("MDGPU-RUN check=hang ok=%d wait=%s fence=0x%" PRIx64
	       " error=%s turns=%u ns=%" PRIu64 " after=%s\n",
	       ok, mdgpu_errname(ret), fence, mdgpu_submit_error_name(code),
	       ((volatile uint32_t *)flag.map)[1], ns, mdgpu_errname(after));
out:
	result(r, ok);
	buffer_free(&r->c, &flag);
	if (kernel)
		mdgpu_kernel_destroy(r->c.dev, kernel);
}

int main(int argc, char **argv)
{
	uint64_t saxpy_n = 1u << 20, reduce_n = 1u << 20, copy_bytes = 4u << 20, ring = 64u << 10;
	uint64_t gemm_dim = 256, timeout_s = 60, v;
	const char *path = MDGPU_DEFAULT_PATH, *kdir = "/usr/share/mdgpu";
	struct run r = { .c.tool = "mdgpu-run" };
	struct mdgpu_queue_stats qs;
	bool hang = false;
	unsigned int i;
	int opt;

	while ((opt = getopt(argc, argv, "d:k:s:g:r:m:q:t:H")) != -1) {
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
		case 'H':
			hang = true;
			continue;
		default:
			goto usage;
		}
		if (mdgpu_parse_size(optarg, &v) || !v || v > (1ull << 30))
			goto usage;
		*dst = v;
	}
	if (gemm_dim > 4096 || copy_bytes < 4 || optind != argc)
		goto usage;
	setvbuf(stdout, NULL, _IOLBF, 0);
	r.c.timeout_ns = timeout_s * 1000000000ull;

	if (compute_open(&r.c, path, kdir, ring)) {
		/* A device that opened but cannot compute is a failed run; no device is no run. */
		if (r.c.dev)
			printf("MDGPU-RUN-RESULT pass=0 fail=1\n");
		compute_close(&r.c);
		return 1;
	}

	if (hang) {
		run_hang(&r, kdir);
		printf("MDGPU-RUN-RESULT pass=%u fail=%u\n", r.pass, r.fail);
		goto out;
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
	mdgpu_mark(r.c.dev, MARK_END);

	mdgpu_queue_get_stats(r.c.q, &qs);
	printf("queue: %" PRIu64 " submissions, %" PRIu64 " bytes, %" PRIu64 " doorbells, %" PRIu64
	       " waits for ring space; device: %" PRIu64 " completed, %" PRIu64 " failed\n",
	       qs.submissions, qs.bytes, qs.doorbells, qs.space_waits,
	       (uint64_t)mdgpu_queue_control(r.c.q)->completed,
	       (uint64_t)mdgpu_queue_control(r.c.q)->errors);
	printf("MDGPU-RUN-RESULT pass=%u fail=%u\n", r.pass, r.fail);

out:
	compute_close(&r.c);
	return r.fail || !r.pass ? 1 : 0;

usage:
	fprintf(stderr,
		"usage: %s [-d device] [-k kernel-dir] [-s saxpy-n] [-g gemm-dim] [-r reduce-n] [-m memcpy-bytes] [-q ring-bytes] [-t timeout-s] [-H]\n",
		argv[0]);
	return 2;
}
