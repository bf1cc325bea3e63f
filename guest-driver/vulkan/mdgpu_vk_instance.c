// SPDX-License-Identifier: MIT
/*
 * libvulkan_mdgpu: instances and physical devices. A physical device is one /dev/mdgpuN whose
 * device has a capability record (contract 1.3, CAPS_READ): its properties, features and limits
 * are the host device's as mdgpu mediates them (the record), reported as an integrated GPU
 * whose memory is device-local and host-visible. Graphics, images and sparse resources are not
 * offered: no format has features, the one queue family is COMPUTE | TRANSFER.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mdgpu_vk.h"
#include "mdgpu_vk_entry.h"

#ifndef MDGPU_VERSION
#define MDGPU_VERSION "0.0.0"
#endif

const void *mdgpu_vk_find_struct(const void *chain, VkStructureType stype)
{
	for (const VkBaseInStructure *s = chain; s; s = s->pNext)
		if (s->sType == stype)
			return s;
	return NULL;
}

void mdgpu_vk_debug(const char *fmt, ...)
{
	static int enabled = -1;
	va_list ap;

	if (enabled < 0)
		enabled = getenv("MDGPU_VK_DEBUG") != NULL;
	if (!enabled)
		return;
	fputs("mdgpu-vk: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

VkResult mdgpu_vk_result(int err)
{
	switch (err) {
	case 0:
		return VK_SUCCESS;
	case -ENOMEM:
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	case -EDQUOT:
	case -ENOSPC:
	case -E2BIG:
		return VK_ERROR_OUT_OF_DEVICE_MEMORY;
	case -EMFILE:
		return VK_ERROR_TOO_MANY_OBJECTS;
	case -ENODEV:
	case -EBADFD:
	case -EIO:
		return VK_ERROR_DEVICE_LOST;
	case -ETIME:
	case -ETIMEDOUT:
		return VK_TIMEOUT;
	default:
		return VK_ERROR_UNKNOWN;
	}
}

/* "a.b.c" of the package version as a Vulkan version number. */
static uint32_t driver_version(void)
{
	unsigned int major = 0, minor = 0, patch = 0;

	sscanf(MDGPU_VERSION, "%u.%u.%u", &major, &minor, &patch);
	return VK_MAKE_API_VERSION(0, major, minor, patch);
}

/* A 128-bit digest (two FNV-1a lanes mixed): UUIDs derived from the record and this build. */
static void digest128(uint8_t out[16], const void *a, size_t alen, const char *b)
{
	uint64_t h[2] = { 0xcbf29ce484222325ull, 0x84222325cbf29ce4ull };
	const uint8_t *p = a;

	for (int lane = 0; lane < 2; lane++) {
		for (size_t i = 0; i < alen; i++)
			h[lane] = (h[lane] ^ p[i]) * 0x100000001b3ull;
		for (const char *c = b; *c; c++)
			h[lane] = (h[lane] ^ (uint8_t)*c) * 0x100000001b3ull;
		h[lane] ^= h[lane] >> 29;
		h[lane] *= lane ? 0x94d049bb133111ebull : 0xbf58476d1ce4e5b9ull;
		h[lane] ^= h[lane] >> 32;
	}
	memcpy(out, h, 16);
}

static float caps_float(uint32_t bits)
{
	float f;

	memcpy(&f, &bits, sizeof(f));
	return f;
}

static VkDeviceSize heap_size(const struct mdgpu_vk_physical_device *pd)
{
	return pd->info.quota;
}

/* The limits: the record's where it has them, else what a compute-only device implies. */
static void fill_limits(struct mdgpu_vk_physical_device *pd, VkPhysicalDeviceLimits *l)
{
	const struct mdgpu_caps *c = &pd->caps;
	uint32_t sets = c->max_bound_descriptor_sets < MDGPU_VK_MAX_SETS ?
				c->max_bound_descriptor_sets :
				MDGPU_VK_MAX_SETS;
	uint32_t push = c->max_push_constants_size < MDGPU_VK_MAX_PUSH ?
				c->max_push_constants_size :
				MDGPU_VK_MAX_PUSH;
	uint64_t buffers = pd->info.max_buffers ? pd->info.max_buffers : 4096;

	memset(l, 0, sizeof(*l));
	/* Images, samplers, framebuffers and vertex input: none (no format has features). */
	l->maxMemoryAllocationCount = buffers > 64 ? (uint32_t)(buffers - 64) : (uint32_t)buffers;
	l->bufferImageGranularity = 1;
	l->maxBoundDescriptorSets = sets;
	l->maxPerStageDescriptorStorageBuffers = c->max_per_stage_descriptor_storage_buffers;
	l->maxPerStageDescriptorUniformBuffers = c->max_per_stage_descriptor_uniform_buffers;
	l->maxPerStageResources = c->max_per_stage_descriptor_storage_buffers +
				  c->max_per_stage_descriptor_uniform_buffers;
	l->maxDescriptorSetStorageBuffers = c->max_descriptor_set_storage_buffers;
	l->maxDescriptorSetUniformBuffers = c->max_descriptor_set_uniform_buffers;
	l->maxDescriptorSetStorageBuffersDynamic = MDGPU_VK_MAX_DYNAMIC_STORAGE;
	l->maxDescriptorSetUniformBuffersDynamic = MDGPU_VK_MAX_DYNAMIC_UNIFORM;
	l->maxUniformBufferRange = c->max_uniform_buffer_range;
	l->maxStorageBufferRange = c->max_storage_buffer_range;
	l->maxPushConstantsSize = push;
	l->maxComputeSharedMemorySize = c->max_compute_shared_memory_size;
	l->maxComputeWorkGroupCount[0] = c->max_compute_work_group_count_x;
	l->maxComputeWorkGroupCount[1] = c->max_compute_work_group_count_y;
	l->maxComputeWorkGroupCount[2] = c->max_compute_work_group_count_z;
	l->maxComputeWorkGroupInvocations = c->max_compute_work_group_invocations;
	l->maxComputeWorkGroupSize[0] = c->max_compute_work_group_size_x;
	l->maxComputeWorkGroupSize[1] = c->max_compute_work_group_size_y;
	l->maxComputeWorkGroupSize[2] = c->max_compute_work_group_size_z;
	l->minMemoryMapAlignment = 4096;
	l->minTexelBufferOffsetAlignment = 16;
	l->minUniformBufferOffsetAlignment = c->min_uniform_buffer_offset_alignment;
	l->minStorageBufferOffsetAlignment = c->min_storage_buffer_offset_alignment;
	l->timestampComputeAndGraphics = VK_TRUE;
	l->timestampPeriod = caps_float(c->timestamp_period_bits);
	l->discreteQueuePriorities = 2;
	l->optimalBufferCopyOffsetAlignment = 1;
	l->optimalBufferCopyRowPitchAlignment = 1;
	/* Mappings are coherent: any range is a whole atom. */
	l->nonCoherentAtomSize = 1;
	l->maxSamplerAllocationCount = 0;
	l->maxImageDimension1D = 0;
	l->maxViewports = 0;
}

static void fill_memory(struct mdgpu_vk_physical_device *pd)
{
	VkPhysicalDeviceMemoryProperties *m = &pd->memory;
	const VkMemoryPropertyFlags base = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT |
					   VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
					   VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;

	memset(m, 0, sizeof(*m));
	m->memoryHeapCount = 1;
	m->memoryHeaps[0].size = heap_size(pd);
	m->memoryHeaps[0].flags = VK_MEMORY_HEAP_DEVICE_LOCAL_BIT;
	/* 0: mapped write-combined; 1: mapped write-back (MDGPU_BO_CACHED). */
	m->memoryTypeCount = 2;
	m->memoryTypes[0].propertyFlags = base;
	m->memoryTypes[1].propertyFlags = base | VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
}

static void fill_properties(struct mdgpu_vk_physical_device *pd)
{
	VkPhysicalDeviceProperties *p = &pd->props;
	const struct mdgpu_caps *c = &pd->caps;
	char host[sizeof(c->host_device_name) + 1];

	memset(p, 0, sizeof(*p));
	p->apiVersion = MDGPU_VK_API_VERSION;
	p->driverVersion = driver_version();
	p->vendorID = pd->info.vendor_id;
	p->deviceID = pd->info.device_id;
	p->deviceType = VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU;
	memcpy(host, c->host_device_name, sizeof(c->host_device_name));
	host[sizeof(c->host_device_name)] = 0;
	snprintf(p->deviceName, sizeof(p->deviceName), "mdgpu (%.240s)", host);
	digest128(p->pipelineCacheUUID, c->pipeline_cache_uuid, sizeof(c->pipeline_cache_uuid),
		  "mdgpu-vk pipeline cache 1 " MDGPU_VERSION);
	fill_limits(pd, &p->limits);
	digest128(pd->device_uuid, c, offsetof(struct mdgpu_caps, max_compute_shared_memory_size),
		  pd->path);
	digest128(pd->driver_uuid, "mdgpu", 5, "mdgpu-vk driver " MDGPU_VERSION);
}

static uint32_t caps_feature(const struct mdgpu_vk_physical_device *pd, uint32_t bit)
{
	return pd->caps.features & bit ? VK_TRUE : VK_FALSE;
}

static void fill_core_features(struct mdgpu_vk_physical_device *pd)
{
	VkPhysicalDeviceFeatures *f = &pd->features;

	memset(f, 0, sizeof(*f));
	/* Accesses outside a descriptor stay inside the VM's own memory at the very least. */
	f->robustBufferAccess = VK_TRUE;
	f->shaderInt64 = caps_feature(pd, MDGPU_CAPS_FEATURE_SHADER_INT64);
	f->shaderFloat64 = caps_feature(pd, MDGPU_CAPS_FEATURE_SHADER_FLOAT64);
	f->shaderInt16 = caps_feature(pd, MDGPU_CAPS_FEATURE_SHADER_INT16);
	f->shaderStorageBufferArrayDynamicIndexing = VK_TRUE;
	f->shaderUniformBufferArrayDynamicIndexing = VK_TRUE;
}

/* Set the VkBool32s of a feature structure (everything after sType and pNext) to false. */
static void zero_features(void *s, size_t size)
{
	memset((uint8_t *)s + sizeof(VkBaseOutStructure), 0, size - sizeof(VkBaseOutStructure));
}

#define ZERO(type, s) zero_features((s), sizeof(type))

/* Feature structures the driver knows: those it answers and checks at vkCreateDevice. */
static const struct {
	VkStructureType stype;
	size_t size;
} feature_structs[] = {
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, sizeof(VkPhysicalDeviceFeatures2) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
	  sizeof(VkPhysicalDeviceVulkan11Features) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
	  sizeof(VkPhysicalDeviceVulkan12Features) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES,
	  sizeof(VkPhysicalDeviceVulkan13Features) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
	  sizeof(VkPhysicalDevice16BitStorageFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES,
	  sizeof(VkPhysicalDevice8BitStorageFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
	  sizeof(VkPhysicalDeviceShaderFloat16Int8Features) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VARIABLE_POINTERS_FEATURES,
	  sizeof(VkPhysicalDeviceVariablePointersFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES,
	  sizeof(VkPhysicalDeviceTimelineSemaphoreFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_HOST_QUERY_RESET_FEATURES,
	  sizeof(VkPhysicalDeviceHostQueryResetFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SYNCHRONIZATION_2_FEATURES,
	  sizeof(VkPhysicalDeviceSynchronization2Features) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_FEATURES,
	  sizeof(VkPhysicalDeviceMaintenance4Features) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_CREATION_CACHE_CONTROL_FEATURES,
	  sizeof(VkPhysicalDevicePipelineCreationCacheControlFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PRIVATE_DATA_FEATURES,
	  sizeof(VkPhysicalDevicePrivateDataFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MULTIVIEW_FEATURES,
	  sizeof(VkPhysicalDeviceMultiviewFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROTECTED_MEMORY_FEATURES,
	  sizeof(VkPhysicalDeviceProtectedMemoryFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SAMPLER_YCBCR_CONVERSION_FEATURES,
	  sizeof(VkPhysicalDeviceSamplerYcbcrConversionFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_DRAW_PARAMETERS_FEATURES,
	  sizeof(VkPhysicalDeviceShaderDrawParametersFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_ATOMIC_INT64_FEATURES,
	  sizeof(VkPhysicalDeviceShaderAtomicInt64Features) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DESCRIPTOR_INDEXING_FEATURES,
	  sizeof(VkPhysicalDeviceDescriptorIndexingFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SCALAR_BLOCK_LAYOUT_FEATURES,
	  sizeof(VkPhysicalDeviceScalarBlockLayoutFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES,
	  sizeof(VkPhysicalDeviceVulkanMemoryModelFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_IMAGELESS_FRAMEBUFFER_FEATURES,
	  sizeof(VkPhysicalDeviceImagelessFramebufferFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_UNIFORM_BUFFER_STANDARD_LAYOUT_FEATURES,
	  sizeof(VkPhysicalDeviceUniformBufferStandardLayoutFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_SUBGROUP_EXTENDED_TYPES_FEATURES,
	  sizeof(VkPhysicalDeviceShaderSubgroupExtendedTypesFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SEPARATE_DEPTH_STENCIL_LAYOUTS_FEATURES,
	  sizeof(VkPhysicalDeviceSeparateDepthStencilLayoutsFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_BUFFER_DEVICE_ADDRESS_FEATURES,
	  sizeof(VkPhysicalDeviceBufferDeviceAddressFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_TERMINATE_INVOCATION_FEATURES,
	  sizeof(VkPhysicalDeviceShaderTerminateInvocationFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_DEMOTE_TO_HELPER_INVOCATION_FEATURES,
	  sizeof(VkPhysicalDeviceShaderDemoteToHelperInvocationFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ZERO_INITIALIZE_WORKGROUP_MEMORY_FEATURES,
	  sizeof(VkPhysicalDeviceZeroInitializeWorkgroupMemoryFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_IMAGE_ROBUSTNESS_FEATURES,
	  sizeof(VkPhysicalDeviceImageRobustnessFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES,
	  sizeof(VkPhysicalDeviceSubgroupSizeControlFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_INLINE_UNIFORM_BLOCK_FEATURES,
	  sizeof(VkPhysicalDeviceInlineUniformBlockFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TEXTURE_COMPRESSION_ASTC_HDR_FEATURES,
	  sizeof(VkPhysicalDeviceTextureCompressionASTCHDRFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DYNAMIC_RENDERING_FEATURES,
	  sizeof(VkPhysicalDeviceDynamicRenderingFeatures) },
	{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES,
	  sizeof(VkPhysicalDeviceShaderIntegerDotProductFeatures) },
};

static size_t feature_struct_size(VkStructureType stype)
{
	for (size_t i = 0; i < sizeof(feature_structs) / sizeof(feature_structs[0]); i++)
		if (feature_structs[i].stype == stype)
			return feature_structs[i].size;
	return 0;
}

/* One feature structure: every feature false, then the ones the device has. */
static void fill_feature_struct(const struct mdgpu_vk_physical_device *pd, VkBaseOutStructure *s)
{
	const VkBool32 s16 = caps_feature(pd, MDGPU_CAPS_FEATURE_STORAGE_BUFFER_16BIT);
	const VkBool32 u16 = caps_feature(pd, MDGPU_CAPS_FEATURE_UNIFORM_16BIT);
	const VkBool32 p16 = caps_feature(pd, MDGPU_CAPS_FEATURE_PUSH_CONSTANT_16BIT);
	const VkBool32 s8 = caps_feature(pd, MDGPU_CAPS_FEATURE_STORAGE_BUFFER_8BIT);
	const VkBool32 u8 = caps_feature(pd, MDGPU_CAPS_FEATURE_UNIFORM_8BIT);
	const VkBool32 p8 = caps_feature(pd, MDGPU_CAPS_FEATURE_PUSH_CONSTANT_8BIT);
	const VkBool32 f16 = caps_feature(pd, MDGPU_CAPS_FEATURE_SHADER_FLOAT16);
	const VkBool32 i8 = caps_feature(pd, MDGPU_CAPS_FEATURE_SHADER_INT8);
	const VkBool32 vp = caps_feature(pd, MDGPU_CAPS_FEATURE_VARIABLE_POINTERS);
	size_t size = feature_struct_size(s->sType);

	if (!size)
		return;
	if (s->sType == VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2) {
		((VkPhysicalDeviceFeatures2 *)s)->features = pd->features;
		return;
	}
	zero_features(s, size);
	switch ((int)s->sType) {
	case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES: {
		VkPhysicalDeviceVulkan11Features *f = (void *)s;

		f->storageBuffer16BitAccess = s16;
		f->uniformAndStorageBuffer16BitAccess = u16;
		f->storagePushConstant16 = p16;
		f->variablePointersStorageBuffer = vp;
		break;
	}
	case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES: {
		VkPhysicalDeviceVulkan12Features *f = (void *)s;

		f->storageBuffer8BitAccess = s8;
		f->uniformAndStorageBuffer8BitAccess = u8;
		f->storagePushConstant8 = p8;
		f->shaderFloat16 = f16;
		f->shaderInt8 = i8;
		f->hostQueryReset = VK_TRUE;
		f->timelineSemaphore = VK_TRUE;
		break;
	}
	case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES: {
		VkPhysicalDeviceVulkan13Features *f = (void *)s;

		f->pipelineCreationCacheControl = VK_TRUE;
		f->privateData = VK_TRUE;
		f->synchronization2 = VK_TRUE;
		f->maintenance4 = VK_TRUE;
		break;
	}
	case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES: {
		VkPhysicalDevice16BitStorageFeatures *f = (void *)s;

		f->storageBuffer16BitAccess = s16;
		f->uniformAndStorageBuffer16BitAccess = u16;
		f->storagePushConstant16 = p16;
		break;
	}
	case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES: {
		VkPhysicalDevice8BitStorageFeatures *f = (void *)s;

		f->storageBuffer8BitAccess = s8;
		f->uniformAndStorageBuffer8BitAccess = u8;
		f->storagePushConstant8 = p8;
		break;
	}
	case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES: {
		VkPhysicalDeviceShaderFloat16Int8Features *f = (void *)s;

		f->shaderFloat16 = f16;
		f->shaderInt8 = i8;
		break;
	}
	case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VARIABLE_POINTERS_FEATURES:
		((VkPhysicalDeviceVariablePointersFeatures *)s)->variablePointersStorageBuffer = vp;
		break;
	case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES:
		((VkPhysicalDeviceTimelineSemaphoreFeatures *)s)->timelineSemaphore = VK_TRUE;
		break;
	case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_HOST_QUERY_RESET_FEATURES:
		((VkPhysicalDeviceHostQueryResetFeatures *)s)->hostQueryReset = VK_TRUE;
		break;
	case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SYNCHRONIZATION_2_FEATURES:
		((VkPhysicalDeviceSynchronization2Features *)s)->synchronization2 = VK_TRUE;
		break;
	case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_FEATURES:
		((VkPhysicalDeviceMaintenance4Features *)s)->maintenance4 = VK_TRUE;
		break;
	case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_CREATION_CACHE_CONTROL_FEATURES:
		((VkPhysicalDevicePipelineCreationCacheControlFeatures *)s)
			->pipelineCreationCacheControl = VK_TRUE;
		break;
	case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PRIVATE_DATA_FEATURES:
		((VkPhysicalDevicePrivateDataFeatures *)s)->privateData = VK_TRUE;
		break;
	default:
		break;
	}
}

void mdgpu_vk_fill_features(const struct mdgpu_vk_physical_device *pd, VkBaseOutStructure *chain)
{
	for (VkBaseOutStructure *s = chain; s; s = s->pNext)
		fill_feature_struct(pd, s);
}

VkResult mdgpu_vk_check_features(const struct mdgpu_vk_physical_device *pd,
				 const VkDeviceCreateInfo *info)
{
	const VkBool32 *want, *have;
	uint8_t copy[1024];

	if (info->pEnabledFeatures) {
		want = (const VkBool32 *)info->pEnabledFeatures;
		have = (const VkBool32 *)&pd->features;
		for (size_t i = 0; i < sizeof(VkPhysicalDeviceFeatures) / sizeof(VkBool32); i++)
			if (want[i] && !have[i]) {
				mdgpu_vk_debug("vkCreateDevice: core feature %zu not supported", i);
				return VK_ERROR_FEATURE_NOT_PRESENT;
			}
	}
	for (const VkBaseInStructure *s = info->pNext; s; s = s->pNext) {
		size_t size = feature_struct_size(s->sType);

		if (!size || size > sizeof(copy))
			continue;
		memcpy(copy, s, size);
		((VkBaseOutStructure *)copy)->pNext = NULL;
		fill_feature_struct(pd, (VkBaseOutStructure *)copy);
		want = (const VkBool32 *)((const uint8_t *)s + sizeof(VkBaseOutStructure));
		have = (const VkBool32 *)(copy + sizeof(VkBaseOutStructure));
		for (size_t i = 0; i < (size - sizeof(VkBaseOutStructure)) / sizeof(VkBool32); i++)
			if (want[i] && !have[i]) {
				mdgpu_vk_debug(
					"vkCreateDevice: feature %zu of structure %d not supported",
					i, (int)s->sType);
				return VK_ERROR_FEATURE_NOT_PRESENT;
			}
	}
	return VK_SUCCESS;
}

/* ---- extensions ---- */

static const VkExtensionProperties instance_extensions[] = {
	{ VK_KHR_GET_PHYSICAL_DEVICE_PROPERTIES_2_EXTENSION_NAME,
	  VK_KHR_GET_PHYSICAL_DEVICE_PROPERTIES_2_SPEC_VERSION },
	{ VK_KHR_EXTERNAL_MEMORY_CAPABILITIES_EXTENSION_NAME,
	  VK_KHR_EXTERNAL_MEMORY_CAPABILITIES_SPEC_VERSION },
	{ VK_KHR_EXTERNAL_SEMAPHORE_CAPABILITIES_EXTENSION_NAME,
	  VK_KHR_EXTERNAL_SEMAPHORE_CAPABILITIES_SPEC_VERSION },
	{ VK_KHR_EXTERNAL_FENCE_CAPABILITIES_EXTENSION_NAME,
	  VK_KHR_EXTERNAL_FENCE_CAPABILITIES_SPEC_VERSION },
	{ VK_KHR_DEVICE_GROUP_CREATION_EXTENSION_NAME, VK_KHR_DEVICE_GROUP_CREATION_SPEC_VERSION },
};

/* Device extensions: core in 1.1-1.3 (programs still ask for them by name) and memory budget. */
static const struct {
	VkExtensionProperties props;
	uint32_t needs; /* MDGPU_CAPS_FEATURE_* the host device must have, or 0 */
} device_extensions[] = {
	{ { VK_KHR_16BIT_STORAGE_EXTENSION_NAME, VK_KHR_16BIT_STORAGE_SPEC_VERSION },
	  MDGPU_CAPS_FEATURE_STORAGE_BUFFER_16BIT },
	{ { VK_KHR_8BIT_STORAGE_EXTENSION_NAME, VK_KHR_8BIT_STORAGE_SPEC_VERSION },
	  MDGPU_CAPS_FEATURE_STORAGE_BUFFER_8BIT },
	{ { VK_KHR_BIND_MEMORY_2_EXTENSION_NAME, VK_KHR_BIND_MEMORY_2_SPEC_VERSION }, 0 },
	{ { VK_KHR_COPY_COMMANDS_2_EXTENSION_NAME, VK_KHR_COPY_COMMANDS_2_SPEC_VERSION }, 0 },
	{ { VK_KHR_DEDICATED_ALLOCATION_EXTENSION_NAME, VK_KHR_DEDICATED_ALLOCATION_SPEC_VERSION },
	  0 },
	{ { VK_KHR_DESCRIPTOR_UPDATE_TEMPLATE_EXTENSION_NAME,
	    VK_KHR_DESCRIPTOR_UPDATE_TEMPLATE_SPEC_VERSION },
	  0 },
	{ { VK_KHR_DEVICE_GROUP_EXTENSION_NAME, VK_KHR_DEVICE_GROUP_SPEC_VERSION }, 0 },
	{ { VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME, VK_KHR_DRIVER_PROPERTIES_SPEC_VERSION }, 0 },
	{ { VK_KHR_GET_MEMORY_REQUIREMENTS_2_EXTENSION_NAME,
	    VK_KHR_GET_MEMORY_REQUIREMENTS_2_SPEC_VERSION },
	  0 },
	{ { VK_KHR_MAINTENANCE_1_EXTENSION_NAME, VK_KHR_MAINTENANCE_1_SPEC_VERSION }, 0 },
	{ { VK_KHR_MAINTENANCE_3_EXTENSION_NAME, VK_KHR_MAINTENANCE_3_SPEC_VERSION }, 0 },
	{ { VK_KHR_MAINTENANCE_4_EXTENSION_NAME, VK_KHR_MAINTENANCE_4_SPEC_VERSION }, 0 },
	{ { VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME, VK_KHR_SHADER_FLOAT16_INT8_SPEC_VERSION },
	  MDGPU_CAPS_FEATURE_SHADER_FLOAT16 | MDGPU_CAPS_FEATURE_SHADER_INT8 },
	{ { VK_KHR_STORAGE_BUFFER_STORAGE_CLASS_EXTENSION_NAME,
	    VK_KHR_STORAGE_BUFFER_STORAGE_CLASS_SPEC_VERSION },
	  0 },
	{ { VK_KHR_SYNCHRONIZATION_2_EXTENSION_NAME, VK_KHR_SYNCHRONIZATION_2_SPEC_VERSION }, 0 },
	{ { VK_KHR_TIMELINE_SEMAPHORE_EXTENSION_NAME, VK_KHR_TIMELINE_SEMAPHORE_SPEC_VERSION }, 0 },
	{ { VK_KHR_VARIABLE_POINTERS_EXTENSION_NAME, VK_KHR_VARIABLE_POINTERS_SPEC_VERSION },
	  MDGPU_CAPS_FEATURE_VARIABLE_POINTERS },
	{ { VK_EXT_HOST_QUERY_RESET_EXTENSION_NAME, VK_EXT_HOST_QUERY_RESET_SPEC_VERSION }, 0 },
	{ { VK_EXT_MEMORY_BUDGET_EXTENSION_NAME, VK_EXT_MEMORY_BUDGET_SPEC_VERSION }, 0 },
	{ { VK_EXT_PIPELINE_CREATION_CACHE_CONTROL_EXTENSION_NAME,
	    VK_EXT_PIPELINE_CREATION_CACHE_CONTROL_SPEC_VERSION },
	  0 },
	{ { VK_EXT_PIPELINE_CREATION_FEEDBACK_EXTENSION_NAME,
	    VK_EXT_PIPELINE_CREATION_FEEDBACK_SPEC_VERSION },
	  0 },
	{ { VK_EXT_PRIVATE_DATA_EXTENSION_NAME, VK_EXT_PRIVATE_DATA_SPEC_VERSION }, 0 },
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static bool device_extension_available(const struct mdgpu_vk_physical_device *pd, size_t i)
{
	return (pd->caps.features & device_extensions[i].needs) == device_extensions[i].needs;
}

bool mdgpu_vk_device_extension_supported(const struct mdgpu_vk_physical_device *pd,
					 const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(device_extensions); i++)
		if (!strcmp(device_extensions[i].props.extensionName, name))
			return device_extension_available(pd, i);
	return false;
}

/* The usual two-call enumeration: count, or fill up to *count and say VK_INCOMPLETE. */
static VkResult enumerate_extensions(const VkExtensionProperties *const *list, uint32_t n,
				     uint32_t *count, VkExtensionProperties *out)
{
	if (!out) {
		*count = n;
		return VK_SUCCESS;
	}
	uint32_t k = *count < n ? *count : n;

	for (uint32_t i = 0; i < k; i++)
		out[i] = *list[i];
	*count = k;
	return k < n ? VK_INCOMPLETE : VK_SUCCESS;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_EnumerateInstanceExtensionProperties(
	const char *pLayerName, uint32_t *pPropertyCount, VkExtensionProperties *pProperties)
{
	const VkExtensionProperties *list[ARRAY_LEN(instance_extensions)];

	if (pLayerName)
		return VK_ERROR_LAYER_NOT_PRESENT;
	for (size_t i = 0; i < ARRAY_LEN(instance_extensions); i++)
		list[i] = &instance_extensions[i];
	return enumerate_extensions(list, ARRAY_LEN(instance_extensions), pPropertyCount,
				    pProperties);
}

VKAPI_ATTR VkResult VKAPI_CALL
mdgpu_EnumerateInstanceLayerProperties(uint32_t *pPropertyCount, VkLayerProperties *pProperties)
{
	*pPropertyCount = 0;
	return VK_SUCCESS;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_EnumerateInstanceVersion(uint32_t *pApiVersion)
{
	*pApiVersion = MDGPU_VK_API_VERSION;
	return VK_SUCCESS;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_EnumerateDeviceExtensionProperties(
	VkPhysicalDevice physicalDevice, const char *pLayerName, uint32_t *pPropertyCount,
	VkExtensionProperties *pProperties)
{
	MDGPU_VK_FROM_HANDLE(physical_device, pd, physicalDevice);
	const VkExtensionProperties *list[ARRAY_LEN(device_extensions)];
	uint32_t n = 0;

	if (pLayerName)
		return VK_ERROR_LAYER_NOT_PRESENT;
	for (size_t i = 0; i < ARRAY_LEN(device_extensions); i++)
		if (device_extension_available(pd, i))
			list[n++] = &device_extensions[i].props;
	return enumerate_extensions(list, n, pPropertyCount, pProperties);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_EnumerateDeviceLayerProperties(VkPhysicalDevice physicalDevice,
								    uint32_t *pPropertyCount,
								    VkLayerProperties *pProperties)
{
	*pPropertyCount = 0;
	return VK_SUCCESS;
}

/* ---- instances ---- */

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateInstance(const VkInstanceCreateInfo *pCreateInfo,
						    const VkAllocationCallbacks *pAllocator,
						    VkInstance *pInstance)
{
	struct mdgpu_vk_instance *inst;

	for (uint32_t i = 0; i < pCreateInfo->enabledExtensionCount; i++) {
		bool known = false;

		for (size_t k = 0; k < ARRAY_LEN(instance_extensions); k++)
			known |= !strcmp(pCreateInfo->ppEnabledExtensionNames[i],
					 instance_extensions[k].extensionName);
		if (!known)
			return VK_ERROR_EXTENSION_NOT_PRESENT;
	}
	inst = calloc(1, sizeof(*inst));
	if (!inst)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	set_loader_magic_value(inst);
	inst->api_version =
		pCreateInfo->pApplicationInfo && pCreateInfo->pApplicationInfo->apiVersion ?
			pCreateInfo->pApplicationInfo->apiVersion :
			VK_API_VERSION_1_0;
	pthread_mutex_init(&inst->lock, NULL);
	*pInstance = (VkInstance)inst;
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyInstance(VkInstance instance,
						 const VkAllocationCallbacks *pAllocator)
{
	MDGPU_VK_FROM_HANDLE(instance, inst, instance);

	if (!inst)
		return;
	for (uint32_t i = 0; i < inst->physical_count; i++)
		free(inst->physical[i]);
	pthread_mutex_destroy(&inst->lock);
	free(inst);
}

/* Open /dev/mdgpuN and read what the physical device reports; NULL if it is no 1.3 device. */
static struct mdgpu_vk_physical_device *probe(struct mdgpu_vk_instance *inst, const char *path)
{
	struct mdgpu_vk_physical_device *pd = calloc(1, sizeof(*pd));
	struct mdgpu *dev;
	int ret;

	if (!pd)
		return NULL;
	ret = mdgpu_open(path, &dev);
	if (ret) {
		mdgpu_vk_debug("%s: %s", path, mdgpu_strerror(ret));
		free(pd);
		return NULL;
	}
	ret = mdgpu_get_info(dev, &pd->info);
	if (!ret)
		ret = mdgpu_get_compute_info(dev, &pd->compute);
	if (!ret)
		ret = mdgpu_caps_read(dev, &pd->caps);
	mdgpu_close(dev);
	if (ret) {
		mdgpu_vk_debug("%s: no capability record (%s): not a Vulkan device", path,
			       mdgpu_strerror(ret));
		free(pd);
		return NULL;
	}
	set_loader_magic_value(pd);
	pd->instance = inst;
	snprintf(pd->path, sizeof(pd->path), "%s", path);
	fill_core_features(pd);
	fill_memory(pd);
	fill_properties(pd);
	return pd;
}

static int path_order(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;

	return strlen(x) != strlen(y) ? (int)strlen(x) - (int)strlen(y) : strcmp(x, y);
}

/* Find the devices once per instance: /dev/mdgpu0, /dev/mdgpu1, ... (MDGPU_VK_DEVICES: a list). */
static void enumerate(struct mdgpu_vk_instance *inst)
{
	char *paths[MDGPU_VK_MAX_PHYSICAL_DEVICES];
	uint32_t n = 0;
	const char *only = getenv("MDGPU_VK_DEVICES");

	if (only) {
		char *list = strdup(only), *save = NULL;

		for (char *p = list ? strtok_r(list, ":,", &save) : NULL;
		     p && n < MDGPU_VK_MAX_PHYSICAL_DEVICES; p = strtok_r(NULL, ":,", &save))
			paths[n++] = strdup(p);
		free(list);
	} else {
		DIR *d = opendir("/dev");
		struct dirent *e;

		while (d && (e = readdir(d)) && n < MDGPU_VK_MAX_PHYSICAL_DEVICES) {
			const char *digits = e->d_name + 5;

			if (strncmp(e->d_name, "mdgpu", 5) || !*digits ||
			    strspn(digits, "0123456789") != strlen(digits))
				continue;
			if (asprintf(&paths[n], "/dev/%s", e->d_name) < 0)
				break;
			n++;
		}
		if (d)
			closedir(d);
	}
	qsort(paths, n, sizeof(paths[0]), path_order);
	for (uint32_t i = 0; i < n; i++) {
		struct mdgpu_vk_physical_device *pd = paths[i] ? probe(inst, paths[i]) : NULL;

		if (pd)
			inst->physical[inst->physical_count++] = pd;
		free(paths[i]);
	}
	inst->enumerated = true;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_EnumeratePhysicalDevices(VkInstance instance,
							      uint32_t *pPhysicalDeviceCount,
							      VkPhysicalDevice *pPhysicalDevices)
{
	MDGPU_VK_FROM_HANDLE(instance, inst, instance);
	VkResult result = VK_SUCCESS;

	pthread_mutex_lock(&inst->lock);
	if (!inst->enumerated)
		enumerate(inst);
	if (!pPhysicalDevices) {
		*pPhysicalDeviceCount = inst->physical_count;
	} else {
		uint32_t k = *pPhysicalDeviceCount < inst->physical_count ? *pPhysicalDeviceCount :
									    inst->physical_count;

		for (uint32_t i = 0; i < k; i++)
			pPhysicalDevices[i] = (VkPhysicalDevice)inst->physical[i];
		*pPhysicalDeviceCount = k;
		if (k < inst->physical_count)
			result = VK_INCOMPLETE;
	}
	pthread_mutex_unlock(&inst->lock);
	return result;
}

VKAPI_ATTR VkResult VKAPI_CALL
mdgpu_EnumeratePhysicalDeviceGroups(VkInstance instance, uint32_t *pPhysicalDeviceGroupCount,
				    VkPhysicalDeviceGroupProperties *pPhysicalDeviceGroupProperties)
{
	MDGPU_VK_FROM_HANDLE(instance, inst, instance);
	uint32_t n, k;

	pthread_mutex_lock(&inst->lock);
	if (!inst->enumerated)
		enumerate(inst);
	n = inst->physical_count;
	pthread_mutex_unlock(&inst->lock);
	if (!pPhysicalDeviceGroupProperties) {
		*pPhysicalDeviceGroupCount = n;
		return VK_SUCCESS;
	}
	k = *pPhysicalDeviceGroupCount < n ? *pPhysicalDeviceGroupCount : n;
	for (uint32_t i = 0; i < k; i++) {
		VkPhysicalDeviceGroupProperties *g = &pPhysicalDeviceGroupProperties[i];

		g->physicalDeviceCount = 1;
		memset(g->physicalDevices, 0, sizeof(g->physicalDevices));
		g->physicalDevices[0] = (VkPhysicalDevice)inst->physical[i];
		g->subsetAllocation = VK_FALSE;
	}
	*pPhysicalDeviceGroupCount = k;
	return k < n ? VK_INCOMPLETE : VK_SUCCESS;
}

/* ---- physical device queries ---- */

VKAPI_ATTR void VKAPI_CALL mdgpu_GetPhysicalDeviceFeatures(VkPhysicalDevice physicalDevice,
							   VkPhysicalDeviceFeatures *pFeatures)
{
	MDGPU_VK_FROM_HANDLE(physical_device, pd, physicalDevice);

	*pFeatures = pd->features;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetPhysicalDeviceFeatures2(VkPhysicalDevice physicalDevice,
							    VkPhysicalDeviceFeatures2 *pFeatures)
{
	MDGPU_VK_FROM_HANDLE(physical_device, pd, physicalDevice);

	mdgpu_vk_fill_features(pd, (VkBaseOutStructure *)pFeatures);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetPhysicalDeviceProperties(
	VkPhysicalDevice physicalDevice, VkPhysicalDeviceProperties *pProperties)
{
	MDGPU_VK_FROM_HANDLE(physical_device, pd, physicalDevice);

	*pProperties = pd->props;
}

static void driver_strings(const struct mdgpu_vk_physical_device *pd, char *name, size_t name_size,
			   char *info, size_t info_size)
{
	char host_driver[sizeof(pd->caps.host_driver_name) + 1];
	char host_info[sizeof(pd->caps.host_driver_info) + 1];

	memcpy(host_driver, pd->caps.host_driver_name, sizeof(pd->caps.host_driver_name));
	host_driver[sizeof(pd->caps.host_driver_name)] = 0;
	memcpy(host_info, pd->caps.host_driver_info, sizeof(pd->caps.host_driver_info));
	host_info[sizeof(pd->caps.host_driver_info)] = 0;
	snprintf(name, name_size, "mdgpu");
	snprintf(info, info_size, "mdgpu %s on %s %s", MDGPU_VERSION, host_driver, host_info);
}

static void fill_subgroup(const struct mdgpu_vk_physical_device *pd, uint32_t *size,
			  VkShaderStageFlags *stages, VkSubgroupFeatureFlags *ops, VkBool32 *quad)
{
	*size = pd->caps.subgroup_size ? pd->caps.subgroup_size : 1;
	*stages = VK_SHADER_STAGE_COMPUTE_BIT;
	*ops = pd->caps.subgroup_supported_operations;
	*quad = VK_FALSE;
}

/*
 * The update-after-bind limits: descriptor indexing is not offered, but the validation layer
 * checks every pipeline layout against these too, and Vulkan wants them at least the plain
 * limits. Images, samplers and input attachments: none.
 */
#define FILL_UPDATE_AFTER_BIND(p, c)                                        \
	do {                                                                \
		(p)->maxUpdateAfterBindDescriptorsInAllPools = 1u << 20;    \
		(p)->maxPerStageDescriptorUpdateAfterBindUniformBuffers =   \
			(c)->max_per_stage_descriptor_uniform_buffers;      \
		(p)->maxPerStageDescriptorUpdateAfterBindStorageBuffers =   \
			(c)->max_per_stage_descriptor_storage_buffers;      \
		(p)->maxPerStageUpdateAfterBindResources =                  \
			(c)->max_per_stage_descriptor_storage_buffers +     \
			(c)->max_per_stage_descriptor_uniform_buffers;      \
		(p)->maxDescriptorSetUpdateAfterBindUniformBuffers =        \
			(c)->max_descriptor_set_uniform_buffers;            \
		(p)->maxDescriptorSetUpdateAfterBindUniformBuffersDynamic = \
			MDGPU_VK_MAX_DYNAMIC_UNIFORM;                       \
		(p)->maxDescriptorSetUpdateAfterBindStorageBuffers =        \
			(c)->max_descriptor_set_storage_buffers;            \
		(p)->maxDescriptorSetUpdateAfterBindStorageBuffersDynamic = \
			MDGPU_VK_MAX_DYNAMIC_STORAGE;                       \
	} while (0)

VKAPI_ATTR void VKAPI_CALL mdgpu_GetPhysicalDeviceProperties2(
	VkPhysicalDevice physicalDevice, VkPhysicalDeviceProperties2 *pProperties)
{
	MDGPU_VK_FROM_HANDLE(physical_device, pd, physicalDevice);
	const struct mdgpu_caps *c = &pd->caps;
	uint32_t subgroup = c->subgroup_size ? c->subgroup_size : 1;

	pProperties->properties = pd->props;
	for (VkBaseOutStructure *s = pProperties->pNext; s; s = s->pNext) {
		switch ((int)s->sType) {
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES: {
			VkPhysicalDeviceVulkan11Properties *p = (void *)s;

			memcpy(p->deviceUUID, pd->device_uuid, VK_UUID_SIZE);
			memcpy(p->driverUUID, pd->driver_uuid, VK_UUID_SIZE);
			memset(p->deviceLUID, 0, VK_LUID_SIZE);
			p->deviceNodeMask = 0;
			p->deviceLUIDValid = VK_FALSE;
			fill_subgroup(pd, &p->subgroupSize, &p->subgroupSupportedStages,
				      &p->subgroupSupportedOperations,
				      &p->subgroupQuadOperationsInAllStages);
			p->pointClippingBehavior = VK_POINT_CLIPPING_BEHAVIOR_ALL_CLIP_PLANES;
			p->maxMultiviewViewCount = 0;
			p->maxMultiviewInstanceIndex = 0;
			p->protectedNoFault = VK_FALSE;
			p->maxPerSetDescriptors = c->max_descriptor_set_storage_buffers +
						  c->max_descriptor_set_uniform_buffers;
			p->maxMemoryAllocationSize = c->max_memory_allocation_size;
			break;
		}
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES: {
			VkPhysicalDeviceVulkan12Properties *p = (void *)s;
			void *next = p->pNext;

			memset(p, 0, sizeof(*p));
			p->sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES;
			p->pNext = next;
			p->driverID = 0; /* no VkDriverId is assigned to mdgpu */
			driver_strings(pd, p->driverName, sizeof(p->driverName), p->driverInfo,
				       sizeof(p->driverInfo));
			p->denormBehaviorIndependence = VK_SHADER_FLOAT_CONTROLS_INDEPENDENCE_NONE;
			p->roundingModeIndependence = VK_SHADER_FLOAT_CONTROLS_INDEPENDENCE_NONE;
			p->maxTimelineSemaphoreValueDifference = 1ull << 62;
			FILL_UPDATE_AFTER_BIND(p, c);
			break;
		}
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_PROPERTIES: {
			VkPhysicalDeviceVulkan13Properties *p = (void *)s;
			void *next = p->pNext;

			memset(p, 0, sizeof(*p));
			p->sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_PROPERTIES;
			p->pNext = next;
			p->minSubgroupSize = subgroup;
			p->maxSubgroupSize = subgroup;
			p->maxComputeWorkgroupSubgroups =
				(c->max_compute_work_group_invocations + subgroup - 1) / subgroup;
			p->storageTexelBufferOffsetAlignmentBytes = 16;
			p->uniformTexelBufferOffsetAlignmentBytes = 16;
			p->maxBufferSize = c->max_memory_allocation_size;
			break;
		}
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES: {
			VkPhysicalDeviceIDProperties *p = (void *)s;

			memcpy(p->deviceUUID, pd->device_uuid, VK_UUID_SIZE);
			memcpy(p->driverUUID, pd->driver_uuid, VK_UUID_SIZE);
			memset(p->deviceLUID, 0, VK_LUID_SIZE);
			p->deviceNodeMask = 0;
			p->deviceLUIDValid = VK_FALSE;
			break;
		}
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES: {
			VkPhysicalDeviceDriverProperties *p = (void *)s;

			p->driverID = 0;
			driver_strings(pd, p->driverName, sizeof(p->driverName), p->driverInfo,
				       sizeof(p->driverInfo));
			memset(&p->conformanceVersion, 0, sizeof(p->conformanceVersion));
			break;
		}
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES: {
			VkPhysicalDeviceSubgroupProperties *p = (void *)s;

			fill_subgroup(pd, &p->subgroupSize, &p->supportedStages,
				      &p->supportedOperations, &p->quadOperationsInAllStages);
			break;
		}
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES: {
			VkPhysicalDeviceSubgroupSizeControlProperties *p = (void *)s;

			p->minSubgroupSize = subgroup;
			p->maxSubgroupSize = subgroup;
			p->maxComputeWorkgroupSubgroups =
				(c->max_compute_work_group_invocations + subgroup - 1) / subgroup;
			p->requiredSubgroupSizeStages = 0;
			break;
		}
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES: {
			VkPhysicalDeviceMaintenance3Properties *p = (void *)s;

			p->maxPerSetDescriptors = c->max_descriptor_set_storage_buffers +
						  c->max_descriptor_set_uniform_buffers;
			p->maxMemoryAllocationSize = c->max_memory_allocation_size;
			break;
		}
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES:
			((VkPhysicalDeviceMaintenance4Properties *)s)->maxBufferSize =
				c->max_memory_allocation_size;
			break;
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_PROPERTIES:
			((VkPhysicalDeviceTimelineSemaphoreProperties *)s)
				->maxTimelineSemaphoreValueDifference = 1ull << 62;
			break;
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_POINT_CLIPPING_PROPERTIES:
			((VkPhysicalDevicePointClippingProperties *)s)->pointClippingBehavior =
				VK_POINT_CLIPPING_BEHAVIOR_ALL_CLIP_PLANES;
			break;
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MULTIVIEW_PROPERTIES: {
			VkPhysicalDeviceMultiviewProperties *p = (void *)s;

			p->maxMultiviewViewCount = 0;
			p->maxMultiviewInstanceIndex = 0;
			break;
		}
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROTECTED_MEMORY_PROPERTIES:
			((VkPhysicalDeviceProtectedMemoryProperties *)s)->protectedNoFault =
				VK_FALSE;
			break;
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FLOAT_CONTROLS_PROPERTIES:
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DESCRIPTOR_INDEXING_PROPERTIES:
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DEPTH_STENCIL_RESOLVE_PROPERTIES:
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SAMPLER_FILTER_MINMAX_PROPERTIES:
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_INLINE_UNIFORM_BLOCK_PROPERTIES:
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES:
		case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TEXEL_BUFFER_ALIGNMENT_PROPERTIES: {
			/* What these describe is not offered: all zero (no independence, no
			 * preserved denormals, no update-after-bind, no resolve modes, ...). */
			static const struct {
				VkStructureType stype;
				size_t size;
			} zeroed[] = {
				{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FLOAT_CONTROLS_PROPERTIES,
				  sizeof(VkPhysicalDeviceFloatControlsProperties) },
				{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DESCRIPTOR_INDEXING_PROPERTIES,
				  sizeof(VkPhysicalDeviceDescriptorIndexingProperties) },
				{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DEPTH_STENCIL_RESOLVE_PROPERTIES,
				  sizeof(VkPhysicalDeviceDepthStencilResolveProperties) },
				{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SAMPLER_FILTER_MINMAX_PROPERTIES,
				  sizeof(VkPhysicalDeviceSamplerFilterMinmaxProperties) },
				{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_INLINE_UNIFORM_BLOCK_PROPERTIES,
				  sizeof(VkPhysicalDeviceInlineUniformBlockProperties) },
				{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES,
				  sizeof(VkPhysicalDeviceShaderIntegerDotProductProperties) },
				{ VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TEXEL_BUFFER_ALIGNMENT_PROPERTIES,
				  sizeof(VkPhysicalDeviceTexelBufferAlignmentProperties) },
			};
			for (size_t i = 0; i < ARRAY_LEN(zeroed); i++)
				if (zeroed[i].stype == s->sType)
					zero_features(s, zeroed[i].size);
			if (s->sType ==
			    VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DESCRIPTOR_INDEXING_PROPERTIES)
				FILL_UPDATE_AFTER_BIND(
					(VkPhysicalDeviceDescriptorIndexingProperties *)s, c);
			if (s->sType ==
			    VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TEXEL_BUFFER_ALIGNMENT_PROPERTIES) {
				VkPhysicalDeviceTexelBufferAlignmentProperties *p = (void *)s;

				p->storageTexelBufferOffsetAlignmentBytes = 16;
				p->uniformTexelBufferOffsetAlignmentBytes = 16;
			}
			break;
		}
		default:
			/* Structures the driver does not know stay as the caller left them. */
			break;
		}
	}
}

static const VkQueueFamilyProperties queue_family = {
	.queueFlags = VK_QUEUE_COMPUTE_BIT | VK_QUEUE_TRANSFER_BIT,
	.queueCount = 1,
	.timestampValidBits = 64,
	.minImageTransferGranularity = { 1, 1, 1 },
};

VKAPI_ATTR void VKAPI_CALL mdgpu_GetPhysicalDeviceQueueFamilyProperties(
	VkPhysicalDevice physicalDevice, uint32_t *pQueueFamilyPropertyCount,
	VkQueueFamilyProperties *pQueueFamilyProperties)
{
	MDGPU_VK_FROM_HANDLE(physical_device, pd, physicalDevice);

	if (!pQueueFamilyProperties) {
		*pQueueFamilyPropertyCount = 1;
		return;
	}
	if (*pQueueFamilyPropertyCount < 1)
		return;
	pQueueFamilyProperties[0] = queue_family;
	pQueueFamilyProperties[0].timestampValidBits = pd->caps.timestamp_valid_bits;
	*pQueueFamilyPropertyCount = 1;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetPhysicalDeviceQueueFamilyProperties2(
	VkPhysicalDevice physicalDevice, uint32_t *pQueueFamilyPropertyCount,
	VkQueueFamilyProperties2 *pQueueFamilyProperties)
{
	MDGPU_VK_FROM_HANDLE(physical_device, pd, physicalDevice);

	if (!pQueueFamilyProperties) {
		*pQueueFamilyPropertyCount = 1;
		return;
	}
	if (*pQueueFamilyPropertyCount < 1)
		return;
	pQueueFamilyProperties[0].queueFamilyProperties = queue_family;
	pQueueFamilyProperties[0].queueFamilyProperties.timestampValidBits =
		pd->caps.timestamp_valid_bits;
	*pQueueFamilyPropertyCount = 1;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetPhysicalDeviceMemoryProperties(
	VkPhysicalDevice physicalDevice, VkPhysicalDeviceMemoryProperties *pMemoryProperties)
{
	MDGPU_VK_FROM_HANDLE(physical_device, pd, physicalDevice);

	*pMemoryProperties = pd->memory;
}

/* Bytes every device of this process has allocated on each physical device (the budget). */
static atomic_uint_fast64_t process_usage[MDGPU_VK_MAX_PHYSICAL_DEVICES];

void mdgpu_vk_account_memory(const struct mdgpu_vk_physical_device *pd, int64_t delta)
{
	for (uint32_t i = 0; i < pd->instance->physical_count; i++)
		if (pd->instance->physical[i] == pd)
			atomic_fetch_add(&process_usage[i], (uint64_t)delta);
}

static uint64_t usage_of(const struct mdgpu_vk_physical_device *pd)
{
	for (uint32_t i = 0; i < pd->instance->physical_count; i++)
		if (pd->instance->physical[i] == pd)
			return atomic_load(&process_usage[i]);
	return 0;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetPhysicalDeviceMemoryProperties2(
	VkPhysicalDevice physicalDevice, VkPhysicalDeviceMemoryProperties2 *pMemoryProperties)
{
	MDGPU_VK_FROM_HANDLE(physical_device, pd, physicalDevice);
	VkPhysicalDeviceMemoryBudgetPropertiesEXT *budget = (void *)mdgpu_vk_find_struct(
		pMemoryProperties->pNext,
		VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT);

	pMemoryProperties->memoryProperties = pd->memory;
	if (budget) {
		/*
		 * What the VM's other users have allocated is not ours to use: the budget is the
		 * quota minus their part (QUERY USED counts everyone, this process included).
		 */
		struct mdgpu_info info;
		struct mdgpu *dev;
		uint64_t mine = usage_of(pd), used = mine, quota = heap_size(pd);

		if (!mdgpu_open(pd->path, &dev)) {
			if (!mdgpu_get_info(dev, &info))
				used = info.used;
			mdgpu_close(dev);
		}
		memset(budget->heapBudget, 0, sizeof(budget->heapBudget));
		memset(budget->heapUsage, 0, sizeof(budget->heapUsage));
		budget->heapUsage[0] = mine;
		/* What others hold (the count may lag ours by an allocation in flight). */
		used = used > mine ? used - mine : 0;
		budget->heapBudget[0] = used < quota ? quota - used : 0;
	}
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetPhysicalDeviceFormatProperties(
	VkPhysicalDevice physicalDevice, VkFormat format, VkFormatProperties *pFormatProperties)
{
	/* No images and no texel buffers: no format has any feature. */
	memset(pFormatProperties, 0, sizeof(*pFormatProperties));
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetPhysicalDeviceFormatProperties2(
	VkPhysicalDevice physicalDevice, VkFormat format, VkFormatProperties2 *pFormatProperties)
{
	memset(&pFormatProperties->formatProperties, 0,
	       sizeof(pFormatProperties->formatProperties));
	for (VkBaseOutStructure *s = pFormatProperties->pNext; s; s = s->pNext)
		if (s->sType == VK_STRUCTURE_TYPE_FORMAT_PROPERTIES_3) {
			VkFormatProperties3 *p = (void *)s;

			p->linearTilingFeatures = 0;
			p->optimalTilingFeatures = 0;
			p->bufferFeatures = 0;
		}
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_GetPhysicalDeviceImageFormatProperties(
	VkPhysicalDevice physicalDevice, VkFormat format, VkImageType type, VkImageTiling tiling,
	VkImageUsageFlags usage, VkImageCreateFlags flags,
	VkImageFormatProperties *pImageFormatProperties)
{
	memset(pImageFormatProperties, 0, sizeof(*pImageFormatProperties));
	return VK_ERROR_FORMAT_NOT_SUPPORTED;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_GetPhysicalDeviceImageFormatProperties2(
	VkPhysicalDevice physicalDevice, const VkPhysicalDeviceImageFormatInfo2 *pImageFormatInfo,
	VkImageFormatProperties2 *pImageFormatProperties)
{
	memset(&pImageFormatProperties->imageFormatProperties, 0,
	       sizeof(pImageFormatProperties->imageFormatProperties));
	return VK_ERROR_FORMAT_NOT_SUPPORTED;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetPhysicalDeviceSparseImageFormatProperties(
	VkPhysicalDevice physicalDevice, VkFormat format, VkImageType type,
	VkSampleCountFlagBits samples, VkImageUsageFlags usage, VkImageTiling tiling,
	uint32_t *pPropertyCount, VkSparseImageFormatProperties *pProperties)
{
	*pPropertyCount = 0;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetPhysicalDeviceSparseImageFormatProperties2(
	VkPhysicalDevice physicalDevice, const VkPhysicalDeviceSparseImageFormatInfo2 *pFormatInfo,
	uint32_t *pPropertyCount, VkSparseImageFormatProperties2 *pProperties)
{
	*pPropertyCount = 0;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetPhysicalDeviceExternalBufferProperties(
	VkPhysicalDevice physicalDevice,
	const VkPhysicalDeviceExternalBufferInfo *pExternalBufferInfo,
	VkExternalBufferProperties *pExternalBufferProperties)
{
	/* No memory is imported or exported. */
	memset(&pExternalBufferProperties->externalMemoryProperties, 0,
	       sizeof(pExternalBufferProperties->externalMemoryProperties));
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetPhysicalDeviceExternalFenceProperties(
	VkPhysicalDevice physicalDevice,
	const VkPhysicalDeviceExternalFenceInfo *pExternalFenceInfo,
	VkExternalFenceProperties *pExternalFenceProperties)
{
	pExternalFenceProperties->exportFromImportedHandleTypes = 0;
	pExternalFenceProperties->compatibleHandleTypes = 0;
	pExternalFenceProperties->externalFenceFeatures = 0;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetPhysicalDeviceExternalSemaphoreProperties(
	VkPhysicalDevice physicalDevice,
	const VkPhysicalDeviceExternalSemaphoreInfo *pExternalSemaphoreInfo,
	VkExternalSemaphoreProperties *pExternalSemaphoreProperties)
{
	pExternalSemaphoreProperties->exportFromImportedHandleTypes = 0;
	pExternalSemaphoreProperties->compatibleHandleTypes = 0;
	pExternalSemaphoreProperties->externalSemaphoreFeatures = 0;
}

VKAPI_ATTR VkResult VKAPI_CALL
mdgpu_GetPhysicalDeviceToolProperties(VkPhysicalDevice physicalDevice, uint32_t *pToolCount,
				      VkPhysicalDeviceToolProperties *pToolProperties)
{
	*pToolCount = 0;
	return VK_SUCCESS;
}
