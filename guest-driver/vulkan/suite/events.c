/* SPDX-License-Identifier: MIT */
/*
 * vks-events: VkEvent set, reset and waited on by the device and the host.
 *
 *   event.device: a dispatch, vkCmdSetEvent, vkCmdWaitEvents (with a memory barrier), a
 *     dependent dispatch; the host then sees the event set, and reset after vkCmdResetEvent.
 *   event.host_set: an event set by the host (vkSetEvent) after writing the input, waited on by
 *     the device with srcStage HOST and a host-write memory barrier, then reset by the device.
 *   event.host: vkSetEvent / vkResetEvent / vkGetEventStatus on an idle event.
 */
#include "vks.h"

#include "spv_twice_plus.inc"

#include <string.h>

#define N 1024

static VkEvent make_event(struct vks *v)
{
	const VkEventCreateInfo info = { .sType = VK_STRUCTURE_TYPE_EVENT_CREATE_INFO };
	VkEvent e;
	VKS_CHECK(v, vkCreateEvent(v->dev, &info, NULL, &e));
	return e;
}

static VkResult status(struct vks *v, VkEvent e)
{
	VkResult r = vkGetEventStatus(v->dev, e);
	if (r != VK_EVENT_SET && r != VK_EVENT_RESET)
		vks_fatal(v, "vkGetEventStatus", r);
	return r;
}

static const VkMemoryBarrier compute_to_compute = {
	.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
	.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
	.dstAccessMask = VK_ACCESS_SHADER_READ_BIT,
};

static void device_events(struct vks *v, struct vks_pipe *ab, struct vks_pipe *bc,
			  struct vks_buf *a, struct vks_buf *c)
{
	v->current = "event.device";
	VkEvent e = make_event(v);
	uint32_t *pa = a->map, want[N];
	for (uint32_t i = 0; i < N; i++) {
		pa[i] = i * 3;
		want[i] = 2 * (2 * pa[i] + 1) + 2;
	}
	const uint32_t push1[2] = { N, 1 }, push2[2] = { N, 2 };
	VkCommandBuffer cmd = vks_cmd_begin(v);
	vks_timer_begin(v, cmd);
	vks_pipe_use(ab, cmd, push1, sizeof(push1));
	vkCmdDispatch(cmd, N / 64, 1, 1);
	vkCmdSetEvent(cmd, e, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT);
	vkCmdWaitEvents(cmd, 1, &e, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
			VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 1, &compute_to_compute, 0, NULL, 0,
			NULL);
	vks_pipe_use(bc, cmd, push2, sizeof(push2));
	vkCmdDispatch(cmd, N / 64, 1, 1);
	vks_barrier(cmd);
	vks_timer_end(v, cmd);
	vks_cmd_submit_wait(v, cmd);
	double ms = vks_timer_ms(v);
	VkResult after_set = status(v, e);

	cmd = vks_cmd_begin(v);
	vks_barrier(cmd);
	vkCmdResetEvent(cmd, e, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT);
	vks_cmd_submit_wait(v, cmd);
	VkResult after_reset = status(v, e);

	bool ok = vks_compare_u32(v, "c", c->map, want, N) == 0;
	if (after_set != VK_EVENT_SET || after_reset != VK_EVENT_RESET) {
		vks_note(v, "status after the command buffer set it: %s, after it reset it: %s",
			 vks_result_name(after_set), vks_result_name(after_reset));
		ok = false;
	}
	uint64_t digest = vks_hash(VKS_HASH_INIT, c->map, N * 4);
	vks_report(v, "event.device", ok, digest, ms, NULL);
	vkDestroyEvent(v->dev, e, NULL);
}

static void host_set(struct vks *v, struct vks_pipe *ab, struct vks_buf *a, struct vks_buf *b)
{
	v->current = "event.host_set";
	VkEvent e = make_event(v);
	uint32_t *pa = a->map, want[N];
	memset(b->map, 0, N * 4);
	for (uint32_t i = 0; i < N; i++) {
		pa[i] = 7 * i + 1;
		want[i] = 2 * pa[i] + 5;
	}
	/* Set by the host before the submission that waits for it (setting an event a pending
	 * command buffer waits on is invalid: VUID-vkSetEvent-event-09543). */
	VKS_CHECK(v, vkSetEvent(v->dev, e));
	const VkMemoryBarrier host_to_compute = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
		.srcAccessMask = VK_ACCESS_HOST_WRITE_BIT,
		.dstAccessMask = VK_ACCESS_SHADER_READ_BIT,
	};
	const uint32_t push[2] = { N, 5 };
	VkCommandBuffer cmd = vks_cmd_begin(v);
	vkCmdWaitEvents(cmd, 1, &e, VK_PIPELINE_STAGE_HOST_BIT,
			VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 1, &host_to_compute, 0, NULL, 0,
			NULL);
	vks_pipe_use(ab, cmd, push, sizeof(push));
	vkCmdDispatch(cmd, N / 64, 1, 1);
	vks_barrier(cmd); /* the wait completes before the reset */
	vkCmdResetEvent(cmd, e, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT);
	vks_cmd_submit_wait(v, cmd);
	VkResult after = status(v, e);
	bool ok = vks_compare_u32(v, "b", b->map, want, N) == 0 && after == VK_EVENT_RESET;
	if (after != VK_EVENT_RESET)
		vks_note(v, "status after the command buffer reset it: %s", vks_result_name(after));
	vks_report(v, "event.host_set", ok, vks_hash(VKS_HASH_INIT, b->map, N * 4), 0, NULL);
	vkDestroyEvent(v->dev, e, NULL);
}

static void host_only(struct vks *v)
{
	v->current = "event.host";
	VkEvent e = make_event(v);
	VkResult seq[5];
	seq[0] = status(v, e);
	VKS_CHECK(v, vkSetEvent(v->dev, e));
	seq[1] = status(v, e);
	VKS_CHECK(v, vkSetEvent(v->dev, e));
	seq[2] = status(v, e);
	VKS_CHECK(v, vkResetEvent(v->dev, e));
	seq[3] = status(v, e);
	VKS_CHECK(v, vkResetEvent(v->dev, e));
	seq[4] = status(v, e);
	const VkResult want[5] = { VK_EVENT_RESET, VK_EVENT_SET, VK_EVENT_SET, VK_EVENT_RESET,
				   VK_EVENT_RESET };
	bool ok = memcmp(seq, want, sizeof(want)) == 0;
	if (!ok)
		vks_note(v, "statuses %s %s %s %s %s", vks_result_name(seq[0]),
			 vks_result_name(seq[1]), vks_result_name(seq[2]), vks_result_name(seq[3]),
			 vks_result_name(seq[4]));
	int32_t codes[5];
	for (int i = 0; i < 5; i++)
		codes[i] = (int32_t)seq[i];
	vks_report(v, "event.host", ok, vks_hash(VKS_HASH_INIT, codes, sizeof(codes)), 0, NULL);
	vkDestroyEvent(v->dev, e, NULL);
}

int main(int argc, char **argv)
{
	struct vks v;
	vks_init(&v, "vks-events", argc, argv, 0);
	v.current = "events";
	struct vks_buf a, b, c;
	vks_buf_create(&v, &a, N * 4, VKS_USAGE_ALL);
	vks_buf_create(&v, &b, N * 4, VKS_USAGE_ALL);
	vks_buf_create(&v, &c, N * 4, VKS_USAGE_ALL);
	struct vks_pipe ab, bc;
	vks_pipe_create(&v, &ab, spv_twice_plus, sizeof(spv_twice_plus), 2, 8, NULL);
	vks_pipe_create(&v, &bc, spv_twice_plus, sizeof(spv_twice_plus), 2, 8, NULL);
	vks_pipe_bind(&v, &ab, (struct vks_buf *[]){ &a, &b });
	vks_pipe_bind(&v, &bc, (struct vks_buf *[]){ &b, &c });
	device_events(&v, &ab, &bc, &a, &c);
	host_set(&v, &ab, &a, &b);
	host_only(&v);
	vks_pipe_destroy(&v, &ab);
	vks_pipe_destroy(&v, &bc);
	vks_buf_destroy(&v, &a);
	vks_buf_destroy(&v, &b);
	vks_buf_destroy(&v, &c);
	return vks_finish(&v);
}
