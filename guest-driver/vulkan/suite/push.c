/* SPDX-License-Identifier: MIT */
/*
 * vks-push: push constants. The pipeline layout's range is [16, 128) (an offset, and the
 * device's guaranteed maximum size); the program pushes it whole, then in pieces at several
 * offsets between dispatches, and checks each dispatch saw exactly the bytes last pushed at
 * every offset (push.offsets). A second pipeline with the same layout, bound without pushing
 * again, must see the same values (push.persist: push constants survive a pipeline bind when
 * the layouts are compatible).
 */
#include "vks.h"

#include "spv_push.inc"

#include <string.h>

#define RANGE_OFFSET 16
#define RANGE_SIZE 112

/* The shader's block, at byte RANGE_OFFSET of push-constant space. */
struct block {
	uint32_t slot, a;
	float f;
	uint32_t b;
	uint32_t vec[6][4];
};

static void expect(uint32_t *out, const struct block *b)
{
	uint32_t *o = out + b->slot * 32;
	float twice = b->f * 2.0f;
	o[0] = b->slot;
	o[1] = b->a;
	memcpy(&o[2], &twice, 4);
	o[3] = b->b;
	memcpy(&o[4], b->vec, sizeof(b->vec));
}

static void push(struct vks *v, VkCommandBuffer cmd, VkPipelineLayout layout, const struct block *b,
		 size_t from, size_t size)
{
	vkCmdPushConstants(cmd, layout, VK_SHADER_STAGE_COMPUTE_BIT,
			   (uint32_t)(RANGE_OFFSET + from), (uint32_t)size, (const char *)b + from);
}

int main(int argc, char **argv)
{
	struct vks v;
	vks_init(&v, "vks-push", argc, argv, 0);
	v.current = "push";
	if (v.props.limits.maxPushConstantsSize < RANGE_OFFSET + RANGE_SIZE)
		vks_fatal(&v, "maxPushConstantsSize below the minimum",
			  VK_ERROR_FEATURE_NOT_PRESENT);
	struct vks_buf out;
	vks_buf_create(&v, &out, 8 * 32 * sizeof(uint32_t), VKS_USAGE_ALL);
	memset(out.map, 0, out.size);
	const VkDescriptorSetLayoutBinding binding = { 0, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1,
						       VK_SHADER_STAGE_COMPUTE_BIT, NULL };
	VkDescriptorSetLayout sl = vks_set_layout(&v, &binding, 1);
	VkPipelineLayout layout = vks_pipeline_layout(&v, &sl, 1, RANGE_OFFSET, RANGE_SIZE);
	VkShaderModule m = vks_shader(&v, spv_push, sizeof(spv_push));
	VkPipeline p1 = vks_compute_pipeline(&v, m, layout, NULL, 0, VK_NULL_HANDLE);
	VkPipeline p2 = vks_compute_pipeline(&v, m, layout, NULL, 0, VK_NULL_HANDLE);
	const VkDescriptorPoolSize ps = { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1 };
	const VkDescriptorPoolCreateInfo dp = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
		.maxSets = 1,
		.poolSizeCount = 1,
		.pPoolSizes = &ps
	};
	VkDescriptorPool pool;
	VKS_CHECK(&v, vkCreateDescriptorPool(v.dev, &dp, NULL, &pool));
	VkDescriptorSet set = vks_alloc_set(&v, pool, sl);
	vks_write_buffer(&v, set, 0, 0, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, out.buf, 0,
			 VK_WHOLE_SIZE);

	uint32_t want[8 * 32] = { 0 };
	struct block b = { .slot = 0, .a = 100, .f = 1.5f, .b = 0xdeadbeef };
	for (int k = 0; k < 6; k++)
		for (int c = 0; c < 4; c++)
			b.vec[k][c] = 0x1000u * (uint32_t)k + (uint32_t)c;

	VkCommandBuffer cmd = vks_cmd_begin(&v);
	vks_timer_begin(&v, cmd);
	vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p1);
	vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, 1, &set, 0, NULL);
	/* 0: the whole range at once. */
	push(&v, cmd, layout, &b, 0, sizeof(b));
	vkCmdDispatch(cmd, 1, 1, 1);
	expect(want, &b);
	/* 1: only slot and a (offsets 16 and 20, separately); the rest stays. */
	b.slot = 1;
	b.a = 201;
	push(&v, cmd, layout, &b, offsetof(struct block, a), 4);
	push(&v, cmd, layout, &b, offsetof(struct block, slot), 4);
	vkCmdDispatch(cmd, 1, 1, 1);
	expect(want, &b);
	/* 2: the vectors (offset 32, 96 bytes) and f (offset 24). */
	b.slot = 2;
	b.f = -0.25f;
	for (int k = 0; k < 6; k++)
		b.vec[k][k % 4] ^= 0xffff0000u;
	push(&v, cmd, layout, &b, offsetof(struct block, vec), sizeof(b.vec));
	push(&v, cmd, layout, &b, 0, 12);
	vkCmdDispatch(cmd, 1, 1, 1);
	expect(want, &b);
	/* 3: the last 4 bytes of the range and slot, in the opposite order. */
	b.slot = 3;
	b.vec[5][3] = 0x600dcafe;
	push(&v, cmd, layout, &b, offsetof(struct block, slot), 4);
	push(&v, cmd, layout, &b, sizeof(b) - 4, 4);
	vkCmdDispatch(cmd, 1, 1, 1);
	expect(want, &b);
	/* 4: another pipeline of the same layout, after one push of slot only. */
	b.slot = 4;
	push(&v, cmd, layout, &b, offsetof(struct block, slot), 4);
	vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p2);
	vkCmdDispatch(cmd, 1, 1, 1);
	expect(want, &b);
	/* 5: and back to the first, nothing pushed but the slot. */
	b.slot = 5;
	push(&v, cmd, layout, &b, offsetof(struct block, slot), 4);
	vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p1);
	vkCmdDispatch(cmd, 1, 1, 1);
	expect(want, &b);
	vks_barrier(cmd);
	vks_timer_end(&v, cmd);
	vks_cmd_submit_wait(&v, cmd);
	double ms = vks_timer_ms(&v);

	const uint32_t *o = out.map;
	v.current = "push.offsets";
	bool ok = vks_compare_u32(&v, "slots 0-3", o, want, 4 * 32) == 0;
	vks_report(&v, "push.offsets", ok, vks_hash(VKS_HASH_INIT, o, 4 * 32 * 4), ms,
		   "range=%u+%u", RANGE_OFFSET, RANGE_SIZE);
	v.current = "push.persist";
	ok = vks_compare_u32(&v, "slots 4-7", o + 4 * 32, want + 4 * 32, 4 * 32) == 0;
	vks_report(&v, "push.persist", ok, vks_hash(VKS_HASH_INIT, o + 4 * 32, 4 * 32 * 4), ms,
		   NULL);

	vkDestroyDescriptorPool(v.dev, pool, NULL);
	vkDestroyPipeline(v.dev, p1, NULL);
	vkDestroyPipeline(v.dev, p2, NULL);
	vkDestroyShaderModule(v.dev, m, NULL);
	vkDestroyPipelineLayout(v.dev, layout, NULL);
	vkDestroyDescriptorSetLayout(v.dev, sl, NULL);
	vks_buf_destroy(&v, &out);
	return vks_finish(&v);
}
