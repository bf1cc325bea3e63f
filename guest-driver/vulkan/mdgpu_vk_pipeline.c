// SPDX-License-Identifier: MIT
/*
 * libvulkan_mdgpu: shader modules, compute pipelines and pipeline caches.
 *
 * A shader module is its SPIR-V, kept in the process. A compute pipeline is an mdgpu kernel:
 * KERNEL_CREATE2 with the module, the entry point, the specialization constants, the pipeline
 * layout's push-constant size and the DISPATCH_BASE flag; the ioctl sleeps until the host has
 * validated and compiled it (several threads may create pipelines at once). The pipeline also
 * keeps which descriptors its entry point uses (mdgpu_vk_spirv.c), for DISPATCH2.
 *
 * A pipeline cache holds, per pipeline created through it, a 128-bit key of everything the
 * kernel is built from, and the kernel itself while the cache lives: a second creation of the
 * same pipeline through the cache shares the kernel (no build at all: a cache hit in the
 * creation feedback). Its data - a standard header naming this device, then the keys - survives
 * the process: loaded again, a key says the kernel was built before, and the host keeps a
 * per-VM cache of the kernels that passed its checks, keyed by content, so the later run skips
 * the host's second compile (docs/vulkan.md).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mdgpu_vk.h"
#include "mdgpu_vk_entry.h"

/* ---- shader modules ---- */

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateShaderModule(VkDevice device,
							const VkShaderModuleCreateInfo *pCreateInfo,
							const VkAllocationCallbacks *pAllocator,
							VkShaderModule *pShaderModule)
{
	struct mdgpu_vk_shader_module *m;

	if (pCreateInfo->codeSize % 4 || pCreateInfo->codeSize > MDGPU_KERNEL_MAX_SPIRV)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	m = calloc(1, sizeof(*m));
	if (!m)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	m->size = pCreateInfo->codeSize;
	m->code = malloc(m->size ? m->size : 4);
	if (!m->code) {
		free(m);
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	}
	memcpy(m->code, pCreateInfo->pCode, m->size);
	*pShaderModule = MDGPU_VK_TO_HANDLE(VkShaderModule, m);
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyShaderModule(VkDevice device, VkShaderModule shaderModule,
						     const VkAllocationCallbacks *pAllocator)
{
	MDGPU_VK_FROM_HANDLE(shader_module, m, shaderModule);

	if (!m)
		return;
	free(m->code);
	free(m);
}

/* ---- kernels ---- */

void mdgpu_vk_kernel_unref(struct mdgpu_vk_device *dev, struct mdgpu_vk_kernel *k)
{
	if (k && atomic_fetch_sub(&k->refs, 1) == 1) {
		mdgpu_kernel_destroy(dev->mdgpu, k->id);
		free(k);
	}
}

/* ---- pipeline caches ---- */

#define KEY_SIZE 16
#define CACHE_MAGIC "MDGPUPC1"

/* Everything a kernel is built from, as bytes: the cache's key is a digest of it. */
struct blob {
	uint8_t *data;
	size_t len, cap;
	bool oom;
};

static void blob_put(struct blob *b, const void *p, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		void *q;

		while (cap < b->len + n)
			cap *= 2;
		q = realloc(b->data, cap);
		if (!q) {
			b->oom = true;
			return;
		}
		b->data = q;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void blob_u32(struct blob *b, uint32_t v)
{
	blob_put(b, &v, sizeof(v));
}

static void digest(const struct blob *b, uint8_t key[KEY_SIZE])
{
	uint64_t h[2] = { 0xcbf29ce484222325ull, 0x6c62272e07bb0142ull };

	for (int lane = 0; lane < 2; lane++) {
		for (size_t i = 0; i < b->len; i++)
			h[lane] = (h[lane] ^ b->data[i]) * 0x100000001b3ull;
		h[lane] ^= (uint64_t)b->len;
		h[lane] ^= h[lane] >> 33;
		h[lane] *= lane ? 0xc4ceb9fe1a85ec53ull : 0xff51afd7ed558ccdull;
		h[lane] ^= h[lane] >> 33;
	}
	memcpy(key, h, KEY_SIZE);
}

struct cache_entry {
	struct cache_entry *next;
	uint8_t key[KEY_SIZE];
	struct blob blob;
	struct mdgpu_vk_kernel *kernel;
};

struct mdgpu_vk_pipeline_cache {
	pthread_mutex_t lock;
	bool externally_synchronized;
	struct cache_entry *entries;
	uint32_t loaded_count;
	uint8_t (*loaded)[KEY_SIZE];
};

static bool cache_has_key(const struct mdgpu_vk_pipeline_cache *c, const uint8_t key[KEY_SIZE])
{
	for (struct cache_entry *e = c->entries; e; e = e->next)
		if (!memcmp(e->key, key, KEY_SIZE))
			return true;
	for (uint32_t i = 0; i < c->loaded_count; i++)
		if (!memcmp(c->loaded[i], key, KEY_SIZE))
			return true;
	return false;
}

static void cache_lock(struct mdgpu_vk_pipeline_cache *c)
{
	if (!c->externally_synchronized)
		pthread_mutex_lock(&c->lock);
}

static void cache_unlock(struct mdgpu_vk_pipeline_cache *c)
{
	if (!c->externally_synchronized)
		pthread_mutex_unlock(&c->lock);
}

/* The header every cache's data starts with, naming this device. */
static void cache_header(const struct mdgpu_vk_physical_device *pd,
			 VkPipelineCacheHeaderVersionOne *h)
{
	memset(h, 0, sizeof(*h));
	h->headerSize = sizeof(*h);
	h->headerVersion = VK_PIPELINE_CACHE_HEADER_VERSION_ONE;
	h->vendorID = pd->props.vendorID;
	h->deviceID = pd->props.deviceID;
	memcpy(h->pipelineCacheUUID, pd->props.pipelineCacheUUID, VK_UUID_SIZE);
}

/* Keys of data from vkGetPipelineCacheData of this device and build; other data is ignored. */
static void cache_load(struct mdgpu_vk_device *dev, struct mdgpu_vk_pipeline_cache *c,
		       const uint8_t *data, size_t size)
{
	VkPipelineCacheHeaderVersionOne want, got;
	uint32_t count;
	size_t at;

	cache_header(dev->physical, &want);
	if (size < sizeof(got))
		return;
	memcpy(&got, data, sizeof(got));
	if (got.headerSize != sizeof(got) || got.headerVersion != want.headerVersion ||
	    got.vendorID != want.vendorID || got.deviceID != want.deviceID ||
	    memcmp(got.pipelineCacheUUID, want.pipelineCacheUUID, VK_UUID_SIZE))
		return;
	at = sizeof(got);
	if (size - at < 16 || memcmp(data + at, CACHE_MAGIC, 8))
		return;
	memcpy(&count, data + at + 8, sizeof(count));
	at += 16;
	if (count > (size - at) / KEY_SIZE)
		return;
	c->loaded = malloc((size_t)count * KEY_SIZE + 1);
	if (!c->loaded)
		return;
	memcpy(c->loaded, data + at, (size_t)count * KEY_SIZE);
	c->loaded_count = count;
	mdgpu_vk_debug("pipeline cache: %u keys loaded", count);
}

VKAPI_ATTR VkResult VKAPI_CALL
mdgpu_CreatePipelineCache(VkDevice device, const VkPipelineCacheCreateInfo *pCreateInfo,
			  const VkAllocationCallbacks *pAllocator, VkPipelineCache *pPipelineCache)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	struct mdgpu_vk_pipeline_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	pthread_mutex_init(&c->lock, NULL);
	c->externally_synchronized =
		pCreateInfo->flags & VK_PIPELINE_CACHE_CREATE_EXTERNALLY_SYNCHRONIZED_BIT;
	if (pCreateInfo->initialDataSize && pCreateInfo->pInitialData)
		cache_load(dev, c, pCreateInfo->pInitialData, pCreateInfo->initialDataSize);
	*pPipelineCache = MDGPU_VK_TO_HANDLE(VkPipelineCache, c);
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyPipelineCache(VkDevice device,
						      VkPipelineCache pipelineCache,
						      const VkAllocationCallbacks *pAllocator)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(pipeline_cache, c, pipelineCache);
	struct cache_entry *e, *next;

	if (!c)
		return;
	for (e = c->entries; e; e = next) {
		next = e->next;
		mdgpu_vk_kernel_unref(dev, e->kernel);
		free(e->blob.data);
		free(e);
	}
	free(c->loaded);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_GetPipelineCacheData(VkDevice device,
							  VkPipelineCache pipelineCache,
							  size_t *pDataSize, void *pData)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(pipeline_cache, c, pipelineCache);
	VkPipelineCacheHeaderVersionOne h;
	uint8_t *out = pData;
	uint32_t count = 0, written = 0;
	size_t need, room;
	VkResult result = VK_SUCCESS;

	cache_lock(c);
	for (struct cache_entry *e = c->entries; e; e = e->next)
		count++;
	count += c->loaded_count;
	need = sizeof(h) + 16 + (size_t)count * KEY_SIZE;
	if (!pData) {
		*pDataSize = need;
		cache_unlock(c);
		return VK_SUCCESS;
	}
	if (*pDataSize < sizeof(h) + 16) {
		*pDataSize = 0;
		cache_unlock(c);
		return VK_INCOMPLETE;
	}
	cache_header(dev->physical, &h);
	memcpy(out, &h, sizeof(h));
	room = (*pDataSize - sizeof(h) - 16) / KEY_SIZE;
	for (struct cache_entry *e = c->entries; e && written < room; e = e->next)
		memcpy(out + sizeof(h) + 16 + (size_t)written++ * KEY_SIZE, e->key, KEY_SIZE);
	for (uint32_t i = 0; i < c->loaded_count && written < room; i++) {
		bool dup = false;

		for (struct cache_entry *e = c->entries; e && !dup; e = e->next)
			dup = !memcmp(e->key, c->loaded[i], KEY_SIZE);
		if (!dup)
			memcpy(out + sizeof(h) + 16 + (size_t)written++ * KEY_SIZE, c->loaded[i],
			       KEY_SIZE);
	}
	if (written < room && written < count) {
		/* Duplicates left out: the data is shorter than the first answer said. */
	} else if (written < count && written == room) {
		result = VK_INCOMPLETE;
	}
	memcpy(out + sizeof(h), CACHE_MAGIC, 8);
	memcpy(out + sizeof(h) + 8, &written, sizeof(written));
	memset(out + sizeof(h) + 12, 0, 4);
	*pDataSize = sizeof(h) + 16 + (size_t)written * KEY_SIZE;
	cache_unlock(c);
	return result;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_MergePipelineCaches(VkDevice device, VkPipelineCache dstCache,
							 uint32_t srcCacheCount,
							 const VkPipelineCache *pSrcCaches)
{
	MDGPU_VK_FROM_HANDLE(pipeline_cache, dst, dstCache);
	VkResult result = VK_SUCCESS;

	cache_lock(dst);
	for (uint32_t i = 0; i < srcCacheCount && result == VK_SUCCESS; i++) {
		MDGPU_VK_FROM_HANDLE(pipeline_cache, src, pSrcCaches[i]);

		cache_lock(src);
		for (struct cache_entry *e = src->entries; e; e = e->next) {
			struct cache_entry *copy;

			if (cache_has_key(dst, e->key))
				continue;
			copy = calloc(1, sizeof(*copy));
			if (copy)
				blob_put(&copy->blob, e->blob.data, e->blob.len);
			if (!copy || copy->blob.oom) {
				if (copy)
					free(copy->blob.data);
				free(copy);
				result = VK_ERROR_OUT_OF_HOST_MEMORY;
				break;
			}
			memcpy(copy->key, e->key, KEY_SIZE);
			copy->kernel = e->kernel;
			atomic_fetch_add(&copy->kernel->refs, 1);
			copy->next = dst->entries;
			dst->entries = copy;
		}
		for (uint32_t k = 0; k < src->loaded_count && result == VK_SUCCESS; k++) {
			void *p;

			if (cache_has_key(dst, src->loaded[k]))
				continue;
			p = realloc(dst->loaded, ((size_t)dst->loaded_count + 1) * KEY_SIZE);
			if (!p) {
				result = VK_ERROR_OUT_OF_HOST_MEMORY;
				break;
			}
			dst->loaded = p;
			memcpy(dst->loaded[dst->loaded_count++], src->loaded[k], KEY_SIZE);
		}
		cache_unlock(src);
	}
	cache_unlock(dst);
	return result;
}

/* ---- compute pipelines ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static VkResult kernel_result(int ret)
{
	switch (ret) {
	case -ENOMEM:
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	case -EDQUOT:
	case -ENOSPC:
	case -EMFILE:
		return VK_ERROR_OUT_OF_DEVICE_MEMORY;
	default:
		/* Refused (-EINVAL), throttled, timed out, device gone. */
		return VK_ERROR_UNKNOWN;
	}
}

static VkResult create_one(struct mdgpu_vk_device *dev, struct mdgpu_vk_pipeline_cache *cache,
			   const VkComputePipelineCreateInfo *info, VkPipeline *out)
{
	const VkPipelineShaderStageCreateInfo *stage = &info->stage;
	struct mdgpu_vk_shader_module *module = (void *)(uintptr_t)stage->module;
	struct mdgpu_vk_pipeline_layout *layout = (void *)(uintptr_t)info->layout;
	const VkSpecializationInfo *spec = stage->pSpecializationInfo;
	const VkPipelineCreationFeedbackCreateInfo *fb = mdgpu_vk_find_struct(
		info->pNext, VK_STRUCTURE_TYPE_PIPELINE_CREATION_FEEDBACK_CREATE_INFO);
	const char *entry = stage->pName ? stage->pName : "main";
	struct mdgpu_spec_constant consts[MDGPU_KERNEL_MAX_SPEC_ENTRIES];
	struct mdgpu_vk_pipeline *p;
	struct mdgpu_vk_kernel *kernel = NULL;
	struct cache_entry *hit = NULL;
	struct blob blob = { 0 };
	uint8_t key[KEY_SIZE];
	uint32_t flags = 0, push, nspec = spec ? spec->mapEntryCount : 0;
	uint64_t start = now_ns();
	bool cache_hit = false;
	VkResult result;
	int ret;

	*out = VK_NULL_HANDLE;
	if (!module || !layout || stage->stage != VK_SHADER_STAGE_COMPUTE_BIT ||
	    nspec > MDGPU_KERNEL_MAX_SPEC_ENTRIES ||
	    (spec && spec->dataSize > MDGPU_KERNEL_MAX_SPEC_DATA))
		return VK_ERROR_UNKNOWN;
	if (info->flags & VK_PIPELINE_CREATE_DISPATCH_BASE_BIT)
		flags |= MDGPU_KERNEL_FLAG_DISPATCH_BASE;
	push = (uint32_t)mdgpu_vk_align(layout->push_size, 4);
	if (push > MDGPU_VK_MAX_PUSH)
		return VK_ERROR_UNKNOWN;

	p = calloc(1, sizeof(*p));
	if (!p)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	p->push_size = push;
	result = mdgpu_vk_reflect(module->code, module->size, entry, spec, &p->reflection);
	if (result != VK_SUCCESS)
		goto err_free;

	for (uint32_t i = 0; i < nspec; i++) {
		consts[i].constant_id = spec->pMapEntries[i].constantID;
		consts[i].offset = spec->pMapEntries[i].offset;
		consts[i].size = (uint32_t)spec->pMapEntries[i].size;
	}
	/* The key: everything the kernel is built from, and this device's build. */
	blob_u32(&blob, flags);
	blob_u32(&blob, push);
	blob_u32(&blob, (uint32_t)strlen(entry));
	blob_put(&blob, entry, strlen(entry));
	blob_u32(&blob, nspec);
	blob_put(&blob, consts, nspec * sizeof(consts[0]));
	blob_u32(&blob, spec ? (uint32_t)spec->dataSize : 0);
	if (spec && spec->dataSize)
		blob_put(&blob, spec->pData, spec->dataSize);
	blob_put(&blob, module->code, module->size);
	if (blob.oom) {
		result = VK_ERROR_OUT_OF_HOST_MEMORY;
		goto err_reflect;
	}
	digest(&blob, key);

	if (cache) {
		cache_lock(cache);
		for (struct cache_entry *e = cache->entries; e; e = e->next)
			if (!memcmp(e->key, key, KEY_SIZE) && e->blob.len == blob.len &&
			    !memcmp(e->blob.data, blob.data, blob.len)) {
				hit = e;
				kernel = e->kernel;
				atomic_fetch_add(&kernel->refs, 1);
				break;
			}
		cache_hit = cache_has_key(cache, key);
		cache_unlock(cache);
	}
	if (!kernel) {
		uint32_t *folded = NULL;
		size_t folded_size = 0;
		struct mdgpu_kernel_params params = {
			.spirv = module->code,
			.spirv_size = module->size,
			.entry = strcmp(entry, "main") ? entry : NULL,
			.spec = nspec ? consts : NULL,
			.spec_count = nspec,
			.spec_data = spec && spec->dataSize ? spec->pData : NULL,
			.spec_data_size = spec ? (uint32_t)spec->dataSize : 0,
			.push_bytes = push,
			.flags = flags,
		};

		if (info->flags & VK_PIPELINE_CREATE_FAIL_ON_PIPELINE_COMPILE_REQUIRED_BIT) {
			result = VK_PIPELINE_COMPILE_REQUIRED;
			goto err_reflect;
		}
		result = mdgpu_vk_fold_spec_ops(module->code, module->size, spec, &folded,
						&folded_size);
		if (result != VK_SUCCESS)
			goto err_reflect;
		if (folded) {
			params.spirv = folded;
			params.spirv_size = folded_size;
		}
		kernel = calloc(1, sizeof(*kernel));
		if (!kernel) {
			free(folded);
			result = VK_ERROR_OUT_OF_HOST_MEMORY;
			goto err_reflect;
		}
		atomic_init(&kernel->refs, 1);
		ret = mdgpu_kernel_create2(dev->mdgpu, &params, &kernel->id);
		free(folded);
		if (ret) {
			mdgpu_vk_debug("vkCreateComputePipelines: kernel \"%s\" refused: %s", entry,
				       mdgpu_strerror(ret));
			free(kernel);
			result = kernel_result(ret);
			goto err_reflect;
		}
		if (cache) {
			struct cache_entry *e = calloc(1, sizeof(*e));

			if (e) {
				memcpy(e->key, key, KEY_SIZE);
				e->blob = blob;
				blob = (struct blob){ 0 };
				e->kernel = kernel;
				atomic_fetch_add(&kernel->refs, 1);
				cache_lock(cache);
				e->next = cache->entries;
				cache->entries = e;
				cache_unlock(cache);
			}
		}
	}
	(void)hit;
	free(blob.data);
	p->kernel = kernel;
	if (fb) {
		VkPipelineCreationFeedback f = {
			.flags =
				VK_PIPELINE_CREATION_FEEDBACK_VALID_BIT |
				(cache_hit ?
					 VK_PIPELINE_CREATION_FEEDBACK_APPLICATION_PIPELINE_CACHE_HIT_BIT :
					 0),
			.duration = now_ns() - start,
		};

		if (fb->pPipelineCreationFeedback)
			*fb->pPipelineCreationFeedback = f;
		for (uint32_t i = 0; i < fb->pipelineStageCreationFeedbackCount; i++)
			fb->pPipelineStageCreationFeedbacks[i] = f;
	}
	*out = MDGPU_VK_TO_HANDLE(VkPipeline, p);
	return VK_SUCCESS;

err_reflect:
	free(blob.data);
	mdgpu_vk_reflection_fini(&p->reflection);
err_free:
	free(p);
	return result;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateComputePipelines(
	VkDevice device, VkPipelineCache pipelineCache, uint32_t createInfoCount,
	const VkComputePipelineCreateInfo *pCreateInfos, const VkAllocationCallbacks *pAllocator,
	VkPipeline *pPipelines)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(pipeline_cache, cache, pipelineCache);
	VkResult result = VK_SUCCESS;
	uint32_t i;

	for (i = 0; i < createInfoCount; i++)
		pPipelines[i] = VK_NULL_HANDLE;
	for (i = 0; i < createInfoCount; i++) {
		VkResult r = create_one(dev, cache, &pCreateInfos[i], &pPipelines[i]);

		if (r != VK_SUCCESS) {
			if (result == VK_SUCCESS)
				result = r;
			if (pCreateInfos[i].flags & VK_PIPELINE_CREATE_EARLY_RETURN_ON_FAILURE_BIT)
				break;
		}
	}
	return result;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyPipeline(VkDevice device, VkPipeline pipeline,
						 const VkAllocationCallbacks *pAllocator)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(pipeline, p, pipeline);

	if (!p)
		return;
	mdgpu_vk_kernel_unref(dev, p->kernel);
	mdgpu_vk_reflection_fini(&p->reflection);
	free(p);
}
