/* SPDX-License-Identifier: MIT */
/*
 * vks-threads: the device used from several host threads at once.
 *
 *   threads.pipelines: four threads released together each create eight compute pipelines
 *     (one module, a different specialization each; two threads share a pipeline cache, two use
 *     none), plus one vkCreateComputePipelines call creating eight at once; every pipeline then
 *     runs and its output proves it is the specialization asked for.
 *   threads.record: four threads record command buffers at the same time, each from its own
 *     command pool, and the main thread submits all of them in one vkQueueSubmit.
 */
#define _GNU_SOURCE
#include "vks.h"

#include "spv_spec.inc"

#include <pthread.h>
#include <string.h>

#define THREADS 4
#define PER_THREAD 8
#define PIPELINES (THREADS * PER_THREAD + PER_THREAD)
#define WG 64

struct shared {
	struct vks *v;
	VkShaderModule module;
	VkPipelineLayout layout;
	VkPipelineCache cache;
	VkPipeline pipelines[PIPELINES];
	VkDescriptorSet sets[PIPELINES];
	int32_t values[PIPELINES];
	pthread_barrier_t start;
	VkCommandPool pools[THREADS];
	VkCommandBuffer cmds[THREADS];
	VkResult results[THREADS];
};

struct worker {
	struct shared *s;
	uint32_t index;
};

static const VkSpecializationMapEntry entries[2] = { { 0, 0, 4 }, { 1, 4, 4 } };

static void *create_main(void *arg)
{
	struct worker *w = arg;
	struct shared *s = w->s;
	pthread_barrier_wait(&s->start);
	VkResult r = VK_SUCCESS;
	for (uint32_t j = 0; j < PER_THREAD && r == VK_SUCCESS; j++) {
		uint32_t k = w->index * PER_THREAD + j;
		const int32_t data[2] = { WG, s->values[k] };
		const VkSpecializationInfo spec = { 2, entries, sizeof(data), data };
		const VkComputePipelineCreateInfo info = {
			.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
			.stage = { .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
				   .stage = VK_SHADER_STAGE_COMPUTE_BIT,
				   .module = s->module,
				   .pName = "main",
				   .pSpecializationInfo = &spec },
			.layout = s->layout,
		};
		r = vkCreateComputePipelines(s->v->dev, w->index % 2 ? s->cache : VK_NULL_HANDLE, 1,
					     &info, NULL, &s->pipelines[k]);
	}
	s->results[w->index] = r;
	return NULL;
}

static void *record_main(void *arg)
{
	struct worker *w = arg;
	struct shared *s = w->s;
	struct vks *v = s->v;
	pthread_barrier_wait(&s->start);
	const VkCommandBufferAllocateInfo alloc = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
		.commandPool = s->pools[w->index],
		.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
		.commandBufferCount = 1,
	};
	VkResult r = vkAllocateCommandBuffers(v->dev, &alloc, &s->cmds[w->index]);
	VkCommandBuffer cmd = s->cmds[w->index];
	const VkCommandBufferBeginInfo begin = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO
	};
	if (r == VK_SUCCESS)
		r = vkBeginCommandBuffer(cmd, &begin);
	/* Each thread runs the pipelines of one quarter, into their own output windows. */
	for (uint32_t k = w->index; r == VK_SUCCESS && k < PIPELINES; k += THREADS) {
		vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, s->pipelines[k]);
		vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, s->layout, 0, 1,
					&s->sets[k], 0, NULL);
		vkCmdDispatch(cmd, 1, 1, 1);
	}
	if (r == VK_SUCCESS)
		r = vkEndCommandBuffer(cmd);
	s->results[w->index] = r;
	return NULL;
}

static bool run_threads(struct vks *v, struct shared *s, void *(*fn)(void *))
{
	pthread_t tid[THREADS];
	struct worker w[THREADS];
	pthread_barrier_init(&s->start, NULL, THREADS);
	for (uint32_t t = 0; t < THREADS; t++) {
		w[t] = (struct worker){ s, t };
		if (pthread_create(&tid[t], NULL, fn, &w[t]))
			vks_fatal(v, "pthread_create", VK_ERROR_INITIALIZATION_FAILED);
	}
	bool ok = true;
	for (uint32_t t = 0; t < THREADS; t++) {
		pthread_join(tid[t], NULL);
		if (s->results[t] != VK_SUCCESS) {
			vks_note(v, "thread %u: %s", t, vks_result_name(s->results[t]));
			ok = false;
		}
	}
	pthread_barrier_destroy(&s->start);
	return ok;
}

int main(int argc, char **argv)
{
	struct vks v;
	struct shared s = { .v = &v };
	vks_init(&v, "vks-threads", argc, argv, 0);
	v.current = "threads.pipelines";
	const VkDescriptorSetLayoutBinding b[2] = {
		{ 0, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, NULL },
		{ 1, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, NULL }
	};
	VkDescriptorSetLayout sl = vks_set_layout(&v, b, 2);
	s.layout = vks_pipeline_layout(&v, &sl, 1, 0, 0);
	s.module = vks_shader(&v, spv_spec, sizeof(spv_spec));
	const VkPipelineCacheCreateInfo ci = {
		.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO
	};
	VKS_CHECK(&v, vkCreatePipelineCache(v.dev, &ci, NULL, &s.cache));
	for (uint32_t k = 0; k < PIPELINES; k++)
		s.values[k] = (int32_t)(k * 3 + 1);

	/* Outputs: a window per pipeline at the device's storage offset alignment. */
	VkDeviceSize align = v.props.limits.minStorageBufferOffsetAlignment;
	VkDeviceSize window = (WG * 4 + align - 1) / align * align;
	VkDeviceSize meta_window = (32 + align - 1) / align * align;
	struct vks_buf out, meta;
	vks_buf_create(&v, &out, PIPELINES * window, VKS_USAGE_ALL);
	vks_buf_create(&v, &meta, PIPELINES * meta_window, VKS_USAGE_ALL);
	memset(out.map, 0, out.size);
	const VkDescriptorPoolSize ps = { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 2 * PIPELINES };
	const VkDescriptorPoolCreateInfo dp = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
		.maxSets = PIPELINES,
		.poolSizeCount = 1,
		.pPoolSizes = &ps
	};
	VkDescriptorPool pool;
	VKS_CHECK(&v, vkCreateDescriptorPool(v.dev, &dp, NULL, &pool));
	for (uint32_t k = 0; k < PIPELINES; k++) {
		s.sets[k] = vks_alloc_set(&v, pool, sl);
		vks_write_buffer(&v, s.sets[k], 0, 0, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, out.buf,
				 k * window, WG * 4);
		vks_write_buffer(&v, s.sets[k], 1, 0, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, meta.buf,
				 k * meta_window, 32);
	}

	double t0 = vks_now_ms();
	bool created = run_threads(&v, &s, create_main);
	double threads_ms = vks_now_ms() - t0;
	/* The last eight in one call. */
	VkComputePipelineCreateInfo infos[PER_THREAD];
	VkSpecializationInfo specs[PER_THREAD];
	int32_t data[PER_THREAD][2];
	for (uint32_t j = 0; j < PER_THREAD; j++) {
		uint32_t k = THREADS * PER_THREAD + j;
		data[j][0] = WG;
		data[j][1] = s.values[k];
		specs[j] = (VkSpecializationInfo){ 2, entries, sizeof(data[j]), data[j] };
		infos[j] = (VkComputePipelineCreateInfo){
			.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
			.stage = { .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
				   .stage = VK_SHADER_STAGE_COMPUTE_BIT,
				   .module = s.module,
				   .pName = "main",
				   .pSpecializationInfo = &specs[j] },
			.layout = s.layout,
		};
	}
	VKS_CHECK(&v, vkCreateComputePipelines(v.dev, s.cache, PER_THREAD, infos, NULL,
					       &s.pipelines[THREADS * PER_THREAD]));
	if (!created)
		vks_fatal(&v, "vkCreateComputePipelines from threads", VK_ERROR_UNKNOWN);

	/* Run them all from the main thread. */
	VkCommandBuffer cmd = vks_cmd_begin(&v);
	for (uint32_t k = 0; k < PIPELINES; k++) {
		vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, s.pipelines[k]);
		vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, s.layout, 0, 1,
					&s.sets[k], 0, NULL);
		vkCmdDispatch(cmd, 1, 1, 1);
	}
	vks_barrier(cmd);
	vks_cmd_submit_wait(&v, cmd);
	bool ok = true;
	uint64_t digest = VKS_HASH_INIT;
	for (uint32_t k = 0; k < PIPELINES; k++) {
		const uint32_t *o = (const uint32_t *)((const char *)out.map + k * window);
		uint32_t want[WG];
		for (uint32_t l = 0; l < WG; l++)
			want[l] = (WG - 1 - l) * (uint32_t)s.values[k] + 7;
		if (vks_compare_u32(&v, "out", o, want, WG)) {
			vks_note(&v, "pipeline %u is not its specialization", k);
			ok = false;
		}
		digest = vks_hash(digest, o, WG * 4);
	}
	vks_report(&v, "threads.pipelines", ok, digest, 0, "threads=%u pipelines=%u wall_ms=%.1f",
		   THREADS, PIPELINES, threads_ms);

	v.current = "threads.record";
	memset(out.map, 0, out.size);
	for (uint32_t t = 0; t < THREADS; t++) {
		const VkCommandPoolCreateInfo pi = {
			.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
			.queueFamilyIndex = v.queue_family,
		};
		VKS_CHECK(&v, vkCreateCommandPool(v.dev, &pi, NULL, &s.pools[t]));
	}
	bool recorded = run_threads(&v, &s, record_main);
	if (!recorded)
		vks_fatal(&v, "recording from threads", VK_ERROR_UNKNOWN);
	VkFence fence;
	const VkFenceCreateInfo fi = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
	VKS_CHECK(&v, vkCreateFence(v.dev, &fi, NULL, &fence));
	const VkSubmitInfo submit = {
		.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
		.commandBufferCount = THREADS,
		.pCommandBuffers = s.cmds,
	};
	VKS_CHECK(&v, vkQueueSubmit(v.queue, 1, &submit, fence));
	VKS_CHECK(&v, vkWaitForFences(v.dev, 1, &fence, VK_TRUE, VKS_WAIT_NS));
	uint64_t digest2 = VKS_HASH_INIT;
	ok = true;
	for (uint32_t k = 0; k < PIPELINES; k++) {
		const uint32_t *o = (const uint32_t *)((const char *)out.map + k * window);
		uint32_t want[WG];
		for (uint32_t l = 0; l < WG; l++)
			want[l] = (WG - 1 - l) * (uint32_t)s.values[k] + 7;
		ok = vks_compare_u32(&v, "out", o, want, WG) == 0 && ok;
		digest2 = vks_hash(digest2, o, WG * 4);
	}
	vks_report(&v, "threads.record", ok, digest2, 0, "threads=%u", THREADS);

	vkDestroyFence(v.dev, fence, NULL);
	for (uint32_t t = 0; t < THREADS; t++)
		vkDestroyCommandPool(v.dev, s.pools[t], NULL);
	for (uint32_t k = 0; k < PIPELINES; k++)
		vkDestroyPipeline(v.dev, s.pipelines[k], NULL);
	vkDestroyPipelineCache(v.dev, s.cache, NULL);
	vkDestroyDescriptorPool(v.dev, pool, NULL);
	vkDestroyShaderModule(v.dev, s.module, NULL);
	vkDestroyPipelineLayout(v.dev, s.layout, NULL);
	vkDestroyDescriptorSetLayout(v.dev, sl, NULL);
	vks_buf_destroy(&v, &out);
	vks_buf_destroy(&v, &meta);
	return vks_finish(&v);
}
