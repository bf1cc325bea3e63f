// SPDX-License-Identifier: MIT
/*
 * libvulkan_mdgpu: device memory and buffers. A VkDeviceMemory is one mdgpu buffer
 * (MDGPU_IOCTL_BO_CREATE: one trap), mapped into the process the first time it is mapped and
 * kept mapped until it is freed, so vkMapMemory after the first costs nothing and accesses never
 * exit: memory type 0 is mapped write-combined, type 1 (HOST_CACHED) write-back
 * (MDGPU_BO_CACHED). Both are coherent: flushes and invalidations have nothing to do. A
 * VkBuffer is a range of one memory; commands name the memory's buffer handle and the offset.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mdgpu_vk.h"
#include "mdgpu_vk_entry.h"

VkDeviceSize mdgpu_vk_buffer_alignment(const struct mdgpu_vk_physical_device *pd)
{
	VkDeviceSize a = 16;

	if (pd->caps.min_storage_buffer_offset_alignment > a)
		a = pd->caps.min_storage_buffer_offset_alignment;
	if (pd->caps.min_uniform_buffer_offset_alignment > a)
		a = pd->caps.min_uniform_buffer_offset_alignment;
	return a;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_AllocateMemory(VkDevice device,
						    const VkMemoryAllocateInfo *pAllocateInfo,
						    const VkAllocationCallbacks *pAllocator,
						    VkDeviceMemory *pMemory)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	const struct mdgpu_vk_physical_device *pd = dev->physical;
	const VkMemoryAllocateFlagsInfo *flags = mdgpu_vk_find_struct(
		pAllocateInfo->pNext, VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO);
	struct mdgpu_vk_memory *mem;
	int ret;

	if (pAllocateInfo->memoryTypeIndex >= pd->memory.memoryTypeCount)
		return VK_ERROR_OUT_OF_DEVICE_MEMORY;
	/* No device addresses: a raw aperture address would reach other contexts' buffers. */
	if (flags && (flags->flags & VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT))
		return VK_ERROR_FEATURE_NOT_PRESENT;
	if (mdgpu_vk_find_struct(pAllocateInfo->pNext,
				 VK_STRUCTURE_TYPE_EXPORT_MEMORY_ALLOCATE_INFO) ||
	    mdgpu_vk_find_struct(pAllocateInfo->pNext, VK_STRUCTURE_TYPE_IMPORT_MEMORY_FD_INFO_KHR))
		return VK_ERROR_INVALID_EXTERNAL_HANDLE;
	if (!pAllocateInfo->allocationSize ||
	    pAllocateInfo->allocationSize > pd->caps.max_memory_allocation_size)
		return VK_ERROR_OUT_OF_DEVICE_MEMORY;
	if (mdgpu_vk_device_check_lost(dev))
		return VK_ERROR_DEVICE_LOST;
	mem = calloc(1, sizeof(*mem));
	if (!mem)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	mem->type = pAllocateInfo->memoryTypeIndex;
	mem->size = pAllocateInfo->allocationSize;
	ret = mdgpu_bo_create(dev->mdgpu, mem->size, 0, mem->type == 1 ? MDGPU_BO_CACHED : 0,
			      &mem->bo);
	if (ret) {
		mdgpu_vk_debug("vkAllocateMemory(%llu): %s", (unsigned long long)mem->size,
			       mdgpu_strerror(ret));
		free(mem);
		return ret == -ENOMEM ? VK_ERROR_OUT_OF_HOST_MEMORY :
		       ret == -EMFILE ? VK_ERROR_TOO_MANY_OBJECTS :
					VK_ERROR_OUT_OF_DEVICE_MEMORY;
	}
	atomic_fetch_add(&dev->allocated, mem->bo.size);
	mdgpu_vk_account_memory(pd, (int64_t)mem->bo.size);
	*pMemory = MDGPU_VK_TO_HANDLE(VkDeviceMemory, mem);
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_FreeMemory(VkDevice device, VkDeviceMemory memory,
					    const VkAllocationCallbacks *pAllocator)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(memory, mem, memory);

	if (!mem)
		return;
	/* The driver refuses to free a mapped buffer: unmap first. */
	mdgpu_bo_unmap(&mem->bo);
	mdgpu_bo_destroy(dev->mdgpu, &mem->bo);
	atomic_fetch_sub(&dev->allocated, mem->bo.size);
	mdgpu_vk_account_memory(dev->physical, -(int64_t)mem->bo.size);
	free(mem);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_MapMemory(VkDevice device, VkDeviceMemory memory,
					       VkDeviceSize offset, VkDeviceSize size,
					       VkMemoryMapFlags flags, void **ppData)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(memory, mem, memory);
	int ret;

	if (offset >= mem->size || (size != VK_WHOLE_SIZE && size > mem->size - offset))
		return VK_ERROR_MEMORY_MAP_FAILED;
	ret = mdgpu_bo_map(dev->mdgpu, &mem->bo);
	if (ret) {
		mdgpu_vk_debug("vkMapMemory: %s", mdgpu_strerror(ret));
		return VK_ERROR_MEMORY_MAP_FAILED;
	}
	*ppData = (uint8_t *)mem->bo.map + offset;
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_UnmapMemory(VkDevice device, VkDeviceMemory memory)
{
	/* The mapping stays until the memory is freed: mapping again is then free. */
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_FlushMappedMemoryRanges(
	VkDevice device, uint32_t memoryRangeCount, const VkMappedMemoryRange *pMemoryRanges)
{
	/* Coherent memory: the submission path's fences order the stores for the device. */
	return VK_SUCCESS;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_InvalidateMappedMemoryRanges(
	VkDevice device, uint32_t memoryRangeCount, const VkMappedMemoryRange *pMemoryRanges)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetDeviceMemoryCommitment(VkDevice device, VkDeviceMemory memory,
							   VkDeviceSize *pCommittedMemoryInBytes)
{
	MDGPU_VK_FROM_HANDLE(memory, mem, memory);

	*pCommittedMemoryInBytes = mem->bo.size;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetDeviceGroupPeerMemoryFeatures(
	VkDevice device, uint32_t heapIndex, uint32_t localDeviceIndex, uint32_t remoteDeviceIndex,
	VkPeerMemoryFeatureFlags *pPeerMemoryFeatures)
{
	/* One device per group: "peer" memory is its own. */
	*pPeerMemoryFeatures =
		VK_PEER_MEMORY_FEATURE_COPY_SRC_BIT | VK_PEER_MEMORY_FEATURE_COPY_DST_BIT |
		VK_PEER_MEMORY_FEATURE_GENERIC_SRC_BIT | VK_PEER_MEMORY_FEATURE_GENERIC_DST_BIT;
}

VKAPI_ATTR uint64_t VKAPI_CALL mdgpu_GetDeviceMemoryOpaqueCaptureAddress(
	VkDevice device, const VkDeviceMemoryOpaqueCaptureAddressInfo *pInfo)
{
	return 0; /* bufferDeviceAddress is not offered */
}

/* ---- buffers ---- */

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateBuffer(VkDevice device,
						  const VkBufferCreateInfo *pCreateInfo,
						  const VkAllocationCallbacks *pAllocator,
						  VkBuffer *pBuffer)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	struct mdgpu_vk_buffer *buf;

	if (pCreateInfo->flags &
	    (VK_BUFFER_CREATE_SPARSE_BINDING_BIT | VK_BUFFER_CREATE_SPARSE_RESIDENCY_BIT |
	     VK_BUFFER_CREATE_SPARSE_ALIASED_BIT))
		return VK_ERROR_FEATURE_NOT_PRESENT;
	if (pCreateInfo->size > dev->physical->caps.max_memory_allocation_size)
		return VK_ERROR_OUT_OF_DEVICE_MEMORY;
	buf = calloc(1, sizeof(*buf));
	if (!buf)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	buf->size = pCreateInfo->size;
	buf->usage = pCreateInfo->usage;
	*pBuffer = MDGPU_VK_TO_HANDLE(VkBuffer, buf);
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyBuffer(VkDevice device, VkBuffer buffer,
					       const VkAllocationCallbacks *pAllocator)
{
	free((void *)(uintptr_t)buffer);
}

static void buffer_requirements(const struct mdgpu_vk_physical_device *pd, VkDeviceSize size,
				VkMemoryRequirements *req)
{
	req->alignment = mdgpu_vk_buffer_alignment(pd);
	req->size = mdgpu_vk_align(size ? size : 1, req->alignment);
	req->memoryTypeBits = (1u << pd->memory.memoryTypeCount) - 1;
}

static void dedicated(VkMemoryRequirements2 *req)
{
	VkMemoryDedicatedRequirements *d = (void *)mdgpu_vk_find_struct(
		req->pNext, VK_STRUCTURE_TYPE_MEMORY_DEDICATED_REQUIREMENTS);

	if (d) {
		d->prefersDedicatedAllocation = VK_FALSE;
		d->requiresDedicatedAllocation = VK_FALSE;
	}
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetBufferMemoryRequirements(
	VkDevice device, VkBuffer buffer, VkMemoryRequirements *pMemoryRequirements)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(buffer, buf, buffer);

	buffer_requirements(dev->physical, buf->size, pMemoryRequirements);
}

VKAPI_ATTR void VKAPI_CALL
mdgpu_GetBufferMemoryRequirements2(VkDevice device, const VkBufferMemoryRequirementsInfo2 *pInfo,
				   VkMemoryRequirements2 *pMemoryRequirements)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(buffer, buf, pInfo->buffer);

	buffer_requirements(dev->physical, buf->size, &pMemoryRequirements->memoryRequirements);
	dedicated(pMemoryRequirements);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetDeviceBufferMemoryRequirements(
	VkDevice device, const VkDeviceBufferMemoryRequirements *pInfo,
	VkMemoryRequirements2 *pMemoryRequirements)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);

	buffer_requirements(dev->physical, pInfo->pCreateInfo->size,
			    &pMemoryRequirements->memoryRequirements);
	dedicated(pMemoryRequirements);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_BindBufferMemory(VkDevice device, VkBuffer buffer,
						      VkDeviceMemory memory,
						      VkDeviceSize memoryOffset)
{
	MDGPU_VK_FROM_HANDLE(buffer, buf, buffer);
	MDGPU_VK_FROM_HANDLE(memory, mem, memory);

	buf->memory = mem;
	buf->offset = memoryOffset;
	return VK_SUCCESS;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_BindBufferMemory2(VkDevice device, uint32_t bindInfoCount,
						       const VkBindBufferMemoryInfo *pBindInfos)
{
	for (uint32_t i = 0; i < bindInfoCount; i++)
		mdgpu_BindBufferMemory(device, pBindInfos[i].buffer, pBindInfos[i].memory,
				       pBindInfos[i].memoryOffset);
	return VK_SUCCESS;
}

VKAPI_ATTR VkDeviceAddress VKAPI_CALL
mdgpu_GetBufferDeviceAddress(VkDevice device, const VkBufferDeviceAddressInfo *pInfo)
{
	return 0; /* bufferDeviceAddress is not offered */
}

VKAPI_ATTR uint64_t VKAPI_CALL
mdgpu_GetBufferOpaqueCaptureAddress(VkDevice device, const VkBufferDeviceAddressInfo *pInfo)
{
	return 0;
}
