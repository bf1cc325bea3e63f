/* SPDX-License-Identifier: MIT */
/*
 * vks-scan: exclusive prefix sum (mod 2^32) of --size uints (default 1 Mi) in place, with the
 * classic multi-level scheme: scan 512-element blocks and collect their totals, scan the totals
 * the same way (recursively, in a second buffer), then add each block's scanned total back.
 * Levels are separate dispatches in one command buffer with barriers between them.
 */
#include "vks.h"

#include "spv_scan_add.inc"
#include "spv_scan_block.inc"

#include <stdlib.h>
#include <string.h>

#define BLOCK 512
#define MAX_LEVELS 8

struct level {
	uint32_t n; /* elements of this level */
	uint32_t offset; /* where they start: in the data buffer for level 0, else in `sums` */
	uint32_t sums; /* where this level's block totals go in `sums` */
	uint32_t blocks;
};

struct scan {
	struct vks_pipe block, add;
	VkDescriptorPool pool;
	VkDescriptorSet block_sets[2], add_sets[2]; /* [0]: (data, sums), [1]: (sums, sums) */
	struct vks_buf data, sums;
	uint32_t *orig;
	struct level levels[MAX_LEVELS];
	uint32_t nlevels;
	uint64_t n;
};

static void prepare(struct vks *v, void *ctx)
{
	struct scan *s = ctx;
	memcpy(s->data.map, s->orig, s->n * sizeof(uint32_t));
}

static void dispatch(struct vks *v, VkCommandBuffer cmd, struct vks_pipe *p, VkDescriptorSet set,
		     const struct level *l)
{
	uint32_t gx, gy;
	const uint32_t push[3] = { l->n, l->offset, l->sums };
	vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
	vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0,
				NULL);
	vkCmdPushConstants(cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(push), push);
	vks_groups(v, l->blocks, &gx, &gy);
	vkCmdDispatch(cmd, gx, gy, 1);
	vks_barrier(cmd);
}

static void record(struct vks *v, VkCommandBuffer cmd, void *ctx)
{
	struct scan *s = ctx;
	for (uint32_t i = 0; i < s->nlevels; i++)
		dispatch(v, cmd, &s->block, s->block_sets[i != 0], &s->levels[i]);
	for (uint32_t i = s->nlevels - 1; i-- > 0;)
		dispatch(v, cmd, &s->add, s->add_sets[i != 0], &s->levels[i]);
}

static void make_sets(struct vks *v, struct scan *s)
{
	const VkDescriptorPoolSize size = { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 8 };
	const VkDescriptorPoolCreateInfo dp = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
		.maxSets = 4,
		.poolSizeCount = 1,
		.pPoolSizes = &size,
	};
	VKS_CHECK(v, vkCreateDescriptorPool(v->dev, &dp, NULL, &s->pool));
	const VkDescriptorSetLayout layouts[4] = { s->block.set_layout, s->block.set_layout,
						   s->add.set_layout, s->add.set_layout };
	VkDescriptorSet sets[4];
	const VkDescriptorSetAllocateInfo ds = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
		.descriptorPool = s->pool,
		.descriptorSetCount = 4,
		.pSetLayouts = layouts,
	};
	VKS_CHECK(v, vkAllocateDescriptorSets(v->dev, &ds, sets));
	VkDescriptorBufferInfo data = { s->data.buf, 0, VK_WHOLE_SIZE };
	VkDescriptorBufferInfo sums = { s->sums.buf, 0, VK_WHOLE_SIZE };
	VkWriteDescriptorSet w[8];
	for (uint32_t i = 0; i < 4; i++) {
		s->block_sets[0] = sets[0];
		s->block_sets[1] = sets[1];
		s->add_sets[0] = sets[2];
		s->add_sets[1] = sets[3];
		for (uint32_t b = 0; b < 2; b++)
			w[2 * i + b] = (VkWriteDescriptorSet){
				.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
				.dstSet = sets[i],
				.dstBinding = b,
				.descriptorCount = 1,
				.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
				.pBufferInfo = b == 0 && i % 2 == 0 ? &data : &sums,
			};
	}
	vkUpdateDescriptorSets(v->dev, 8, w, 0, NULL);
}

int main(int argc, char **argv)
{
	struct vks v;
	struct scan s = { 0 };
	vks_init(&v, "vks-scan", argc, argv, 0);
	v.current = "scan";
	s.n = vks_size(&v, 1 << 20);
	if (s.n == 0 || s.n > (1ull << 28))
		vks_fatal(&v, "--size out of range (1..256M)", VK_ERROR_OUT_OF_DEVICE_MEMORY);

	/* Levels until one block holds a whole level. */
	uint32_t total = 0;
	for (uint64_t n = s.n;; n = s.levels[s.nlevels - 1].blocks) {
		struct level *l = &s.levels[s.nlevels];
		l->n = (uint32_t)n;
		l->offset = s.nlevels ? s.levels[s.nlevels - 1].sums : 0;
		l->blocks = (uint32_t)((n + BLOCK - 1) / BLOCK);
		l->sums = total;
		total += l->blocks;
		s.nlevels++;
		if (l->blocks == 1)
			break;
	}

	vks_buf_create(&v, &s.data, s.n * sizeof(uint32_t), VKS_USAGE_ALL);
	vks_buf_create(&v, &s.sums, total * sizeof(uint32_t), VKS_USAGE_ALL);
	s.orig = malloc(s.n * sizeof(uint32_t));
	uint32_t *want = malloc(s.n * sizeof(uint32_t));
	if (!s.orig || !want)
		vks_fatal(&v, "malloc", VK_ERROR_OUT_OF_HOST_MEMORY);
	uint64_t seed = 11;
	uint32_t acc = 0;
	for (uint64_t i = 0; i < s.n; i++) {
		s.orig[i] = (uint32_t)(vks_rand(&seed) >> 44);
		want[i] = acc;
		acc += s.orig[i];
	}
	vks_pipe_create(&v, &s.block, spv_scan_block, sizeof(spv_scan_block), 2, 12, NULL);
	vks_pipe_create(&v, &s.add, spv_scan_add, sizeof(spv_scan_add), 2, 12, NULL);
	make_sets(&v, &s);

	struct vks_timing t = vks_timed(&v, prepare, record, &s);
	bool ok = vks_compare_u32(&v, "scan", s.data.map, want, s.n) == 0;
	vks_report(&v, "scan", ok, vks_hash(VKS_HASH_INIT, s.data.map, s.n * sizeof(uint32_t)),
		   t.ms, "wall_ms=%.3f size=%llu iterations=%u levels=%u", t.wall_ms,
		   (unsigned long long)s.n, t.iterations, s.nlevels);

	vkDestroyDescriptorPool(v.dev, s.pool, NULL);
	vks_pipe_destroy(&v, &s.block);
	vks_pipe_destroy(&v, &s.add);
	vks_buf_destroy(&v, &s.data);
	vks_buf_destroy(&v, &s.sums);
	free(s.orig);
	free(want);
	return vks_finish(&v);
}
