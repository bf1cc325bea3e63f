/* SPDX-License-Identifier: MIT */
/*
 * vks-descriptors: descriptor sets beyond "storage buffers in set 0".
 *
 *   desc.sets: four sets bound by two vkCmdBindDescriptorSets calls (firstSet 0 and 2), arrays
 *     of storage buffers (4) and of uniform buffers (2), a std140 uniform block, a binding
 *     number after a hole, descriptors at non-zero offsets with explicit ranges into shared
 *     buffers; written with vkUpdateDescriptorSets, an update template and a descriptor copy.
 *   desc.dynamic_index: the arrays indexed by a push constant (dynamic indexing features).
 *   desc.dynamic_offsets: UNIFORM_BUFFER_DYNAMIC and STORAGE_BUFFER_DYNAMIC descriptors (with
 *     a non-zero base offset of their own), bound eight times with different dynamic offsets.
 */
#include "vks.h"

#include "spv_desc.inc"
#include "spv_desc_dynamic.inc"
#include "spv_dynoffset.inc"

#include <stdlib.h>
#include <string.h>

#define N 4096

static VkDeviceSize align_up(VkDeviceSize x, VkDeviceSize a)
{
	return (x + a - 1) / a * a;
}

static VkDescriptorPool make_pool(struct vks *v, uint32_t sets)
{
	const VkDescriptorPoolSize sizes[] = {
		{ VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 32 },
		{ VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER, 16 },
		{ VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER_DYNAMIC, 4 },
		{ VK_DESCRIPTOR_TYPE_STORAGE_BUFFER_DYNAMIC, 4 },
	};
	const VkDescriptorPoolCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
		.maxSets = sets,
		.poolSizeCount = VKS_ARRAY_SIZE(sizes),
		.pPoolSizes = sizes,
	};
	VkDescriptorPool pool;
	VKS_CHECK(v, vkCreateDescriptorPool(v->dev, &info, NULL, &pool));
	return pool;
}

#define STORAGE VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
#define UNIFORM VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER
#define COMPUTE VK_SHADER_STAGE_COMPUTE_BIT

/* The inputs both desc.sets and desc.dynamic_index read: four arrays in one buffer at aligned
 * offsets, two uniform blocks in another. */
struct inputs {
	struct vks_buf ins, ubo;
	VkDeviceSize in_stride, ubo_stride, u_offset;
	uint32_t mul[4], add, ua[2][4];
};

static void make_inputs(struct vks *v, struct inputs *in)
{
	const VkPhysicalDeviceLimits *lim = &v->props.limits;
	in->in_stride = align_up(N * 4 + 12, lim->minStorageBufferOffsetAlignment);
	in->ubo_stride = align_up(32, lim->minUniformBufferOffsetAlignment);
	vks_buf_create(v, &in->ins, 4 * in->in_stride, VKS_USAGE_ALL);
	vks_buf_create(v, &in->ubo, 4 * in->ubo_stride, VKS_USAGE_ALL);
	memset(in->ubo.map, 0, in->ubo.size);
	for (uint32_t k = 0; k < 4; k++) {
		uint32_t *p = (uint32_t *)((char *)in->ins.map + k * in->in_stride);
		for (uint32_t i = 0; i < N; i++)
			p[i] = (i + 1) * (k + 1) + (k << 20);
		in->mul[k] = 3 + 2 * k;
	}
	in->add = 77;
	/* U (mul, add) in slot 3; UA[0] in slot 0, UA[1] in slot 1. */
	in->u_offset = 3 * in->ubo_stride;
	uint32_t *u = (uint32_t *)((char *)in->ubo.map + in->u_offset);
	memcpy(u, in->mul, 16);
	u[4] = in->add;
	for (uint32_t k = 0; k < 2; k++) {
		for (uint32_t c = 0; c < 4; c++)
			in->ua[k][c] = 10 * (k + 1) + c;
		memcpy((char *)in->ubo.map + k * in->ubo_stride, in->ua[k], 16);
	}
}

static const uint32_t *in_array(const struct inputs *in, uint32_t k)
{
	return (const uint32_t *)((const char *)in->ins.map + k * in->in_stride);
}

static void desc_sets(struct vks *v, struct inputs *in)
{
	v->current = "desc.sets";
	const VkDescriptorSetLayoutBinding b0[] = { { 0, STORAGE, 1, COMPUTE, NULL } };
	const VkDescriptorSetLayoutBinding b1[] = { { 0, UNIFORM, 1, COMPUTE, NULL },
						    { 2, STORAGE, 4, COMPUTE, NULL } };
	const VkDescriptorSetLayoutBinding b2[] = { { 0, UNIFORM, 2, COMPUTE, NULL } };
	const VkDescriptorSetLayoutBinding b3[] = { { 5, STORAGE, 1, COMPUTE, NULL } };
	VkDescriptorSetLayout sl[4] = {
		vks_set_layout(v, b0, 1),
		vks_set_layout(v, b1, 2),
		vks_set_layout(v, b2, 1),
		vks_set_layout(v, b3, 1),
	};
	VkPipelineLayout layout = vks_pipeline_layout(v, sl, 4, 0, 0);
	VkShaderModule m = vks_shader(v, spv_desc, sizeof(spv_desc));
	VkPipeline pipe = vks_compute_pipeline(v, m, layout, NULL, 0, VK_NULL_HANDLE);
	VkDescriptorPool pool = make_pool(v, 5);
	VkDescriptorSet sets[4], staging;
	for (uint32_t s = 0; s < 4; s++)
		sets[s] = vks_alloc_set(v, pool, sl[s]);
	staging = vks_alloc_set(v, pool, sl[2]);

	struct vks_buf out, counter;
	vks_buf_create(v, &out, N * 4, VKS_USAGE_ALL);
	vks_buf_create(v, &counter, 64, VKS_USAGE_ALL);
	memset(out.map, 0, out.size);
	memset(counter.map, 0, counter.size);

	/* Set 0 and set 3: plain writes, set 3's at an offset with an explicit range. */
	vks_write_buffer(v, sets[0], 0, 0, STORAGE, out.buf, 0, VK_WHOLE_SIZE);
	vks_write_buffer(v, sets[3], 5, 0, STORAGE, counter.buf, 0, 16);
	/* Set 1: an update template, from a struct of its own layout. */
	struct set1 {
		VkDescriptorBufferInfo u;
		VkDescriptorBufferInfo ins[4];
	} data = { { in->ubo.buf, in->u_offset, 32 }, { { 0 } } };
	for (uint32_t k = 0; k < 4; k++)
		data.ins[k] = (VkDescriptorBufferInfo){ in->ins.buf, k * in->in_stride, N * 4 };
	const VkDescriptorUpdateTemplateEntry entries[] = {
		{ 0, 0, 1, UNIFORM, offsetof(struct set1, u), sizeof(VkDescriptorBufferInfo) },
		{ 2, 0, 4, STORAGE, offsetof(struct set1, ins), sizeof(VkDescriptorBufferInfo) },
	};
	const VkDescriptorUpdateTemplateCreateInfo ti = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_UPDATE_TEMPLATE_CREATE_INFO,
		.descriptorUpdateEntryCount = 2,
		.pDescriptorUpdateEntries = entries,
		.templateType = VK_DESCRIPTOR_UPDATE_TEMPLATE_TYPE_DESCRIPTOR_SET,
		.descriptorSetLayout = sl[1],
	};
	VkDescriptorUpdateTemplate tmpl;
	VKS_CHECK(v, vkCreateDescriptorUpdateTemplate(v->dev, &ti, NULL, &tmpl));
	vkUpdateDescriptorSetWithTemplate(v->dev, sets[1], tmpl, &data);
	/* Set 2: written into a staging set (in reverse, then fixed), copied into the real one. */
	vks_write_buffer(v, staging, 0, 0, UNIFORM, in->ubo.buf, in->ubo_stride, 16);
	vks_write_buffer(v, staging, 0, 1, UNIFORM, in->ubo.buf, 0, 16);
	vks_write_buffer(v, staging, 0, 0, UNIFORM, in->ubo.buf, 0, 16);
	vks_write_buffer(v, staging, 0, 1, UNIFORM, in->ubo.buf, in->ubo_stride, 16);
	const VkCopyDescriptorSet copy = {
		.sType = VK_STRUCTURE_TYPE_COPY_DESCRIPTOR_SET,
		.srcSet = staging,
		.dstSet = sets[2],
		.descriptorCount = 2,
	};
	vkUpdateDescriptorSets(v->dev, 0, NULL, 1, &copy);

	VkCommandBuffer cmd = vks_cmd_begin(v);
	vks_timer_begin(v, cmd);
	vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
	vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, 2, sets, 0, NULL);
	vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 2, 2, sets + 2, 0,
				NULL);
	vkCmdDispatch(cmd, N / 64, 1, 1);
	vks_barrier(cmd);
	vks_timer_end(v, cmd);
	vks_cmd_submit_wait(v, cmd);

	uint32_t want[N];
	for (uint32_t i = 0; i < N; i++) {
		uint32_t s = 0;
		for (uint32_t k = 0; k < 4; k++)
			s += in_array(in, k)[i] * in->mul[k];
		want[i] = s + in->add + in->ua[0][0] * in->ua[1][1];
	}
	uint32_t count = *(uint32_t *)counter.map;
	bool ok = vks_compare_u32(v, "out", out.map, want, N) == 0 && count == N;
	if (count != N)
		vks_note(v, "counter %u, want %u", count, N);
	uint64_t digest = vks_hash(vks_hash(VKS_HASH_INIT, out.map, N * 4), &count, 4);
	vks_report(v, "desc.sets", ok, digest, vks_timer_ms(v), "sets=4");

	vkDestroyDescriptorUpdateTemplate(v->dev, tmpl, NULL);
	vkDestroyDescriptorPool(v->dev, pool, NULL);
	vkDestroyPipeline(v->dev, pipe, NULL);
	vkDestroyShaderModule(v->dev, m, NULL);
	vkDestroyPipelineLayout(v->dev, layout, NULL);
	for (uint32_t s = 0; s < 4; s++)
		vkDestroyDescriptorSetLayout(v->dev, sl[s], NULL);
	vks_buf_destroy(v, &out);
	vks_buf_destroy(v, &counter);
}

static void desc_dynamic_index(struct vks *v, struct inputs *in)
{
	v->current = "desc.dynamic_index";
	if (!v->on.features.shaderStorageBufferArrayDynamicIndexing ||
	    !v->on.features.shaderUniformBufferArrayDynamicIndexing) {
		vks_skip(v, "desc.dynamic_index", "shaderBufferArrayDynamicIndexing");
		return;
	}
	const VkDescriptorSetLayoutBinding b[] = { { 0, STORAGE, 1, COMPUTE, NULL },
						   { 1, STORAGE, 4, COMPUTE, NULL },
						   { 2, UNIFORM, 2, COMPUTE, NULL } };
	VkDescriptorSetLayout sl = vks_set_layout(v, b, 3);
	VkPipelineLayout layout = vks_pipeline_layout(v, &sl, 1, 0, 12);
	VkShaderModule m = vks_shader(v, spv_desc_dynamic, sizeof(spv_desc_dynamic));
	VkPipeline pipe = vks_compute_pipeline(v, m, layout, NULL, 0, VK_NULL_HANDLE);
	VkDescriptorPool pool = make_pool(v, 1);
	VkDescriptorSet set = vks_alloc_set(v, pool, sl);
	struct vks_buf out;
	vks_buf_create(v, &out, 4 * N * 4, VKS_USAGE_ALL);
	vks_write_buffer(v, set, 0, 0, STORAGE, out.buf, 0, VK_WHOLE_SIZE);
	for (uint32_t k = 0; k < 4; k++)
		vks_write_buffer(v, set, 1, k, STORAGE, in->ins.buf, k * in->in_stride, N * 4);
	for (uint32_t k = 0; k < 2; k++)
		vks_write_buffer(v, set, 2, k, UNIFORM, in->ubo.buf, k * in->ubo_stride, 16);

	VkCommandBuffer cmd = vks_cmd_begin(v);
	vks_timer_begin(v, cmd);
	vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
	vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, 1, &set, 0, NULL);
	for (uint32_t d = 0; d < 4; d++) {
		const uint32_t push[3] = { 3 - d, d % 2, d * N };
		vkCmdPushConstants(cmd, layout, COMPUTE, 0, sizeof(push), push);
		vkCmdDispatch(cmd, N / 64, 1, 1);
	}
	vks_barrier(cmd);
	vks_timer_end(v, cmd);
	vks_cmd_submit_wait(v, cmd);
	static uint32_t want[4 * N];
	for (uint32_t d = 0; d < 4; d++)
		for (uint32_t i = 0; i < N; i++)
			want[d * N + i] = in_array(in, 3 - d)[i] * 10 + in->ua[d % 2][2];
	bool ok = vks_compare_u32(v, "out", out.map, want, 4 * N) == 0;
	vks_report(v, "desc.dynamic_index", ok, vks_hash(VKS_HASH_INIT, out.map, 4 * N * 4),
		   vks_timer_ms(v), NULL);

	vkDestroyDescriptorPool(v->dev, pool, NULL);
	vkDestroyPipeline(v->dev, pipe, NULL);
	vkDestroyShaderModule(v->dev, m, NULL);
	vkDestroyPipelineLayout(v->dev, layout, NULL);
	vkDestroyDescriptorSetLayout(v->dev, sl, NULL);
	vks_buf_destroy(v, &out);
}

static void desc_dynamic_offsets(struct vks *v)
{
	v->current = "desc.dynamic_offsets";
	const VkPhysicalDeviceLimits *lim = &v->props.limits;
	if (lim->maxDescriptorSetUniformBuffersDynamic < 1 ||
	    lim->maxDescriptorSetStorageBuffersDynamic < 1) {
		vks_skip(v, "desc.dynamic_offsets", "dynamic buffers");
		return;
	}
	const VkDescriptorSetLayoutBinding b[] = {
		{ 0, VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER_DYNAMIC, 1, COMPUTE, NULL },
		{ 1, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER_DYNAMIC, 1, COMPUTE, NULL }
	};
	VkDescriptorSetLayout sl = vks_set_layout(v, b, 2);
	VkPipelineLayout layout = vks_pipeline_layout(v, &sl, 1, 0, 0);
	VkShaderModule m = vks_shader(v, spv_dynoffset, sizeof(spv_dynoffset));
	VkPipeline pipe = vks_compute_pipeline(v, m, layout, NULL, 0, VK_NULL_HANDLE);
	VkDescriptorPool pool = make_pool(v, 1);
	VkDescriptorSet set = vks_alloc_set(v, pool, sl);

	VkDeviceSize ustride = align_up(16, lim->minUniformBufferOffsetAlignment);
	VkDeviceSize sstride = align_up(64, lim->minStorageBufferOffsetAlignment);
	struct vks_buf ubo, out;
	vks_buf_create(v, &ubo, 8 * ustride, VKS_USAGE_ALL);
	vks_buf_create(v, &out, 9 * sstride, VKS_USAGE_ALL);
	memset(out.map, 0, out.size);
	for (uint32_t k = 0; k < 8; k++) {
		uint32_t *u = (uint32_t *)((char *)ubo.map + k * ustride);
		u[0] = 3 * k + 1;
		u[1] = k;
	}
	/* The storage descriptor itself starts one stride in: the dynamic offset adds to it. */
	vks_write_buffer(v, set, 0, 0, VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER_DYNAMIC, ubo.buf, 0, 16);
	vks_write_buffer(v, set, 1, 0, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER_DYNAMIC, out.buf, sstride,
			 64);

	VkCommandBuffer cmd = vks_cmd_begin(v);
	vks_timer_begin(v, cmd);
	vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
	for (uint32_t k = 0; k < 8; k++) {
		/* Offsets in binding order: the uniform's, then the storage's (windows reversed). */
		const uint32_t offsets[2] = { (uint32_t)(k * ustride),
					      (uint32_t)((7 - k) * sstride) };
		vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, 1, &set, 2,
					offsets);
		vkCmdDispatch(cmd, 1, 1, 1);
	}
	vks_barrier(cmd);
	vks_timer_end(v, cmd);
	vks_cmd_submit_wait(v, cmd);

	uint32_t words = (uint32_t)(out.size / 4);
	uint32_t *want = calloc(words, 4);
	if (!want)
		vks_fatal(v, "calloc", VK_ERROR_OUT_OF_HOST_MEMORY);
	for (uint32_t k = 0; k < 8; k++) {
		uint32_t *w = want + (sstride + (7 - k) * sstride) / 4;
		for (uint32_t j = 0; j < 16; j++)
			w[j] = (3 * k + 1) * 16 + j + k * 1000;
	}
	bool ok = vks_compare_u32(v, "out", out.map, want, words) == 0;
	/* The digest covers the windows only: the stride depends on the device's alignment. */
	uint64_t digest = VKS_HASH_INIT;
	for (uint32_t k = 0; k < 8; k++)
		digest = vks_hash(digest, (char *)out.map + (k + 1) * sstride, 64);
	vks_report(v, "desc.dynamic_offsets", ok, digest, vks_timer_ms(v),
		   "uniform_stride=%llu storage_stride=%llu", (unsigned long long)ustride,
		   (unsigned long long)sstride);
	free(want);

	vkDestroyDescriptorPool(v->dev, pool, NULL);
	vkDestroyPipeline(v->dev, pipe, NULL);
	vkDestroyShaderModule(v->dev, m, NULL);
	vkDestroyPipelineLayout(v->dev, layout, NULL);
	vkDestroyDescriptorSetLayout(v->dev, sl, NULL);
	vks_buf_destroy(v, &ubo);
	vks_buf_destroy(v, &out);
}

int main(int argc, char **argv)
{
	struct vks v;
	struct inputs in;
	vks_init(&v, "vks-descriptors", argc, argv, 0);
	if (v.props.limits.maxBoundDescriptorSets < 4)
		vks_fatal(&v, "maxBoundDescriptorSets below the minimum",
			  VK_ERROR_FEATURE_NOT_PRESENT);
	make_inputs(&v, &in);
	desc_sets(&v, &in);
	desc_dynamic_index(&v, &in);
	desc_dynamic_offsets(&v);
	vks_buf_destroy(&v, &in.ins);
	vks_buf_destroy(&v, &in.ubo);
	return vks_finish(&v);
}
