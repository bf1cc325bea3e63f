/* SPDX-License-Identifier: MIT */
/*
 * vks-pipecache: a pipeline cache saved to a file and reused by the next run.
 *
 * The file (--cache FILE, default $TMPDIR/vks-pipeline-cache.bin) is loaded only if its header
 * (VkPipelineCacheHeaderVersionOne) names this device: header size and version, vendor and
 * device ids, pipelineCacheUUID. Six pipelines (one module, six specializations) are created
 * with the cache and with VkPipelineCreationFeedback, which says whether a creation was a cache
 * hit (when the implementation reports it). The same six are created again in the same process
 * with the same cache, a seventh goes through a second cache merged into the first
 * (vkMergePipelineCaches), every pipeline runs and is checked, and the cache data, whose header
 * must name this device, is written back to the file.
 *
 *   cache.create  (no usable file)    cache.reuse  (a valid file was loaded)
 *
 * hits_loaded= counts creations from the file's data that the implementation reported as hits,
 * hits_again= those of the second creation in-process; feedback=0 when it reports nothing.
 */
#define _GNU_SOURCE
#include "vks.h"

#include "spv_spec.inc"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VARIANTS 6
#define TOTAL 1024

static const char *header_problem(struct vks *v, const uint8_t *data, size_t size)
{
	VkPipelineCacheHeaderVersionOne h;
	if (size < sizeof(h))
		return "short";
	memcpy(&h, data, sizeof(h));
	if (h.headerSize < sizeof(h) || h.headerSize > size)
		return "header-size";
	if (h.headerVersion != VK_PIPELINE_CACHE_HEADER_VERSION_ONE)
		return "header-version";
	if (h.vendorID != v->props.vendorID || h.deviceID != v->props.deviceID)
		return "other-device";
	if (memcmp(h.pipelineCacheUUID, v->props.pipelineCacheUUID, VK_UUID_SIZE))
		return "other-uuid";
	return NULL;
}

static uint8_t *read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *data = NULL;
	if (fseek(f, 0, SEEK_END) == 0) {
		long n = ftell(f);
		if (n > 0 && n < (64l << 20) && fseek(f, 0, SEEK_SET) == 0) {
			data = malloc((size_t)n);
			if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
				free(data);
				data = NULL;
			}
			*size = (size_t)n;
		}
	}
	fclose(f);
	return data;
}

static bool write_file(const char *path, const void *data, size_t size)
{
	char tmp[4200];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return false;
	FILE *f = fopen(tmp, "wb");
	if (!f)
		return false;
	bool ok = fwrite(data, 1, size, f) == size;
	ok = fclose(f) == 0 && ok;
	return ok && rename(tmp, path) == 0;
}

struct variant {
	uint32_t wg;
	int32_t i;
};

/* Create the variants with `cache`; count reported hits; *valid: feedback was reported. */
static uint32_t create_all(struct vks *v, VkShaderModule m, VkPipelineLayout layout,
			   VkPipelineCache cache, const struct variant *vars, uint32_t n,
			   VkPipeline *out, bool *valid, double *ms)
{
	VkComputePipelineCreateInfo infos[VARIANTS];
	VkSpecializationInfo specs[VARIANTS];
	VkPipelineCreationFeedback fb[VARIANTS], stage_fb[VARIANTS];
	VkPipelineCreationFeedbackCreateInfo fbi[VARIANTS];
	static const VkSpecializationMapEntry entries[2] = { { 0, 0, 4 }, { 1, 4, 4 } };
	bool feedback = v->api >= VK_API_VERSION_1_3;
	for (uint32_t k = 0; k < n; k++) {
		specs[k] = (VkSpecializationInfo){ 2, entries, sizeof(vars[k]), &vars[k] };
		fbi[k] = (VkPipelineCreationFeedbackCreateInfo){
			.sType = VK_STRUCTURE_TYPE_PIPELINE_CREATION_FEEDBACK_CREATE_INFO,
			.pPipelineCreationFeedback = &fb[k],
			.pipelineStageCreationFeedbackCount = 1,
			.pPipelineStageCreationFeedbacks = &stage_fb[k],
		};
		infos[k] = (VkComputePipelineCreateInfo){
			.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
			.pNext = feedback ? &fbi[k] : NULL,
			.stage = { .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
				   .stage = VK_SHADER_STAGE_COMPUTE_BIT,
				   .module = m,
				   .pName = "main",
				   .pSpecializationInfo = &specs[k] },
			.layout = layout,
		};
		fb[k].flags = 0;
	}
	double t0 = vks_now_ms();
	VKS_CHECK(v, vkCreateComputePipelines(v->dev, cache, n, infos, NULL, out));
	*ms = vks_now_ms() - t0;
	uint32_t hits = 0;
	*valid = false;
	for (uint32_t k = 0; k < n && feedback; k++) {
		if (fb[k].flags & VK_PIPELINE_CREATION_FEEDBACK_VALID_BIT)
			*valid = true;
		if (fb[k].flags & VK_PIPELINE_CREATION_FEEDBACK_APPLICATION_PIPELINE_CACHE_HIT_BIT)
			hits++;
	}
	return hits;
}

/* Run pipeline `p` (variant `x`) and compare with the CPU; returns the output's digest. */
static bool run_one(struct vks *v, VkPipeline p, VkPipelineLayout layout, VkDescriptorSet set,
		    struct vks_buf *out, const struct variant *x, uint64_t *digest)
{
	memset(out->map, 0, out->size);
	VkCommandBuffer cmd = vks_cmd_begin(v);
	vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p);
	vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, 1, &set, 0, NULL);
	vkCmdDispatch(cmd, TOTAL / x->wg, 1, 1);
	vks_barrier(cmd);
	vks_cmd_submit_wait(v, cmd);
	uint32_t want[TOTAL];
	for (uint32_t g = 0; g < TOTAL; g++)
		want[g] = (x->wg - 1 - g % x->wg) * (uint32_t)x->i + 7; /* SC_U's default */
	*digest = vks_hash(*digest, out->map, TOTAL * 4);
	return vks_compare_u32(v, "out", out->map, want, TOTAL) == 0;
}

int main(int argc, char **argv)
{
	struct vks v;
	vks_init(&v, "vks-pipecache", argc, argv, 0);
	v.current = "cache";
	char fallback[4096];
	const char *tmpdir = getenv("TMPDIR");
	snprintf(fallback, sizeof(fallback), "%s/vks-pipeline-cache.bin", tmpdir ? tmpdir : "/tmp");
	const char *path = v.opt.cache ? v.opt.cache : fallback;

	size_t size = 0;
	uint8_t *data = read_file(path, &size);
	const char *problem = data ? header_problem(&v, data, size) : "absent";
	const char *name = problem ? "cache.create" : "cache.reuse";
	v.current = name;
	const VkPipelineCacheCreateInfo ci = {
		.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
		.initialDataSize = problem ? 0 : size,
		.pInitialData = problem ? NULL : data,
	};
	VkPipelineCache cache, other;
	VKS_CHECK(&v, vkCreatePipelineCache(v.dev, &ci, NULL, &cache));
	const VkPipelineCacheCreateInfo empty = {
		.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO
	};
	VKS_CHECK(&v, vkCreatePipelineCache(v.dev, &empty, NULL, &other));

	const VkDescriptorSetLayoutBinding b[2] = {
		{ 0, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, NULL },
		{ 1, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, NULL }
	};
	VkDescriptorSetLayout sl = vks_set_layout(&v, b, 2);
	VkPipelineLayout layout = vks_pipeline_layout(&v, &sl, 1, 0, 0);
	VkShaderModule m = vks_shader(&v, spv_spec, sizeof(spv_spec));
	const struct variant vars[VARIANTS + 1] = { { 32, 1 }, { 64, 2 }, { 128, 3 }, { 256, 4 },
						    { 16, 5 }, { 8, 6 },  { 64, 7 } };
	VkPipeline first[VARIANTS], again[VARIANTS], merged;
	bool fb1, fb2, fb3;
	double ms1, ms2, ms3;
	uint32_t hits1 = create_all(&v, m, layout, cache, vars, VARIANTS, first, &fb1, &ms1);
	uint32_t hits2 = create_all(&v, m, layout, cache, vars, VARIANTS, again, &fb2, &ms2);
	create_all(&v, m, layout, other, &vars[VARIANTS], 1, &merged, &fb3, &ms3);
	VKS_CHECK(&v, vkMergePipelineCaches(v.dev, cache, 1, &other));

	struct vks_buf out, meta;
	vks_buf_create(&v, &out, TOTAL * 4, VKS_USAGE_ALL);
	vks_buf_create(&v, &meta, 32, VKS_USAGE_ALL);
	const VkDescriptorPoolSize ps = { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 2 };
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
	vks_write_buffer(&v, set, 1, 0, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, meta.buf, 0,
			 VK_WHOLE_SIZE);
	uint64_t digest = VKS_HASH_INIT;
	bool ok = true;
	for (uint32_t k = 0; k < VARIANTS; k++) {
		ok = run_one(&v, first[k], layout, set, &out, &vars[k], &digest) && ok;
		ok = run_one(&v, again[k], layout, set, &out, &vars[k], &digest) && ok;
	}
	ok = run_one(&v, merged, layout, set, &out, &vars[VARIANTS], &digest) && ok;

	size_t saved = 0;
	VKS_CHECK(&v, vkGetPipelineCacheData(v.dev, cache, &saved, NULL));
	uint8_t *blob = malloc(saved ? saved : 1);
	if (!blob)
		vks_fatal(&v, "malloc", VK_ERROR_OUT_OF_HOST_MEMORY);
	VKS_CHECK(&v, vkGetPipelineCacheData(v.dev, cache, &saved, blob));
	const char *saved_problem = header_problem(&v, blob, saved);
	if (saved_problem) {
		vks_note(&v, "vkGetPipelineCacheData's header: %s", saved_problem);
		ok = false;
	}
	bool written = write_file(path, blob, saved);
	if (!written) {
		vks_note(&v, "cannot write %s", path);
		ok = false;
	}
	vks_report(&v, name, ok, digest, 0,
		   "file=%s loaded=%zu saved=%zu feedback=%d hits_loaded=%u/%u hits_again=%u/%u "
		   "create_ms=%.2f again_ms=%.2f",
		   problem ? problem : "valid", problem ? (size_t)0 : size, saved, fb1 || fb2,
		   hits1, VARIANTS, hits2, VARIANTS, ms1, ms2);

	for (uint32_t k = 0; k < VARIANTS; k++) {
		vkDestroyPipeline(v.dev, first[k], NULL);
		vkDestroyPipeline(v.dev, again[k], NULL);
	}
	vkDestroyPipeline(v.dev, merged, NULL);
	vkDestroyPipelineCache(v.dev, cache, NULL);
	vkDestroyPipelineCache(v.dev, other, NULL);
	vkDestroyDescriptorPool(v.dev, pool, NULL);
	vkDestroyShaderModule(v.dev, m, NULL);
	vkDestroyPipelineLayout(v.dev, layout, NULL);
	vkDestroyDescriptorSetLayout(v.dev, sl, NULL);
	vks_buf_destroy(&v, &out);
	vks_buf_destroy(&v, &meta);
	free(blob);
	free(data);
	return vks_finish(&v);
}
