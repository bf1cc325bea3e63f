/* SPDX-License-Identifier: MIT */
/*
 * vks-secondary: secondary command buffers.
 *
 *   cmd.secondary: two secondaries (each binds its pipeline and set, pushes, dispatches) run by
 *     vkCmdExecuteCommands in a primary, with a barrier between them in the primary, and the
 *     primary's own dispatch after them (its state rebound: secondaries do not leave theirs).
 *   cmd.secondary_reuse: the same secondaries submitted again in a second primary, and one
 *     recorded with SIMULTANEOUS_USE executed twice in one primary.
 */
#include "vks.h"

#include "spv_increment.inc"
#include "spv_twice_plus.inc"

#include <string.h>

#define N 1024

static VkCommandBuffer secondary(struct vks *v, VkCommandBufferUsageFlags flags, struct vks_pipe *p,
				 const void *push, uint32_t push_size, uint32_t groups)
{
	const VkCommandBufferAllocateInfo alloc = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
		.commandPool = v->pool,
		.level = VK_COMMAND_BUFFER_LEVEL_SECONDARY,
		.commandBufferCount = 1,
	};
	VkCommandBuffer cmd;
	VKS_CHECK(v, vkAllocateCommandBuffers(v->dev, &alloc, &cmd));
	const VkCommandBufferInheritanceInfo inherit = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_INHERITANCE_INFO,
	};
	const VkCommandBufferBeginInfo begin = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
		.flags = flags,
		.pInheritanceInfo = &inherit,
	};
	VKS_CHECK(v, vkBeginCommandBuffer(cmd, &begin));
	vks_pipe_use(p, cmd, push, push_size);
	vkCmdDispatch(cmd, groups, 1, 1);
	VKS_CHECK(v, vkEndCommandBuffer(cmd));
	return cmd;
}

int main(int argc, char **argv)
{
	struct vks v;
	vks_init(&v, "vks-secondary", argc, argv, 0);
	v.current = "cmd.secondary";
	struct vks_buf a, b, c, state;
	vks_buf_create(&v, &a, N * 4, VKS_USAGE_ALL);
	vks_buf_create(&v, &b, N * 4, VKS_USAGE_ALL);
	vks_buf_create(&v, &c, N * 4, VKS_USAGE_ALL);
	vks_buf_create(&v, &state, 64 * 4, VKS_USAGE_ALL);
	memset(state.map, 0, state.size);
	uint32_t *pa = a.map, want[N];
	for (uint32_t i = 0; i < N; i++) {
		pa[i] = i ^ 0x5a5;
		want[i] = 2 * (2 * pa[i] + 1) + 2;
	}
	struct vks_pipe ab, bc, inc;
	vks_pipe_create(&v, &ab, spv_twice_plus, sizeof(spv_twice_plus), 2, 8, NULL);
	vks_pipe_create(&v, &bc, spv_twice_plus, sizeof(spv_twice_plus), 2, 8, NULL);
	vks_pipe_create(&v, &inc, spv_increment, sizeof(spv_increment), 1, 8, NULL);
	vks_pipe_bind(&v, &ab, (struct vks_buf *[]){ &a, &b });
	vks_pipe_bind(&v, &bc, (struct vks_buf *[]){ &b, &c });
	vks_pipe_bind(&v, &inc, (struct vks_buf *[]){ &state });
	const uint32_t push1[2] = { N, 1 }, push2[2] = { N, 2 }, step[2] = { 0, 1 };
	VkCommandBuffer s1 = secondary(&v, 0, &ab, push1, 8, N / 64);
	VkCommandBuffer s2 = secondary(&v, 0, &bc, push2, 8, N / 64);
	const uint32_t again_step[2] = { 1, 10 };
	VkCommandBuffer s3 =
		secondary(&v, VK_COMMAND_BUFFER_USAGE_SIMULTANEOUS_USE_BIT, &inc, again_step, 8, 1);

	VkCommandBuffer cmd = vks_cmd_begin(&v);
	vks_timer_begin(&v, cmd);
	vkCmdExecuteCommands(cmd, 1, &s1);
	vks_barrier(cmd);
	vkCmdExecuteCommands(cmd, 1, &s2);
	vks_barrier(cmd);
	vks_pipe_use(&inc, cmd, step, 8);
	vkCmdDispatch(cmd, 1, 1, 1);
	vks_barrier(cmd);
	vks_timer_end(&v, cmd);
	vks_cmd_submit_wait(&v, cmd);
	const uint32_t *st = state.map;
	bool ok = vks_compare_u32(&v, "c", c.map, want, N) == 0 && st[0] == 1;
	uint64_t digest = vks_hash(vks_hash(VKS_HASH_INIT, c.map, N * 4), st, 4);
	vks_report(&v, "cmd.secondary", ok, digest, vks_timer_ms(&v), NULL);

	v.current = "cmd.secondary_reuse";
	memset(b.map, 0, N * 4);
	memset(c.map, 0, N * 4);
	cmd = vks_cmd_begin(&v);
	vkCmdExecuteCommands(cmd, 1, &s1);
	vks_barrier(cmd);
	vkCmdExecuteCommands(cmd, 1, &s2);
	vks_barrier(cmd);
	vkCmdExecuteCommands(cmd, 1, &s3);
	vks_barrier(cmd);
	vkCmdExecuteCommands(cmd, 1, &s3);
	vks_barrier(cmd);
	vks_cmd_submit_wait(&v, cmd);
	/* s3 ran twice: log[1] = 1 (after the primary's step), then counter 11, log[1] = 11. */
	ok = vks_compare_u32(&v, "c", c.map, want, N) == 0 && st[0] == 21 && st[2] == 11;
	if (st[0] != 21 || st[2] != 11)
		vks_note(&v, "counter %u, log %u, want 21 and 11", st[0], st[2]);
	digest = vks_hash(vks_hash(VKS_HASH_INIT, c.map, N * 4), st, 12);
	vks_report(&v, "cmd.secondary_reuse", ok, digest, 0, NULL);

	VkCommandBuffer secs[3] = { s1, s2, s3 };
	vkFreeCommandBuffers(v.dev, v.pool, 3, secs);
	vks_pipe_destroy(&v, &ab);
	vks_pipe_destroy(&v, &bc);
	vks_pipe_destroy(&v, &inc);
	vks_buf_destroy(&v, &a);
	vks_buf_destroy(&v, &b);
	vks_buf_destroy(&v, &c);
	vks_buf_destroy(&v, &state);
	return vks_finish(&v);
}
