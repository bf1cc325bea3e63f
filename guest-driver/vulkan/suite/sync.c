/* SPDX-License-Identifier: MIT */
/*
 * vks-sync: ordering between submissions and the host. Every step runs a one-invocation
 * shader that appends the counter's value to a log and adds to the counter, so the log shows
 * the order in which dependent steps ran.
 *
 *   sync.timeline_threads: a timeline semaphore signalled from two host threads and from the
 *     queue, waited on by the queue and by two other host threads (vkWaitSemaphores, waitAny).
 *   sync.timeline_queue: eight batches chained through one timeline semaphore, values with gaps.
 *   sync.binary: binary semaphores between three separate vkQueueSubmit calls, twice (reuse).
 *   sync.fence: fence status, reset, timeouts of 0 and 10 ms, waitAll false/true, an empty
 *     submission with a fence.
 *   sync.wait_idle: batches without fences, completed by vkQueueWaitIdle and vkDeviceWaitIdle.
 */
#define _GNU_SOURCE
#include "vks.h"

#include "spv_increment.inc"

#include <pthread.h>
#include <string.h>
#include <time.h>

#define LOG 64

struct steps {
	struct vks_pipe pipe;
	struct vks_buf state; /* counter, log[LOG] */
};

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static VkCommandBuffer step_cmd(struct vks *v, struct steps *s, uint32_t seq, uint32_t add)
{
	const uint32_t push[2] = { seq, add };
	VkCommandBuffer cmd = vks_cmd_begin(v);
	vks_pipe_use(&s->pipe, cmd, push, sizeof(push));
	vkCmdDispatch(cmd, 1, 1, 1);
	vks_barrier(cmd);
	VKS_CHECK(v, vkEndCommandBuffer(cmd));
	return cmd;
}

static VkSemaphore make_semaphore(struct vks *v, bool timeline, uint64_t initial)
{
	const VkSemaphoreTypeCreateInfo type = {
		.sType = VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO,
		.semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE,
		.initialValue = initial,
	};
	const VkSemaphoreCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO,
		.pNext = timeline ? &type : NULL,
	};
	VkSemaphore s;
	VKS_CHECK(v, vkCreateSemaphore(v->dev, &info, NULL, &s));
	return s;
}

static VkFence make_fence(struct vks *v, bool signaled)
{
	const VkFenceCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO,
		.flags = signaled ? VK_FENCE_CREATE_SIGNALED_BIT : 0,
	};
	VkFence f;
	VKS_CHECK(v, vkCreateFence(v->dev, &info, NULL, &f));
	return f;
}

/* One batch: wait (optional), a step, signal (optional), each semaphore timeline or binary. */
static void submit_step(struct vks *v, VkCommandBuffer cmd, VkSemaphore wait, uint64_t wait_value,
			VkSemaphore signal, uint64_t signal_value, VkFence fence)
{
	const VkPipelineStageFlags stage = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT;
	const VkTimelineSemaphoreSubmitInfo values = {
		.sType = VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO,
		.waitSemaphoreValueCount = wait ? 1 : 0,
		.pWaitSemaphoreValues = &wait_value,
		.signalSemaphoreValueCount = signal ? 1 : 0,
		.pSignalSemaphoreValues = &signal_value,
	};
	const VkSubmitInfo submit = {
		.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
		.pNext = &values,
		.waitSemaphoreCount = wait ? 1 : 0,
		.pWaitSemaphores = &wait,
		.pWaitDstStageMask = &stage,
		.commandBufferCount = 1,
		.pCommandBuffers = &cmd,
		.signalSemaphoreCount = signal ? 1 : 0,
		.pSignalSemaphores = &signal,
	};
	VKS_CHECK(v, vkQueueSubmit(v->queue, 1, &submit, fence));
}

static VkResult wait_value(struct vks *v, VkSemaphore s, uint64_t value, uint64_t timeout)
{
	const VkSemaphoreWaitInfo info = {
		.sType = VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO,
		.semaphoreCount = 1,
		.pSemaphores = &s,
		.pValues = &value,
	};
	return vkWaitSemaphores(v->dev, &info, timeout);
}

static VkResult signal_value(struct vks *v, VkSemaphore s, uint64_t value)
{
	const VkSemaphoreSignalInfo info = {
		.sType = VK_STRUCTURE_TYPE_SEMAPHORE_SIGNAL_INFO,
		.semaphore = s,
		.value = value,
	};
	return vkSignalSemaphore(v->dev, &info);
}

static uint64_t counter_value(struct vks *v, VkSemaphore s)
{
	uint64_t x = 0;
	VKS_CHECK(v, vkGetSemaphoreCounterValue(v->dev, s, &x));
	return x;
}

struct host_thread {
	struct vks *v;
	VkSemaphore t, other;
	int role;
	VkResult r1, r2;
	uint64_t seen;
	double at;
};

static void *host_main(void *arg)
{
	struct host_thread *h = arg;
	switch (h->role) {
	case 0: /* the first signal, from the host, after the queue already waits for it */
		sleep_ms(30);
		h->at = vks_now_ms();
		h->r1 = signal_value(h->v, h->t, 1);
		break;
	case 1: /* waits for the queue's signal, then lets the second batch go */
		h->r1 = wait_value(h->v, h->t, 2, VKS_WAIT_NS);
		h->seen = counter_value(h->v, h->t);
		h->at = vks_now_ms();
		h->r2 = signal_value(h->v, h->t, 3);
		break;
	case 2: { /* waits for the last value, or for a semaphore nobody signals (waitAny) */
		const VkSemaphore both[2] = { h->other, h->t };
		const uint64_t values[2] = { 1, 4 };
		const VkSemaphoreWaitInfo info = {
			.sType = VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO,
			.flags = VK_SEMAPHORE_WAIT_ANY_BIT,
			.semaphoreCount = 2,
			.pSemaphores = both,
			.pValues = values,
		};
		h->r1 = vkWaitSemaphores(h->v->dev, &info, VKS_WAIT_NS);
		h->seen = counter_value(h->v, h->t);
		h->at = vks_now_ms();
		break;
	}
	}
	return NULL;
}

static void timeline_threads(struct vks *v, struct steps *s)
{
	v->current = "sync.timeline_threads";
	memset(s->state.map, 0, s->state.size);
	VkSemaphore t = make_semaphore(v, true, 0), never = make_semaphore(v, true, 0);
	struct host_thread h[3];
	pthread_t tid[3];
	for (int i = 0; i < 3; i++) {
		h[i] = (struct host_thread){ .v = v, .t = t, .other = never, .role = i };
		if (pthread_create(&tid[i], NULL, host_main, &h[i]))
			vks_fatal(v, "pthread_create", VK_ERROR_INITIALIZATION_FAILED);
	}
	VkCommandBuffer a = step_cmd(v, s, 0, 1), b = step_cmd(v, s, 1, 10);
	VkFence fence = make_fence(v, false);
	submit_step(v, a, t, 1, t, 2, VK_NULL_HANDLE); /* host thread 0 releases it */
	submit_step(v, b, t, 3, t, 4, fence); /* host thread 1 releases it */
	VkResult main_wait = wait_value(v, t, 4, VKS_WAIT_NS);
	for (int i = 0; i < 3; i++)
		pthread_join(tid[i], NULL);
	VKS_CHECK(v, vkWaitForFences(v->dev, 1, &fence, VK_TRUE, VKS_WAIT_NS));
	uint64_t final = counter_value(v, t);
	const uint32_t *st = s->state.map;
	bool ok = main_wait == VK_SUCCESS && h[0].r1 == VK_SUCCESS && h[1].r1 == VK_SUCCESS &&
		  h[1].r2 == VK_SUCCESS && h[2].r1 == VK_SUCCESS && h[1].seen >= 2 &&
		  h[2].seen == 4 && final == 4 && st[0] == 11 && st[1] == 0 && st[2] == 1 &&
		  h[1].at >= h[0].at;
	if (!ok)
		vks_note(v,
			 "waits %s/%s/%s/%s signal %s, seen %llu and %llu, final %llu, counter %u "
			 "log %u %u",
			 vks_result_name(main_wait), vks_result_name(h[0].r1),
			 vks_result_name(h[1].r1), vks_result_name(h[2].r1),
			 vks_result_name(h[1].r2), (unsigned long long)h[1].seen,
			 (unsigned long long)h[2].seen, (unsigned long long) final, st[0], st[1],
			 st[2]);
	const uint64_t facts[] = { final, st[0], st[1], st[2] };
	vks_report(v, "sync.timeline_threads", ok, vks_hash(VKS_HASH_INIT, facts, sizeof(facts)), 0,
		   "threads=3");
	vkDestroyFence(v->dev, fence, NULL);
	vkFreeCommandBuffers(v->dev, v->pool, 1, &a);
	vkFreeCommandBuffers(v->dev, v->pool, 1, &b);
	vkDestroySemaphore(v->dev, t, NULL);
	vkDestroySemaphore(v->dev, never, NULL);
}

static void timeline_queue(struct vks *v, struct steps *s)
{
	v->current = "sync.timeline_queue";
	memset(s->state.map, 0, s->state.size);
	VkSemaphore t = make_semaphore(v, true, 5);
	VkCommandBuffer cmds[8];
	VkFence fence = make_fence(v, false);
	for (uint32_t k = 0; k < 8; k++) {
		cmds[k] = step_cmd(v, s, k, 1u << k);
		/* Batch k waits for 5 + 10k and signals 5 + 10(k+1). */
		submit_step(v, cmds[k], t, 5 + 10 * k, t, 5 + 10 * (k + 1),
			    k == 7 ? fence : VK_NULL_HANDLE);
	}
	VKS_CHECK(v, vkWaitForFences(v->dev, 1, &fence, VK_TRUE, VKS_WAIT_NS));
	VKS_CHECK(v, wait_value(v, t, 85, VKS_WAIT_NS));
	uint64_t final = counter_value(v, t);
	const uint32_t *st = s->state.map;
	bool ok = final == 85 && st[0] == 255;
	for (uint32_t k = 0; k < 8; k++)
		ok = ok && st[1 + k] == (1u << k) - 1;
	if (!ok)
		vks_note(v, "final value %llu, counter %u", (unsigned long long) final, st[0]);
	vks_report(v, "sync.timeline_queue", ok, vks_hash(VKS_HASH_INIT, st, 9 * 4), 0,
		   "batches=8");
	for (uint32_t k = 0; k < 8; k++)
		vkFreeCommandBuffers(v->dev, v->pool, 1, &cmds[k]);
	vkDestroyFence(v->dev, fence, NULL);
	vkDestroySemaphore(v->dev, t, NULL);
}

static void binary(struct vks *v, struct steps *s)
{
	v->current = "sync.binary";
	memset(s->state.map, 0, s->state.size);
	VkSemaphore b1 = make_semaphore(v, false, 0), b2 = make_semaphore(v, false, 0);
	VkFence fence = make_fence(v, false);
	VkCommandBuffer cmds[6];
	for (uint32_t round = 0; round < 2; round++) {
		uint32_t k = 3 * round;
		cmds[k] = step_cmd(v, s, k, 1);
		cmds[k + 1] = step_cmd(v, s, k + 1, 2);
		cmds[k + 2] = step_cmd(v, s, k + 2, 4);
		submit_step(v, cmds[k], VK_NULL_HANDLE, 0, b1, 0, VK_NULL_HANDLE);
		submit_step(v, cmds[k + 1], b1, 0, b2, 0, VK_NULL_HANDLE);
		submit_step(v, cmds[k + 2], b2, 0, VK_NULL_HANDLE, 0, fence);
		VKS_CHECK(v, vkWaitForFences(v->dev, 1, &fence, VK_TRUE, VKS_WAIT_NS));
		VKS_CHECK(v, vkResetFences(v->dev, 1, &fence));
	}
	const uint32_t *st = s->state.map;
	const uint32_t want[7] = { 14, 0, 1, 3, 7, 8, 10 };
	bool ok = vks_compare_u32(v, "counter and log", st, want, 7) == 0;
	vks_report(v, "sync.binary", ok, vks_hash(VKS_HASH_INIT, st, sizeof(want)), 0, "rounds=2");
	for (uint32_t k = 0; k < 6; k++)
		vkFreeCommandBuffers(v->dev, v->pool, 1, &cmds[k]);
	vkDestroyFence(v->dev, fence, NULL);
	vkDestroySemaphore(v->dev, b1, NULL);
	vkDestroySemaphore(v->dev, b2, NULL);
}

static void fences(struct vks *v, struct steps *s)
{
	v->current = "sync.fence";
	memset(s->state.map, 0, s->state.size);
	VkResult r[10];
	VkFence f0 = make_fence(v, true), f1 = make_fence(v, false), f2 = make_fence(v, false);
	r[0] = vkGetFenceStatus(v->dev, f0); /* SUCCESS */
	VKS_CHECK(v, vkResetFences(v->dev, 1, &f0));
	r[1] = vkGetFenceStatus(v->dev, f0); /* NOT_READY */
	r[2] = vkWaitForFences(v->dev, 1, &f0, VK_TRUE, 0); /* TIMEOUT */
	r[3] = vkWaitForFences(v->dev, 1, &f0, VK_TRUE, 10000000); /* TIMEOUT */
	VkCommandBuffer a = step_cmd(v, s, 0, 1), b = step_cmd(v, s, 1, 2);
	submit_step(v, a, VK_NULL_HANDLE, 0, VK_NULL_HANDLE, 0, f1);
	submit_step(v, b, VK_NULL_HANDLE, 0, VK_NULL_HANDLE, 0, f2);
	const VkFence both[2] = { f1, f2 };
	r[4] = vkWaitForFences(v->dev, 2, both, VK_FALSE, VKS_WAIT_NS); /* SUCCESS */
	r[5] = vkWaitForFences(v->dev, 2, both, VK_TRUE, VKS_WAIT_NS); /* SUCCESS */
	r[6] = vkGetFenceStatus(v->dev, f1); /* SUCCESS */
	/* An empty submission signals its fence once earlier work is done. */
	VKS_CHECK(v, vkQueueSubmit(v->queue, 0, NULL, f0));
	r[7] = vkWaitForFences(v->dev, 1, &f0, VK_TRUE, VKS_WAIT_NS); /* SUCCESS */
	VKS_CHECK(v, vkResetFences(v->dev, 2, both));
	r[8] = vkGetFenceStatus(v->dev, f1); /* NOT_READY */
	r[9] = vkGetFenceStatus(v->dev, f2); /* NOT_READY */
	const VkResult want[10] = {
		VK_SUCCESS, VK_NOT_READY, VK_TIMEOUT, VK_TIMEOUT,   VK_SUCCESS,
		VK_SUCCESS, VK_SUCCESS,	  VK_SUCCESS, VK_NOT_READY, VK_NOT_READY
	};
	bool ok = memcmp(r, want, sizeof(want)) == 0;
	for (int i = 0; i < 10; i++)
		if (r[i] != want[i])
			vks_note(v, "step %d returned %s, want %s", i, vks_result_name(r[i]),
				 vks_result_name(want[i]));
	const uint32_t *st = s->state.map;
	ok = ok && st[0] == 3;
	int32_t codes[11];
	for (int i = 0; i < 10; i++)
		codes[i] = (int32_t)r[i];
	codes[10] = (int32_t)st[0];
	vks_report(v, "sync.fence", ok, vks_hash(VKS_HASH_INIT, codes, sizeof(codes)), 0, NULL);
	vkFreeCommandBuffers(v->dev, v->pool, 1, &a);
	vkFreeCommandBuffers(v->dev, v->pool, 1, &b);
	vkDestroyFence(v->dev, f0, NULL);
	vkDestroyFence(v->dev, f1, NULL);
	vkDestroyFence(v->dev, f2, NULL);
}

static void wait_idle(struct vks *v, struct steps *s)
{
	v->current = "sync.wait_idle";
	memset(s->state.map, 0, s->state.size);
	VkCommandBuffer cmds[8];
	for (uint32_t k = 0; k < 8; k++) {
		cmds[k] = step_cmd(v, s, k, 1);
		submit_step(v, cmds[k], VK_NULL_HANDLE, 0, VK_NULL_HANDLE, 0, VK_NULL_HANDLE);
		if (k == 3)
			VKS_CHECK(v, vkQueueWaitIdle(v->queue));
	}
	const uint32_t after_queue_idle = *(const uint32_t *)s->state.map;
	VKS_CHECK(v, vkDeviceWaitIdle(v->dev));
	const uint32_t *st = s->state.map;
	bool ok = after_queue_idle >= 4 && st[0] == 8;
	for (uint32_t k = 0; k < 8; k++)
		ok = ok && st[1 + k] == k;
	if (!ok)
		vks_note(v, "counter %u after vkQueueWaitIdle, %u after vkDeviceWaitIdle",
			 after_queue_idle, st[0]);
	vks_report(v, "sync.wait_idle", ok, vks_hash(VKS_HASH_INIT, st, 9 * 4), 0, NULL);
	for (uint32_t k = 0; k < 8; k++)
		vkFreeCommandBuffers(v->dev, v->pool, 1, &cmds[k]);
}

int main(int argc, char **argv)
{
	struct vks v;
	struct steps s;
	vks_init(&v, "vks-sync", argc, argv, 0);
	v.current = "sync";
	vks_buf_create(&v, &s.state, (1 + LOG) * 4, VKS_USAGE_ALL);
	vks_pipe_create(&v, &s.pipe, spv_increment, sizeof(spv_increment), 1, 8, NULL);
	vks_pipe_bind(&v, &s.pipe, (struct vks_buf *[]){ &s.state });
	if (v.on12.timelineSemaphore) {
		timeline_threads(&v, &s);
		timeline_queue(&v, &s);
	} else {
		vks_skip(&v, "sync.timeline_threads", "timelineSemaphore");
		vks_skip(&v, "sync.timeline_queue", "timelineSemaphore");
	}
	binary(&v, &s);
	fences(&v, &s);
	wait_idle(&v, &s);
	vks_pipe_destroy(&v, &s.pipe);
	vks_buf_destroy(&v, &s.state);
	return vks_finish(&v);
}
