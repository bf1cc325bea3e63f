/* SPDX-License-Identifier: MIT */
/*
 * vks-hostile: programs that misuse the device on purpose. A Vulkan implementation facing them
 * must keep the program in control — a clean error, VK_ERROR_DEVICE_LOST, a timeout the
 * program asked for, or an access confined to the program's own memory — never a crash, a
 * hang, or a write into memory the access had no right to.
 *
 * Each check runs in a child process (forked before any Vulkan call) that the parent kills if
 * it has not finished after CHILD_LIMIT_S: a hang is reported as outcome=hang, a signal as
 * outcome=crash. Guard buffers, each in its own VkDeviceMemory, surround every target and are
 * compared with their pattern afterwards. Every line says what happened (outcome=...);
 * ok=1 when the program stayed in control and no guard changed. Digests here are of the
 * outcome word only: hostile outcomes legitimately differ between implementations.
 *
 * Invalid usage on purpose: run without the validation layer. VKSUITE_HOSTILE_ONLY=<name> runs
 * one check.
 *
 *   hostile.oob_index        indices far outside the descriptor's range (robustBufferAccess:
 *                            valid Vulkan; writes must stay within the buffer)
 *   hostile.desc_range       a descriptor range past the end of its buffer and memory
 *   hostile.desc_offset      a descriptor offset past the end of its buffer
 *   hostile.indirect_limit   vkCmdDispatchIndirect with a count above maxComputeWorkGroupCount
 *   hostile.indirect_huge    vkCmdDispatchIndirect with counts of 2^32-1 in every dimension
 *   hostile.spin             a kernel that never ends unless the host sets a flag
 *   hostile.wait_semaphore   vkWaitSemaphores on a value nobody signals (200 ms timeout)
 *   hostile.wait_queue       a submission waiting on a value nobody signals, then released
 *   hostile.wait_event       a submission waiting on an event nobody sets, then released by
 *                            vkSetEvent (itself invalid while a command buffer waits on it:
 *                            VUID-vkSetEvent-event-09543, so hostile)
 *   hostile.wait_abandoned   a submission waiting forever when the process exits
 *   hostile.alloc_huge       vkAllocateMemory far beyond the heap
 */
#define _GNU_SOURCE
#include "vks.h"

#include "spv_hostile_count.inc"
#include "spv_hostile_spin.inc"
#include "spv_hostile_write.inc"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILD_LIMIT_S 15
#define GUARD_WORDS (16 * 1024)
#define TARGET_WORDS 1024

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* Report from a child and leave at once (no vkDeviceWaitIdle: work may still be pending). */
static _Noreturn void outcome(struct vks *v, const char *name, bool ok, const char *what,
			      const char *fmt, ...)
{
	char more[256] = "";
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		more[0] = ' ';
		vsnprintf(more + 1, sizeof(more) - 1, fmt, ap);
		va_end(ap);
	}
	vks_report(v, name, ok, vks_hash(VKS_HASH_INIT, what, strlen(what)), 0, "outcome=%s%s",
		   what, more);
	fflush(stdout);
	fflush(stderr);
	_exit(ok ? 0 : 1);
}

static uint32_t guard_word(uint32_t which, uint32_t i)
{
	return 0x6a000000u ^ (which << 20) ^ (i * 2654435761u);
}

struct guarded {
	struct vks_buf lo, target, hi, out;
};

static void guards_make(struct vks *v, struct guarded *g, VkDeviceSize target_bytes)
{
	vks_buf_create(v, &g->lo, GUARD_WORDS * 4, VKS_USAGE_ALL);
	vks_buf_create(v, &g->target, target_bytes, VKS_USAGE_ALL);
	vks_buf_create(v, &g->hi, GUARD_WORDS * 4, VKS_USAGE_ALL);
	vks_buf_create(v, &g->out, 64, VKS_USAGE_ALL);
	uint32_t *lo = g->lo.map, *hi = g->hi.map, *t = g->target.map;
	for (uint32_t i = 0; i < GUARD_WORDS; i++) {
		lo[i] = guard_word(1, i);
		hi[i] = guard_word(2, i);
	}
	for (uint32_t i = 0; i < target_bytes / 4; i++)
		t[i] = guard_word(3, i);
	memset(g->out.map, 0, 64);
}

/* Guard words that changed. */
static uint32_t guards_broken(const struct guarded *g)
{
	const uint32_t *lo = g->lo.map, *hi = g->hi.map;
	uint32_t bad = 0;
	for (uint32_t i = 0; i < GUARD_WORDS; i++)
		bad += (lo[i] != guard_word(1, i)) + (hi[i] != guard_word(2, i));
	return bad;
}

/* A one-set pipeline for `code` with `nbuf` storage buffers and a push range. */
static void pipe_for(struct vks *v, struct vks_pipe *p, const uint32_t *code, size_t size,
		     uint32_t nbuf, uint32_t push)
{
	vks_pipe_create(v, p, code, size, nbuf, push, NULL);
}

static VkResult submit(struct vks *v, VkCommandBuffer cmd, VkFence fence, VkSemaphore wait,
		       uint64_t value)
{
	VkResult r = vkEndCommandBuffer(cmd);
	if (r != VK_SUCCESS)
		return r;
	const VkPipelineStageFlags stage = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT;
	const VkTimelineSemaphoreSubmitInfo values = {
		.sType = VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO,
		.waitSemaphoreValueCount = wait ? 1 : 0,
		.pWaitSemaphoreValues = &value,
	};
	const VkSubmitInfo s = {
		.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
		.pNext = wait ? &values : NULL,
		.waitSemaphoreCount = wait ? 1 : 0,
		.pWaitSemaphores = &wait,
		.pWaitDstStageMask = &stage,
		.commandBufferCount = 1,
		.pCommandBuffers = &cmd,
	};
	return vkQueueSubmit(v->queue, 1, &s, fence);
}

static VkFence fence_new(struct vks *v)
{
	const VkFenceCreateInfo fi = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
	VkFence f;
	VKS_CHECK(v, vkCreateFence(v->dev, &fi, NULL, &f));
	return f;
}

/* Submit, wait up to `ms`; the outcome of a submission that should not do harm. */
static VkResult run_bounded(struct vks *v, VkCommandBuffer cmd, long ms)
{
	VkFence f = fence_new(v);
	VkResult r = submit(v, cmd, f, VK_NULL_HANDLE, 0);
	if (r == VK_SUCCESS)
		r = vkWaitForFences(v->dev, 1, &f, VK_TRUE, (uint64_t)ms * 1000000);
	return r;
}

static const char *error_word(VkResult r)
{
	return r == VK_ERROR_DEVICE_LOST ? "device_lost" : vks_result_name(r);
}

/* The write/read shader through the descriptor (offset, range), at `idx`. */
static void write_through(struct vks *v, const char *name, VkDeviceSize offset, VkDeviceSize range,
			  const uint32_t idx[4])
{
	struct guarded g;
	guards_make(v, &g, TARGET_WORDS * 4);
	struct vks_pipe p;
	pipe_for(v, &p, spv_hostile_write, sizeof(spv_hostile_write), 2, 20);
	vks_write_buffer(v, p.set, 0, 0, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, g.target.buf, offset,
			 range);
	vks_write_buffer(v, p.set, 1, 0, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, g.out.buf, 0,
			 VK_WHOLE_SIZE);
	const struct {
		uint32_t idx[4];
		uint32_t value;
	} push = { { idx[0], idx[1], idx[2], idx[3] }, 0xbad00000u };
	VkCommandBuffer cmd = vks_cmd_begin(v);
	vks_pipe_use(&p, cmd, &push, sizeof(push));
	vkCmdDispatch(cmd, 1, 1, 1);
	vks_barrier(cmd);
	VkResult r = run_bounded(v, cmd, 5000);
	uint32_t broken = guards_broken(&g);
	const uint32_t *t = g.target.map;
	uint32_t target_changed = 0;
	for (uint32_t i = 0; i < TARGET_WORDS; i++)
		target_changed += t[i] != guard_word(3, i);
	if (broken)
		outcome(v, name, false, "corrupted", "guard_words=%u", broken);
	if (r == VK_TIMEOUT)
		outcome(v, name, false, "hang", NULL);
	if (r != VK_SUCCESS)
		outcome(v, name, true, error_word(r), NULL);
	outcome(v, name, true, "confined", "target_words_changed=%u", target_changed);
}

static void oob_index(struct vks *v)
{
	if (!v->on.features.robustBufferAccess)
		outcome(v, "hostile.oob_index", true, "skipped", "feature=robustBufferAccess");
	const uint32_t idx[4] = { TARGET_WORDS, TARGET_WORDS + 4096, 1u << 20, 0xfffffff0u };
	write_through(v, "hostile.oob_index", 0, VK_WHOLE_SIZE, idx);
}

static void desc_range(struct vks *v)
{
	/* The descriptor claims 1 MiB of a 4 KiB buffer; writes just past it and far past it. */
	const uint32_t idx[4] = { TARGET_WORDS + 16, TARGET_WORDS + 4096, 200000, 262143 };
	write_through(v, "hostile.desc_range", 0, 1 << 20, idx);
}

static void desc_offset(struct vks *v)
{
	/* The descriptor starts 64 KiB after the start of a 4 KiB buffer. */
	const uint32_t idx[4] = { 0, 1, 2, 1000 };
	write_through(v, "hostile.desc_offset", 64 << 10, 4096, idx);
}

static void indirect(struct vks *v, const char *name, const uint32_t counts[3])
{
	struct vks_buf count, args;
	vks_buf_create(v, &count, 16, VKS_USAGE_ALL);
	vks_buf_create(v, &args, 16, VKS_USAGE_ALL);
	memset(count.map, 0, 16);
	memcpy(args.map, counts, 12);
	struct vks_pipe p;
	pipe_for(v, &p, spv_hostile_count, sizeof(spv_hostile_count), 1, 0);
	vks_pipe_bind(v, &p, (struct vks_buf *[]){ &count });
	VkCommandBuffer cmd = vks_cmd_begin(v);
	vks_pipe_use(&p, cmd, NULL, 0);
	vkCmdDispatchIndirect(cmd, args.buf, 0);
	vks_barrier(cmd);
	VkResult r = run_bounded(v, cmd, 1000);
	uint32_t ran = *(uint32_t *)count.map;
	if (r == VK_TIMEOUT)
		outcome(v, name, true, "timeout", "workgroups_so_far=%u", ran);
	if (r != VK_SUCCESS)
		outcome(v, name, true, error_word(r), NULL);
	outcome(v, name, true, ran ? "ran" : "skipped", "workgroups=%u", ran);
}

static void indirect_limit(struct vks *v)
{
	const uint32_t counts[3] = { v->props.limits.maxComputeWorkGroupCount[0] + 1, 1, 1 };
	indirect(v, "hostile.indirect_limit", counts);
}

static void indirect_huge(struct vks *v)
{
	const uint32_t counts[3] = { UINT32_MAX, UINT32_MAX, UINT32_MAX };
	indirect(v, "hostile.indirect_huge", counts);
}

static void spin(struct vks *v)
{
	const char *name = "hostile.spin";
	struct vks_buf flag;
	vks_buf_create(v, &flag, 16, VKS_USAGE_ALL);
	memset(flag.map, 0, 16);
	struct vks_pipe p;
	pipe_for(v, &p, spv_hostile_spin, sizeof(spv_hostile_spin), 1, 0);
	vks_pipe_bind(v, &p, (struct vks_buf *[]){ &flag });
	VkCommandBuffer cmd = vks_cmd_begin(v);
	vks_pipe_use(&p, cmd, NULL, 0);
	vkCmdDispatch(cmd, 16384, 1, 1);
	vks_barrier(cmd);
	VkFence f = fence_new(v);
	VkResult r = submit(v, cmd, f, VK_NULL_HANDLE, 0);
	if (r != VK_SUCCESS)
		outcome(v, name, true, error_word(r), "at=submit");
	r = vkWaitForFences(v->dev, 1, &f, VK_TRUE, 1000ull * 1000000);
	if (r != VK_TIMEOUT)
		outcome(v, name, r == VK_ERROR_DEVICE_LOST, error_word(r), "at=first-wait turns=%u",
			((uint32_t *)flag.map)[1]);
	/* Release it: the device either finishes it now or has given up on it already. */
	__atomic_store_n((uint32_t *)flag.map, 1u, __ATOMIC_SEQ_CST);
	r = vkWaitForFences(v->dev, 1, &f, VK_TRUE, 5000ull * 1000000);
	if (r == VK_SUCCESS)
		outcome(v, name, true, "timeout_then_released", "turns=%u",
			((uint32_t *)flag.map)[1]);
	outcome(v, name, r == VK_ERROR_DEVICE_LOST, error_word(r), "at=after-release");
}

static VkSemaphore timeline(struct vks *v)
{
	const VkSemaphoreTypeCreateInfo type = {
		.sType = VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO,
		.semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE,
	};
	const VkSemaphoreCreateInfo si = { .sType = VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO,
					   .pNext = &type };
	VkSemaphore s;
	VKS_CHECK(v, vkCreateSemaphore(v->dev, &si, NULL, &s));
	return s;
}

static void wait_semaphore(struct vks *v)
{
	const char *name = "hostile.wait_semaphore";
	if (!v->on12.timelineSemaphore)
		outcome(v, name, true, "skipped", "feature=timelineSemaphore");
	VkSemaphore s = timeline(v);
	const uint64_t value = 1;
	const VkSemaphoreWaitInfo info = {
		.sType = VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO,
		.semaphoreCount = 1,
		.pSemaphores = &s,
		.pValues = &value,
	};
	double t0 = vks_now_ms();
	VkResult r = vkWaitSemaphores(v->dev, &info, 200ull * 1000000);
	double waited = vks_now_ms() - t0;
	if (r == VK_TIMEOUT)
		outcome(v, name, true, "timeout", "waited_ms=%.0f", waited);
	outcome(v, name, r == VK_ERROR_DEVICE_LOST, error_word(r), NULL);
}

/* A queue blocked by `wait` until released (release: 0 semaphore, 1 event), or abandoned. */
static void queue_blocked(struct vks *v, const char *name, int kind)
{
	struct vks_buf state;
	vks_buf_create(v, &state, 16, VKS_USAGE_ALL);
	memset(state.map, 0, 16);
	struct vks_pipe p;
	pipe_for(v, &p, spv_hostile_count, sizeof(spv_hostile_count), 1, 0);
	vks_pipe_bind(v, &p, (struct vks_buf *[]){ &state });
	VkSemaphore s = VK_NULL_HANDLE;
	VkEvent e = VK_NULL_HANDLE;
	if (kind != 1 && !v->on12.timelineSemaphore)
		outcome(v, name, true, "skipped", "feature=timelineSemaphore");
	VkCommandBuffer cmd = vks_cmd_begin(v);
	if (kind == 1) {
		const VkEventCreateInfo ei = { .sType = VK_STRUCTURE_TYPE_EVENT_CREATE_INFO };
		VKS_CHECK(v, vkCreateEvent(v->dev, &ei, NULL, &e));
		vkCmdWaitEvents(cmd, 1, &e, VK_PIPELINE_STAGE_HOST_BIT,
				VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, NULL, 0, NULL, 0, NULL);
	} else {
		s = timeline(v);
	}
	vks_pipe_use(&p, cmd, NULL, 0);
	vkCmdDispatch(cmd, 1, 1, 1);
	vks_barrier(cmd);
	VkFence f = fence_new(v);
	VkResult r = submit(v, cmd, f, s, 1);
	if (r != VK_SUCCESS)
		outcome(v, name, true, error_word(r), "at=submit");
	r = vkWaitForFences(v->dev, 1, &f, VK_TRUE, 300ull * 1000000);
	if (r != VK_TIMEOUT)
		outcome(v, name, r == VK_ERROR_DEVICE_LOST, error_word(r), "at=first-wait ran=%u",
			*(uint32_t *)state.map);
	if (kind == 2) /* leave with the submission still waiting */
		outcome(v, name, true, "abandoned", NULL);
	if (kind == 1) {
		r = vkSetEvent(v->dev, e);
	} else {
		const VkSemaphoreSignalInfo go = {
			.sType = VK_STRUCTURE_TYPE_SEMAPHORE_SIGNAL_INFO,
			.semaphore = s,
			.value = 1,
		};
		r = vkSignalSemaphore(v->dev, &go);
	}
	if (r == VK_SUCCESS)
		r = vkWaitForFences(v->dev, 1, &f, VK_TRUE, 5000ull * 1000000);
	if (r == VK_SUCCESS)
		outcome(v, name, *(uint32_t *)state.map == 1, "timeout_then_released", "ran=%u",
			*(uint32_t *)state.map);
	outcome(v, name, r == VK_ERROR_DEVICE_LOST, error_word(r), "at=after-release");
}

static void wait_queue(struct vks *v)
{
	queue_blocked(v, "hostile.wait_queue", 0);
}

static void wait_event(struct vks *v)
{
	queue_blocked(v, "hostile.wait_event", 1);
}

static void wait_abandoned(struct vks *v)
{
	queue_blocked(v, "hostile.wait_abandoned", 2);
}

static void alloc_huge(struct vks *v)
{
	const char *name = "hostile.alloc_huge";
	VkDeviceSize heap = v->mem.memoryHeaps[v->mem.memoryTypes[0].heapIndex].size;
	const VkMemoryAllocateInfo info = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
		.allocationSize = heap * 64 > heap ? heap * 64 : heap,
		.memoryTypeIndex = 0,
	};
	VkDeviceMemory mem;
	VkResult r = vkAllocateMemory(v->dev, &info, NULL, &mem);
	if (r == VK_SUCCESS) {
		vkFreeMemory(v->dev, mem, NULL);
		outcome(v, name, true, "allocated", "bytes=%llu",
			(unsigned long long)info.allocationSize);
	}
	bool clean = r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY;
	outcome(v, name, clean, clean ? "error" : error_word(r), "result=%s bytes=%llu",
		vks_result_name(r), (unsigned long long)info.allocationSize);
}

struct check {
	const char *name;
	unsigned want;
	void (*fn)(struct vks *v);
};

static const struct check checks[] = {
	{ "hostile.oob_index", VKS_WANT_ROBUST, oob_index },
	{ "hostile.desc_range", VKS_WANT_ROBUST, desc_range },
	{ "hostile.desc_offset", VKS_WANT_ROBUST, desc_offset },
	{ "hostile.indirect_limit", 0, indirect_limit },
	{ "hostile.indirect_huge", 0, indirect_huge },
	{ "hostile.spin", 0, spin },
	{ "hostile.wait_semaphore", 0, wait_semaphore },
	{ "hostile.wait_queue", 0, wait_queue },
	{ "hostile.wait_event", 0, wait_event },
	{ "hostile.wait_abandoned", 0, wait_abandoned },
	{ "hostile.alloc_huge", 0, alloc_huge },
};

int main(int argc, char **argv)
{
	const char *only = getenv("VKSUITE_HOSTILE_ONLY");
	int failures = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < VKS_ARRAY_SIZE(checks); i++) {
		const struct check *c = &checks[i];
		if (only && strcmp(only, c->name))
			continue;
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			/* A crash here is an outcome, not something to keep a core file of. */
			const struct rlimit no_core = { 0, 0 };
			setrlimit(RLIMIT_CORE, &no_core);
			struct vks v;
			vks_init(&v, "vks-hostile", argc, argv, c->want);
			v.current = c->name;
			c->fn(&v);
			_exit(3); /* every check leaves through outcome() */
		}
		int status = 0;
		double t0 = vks_now_ms();
		pid_t done = 0;
		while ((done = waitpid(pid, &status, WNOHANG)) == 0 &&
		       vks_now_ms() - t0 < CHILD_LIMIT_S * 1000.0)
			sleep_ms(20);
		if (done == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			printf("VKSUITE name=%s ok=0 digest=- ms=0 outcome=hang limit_s=%d\n",
			       c->name, CHILD_LIMIT_S);
			failures++;
		} else if (WIFSIGNALED(status)) {
			printf("VKSUITE name=%s ok=0 digest=- ms=0 outcome=crash signal=%d\n",
			       c->name, WTERMSIG(status));
			failures++;
		} else if (WEXITSTATUS(status) != 0) {
			failures++; /* the child printed its line (or vks_fatal's) */
		}
	}
	return failures ? 1 : 0;
}
