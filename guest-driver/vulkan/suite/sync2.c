/* SPDX-License-Identifier: MIT */
/*
 * vks-sync2: Vulkan 1.3's synchronization2 (skipped when the device lacks the feature).
 *
 *   sync2.barrier2: a chain of dependent dispatches separated by vkCmdPipelineBarrier2 with
 *     VkMemoryBarrier2 and VkBufferMemoryBarrier2, and vkCmdWriteTimestamp2 around it.
 *   sync2.event2: vkCmdSetEvent2 / vkCmdWaitEvents2 with a VkDependencyInfo between steps.
 *   sync2.submit2: vkQueueSubmit2 with VkCommandBufferSubmitInfo and timeline
 *     VkSemaphoreSubmitInfo waits and signals (stage masks), released by a host signal.
 */
#include "vks.h"

#include "spv_increment.inc"
#include "spv_twice_plus.inc"

#include <string.h>

#define N 1024

static void barrier2(VkCommandBuffer cmd, VkBuffer buf)
{
	const VkMemoryBarrier2 mb = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER_2,
		.srcStageMask = VK_PIPELINE_STAGE_2_COMPUTE_SHADER_BIT,
		.srcAccessMask = VK_ACCESS_2_SHADER_STORAGE_WRITE_BIT,
		.dstStageMask = VK_PIPELINE_STAGE_2_COMPUTE_SHADER_BIT,
		.dstAccessMask = VK_ACCESS_2_SHADER_STORAGE_READ_BIT,
	};
	const VkBufferMemoryBarrier2 bb = {
		.sType = VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER_2,
		.srcStageMask = VK_PIPELINE_STAGE_2_COMPUTE_SHADER_BIT,
		.srcAccessMask = VK_ACCESS_2_SHADER_STORAGE_READ_BIT,
		.dstStageMask = VK_PIPELINE_STAGE_2_COMPUTE_SHADER_BIT,
		.dstAccessMask = VK_ACCESS_2_SHADER_STORAGE_WRITE_BIT,
		.srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
		.dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
		.buffer = buf,
		.offset = 0,
		.size = VK_WHOLE_SIZE,
	};
	const VkDependencyInfo dep = {
		.sType = VK_STRUCTURE_TYPE_DEPENDENCY_INFO,
		.memoryBarrierCount = 1,
		.pMemoryBarriers = &mb,
		.bufferMemoryBarrierCount = 1,
		.pBufferMemoryBarriers = &bb,
	};
	vkCmdPipelineBarrier2(cmd, &dep);
}

static void host_barrier2(VkCommandBuffer cmd)
{
	const VkMemoryBarrier2 mb = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER_2,
		.srcStageMask = VK_PIPELINE_STAGE_2_COMPUTE_SHADER_BIT,
		.srcAccessMask = VK_ACCESS_2_SHADER_STORAGE_WRITE_BIT,
		.dstStageMask = VK_PIPELINE_STAGE_2_HOST_BIT,
		.dstAccessMask = VK_ACCESS_2_HOST_READ_BIT,
	};
	const VkDependencyInfo dep = {
		.sType = VK_STRUCTURE_TYPE_DEPENDENCY_INFO,
		.memoryBarrierCount = 1,
		.pMemoryBarriers = &mb,
	};
	vkCmdPipelineBarrier2(cmd, &dep);
}

/* Ping-pong between a and b: each step b = 2a + k or a = 2b + k. */
static void chain(struct vks *v, struct vks_pipe *ab, struct vks_pipe *ba, struct vks_buf *a,
		  struct vks_buf *b, bool events)
{
	const char *name = events ? "sync2.event2" : "sync2.barrier2";
	v->current = name;
	uint32_t *pa = a->map, want[N];
	for (uint32_t i = 0; i < N; i++)
		want[i] = pa[i] = i * 5;
	const VkEventCreateInfo ei = { .sType = VK_STRUCTURE_TYPE_EVENT_CREATE_INFO };
	VkEvent e[6];
	for (int k = 0; k < 6; k++)
		VKS_CHECK(v, vkCreateEvent(v->dev, &ei, NULL, &e[k]));
	VkCommandBuffer cmd = vks_cmd_begin(v);
	vkCmdResetQueryPool(cmd, v->timer, 0, 2);
	vkCmdWriteTimestamp2(cmd, VK_PIPELINE_STAGE_2_TOP_OF_PIPE_BIT, v->timer, 0);
	for (uint32_t s = 0; s < 6; s++) {
		const uint32_t push[2] = { N, s + 1 };
		vks_pipe_use(s % 2 ? ba : ab, cmd, push, sizeof(push));
		vkCmdDispatch(cmd, N / 64, 1, 1);
		for (uint32_t i = 0; i < N; i++)
			want[i] = 2 * want[i] + s + 1;
		if (!events) {
			barrier2(cmd, s % 2 ? b->buf : a->buf); /* the one just read */
			continue;
		}
		const VkMemoryBarrier2 mb = {
			.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER_2,
			.srcStageMask = VK_PIPELINE_STAGE_2_COMPUTE_SHADER_BIT,
			.srcAccessMask = VK_ACCESS_2_SHADER_STORAGE_WRITE_BIT,
			.dstStageMask = VK_PIPELINE_STAGE_2_COMPUTE_SHADER_BIT,
			.dstAccessMask = VK_ACCESS_2_SHADER_STORAGE_READ_BIT |
					 VK_ACCESS_2_SHADER_STORAGE_WRITE_BIT,
		};
		const VkDependencyInfo dep = {
			.sType = VK_STRUCTURE_TYPE_DEPENDENCY_INFO,
			.memoryBarrierCount = 1,
			.pMemoryBarriers = &mb,
		};
		/* One event per step: a set after a reset of the same event would need a barrier
		 * of its own, which would make the events pointless. */
		vkCmdSetEvent2(cmd, e[s], &dep);
		vkCmdWaitEvents2(cmd, 1, &e[s], &dep);
	}
	host_barrier2(cmd);
	vkCmdWriteTimestamp2(cmd, VK_PIPELINE_STAGE_2_ALL_COMMANDS_BIT, v->timer, 1);
	vks_cmd_submit_wait(v, cmd);
	/* Six steps: the last (s = 5, ba) wrote a; the events the device set are set. */
	bool ok = vks_compare_u32(v, "a", a->map, want, N) == 0;
	for (int k = 0; k < 6 && events; k++) {
		VkResult st = vkGetEventStatus(v->dev, e[k]);
		if (st != VK_EVENT_SET) {
			vks_note(v, "event %d: %s", k, vks_result_name(st));
			ok = false;
		}
	}
	vks_report(v, name, ok, vks_hash(VKS_HASH_INIT, a->map, N * 4), vks_timer_ms(v), "steps=6");
	for (int k = 0; k < 6; k++)
		vkDestroyEvent(v->dev, e[k], NULL);
}

static void submit2(struct vks *v, struct vks_pipe *inc, struct vks_buf *state)
{
	v->current = "sync2.submit2";
	memset(state->map, 0, state->size);
	const VkSemaphoreTypeCreateInfo type = {
		.sType = VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO,
		.semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE,
	};
	const VkSemaphoreCreateInfo si = { .sType = VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO,
					   .pNext = &type };
	VkSemaphore t;
	VKS_CHECK(v, vkCreateSemaphore(v->dev, &si, NULL, &t));
	VkCommandBuffer cmds[3];
	VkCommandBufferSubmitInfo cbi[3];
	VkSemaphoreSubmitInfo waits[3], signals[3];
	VkSubmitInfo2 submits[3];
	for (uint32_t k = 0; k < 3; k++) {
		const uint32_t push[2] = { k, 1u << k };
		cmds[k] = vks_cmd_begin(v);
		vks_pipe_use(inc, cmds[k], push, sizeof(push));
		vkCmdDispatch(cmds[k], 1, 1, 1);
		host_barrier2(cmds[k]);
		VKS_CHECK(v, vkEndCommandBuffer(cmds[k]));
		cbi[k] = (VkCommandBufferSubmitInfo){
			.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_SUBMIT_INFO,
			.commandBuffer = cmds[k],
		};
		/* Batch k waits for 10k + 1 and signals 10(k+1); the host gives the first value. */
		waits[k] = (VkSemaphoreSubmitInfo){
			.sType = VK_STRUCTURE_TYPE_SEMAPHORE_SUBMIT_INFO,
			.semaphore = t,
			.value = k == 0 ? 1 : 10 * k,
			.stageMask = VK_PIPELINE_STAGE_2_COMPUTE_SHADER_BIT,
		};
		signals[k] = (VkSemaphoreSubmitInfo){
			.sType = VK_STRUCTURE_TYPE_SEMAPHORE_SUBMIT_INFO,
			.semaphore = t,
			.value = 10 * (k + 1),
			.stageMask = VK_PIPELINE_STAGE_2_ALL_COMMANDS_BIT,
		};
		submits[k] = (VkSubmitInfo2){
			.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO_2,
			.waitSemaphoreInfoCount = 1,
			.pWaitSemaphoreInfos = &waits[k],
			.commandBufferInfoCount = 1,
			.pCommandBufferInfos = &cbi[k],
			.signalSemaphoreInfoCount = 1,
			.pSignalSemaphoreInfos = &signals[k],
		};
	}
	VkFence fence;
	const VkFenceCreateInfo fi = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
	VKS_CHECK(v, vkCreateFence(v->dev, &fi, NULL, &fence));
	VKS_CHECK(v, vkQueueSubmit2(v->queue, 3, submits, fence));
	uint64_t before = 0;
	VKS_CHECK(v, vkGetSemaphoreCounterValue(v->dev, t, &before));
	const VkSemaphoreSignalInfo go = {
		.sType = VK_STRUCTURE_TYPE_SEMAPHORE_SIGNAL_INFO,
		.semaphore = t,
		.value = 1,
	};
	VKS_CHECK(v, vkSignalSemaphore(v->dev, &go));
	VKS_CHECK(v, vkWaitForFences(v->dev, 1, &fence, VK_TRUE, VKS_WAIT_NS));
	/* The fence does not order the host's view of the semaphore's value: wait for it. */
	const uint64_t last = 30;
	const VkSemaphoreWaitInfo wi = {
		.sType = VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO,
		.semaphoreCount = 1,
		.pSemaphores = &t,
		.pValues = &last,
	};
	VKS_CHECK(v, vkWaitSemaphores(v->dev, &wi, VKS_WAIT_NS));
	uint64_t after = 0;
	VKS_CHECK(v, vkGetSemaphoreCounterValue(v->dev, t, &after));
	const uint32_t *st = state->map;
	bool ok =
		before == 0 && after == 30 && st[0] == 7 && st[1] == 0 && st[2] == 1 && st[3] == 3;
	if (!ok)
		vks_note(v, "semaphore %llu then %llu, counter %u, log %u %u %u",
			 (unsigned long long)before, (unsigned long long)after, st[0], st[1], st[2],
			 st[3]);
	vks_report(v, "sync2.submit2", ok, vks_hash(VKS_HASH_INIT, st, 16), 0, "batches=3");
	vkDestroyFence(v->dev, fence, NULL);
	vkFreeCommandBuffers(v->dev, v->pool, 3, cmds);
	vkDestroySemaphore(v->dev, t, NULL);
}

int main(int argc, char **argv)
{
	struct vks v;
	vks_init(&v, "vks-sync2", argc, argv, VKS_WANT_SYNC2);
	v.current = "sync2";
	if (v.api < VK_API_VERSION_1_3 || !v.on13.synchronization2 || !v.timer ||
	    !v.on12.timelineSemaphore) {
		vks_skip(&v, "sync2.barrier2", "synchronization2");
		vks_skip(&v, "sync2.event2", "synchronization2");
		vks_skip(&v, "sync2.submit2", "synchronization2");
		return vks_finish(&v);
	}
	struct vks_buf a, b, state;
	vks_buf_create(&v, &a, N * 4, VKS_USAGE_ALL);
	vks_buf_create(&v, &b, N * 4, VKS_USAGE_ALL);
	vks_buf_create(&v, &state, 64, VKS_USAGE_ALL);
	struct vks_pipe ab, ba, inc;
	vks_pipe_create(&v, &ab, spv_twice_plus, sizeof(spv_twice_plus), 2, 8, NULL);
	vks_pipe_create(&v, &ba, spv_twice_plus, sizeof(spv_twice_plus), 2, 8, NULL);
	vks_pipe_create(&v, &inc, spv_increment, sizeof(spv_increment), 1, 8, NULL);
	vks_pipe_bind(&v, &ab, (struct vks_buf *[]){ &a, &b });
	vks_pipe_bind(&v, &ba, (struct vks_buf *[]){ &b, &a });
	vks_pipe_bind(&v, &inc, (struct vks_buf *[]){ &state });
	chain(&v, &ab, &ba, &a, &b, false);
	chain(&v, &ab, &ba, &a, &b, true);
	submit2(&v, &inc, &state);
	vks_pipe_destroy(&v, &ab);
	vks_pipe_destroy(&v, &ba);
	vks_pipe_destroy(&v, &inc);
	vks_buf_destroy(&v, &a);
	vks_buf_destroy(&v, &b);
	vks_buf_destroy(&v, &state);
	return vks_finish(&v);
}
