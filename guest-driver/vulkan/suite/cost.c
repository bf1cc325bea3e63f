/* SPDX-License-Identifier: MIT */
/*
 * vks-cost: what the Vulkan calls around the work cost — the benchmark's program (npm run
 * bench:vulkan runs it natively and in a guest and puts the numbers side by side), not a
 * conformance check, so the runner leaves it out unless asked (vksuite --only cost). Every
 * result is still checked and has a digest that does not depend on the device.
 *
 *   cost.submit: --size N (default 2000) small batches submitted back to back, one
 *     vkQueueSubmit each (a barrier and a one-invocation dispatch that logs the counter and
 *     increments it), a fence on the last only; the log must show that every batch ran once, in
 *     submission order. submit_us: mean CPU time of one vkQueueSubmit call; wall_ms: first call
 *     to the fence seen; ms: device time from the first batch's start to the last one's end.
 *   cost.access.coherent, cost.access.cached: the CPU writes, reads and copies two mapped
 *     32 MiB allocations, 4 passes, of the first HOST_COHERENT memory type and of the first
 *     HOST_CACHED one (with vkFlush/vkInvalidateMappedMemoryRanges; skipped when there is none):
 *     MB/s of each. Only loads and stores: no Vulkan call but flush and invalidate.
 *   cost.alloc.4k, .64k, .1m, .16m: --iterations (default 16) vkAllocateMemory of each size
 *     (all kept), then the first vkMapMemory of each, then vkUnmapMemory + vkFreeMemory of each:
 *     the median µs of each call; every allocation is written and read back in between.
 *   cost.pipeline.cold, .cached, .uncached: --iterations (default 16) compute pipelines, each
 *     of its own specialization (a new kernel), created one per vkCreateComputePipelines call
 *     through an empty VkPipelineCache; the same ones again through that cache (a hit where the
 *     implementation keeps what it built); the same ones again without a cache. The median ms
 *     of a call, and the cache hits VkPipelineCreationFeedback reports. Every pipeline is then
 *     run once, checked, and timed (first_run_ms: its first submission to its fence, which
 *     includes compiling it where the implementation compiles at first use, as lavapipe does).
 *
 * Each measured part is a phase (vks_phase): a host counting a VM's exits samples its counters
 * at the VKSUITE-PHASE lines, while the program waits for its answer (VKSUITE_PHASE_SYNC).
 */
#include "vks.h"

#include "spv_increment.inc"
#include "spv_spec.inc"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCESS_BYTES (32u << 20)
#define ACCESS_PASSES 4u
#define DEFAULT_N 16u

static double now_us(void)
{
	return vks_now_ms() * 1000.0;
}

/* ---- cost.submit ---- */

static void submit_check(struct vks *v)
{
	v->current = "cost.submit";
	uint64_t size = vks_size(v, 2000);
	if (size == 0 || size > 1000000)
		vks_fatal(v, "--size out of range (submissions, 1..1000000)",
			  VK_ERROR_INITIALIZATION_FAILED);
	uint32_t n = (uint32_t)size;
	struct vks_pipe pipe;
	struct vks_buf log;
	vks_buf_create(v, &log, (n + 1) * sizeof(uint32_t), VKS_USAGE_ALL);
	uint32_t *words = log.map;
	memset(words, 0xff, log.size);
	words[0] = 0;
	vks_pipe_create(v, &pipe, spv_increment, sizeof(spv_increment), 1, 8, NULL);
	struct vks_buf *bufs[] = { &log };
	vks_pipe_bind(v, &pipe, bufs);

	VkCommandBuffer *cmds = calloc(n, sizeof(*cmds));
	if (!cmds)
		vks_fatal(v, "calloc", VK_ERROR_OUT_OF_HOST_MEMORY);
	const VkCommandBufferAllocateInfo alloc = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
		.commandPool = v->pool,
		.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
		.commandBufferCount = n,
	};
	VKS_CHECK(v, vkAllocateCommandBuffers(v->dev, &alloc, cmds));
	const VkCommandBufferBeginInfo begin = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
		.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
	};
	/* Recorded beforehand: the phase measures submission, not recording. */
	for (uint32_t i = 0; i < n; i++) {
		VKS_CHECK(v, vkBeginCommandBuffer(cmds[i], &begin));
		if (i == 0)
			vks_timer_begin(v, cmds[i]);
		/* Orders this batch after everything submitted before it. */
		vks_barrier(cmds[i]);
		const uint32_t push[2] = { i, 1 };
		vks_pipe_use(&pipe, cmds[i], push, sizeof(push));
		vkCmdDispatch(cmds[i], 1, 1, 1);
		if (i == n - 1) {
			vks_barrier(cmds[i]);
			vks_timer_end(v, cmds[i]);
		}
		VKS_CHECK(v, vkEndCommandBuffer(cmds[i]));
	}
	const VkFenceCreateInfo fi = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
	VkFence fence;
	VKS_CHECK(v, vkCreateFence(v->dev, &fi, NULL, &fence));

	vks_phase(v, "submit", true);
	double cpu_us = 0, t0 = vks_now_ms();
	for (uint32_t i = 0; i < n; i++) {
		const VkSubmitInfo si = {
			.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
			.commandBufferCount = 1,
			.pCommandBuffers = &cmds[i],
		};
		double a = now_us();
		VKS_CHECK(v, vkQueueSubmit(v->queue, 1, &si, i == n - 1 ? fence : VK_NULL_HANDLE));
		cpu_us += now_us() - a;
	}
	VKS_CHECK(v, vkWaitForFences(v->dev, 1, &fence, VK_TRUE, VKS_WAIT_NS));
	double wall = vks_now_ms() - t0;
	vks_phase(v, "submit", false);

	bool ok = words[0] == n;
	if (!ok)
		vks_note(v, "counter %u after %u batches", words[0], n);
	uint32_t *want = malloc((size_t)n * sizeof(uint32_t));
	if (!want)
		vks_fatal(v, "malloc", VK_ERROR_OUT_OF_HOST_MEMORY);
	for (uint32_t i = 0; i < n; i++)
		want[i] = i;
	ok = vks_compare_u32(v, "log", words + 1, want, n) == 0 && ok;
	vks_report(v, "cost.submit", ok, vks_hash(VKS_HASH_INIT, words, log.size), vks_timer_ms(v),
		   "wall_ms=%.3f submits=%u submit_us=%.2f per_submit_us=%.2f", wall, n, cpu_us / n,
		   wall * 1000.0 / n);

	free(want);
	vkDestroyFence(v->dev, fence, NULL);
	vkFreeCommandBuffers(v->dev, v->pool, n, cmds);
	free(cmds);
	vks_pipe_destroy(v, &pipe);
	vks_buf_destroy(v, &log);
}

/* ---- cost.access.* ---- */

static void sync_range(struct vks *v, VkDeviceMemory mem, bool flush)
{
	const VkMappedMemoryRange range = {
		.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
		.memory = mem,
		.offset = 0,
		.size = VK_WHOLE_SIZE,
	};
	if (flush)
		VKS_CHECK(v, vkFlushMappedMemoryRanges(v->dev, 1, &range));
	else
		VKS_CHECK(v, vkInvalidateMappedMemoryRanges(v->dev, 1, &range));
}

static double mbs(double bytes, double ms)
{
	return ms > 0 ? bytes / (1 << 20) / (ms / 1000.0) : 0;
}

static void access_check(struct vks *v, const char *name, const char *phase,
			 VkMemoryPropertyFlags props, bool sync)
{
	v->current = name;
	if (vks_memory_type(v, ~0u, props) < 0) {
		vks_skip(v, name,
			 (props & VK_MEMORY_PROPERTY_HOST_CACHED_BIT) ? "HOST_CACHED" :
									"HOST_COHERENT");
		return;
	}
	struct vks_buf a, b;
	vks_buf_create_typed(v, &a, ACCESS_BYTES, VKS_USAGE_ALL, props);
	vks_buf_create_typed(v, &b, ACCESS_BYTES, VKS_USAGE_ALL, props);
	uint64_t *pa = a.map, *pb = b.map;
	const uint64_t words = ACCESS_BYTES / sizeof(uint64_t), k = 0x9e3779b97f4a7c15ull;
	double write_ms = 0, read_ms = 0, copy_ms = 0;
	uint64_t sum = 0;
	bool ok = true;

	vks_phase(v, phase, true);
	for (uint32_t p = 0; p < ACCESS_PASSES; p++) {
		double t = vks_now_ms();
		for (uint64_t i = 0; i < words; i++)
			pa[i] = i * k + p;
		if (sync)
			sync_range(v, a.mem, true);
		write_ms += vks_now_ms() - t;

		t = vks_now_ms();
		if (sync)
			sync_range(v, a.mem, false);
		uint64_t s = 0;
		for (uint64_t i = 0; i < words; i++)
			s += pa[i];
		read_ms += vks_now_ms() - t;

		t = vks_now_ms();
		memcpy(pb, pa, ACCESS_BYTES);
		if (sync)
			sync_range(v, b.mem, true);
		copy_ms += vks_now_ms() - t;

		/* sum of i*k + p over i < words, wrapping */
		uint64_t want = k * (words * (words - 1) / 2) + words * p;
		if (s != want) {
			vks_note(v, "pass %u: sum 0x%llx, want 0x%llx", p, (unsigned long long)s,
				 (unsigned long long)want);
			ok = false;
		}
		sum = vks_hash(sum ? sum : VKS_HASH_INIT, &s, sizeof(s));
	}
	vks_phase(v, phase, false);

	if (memcmp(pa, pb, ACCESS_BYTES) != 0) {
		vks_note(v, "the copy differs from its source");
		ok = false;
	}
	double bytes = (double)ACCESS_BYTES * ACCESS_PASSES;
	vks_report(v, name, ok, sum, 0,
		   "type=%u bytes=%llu passes=%u write_mbs=%.0f read_mbs=%.0f copy_mbs=%.0f "
		   "accesses=%llu",
		   a.type, (unsigned long long)ACCESS_BYTES, ACCESS_PASSES, mbs(bytes, write_ms),
		   mbs(bytes, read_ms), mbs(bytes, copy_ms),
		   /* 8-byte words: written, read, copied (read and written), per pass */
		   (unsigned long long)(4 * words * ACCESS_PASSES));
	vks_buf_destroy(v, &a);
	vks_buf_destroy(v, &b);
}

/* ---- cost.alloc.* ---- */

static const struct {
	const char *name;
	VkDeviceSize size;
} alloc_sizes[] = {
	{ "cost.alloc.4k", 4u << 10 },
	{ "cost.alloc.64k", 64u << 10 },
	{ "cost.alloc.1m", 1u << 20 },
	{ "cost.alloc.16m", 16u << 20 },
};
#define NSIZES VKS_ARRAY_SIZE(alloc_sizes)

static void alloc_check(struct vks *v, uint32_t n)
{
	v->current = "cost.alloc";
	int type = vks_memory_type(v, ~0u, VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
	if (type < 0)
		vks_fatal(v, "no host-visible coherent memory type", VK_ERROR_FEATURE_NOT_PRESENT);
	VkDeviceMemory *mem = calloc(NSIZES * n, sizeof(*mem));
	void **map = calloc(NSIZES * n, sizeof(*map));
	double *t_alloc = calloc(NSIZES * n, sizeof(double));
	double *t_map = calloc(NSIZES * n, sizeof(double));
	double *t_free = calloc(NSIZES * n, sizeof(double));
	if (!mem || !map || !t_alloc || !t_map || !t_free)
		vks_fatal(v, "calloc", VK_ERROR_OUT_OF_HOST_MEMORY);

	vks_phase(v, "alloc", true);
	for (uint32_t s = 0; s < NSIZES; s++) {
		for (uint32_t i = 0; i < n; i++) {
			const VkMemoryAllocateInfo info = {
				.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
				.allocationSize = alloc_sizes[s].size,
				.memoryTypeIndex = (uint32_t)type,
			};
			double t = now_us();
			VKS_CHECK(v, vkAllocateMemory(v->dev, &info, NULL, &mem[s * n + i]));
			t_alloc[s * n + i] = now_us() - t;
		}
	}
	vks_phase(v, "alloc", false);

	vks_phase(v, "map", true);
	for (uint32_t j = 0; j < NSIZES * n; j++) {
		double t = now_us();
		VKS_CHECK(v, vkMapMemory(v->dev, mem[j], 0, VK_WHOLE_SIZE, 0, &map[j]));
		t_map[j] = now_us() - t;
	}
	vks_phase(v, "map", false);

	/* Each allocation is real memory of its size: its first and last words hold what we store. */
	uint32_t bad = 0;
	for (uint32_t s = 0; s < NSIZES; s++) {
		for (uint32_t i = 0; i < n; i++) {
			volatile uint32_t *w = map[s * n + i];
			size_t last = alloc_sizes[s].size / sizeof(uint32_t) - 1;
			w[0] = 0xa110c000u + i;
			w[last] = 0xe4d00000u + s;
			if (w[0] != 0xa110c000u + i || w[last] != 0xe4d00000u + s)
				bad++;
		}
	}

	vks_phase(v, "free", true);
	for (uint32_t j = 0; j < NSIZES * n; j++) {
		double t = now_us();
		vkUnmapMemory(v->dev, mem[j]);
		vkFreeMemory(v->dev, mem[j], NULL);
		t_free[j] = now_us() - t;
	}
	vks_phase(v, "free", false);

	for (uint32_t s = 0; s < NSIZES; s++) {
		const uint64_t id[2] = { alloc_sizes[s].size, n };
		double max = 0;
		for (uint32_t i = 0; i < n; i++)
			if (t_alloc[s * n + i] > max)
				max = t_alloc[s * n + i];
		vks_report(
			v, alloc_sizes[s].name, bad == 0, vks_hash(VKS_HASH_INIT, id, sizeof(id)),
			0,
			"size=%llu n=%u alloc_us=%.1f alloc_max_us=%.1f map_us=%.1f free_us=%.1f",
			(unsigned long long)alloc_sizes[s].size, n, vks_median(t_alloc + s * n, n),
			max, vks_median(t_map + s * n, n), vks_median(t_free + s * n, n));
	}
	free(mem);
	free(map);
	free(t_alloc);
	free(t_map);
	free(t_free);
}

/* ---- cost.pipeline.* ---- */

/* spec.comp's constants: workgroup size (id 0), int, float, bool, uint (ids 1-4). */
struct spec_values {
	uint32_t wg;
	int32_t i;
	float f;
	VkBool32 b;
	uint32_t u;
};
static const VkSpecializationMapEntry spec_entries[5] = {
	{ 0, offsetof(struct spec_values, wg), 4 }, { 1, offsetof(struct spec_values, i), 4 },
	{ 2, offsetof(struct spec_values, f), 4 },  { 3, offsetof(struct spec_values, b), 4 },
	{ 4, offsetof(struct spec_values, u), 4 },
};
#define SPEC_WG 64u
#define SPEC_GROUPS 2u

struct pipelines {
	VkShaderModule module;
	VkDescriptorSetLayout set_layout;
	VkPipelineLayout layout;
	VkDescriptorPool pool;
	VkDescriptorSet set;
	struct vks_buf out, meta;
};

static VkPipeline create_pipeline(struct vks *v, struct pipelines *p, VkPipelineCache cache,
				  const struct spec_values *values, double *ms, bool *hit,
				  bool *feedback_valid)
{
	const VkSpecializationInfo spec = { 5, spec_entries, sizeof(*values), values };
	VkPipelineCreationFeedback fb = { 0 }, stage_fb = { 0 };
	const VkPipelineCreationFeedbackCreateInfo fbi = {
		.sType = VK_STRUCTURE_TYPE_PIPELINE_CREATION_FEEDBACK_CREATE_INFO,
		.pPipelineCreationFeedback = &fb,
		.pipelineStageCreationFeedbackCount = 1,
		.pPipelineStageCreationFeedbacks = &stage_fb,
	};
	const VkComputePipelineCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
		.pNext = v->api >= VK_API_VERSION_1_3 ? &fbi : NULL,
		.stage = { .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
			   .stage = VK_SHADER_STAGE_COMPUTE_BIT,
			   .module = p->module,
			   .pName = "main",
			   .pSpecializationInfo = &spec },
		.layout = p->layout,
	};
	VkPipeline pipeline;
	double t = vks_now_ms();
	VKS_CHECK(v, vkCreateComputePipelines(v->dev, cache, 1, &info, NULL, &pipeline));
	*ms = vks_now_ms() - t;
	*feedback_valid = (fb.flags & VK_PIPELINE_CREATION_FEEDBACK_VALID_BIT) != 0;
	*hit = (fb.flags & VK_PIPELINE_CREATION_FEEDBACK_APPLICATION_PIPELINE_CACHE_HIT_BIT) != 0;
	return pipeline;
}

/* Run one pipeline and check what spec.comp computes with `values`; chains its digest. */
static bool run_pipeline(struct vks *v, struct pipelines *p, VkPipeline pipeline,
			 const struct spec_values *x, uint64_t *digest, double *ms)
{
	double t = vks_now_ms();
	memset(p->out.map, 0, p->out.size);
	memset(p->meta.map, 0, p->meta.size);
	VkCommandBuffer cmd = vks_cmd_begin(v);
	vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
	vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &p->set, 0,
				NULL);
	vkCmdDispatch(cmd, SPEC_GROUPS, 1, 1);
	vks_barrier(cmd);
	vks_cmd_submit_wait(v, cmd);
	*ms = vks_now_ms() - t;
	uint32_t want[SPEC_WG * SPEC_GROUPS], meta[6];
	for (uint32_t g = 0; g < SPEC_GROUPS; g++)
		for (uint32_t l = 0; l < SPEC_WG; l++)
			want[g * SPEC_WG + l] =
				(SPEC_WG - 1 - l) * (uint32_t)x->i + x->u + (x->b ? 0x10000u : 0);
	float f = x->f;
	meta[0] = x->wg;
	meta[1] = (uint32_t)x->i;
	memcpy(&meta[2], &f, 4);
	meta[3] = x->b ? 1 : 0;
	meta[4] = x->u;
	meta[5] = SPEC_GROUPS;
	bool ok = vks_compare_u32(v, "out", p->out.map, want, SPEC_WG * SPEC_GROUPS) == 0 &&
		  vks_compare_u32(v, "meta", p->meta.map, meta, 6) == 0;
	*digest = vks_hash(*digest, p->out.map, sizeof(want));
	*digest = vks_hash(*digest, p->meta.map, sizeof(meta));
	return ok;
}

static void pipeline_check(struct vks *v, uint32_t n)
{
	v->current = "cost.pipeline";
	struct pipelines p = { 0 };
	p.module = vks_shader(v, spv_spec, sizeof(spv_spec));
	const VkDescriptorSetLayoutBinding bindings[2] = {
		{ 0, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, NULL },
		{ 1, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, NULL },
	};
	p.set_layout = vks_set_layout(v, bindings, 2);
	p.layout = vks_pipeline_layout(v, &p.set_layout, 1, 0, 0);
	const VkDescriptorPoolSize size = { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 2 };
	const VkDescriptorPoolCreateInfo dp = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
		.maxSets = 1,
		.poolSizeCount = 1,
		.pPoolSizes = &size,
	};
	VKS_CHECK(v, vkCreateDescriptorPool(v->dev, &dp, NULL, &p.pool));
	p.set = vks_alloc_set(v, p.pool, p.set_layout);
	vks_buf_create(v, &p.out, SPEC_WG * SPEC_GROUPS * sizeof(uint32_t), VKS_USAGE_ALL);
	vks_buf_create(v, &p.meta, 8 * sizeof(uint32_t), VKS_USAGE_ALL);
	vks_write_buffer(v, p.set, 0, 0, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, p.out.buf, 0,
			 VK_WHOLE_SIZE);
	vks_write_buffer(v, p.set, 1, 0, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, p.meta.buf, 0,
			 VK_WHOLE_SIZE);
	const VkPipelineCacheCreateInfo ci = {
		.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO
	};
	VkPipelineCache cache;
	VKS_CHECK(v, vkCreatePipelineCache(v->dev, &ci, NULL, &cache));

	struct spec_values *values = calloc(n, sizeof(*values));
	VkPipeline *pipelines = calloc(3 * (size_t)n, sizeof(*pipelines));
	double *ms = calloc(3 * (size_t)n, sizeof(double));
	double *run_ms = calloc(n, sizeof(double));
	if (!values || !pipelines || !ms || !run_ms)
		vks_fatal(v, "calloc", VK_ERROR_OUT_OF_HOST_MEMORY);
	for (uint32_t i = 0; i < n; i++)
		values[i] = (struct spec_values){ SPEC_WG, 3, 1.5f, VK_TRUE, 1000 + i };

	static const struct {
		const char *name, *phase;
		bool cache;
	} kinds[3] = {
		{ "cost.pipeline.cold", "pipeline.cold", true },
		{ "cost.pipeline.cached", "pipeline.cached", true },
		{ "cost.pipeline.uncached", "pipeline.uncached", false },
	};
	uint32_t hits[3] = { 0 };
	bool feedback = false;
	for (uint32_t k = 0; k < 3; k++) {
		vks_phase(v, kinds[k].phase, true);
		for (uint32_t i = 0; i < n; i++) {
			bool hit, valid;
			pipelines[k * n + i] =
				create_pipeline(v, &p, kinds[k].cache ? cache : VK_NULL_HANDLE,
						&values[i], &ms[k * n + i], &hit, &valid);
			hits[k] += hit;
			feedback |= valid;
		}
		vks_phase(v, kinds[k].phase, false);
	}

	for (uint32_t k = 0; k < 3; k++) {
		v->current = kinds[k].name;
		uint64_t digest = VKS_HASH_INIT;
		bool ok = true;
		for (uint32_t i = 0; i < n; i++)
			ok = run_pipeline(v, &p, pipelines[k * n + i], &values[i], &digest,
					  &run_ms[i]) &&
			     ok;
		double min = ms[k * n], max = ms[k * n];
		for (uint32_t i = 1; i < n; i++) {
			if (ms[k * n + i] < min)
				min = ms[k * n + i];
			if (ms[k * n + i] > max)
				max = ms[k * n + i];
		}
		vks_report(v, kinds[k].name, ok, digest, 0,
			   "n=%u create_ms=%.3f min_ms=%.3f max_ms=%.3f first_run_ms=%.3f hits=%u "
			   "feedback=%d",
			   n, vks_median(ms + k * n, n), min, max, vks_median(run_ms, n), hits[k],
			   feedback ? 1 : 0);
	}

	for (uint32_t j = 0; j < 3 * n; j++)
		vkDestroyPipeline(v->dev, pipelines[j], NULL);
	free(values);
	free(pipelines);
	free(ms);
	free(run_ms);
	vkDestroyPipelineCache(v->dev, cache, NULL);
	vks_buf_destroy(v, &p.out);
	vks_buf_destroy(v, &p.meta);
	vkDestroyDescriptorPool(v->dev, p.pool, NULL);
	vkDestroyPipelineLayout(v->dev, p.layout, NULL);
	vkDestroyDescriptorSetLayout(v->dev, p.set_layout, NULL);
	vkDestroyShaderModule(v->dev, p.module, NULL);
}

int main(int argc, char **argv)
{
	struct vks v;
	vks_init(&v, "vks-cost", argc, argv, 0);
	uint32_t n = v.opt.iterations_set ? v.opt.iterations : DEFAULT_N;
	submit_check(&v);
	access_check(&v, "cost.access.coherent", "access.coherent",
		     VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, false);
	access_check(&v, "cost.access.cached", "access.cached", VK_MEMORY_PROPERTY_HOST_CACHED_BIT,
		     true);
	alloc_check(&v, n);
	pipeline_check(&v, n);
	return vks_finish(&v);
}
