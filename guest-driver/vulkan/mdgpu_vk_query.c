// SPDX-License-Identifier: MIT
/*
 * libvulkan_mdgpu: timestamp query pools. A pool is an mdgpu buffer, mapped write-back, with 16
 * bytes per query: the device's TIMESTAMP (nanoseconds: timestampPeriod is 1.0) and, written by
 * a FENCE after it, the query's availability. Resetting writes zeros (FILL on the device,
 * stores on the host); results are read from the mapping. Occlusion and pipeline-statistics
 * queries belong to graphics and are not offered.
 */
#include <stdlib.h>
#include <string.h>

#include "mdgpu_vk.h"
#include "mdgpu_vk_entry.h"

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateQueryPool(VkDevice device,
						     const VkQueryPoolCreateInfo *pCreateInfo,
						     const VkAllocationCallbacks *pAllocator,
						     VkQueryPool *pQueryPool)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	struct mdgpu_vk_query_pool *pool;
	int ret;

	if (pCreateInfo->queryType != VK_QUERY_TYPE_TIMESTAMP)
		return VK_ERROR_FEATURE_NOT_PRESENT;
	if (!pCreateInfo->queryCount)
		return VK_ERROR_OUT_OF_DEVICE_MEMORY;
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	pool->type = pCreateInfo->queryType;
	pool->count = pCreateInfo->queryCount;
	ret = mdgpu_bo_create(dev->mdgpu, (uint64_t)pool->count * MDGPU_VK_QUERY_STRIDE, 0,
			      MDGPU_BO_CACHED, &pool->bo);
	if (!ret) {
		ret = mdgpu_bo_map(dev->mdgpu, &pool->bo);
		if (ret)
			mdgpu_bo_destroy(dev->mdgpu, &pool->bo);
	}
	if (ret) {
		free(pool);
		return mdgpu_vk_result(ret) == VK_ERROR_OUT_OF_HOST_MEMORY ?
			       VK_ERROR_OUT_OF_HOST_MEMORY :
			       VK_ERROR_OUT_OF_DEVICE_MEMORY;
	}
	*pQueryPool = MDGPU_VK_TO_HANDLE(VkQueryPool, pool);
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyQueryPool(VkDevice device, VkQueryPool queryPool,
						  const VkAllocationCallbacks *pAllocator)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(query_pool, pool, queryPool);

	if (!pool)
		return;
	mdgpu_bo_unmap(&pool->bo);
	mdgpu_bo_destroy(dev->mdgpu, &pool->bo);
	free(pool);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_ResetQueryPool(VkDevice device, VkQueryPool queryPool,
						uint32_t firstQuery, uint32_t queryCount)
{
	MDGPU_VK_FROM_HANDLE(query_pool, pool, queryPool);
	uint64_t *words = pool->bo.map;

	for (uint32_t i = 0; i < queryCount && firstQuery + i < pool->count; i++) {
		__atomic_store_n(&words[2 * (firstQuery + i)], 0, __ATOMIC_RELAXED);
		__atomic_store_n(&words[2 * (firstQuery + i) + 1], 0, __ATOMIC_RELAXED);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void put(void *at, uint64_t v, bool wide)
{
	if (wide) {
		memcpy(at, &v, 8);
	} else {
		uint32_t w = (uint32_t)v;

		memcpy(at, &w, 4);
	}
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_GetQueryPoolResults(VkDevice device, VkQueryPool queryPool,
							 uint32_t firstQuery, uint32_t queryCount,
							 size_t dataSize, void *pData,
							 VkDeviceSize stride,
							 VkQueryResultFlags flags)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(query_pool, pool, queryPool);
	const bool wide = flags & VK_QUERY_RESULT_64_BIT;
	const size_t size = wide ? 8 : 4;
	uint64_t *words = pool->bo.map;
	VkResult result = VK_SUCCESS;

	if (mdgpu_vk_device_check_lost(dev))
		return VK_ERROR_DEVICE_LOST;
	for (uint32_t i = 0; i < queryCount; i++) {
		uint32_t q = firstQuery + i;
		uint8_t *out = (uint8_t *)pData + i * stride;
		uint64_t avail, value;

		if (q >= pool->count ||
		    i * stride + size * (flags & VK_QUERY_RESULT_WITH_AVAILABILITY_BIT ? 2 : 1) >
			    dataSize)
			break;
		avail = __atomic_load_n(&words[2 * q + 1], __ATOMIC_ACQUIRE);
		if (!avail && (flags & VK_QUERY_RESULT_WAIT_BIT)) {
			/* The availability word, as a slot the wait can sleep on. */
			struct mdgpu_vk_slot slot = {
				.handle = pool->bo.handle,
				.offset = (uint64_t)q * MDGPU_VK_QUERY_STRIDE + 8,
				.ptr = &words[2 * q + 1],
			};
			struct mdgpu_vk_wait w = { .slot = &slot, .value = 1, .submitted = true };
			/*
			 * Its word is written by work already submitted, which need not interrupt:
			 * the wait must be woken by a submission after it that does.
			 */
			VkResult r = dev->queue.q ? mdgpu_vk_queue_want_irq(
							    &dev->queue,
							    atomic_load(&dev->queue.submitted)) :
						    VK_SUCCESS;

			if (r == VK_SUCCESS)
				r = mdgpu_vk_wait_many(dev, &w, 1, true, UINT64_MAX);
			if (r != VK_SUCCESS)
				return r;
			avail = 1;
		}
		value = __atomic_load_n(&words[2 * q], __ATOMIC_ACQUIRE);
		if (avail || (flags & VK_QUERY_RESULT_PARTIAL_BIT))
			put(out, value, wide);
		if (flags & VK_QUERY_RESULT_WITH_AVAILABILITY_BIT)
			put(out + size, avail ? 1 : 0, wide);
		if (!avail)
			result = VK_NOT_READY;
	}
	return result;
}
