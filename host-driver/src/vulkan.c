// SPDX-License-Identifier: MIT
/*
 * The Vulkan compute backend: one VkInstance and VkDevice per opened device, one compute
 * queue, imported host memory as VkBuffers, one compute pipeline per kernel, one command
 * buffer + fence + timestamp query pool + descriptor pool per submission (recycled).
 *
 * Every function here runs with the core's device lock held except vk_wait(), which only
 * calls vkWaitForFences (the fence is not externally synchronized for waiting), and
 * vk_kernel_create(), which only creates new objects: Vulkan does not require the device or
 * the pipeline cache to be externally synchronized for that (a pipeline cache is internally
 * synchronized unless created with VK_PIPELINE_CACHE_CREATE_EXTERNALLY_SYNCHRONIZED_BIT), so
 * several threads may compile kernels while others submit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <vulkan/vulkan.h>

#include "internal.h"

struct mdgpu_be {
	VkInstance instance;
	VkPhysicalDevice pdev;
	VkDevice dev;
	VkQueue queue;
	uint32_t queue_family;
	VkPhysicalDeviceMemoryProperties mem_props;
	PFN_vkGetMemoryHostPointerPropertiesEXT get_host_pointer_props;
	bool host_import;
	uint64_t import_align;
	bool timestamps;
	bool cpu_timestamps; /* TIMESTAMP values converted by the CPU at completion */
	double ts_period; /* ns per tick */
	uint64_t ts_mask;
	VkCommandPool cmd_pool;
	VkPipelineCache pipeline_cache;
	uint32_t max_storage_range; /* maxStorageBufferRange */
	uint32_t max_uniform_range; /* maxUniformBufferRange */
	struct mdgpu_be_submission *free_subs;
};

struct mdgpu_be_memory {
	VkBuffer buf; /* what commands use: the imported memory, or the device copy */
	VkDeviceMemory mem;
	uint64_t size;
	uint8_t *host;
	bool staged;
	VkBuffer stage_buf; /* STAGED: host-visible mirror, persistently mapped */
	VkDeviceMemory stage_mem;
	uint8_t *stage_map;
};

/*
 * A kernel: its pipeline and layouts. Its descriptors are numbered in slots (see
 * struct mdgpu_job_desc); sets[i] says which bindings, and so which slots, set i holds.
 */
struct kernel_set {
	uint32_t set; /* its number */
	uint32_t first_binding; /* into bindings[] */
	uint32_t binding_count;
	VkDescriptorSetLayout layout;
};

struct mdgpu_be_kernel {
	VkShaderModule module;
	VkDescriptorSetLayout empty_layout; /* the sets between used ones */
	VkPipelineLayout layout;
	VkPipeline pipeline;
	struct mdgpu_host_kernel_binding *bindings;
	uint32_t *slot_base; /* first slot of each binding */
	uint32_t binding_count;
	uint32_t slots;
	struct kernel_set *sets; /* the non-empty sets */
	uint32_t set_count;
	uint32_t push_size;
	uint32_t nwg_offset; /* MDGPU_NWG_NONE, or where dispatches push NumWorkgroups */
};

/* A range of a STAGED memory copied in before a batch and (if written) out after it. */
struct stage_range {
	struct mdgpu_be_memory *mem;
	uint64_t offset;
	uint64_t size;
	bool written;
};

/* A TIMESTAMP converted by the CPU at completion. */
struct cpu_timestamp {
	struct mdgpu_be_memory *mem;
	uint64_t offset;
	uint32_t query;
};

struct mdgpu_be_submission {
	VkCommandBuffer cmd;
	VkFence fence;
	VkQueryPool query_pool;
	uint32_t query_cap;
	VkDescriptorPool desc_pool;
	uint32_t sets_cap; /* what desc_pool holds */
	uint32_t storage_cap;
	uint32_t uniform_cap;
	/* MDGPU_HOST_ZERO_BUFFER_SIZE zeroed bytes, for descriptors a dispatch leaves out. */
	VkBuffer zero_buf;
	VkDeviceMemory zero_mem;
	/* Scratch for one dispatch's descriptor writes (the largest kernel's slots). */
	VkDescriptorBufferInfo *infos;
	VkWriteDescriptorSet *writes;
	uint32_t scratch_cap;
	struct stage_range *ranges;
	uint32_t range_count;
	uint32_t range_cap;
	struct cpu_timestamp *cpu_ts;
	uint32_t cpu_ts_count;
	uint32_t cpu_ts_cap;
	struct mdgpu_be_submission *next; /* free list */
};

static int vk_errno(VkResult r)
{
	switch (r) {
	case VK_SUCCESS:
		return 0;
	case VK_TIMEOUT:
	case VK_NOT_READY:
		return -ETIMEDOUT;
	case VK_ERROR_OUT_OF_HOST_MEMORY:
	case VK_ERROR_OUT_OF_DEVICE_MEMORY:
	case VK_ERROR_TOO_MANY_OBJECTS:
	case VK_ERROR_FRAGMENTED_POOL:
	case VK_ERROR_OUT_OF_POOL_MEMORY:
		return -ENOMEM;
	case VK_ERROR_INCOMPATIBLE_DRIVER:
	case VK_ERROR_INITIALIZATION_FAILED:
		return -ENODEV;
	case VK_ERROR_INVALID_EXTERNAL_HANDLE:
		return -EINVAL;
	default:
		return -EIO; /* VK_ERROR_DEVICE_LOST and anything else */
	}
}

static int vk_fail(VkResult r, const char *what)
{
	return mdgpu_error(vk_errno(r), "%s failed: VkResult %d", what, (int)r);
}

/* ---- instance and device selection ---- */

/*
 * The Vulkan version the library asks for: the loader's, up to 1.3 (at least 1.1, which it
 * needs). A device is then used at the lower of this and its own version (info.api_version).
 */
static uint32_t instance_version(void)
{
	PFN_vkEnumerateInstanceVersion get = (PFN_vkEnumerateInstanceVersion)vkGetInstanceProcAddr(
		VK_NULL_HANDLE, "vkEnumerateInstanceVersion");
	uint32_t v = VK_API_VERSION_1_1;

	if (get && get(&v) != VK_SUCCESS)
		v = VK_API_VERSION_1_1;
	if (v > VK_API_VERSION_1_3)
		v = VK_API_VERSION_1_3;
	return v < VK_API_VERSION_1_1 ? VK_API_VERSION_1_1 : v;
}

static int create_instance(VkInstance *out)
{
	VkApplicationInfo app = {
		.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
		.pApplicationName = "mdgpu",
		.pEngineName = "libmdgpu-host",
		.apiVersion = instance_version(),
	};
	VkInstanceCreateInfo ci = {
		.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
		.pApplicationInfo = &app,
	};
	VkResult r = vkCreateInstance(&ci, NULL, out);

	if (r != VK_SUCCESS)
		return mdgpu_error(-ENODEV,
				   "vkCreateInstance failed (VkResult %d): no Vulkan driver?"
				   " Install mesa-vulkan-drivers for lavapipe",
				   (int)r);
	return 0;
}

static bool has_extension(VkPhysicalDevice pdev, const char *name)
{
	VkExtensionProperties *exts;
	uint32_t n = 0;
	bool found = false;

	if (vkEnumerateDeviceExtensionProperties(pdev, NULL, &n, NULL) != VK_SUCCESS || !n)
		return false;
	exts = calloc(n, sizeof(*exts));
	if (!exts)
		return false;
	if (vkEnumerateDeviceExtensionProperties(pdev, NULL, &n, exts) == VK_SUCCESS)
		for (uint32_t i = 0; i < n && !found; i++)
			found = !strcmp(exts[i].extensionName, name);
	free(exts);
	return found;
}

/* The first queue family with compute; UINT32_MAX if none. */
static uint32_t compute_family(VkPhysicalDevice pdev, uint32_t *ts_bits)
{
	VkQueueFamilyProperties qf[16];
	uint32_t n = 16;

	vkGetPhysicalDeviceQueueFamilyProperties(pdev, &n, qf);
	for (uint32_t i = 0; i < n; i++)
		if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
			*ts_bits = qf[i].timestampValidBits;
			return i;
		}
	return UINT32_MAX;
}

/*
 * VK_EXT_robustness2 with robustBufferAccess2: an access outside a descriptor's range (not
 * merely outside the VkBuffer, as with robustBufferAccess) reads zero and writes nothing.
 * That matters here because every binding is a range of one buffer over a VM's whole
 * imported aperture: robustBufferAccess alone lets a kernel reach the rest of it.
 */
static bool robust_buffer_access_2(VkPhysicalDevice pdev)
{
	VkPhysicalDeviceRobustness2FeaturesEXT robust2 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ROBUSTNESS_2_FEATURES_EXT,
	};
	VkPhysicalDeviceFeatures2 features = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
		.pNext = &robust2,
	};

	if (!has_extension(pdev, VK_EXT_ROBUSTNESS_2_EXTENSION_NAME))
		return false;
	vkGetPhysicalDeviceFeatures2(pdev, &features);
	return features.features.robustBufferAccess && robust2.robustBufferAccess2;
}

/*
 * The version a device is used at: its own (with its patch level), at most the major and
 * minor version the instance asked for.
 */
static uint32_t device_version(VkPhysicalDevice pdev)
{
	VkPhysicalDeviceProperties p;
	uint32_t inst = instance_version();

	vkGetPhysicalDeviceProperties(pdev, &p);
	if (VK_MAKE_API_VERSION(0, VK_API_VERSION_MAJOR(p.apiVersion),
				VK_API_VERSION_MINOR(p.apiVersion), 0) > inst)
		return inst;
	return p.apiVersion;
}

/*
 * Features kernels may use: queried into one chain and enabled from another (only what
 * mdgpu lets kernels use, so that spirv.c's capability allow-list and the device agree).
 * Structs of Vulkan 1.2 or extensions are in the chain where the device has them.
 */
struct feature_chain {
	VkPhysicalDeviceFeatures2 f2;
	VkPhysicalDevice16BitStorageFeatures s16;
	VkPhysicalDeviceVariablePointersFeatures vp;
	VkPhysicalDeviceShaderFloat16Int8Features f16i8;
	VkPhysicalDevice8BitStorageFeatures s8;
	VkPhysicalDeviceShaderSubgroupExtendedTypesFeatures sgx;
	VkPhysicalDeviceRobustness2FeaturesEXT robust2;
};

/* Which optional structs a device's chain has, and the extensions they need. */
struct feature_exts {
	bool f16i8, s8, sgx, robust2;
	bool core12; /* the three above are core (no extension to enable) */
};

static void chain_link(struct feature_chain *c, const struct feature_exts *x)
{
	void **next = &c->f2.pNext;

	c->f2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
	c->s16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES;
	c->vp.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VARIABLE_POINTERS_FEATURES;
	c->f16i8.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES;
	c->s8.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES;
	c->sgx.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_SUBGROUP_EXTENDED_TYPES_FEATURES;
	c->robust2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ROBUSTNESS_2_FEATURES_EXT;
	*next = &c->s16;
	next = &c->s16.pNext;
	*next = &c->vp;
	next = &c->vp.pNext;
	if (x->f16i8) {
		*next = &c->f16i8;
		next = &c->f16i8.pNext;
	}
	if (x->s8) {
		*next = &c->s8;
		next = &c->s8.pNext;
	}
	if (x->sgx) {
		*next = &c->sgx;
		next = &c->sgx.pNext;
	}
	if (x->robust2) {
		*next = &c->robust2;
		next = &c->robust2.pNext;
	}
	*next = NULL;
}

/*
 * What mdgpu enables on @pdev (@en, and @x for its extensions) and so lets kernels use (@fs;
 * its subgroup fields are the caller's). robustBufferAccess and robustBufferAccess2 are
 * enabled wherever the device has them (see vk_open()).
 */
static void device_features(VkPhysicalDevice pdev, struct feature_chain *en, struct feature_exts *x,
			    struct mdgpu_feature_set *fs)
{
	struct feature_chain have = { 0 };
	uint32_t f = 0;

	*x = (struct feature_exts){ .core12 = device_version(pdev) >= VK_API_VERSION_1_2 };
	x->f16i8 = x->core12 || has_extension(pdev, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
	x->s8 = x->core12 || has_extension(pdev, VK_KHR_8BIT_STORAGE_EXTENSION_NAME);
	x->sgx = x->core12 ||
		 has_extension(pdev, VK_KHR_SHADER_SUBGROUP_EXTENDED_TYPES_EXTENSION_NAME);
	x->robust2 = has_extension(pdev, VK_EXT_ROBUSTNESS_2_EXTENSION_NAME);
	chain_link(&have, x);
	vkGetPhysicalDeviceFeatures2(pdev, &have.f2);

	memset(en, 0, sizeof(*en));
	en->f2.features.robustBufferAccess = have.f2.features.robustBufferAccess;
	en->f2.features.shaderInt64 = have.f2.features.shaderInt64;
	en->f2.features.shaderFloat64 = have.f2.features.shaderFloat64;
	en->f2.features.shaderInt16 = have.f2.features.shaderInt16;
	en->s16.storageBuffer16BitAccess = have.s16.storageBuffer16BitAccess;
	en->s16.uniformAndStorageBuffer16BitAccess = have.s16.uniformAndStorageBuffer16BitAccess;
	en->s16.storagePushConstant16 = have.s16.storagePushConstant16;
	en->vp.variablePointersStorageBuffer = have.vp.variablePointersStorageBuffer;
	en->f16i8.shaderFloat16 = have.f16i8.shaderFloat16;
	en->f16i8.shaderInt8 = have.f16i8.shaderInt8;
	en->s8.storageBuffer8BitAccess = have.s8.storageBuffer8BitAccess;
	en->s8.uniformAndStorageBuffer8BitAccess = have.s8.uniformAndStorageBuffer8BitAccess;
	en->s8.storagePushConstant8 = have.s8.storagePushConstant8;
	en->sgx.shaderSubgroupExtendedTypes = have.sgx.shaderSubgroupExtendedTypes;
	x->robust2 = x->robust2 && have.f2.features.robustBufferAccess &&
		     have.robust2.robustBufferAccess2;
	en->robust2.robustBufferAccess2 = x->robust2;
	/* Extensions only for what is enabled: nothing else in the chain then. */
	x->f16i8 = x->f16i8 && (en->f16i8.shaderFloat16 || en->f16i8.shaderInt8);
	x->s8 = x->s8 && (en->s8.storageBuffer8BitAccess ||
			  en->s8.uniformAndStorageBuffer8BitAccess || en->s8.storagePushConstant8);
	x->sgx = x->sgx && en->sgx.shaderSubgroupExtendedTypes;
	chain_link(en, x);

	f |= en->f2.features.shaderInt64 ? MDGPU_HOST_FEATURE_SHADER_INT64 : 0;
	f |= en->f2.features.shaderFloat64 ? MDGPU_HOST_FEATURE_SHADER_FLOAT64 : 0;
	f |= en->f2.features.shaderInt16 ? MDGPU_HOST_FEATURE_SHADER_INT16 : 0;
	f |= en->f16i8.shaderInt8 ? MDGPU_HOST_FEATURE_SHADER_INT8 : 0;
	f |= en->f16i8.shaderFloat16 ? MDGPU_HOST_FEATURE_SHADER_FLOAT16 : 0;
	f |= en->s16.storageBuffer16BitAccess ? MDGPU_HOST_FEATURE_STORAGE_BUFFER_16BIT : 0;
	f |= en->s16.uniformAndStorageBuffer16BitAccess ? MDGPU_HOST_FEATURE_UNIFORM_16BIT : 0;
	f |= en->s16.storagePushConstant16 ? MDGPU_HOST_FEATURE_PUSH_CONSTANT_16BIT : 0;
	f |= en->s8.storageBuffer8BitAccess ? MDGPU_HOST_FEATURE_STORAGE_BUFFER_8BIT : 0;
	f |= en->s8.uniformAndStorageBuffer8BitAccess ? MDGPU_HOST_FEATURE_UNIFORM_8BIT : 0;
	f |= en->s8.storagePushConstant8 ? MDGPU_HOST_FEATURE_PUSH_CONSTANT_8BIT : 0;
	f |= en->vp.variablePointersStorageBuffer ? MDGPU_HOST_FEATURE_VARIABLE_POINTERS : 0;
	fs->features = f;
	fs->subgroup_extended_types = en->sgx.shaderSubgroupExtendedTypes;
}

static uint32_t clamp_u32(uint32_t v, uint32_t max)
{
	return v < max ? v : max;
}

/*
 * struct mdgpu_host_caps of @pdev (but its size) and the feature set kernels get: the
 * device's limits clamped to the library's (MDGPU_HOST_MAX_SETS, _STAGE_DESCRIPTORS).
 */
static void describe_caps(VkPhysicalDevice pdev, struct mdgpu_host_caps *caps,
			  struct mdgpu_feature_set *fs, struct feature_chain *en,
			  struct feature_exts *x)
{
	VkPhysicalDeviceSubgroupProperties sg = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
	};
	VkPhysicalDeviceMaintenance3Properties m3 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES,
		.pNext = &sg,
	};
	VkPhysicalDeviceProperties2 props = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
		.pNext = &m3,
	};
	const VkPhysicalDeviceLimits *lim = &props.properties.limits;
	uint32_t size = caps->size;

	vkGetPhysicalDeviceProperties2(pdev, &props);
	device_features(pdev, en, x, fs);
	fs->subgroup_ops = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) ?
				   sg.supportedOperations & 0xffu :
				   0;
	fs->max_per_stage_resources = lim->maxPerStageResources;
	memset(caps, 0, sizeof(*caps));
	caps->size = size;
	caps->features = fs->features;
	memcpy(caps->pipeline_cache_uuid, props.properties.pipelineCacheUUID,
	       sizeof(caps->pipeline_cache_uuid));
	caps->driver_version = props.properties.driverVersion;
	caps->max_bound_descriptor_sets =
		clamp_u32(lim->maxBoundDescriptorSets, MDGPU_HOST_MAX_SETS);
	caps->max_per_stage_storage_buffers = clamp_u32(lim->maxPerStageDescriptorStorageBuffers,
							MDGPU_HOST_MAX_STAGE_DESCRIPTORS);
	caps->max_per_stage_uniform_buffers = clamp_u32(lim->maxPerStageDescriptorUniformBuffers,
							MDGPU_HOST_MAX_STAGE_DESCRIPTORS);
	caps->max_set_storage_buffers =
		clamp_u32(lim->maxDescriptorSetStorageBuffers, MDGPU_HOST_MAX_STAGE_DESCRIPTORS);
	caps->max_set_uniform_buffers =
		clamp_u32(lim->maxDescriptorSetUniformBuffers, MDGPU_HOST_MAX_STAGE_DESCRIPTORS);
	caps->max_storage_buffer_range = lim->maxStorageBufferRange;
	caps->max_uniform_buffer_range = lim->maxUniformBufferRange;
	caps->min_storage_offset_alignment = (uint32_t)lim->minStorageBufferOffsetAlignment;
	caps->min_uniform_offset_alignment = (uint32_t)lim->minUniformBufferOffsetAlignment;
	caps->subgroup_size = sg.subgroupSize;
	caps->subgroup_operations = fs->subgroup_ops;
	caps->max_memory_allocation_size = m3.maxMemoryAllocationSize;
}

static void copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src);
}

/* Fill @info for @pdev; return false if the device cannot run mdgpu (no compute, < 1.1). */
static bool describe(VkPhysicalDevice pdev, uint32_t index, struct mdgpu_host_device_info *info)
{
	VkPhysicalDeviceExternalMemoryHostPropertiesEXT host = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT,
	};
	VkPhysicalDeviceMaintenance3Properties m3 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES,
	};
	VkPhysicalDeviceDriverProperties drv = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES,
	};
	VkPhysicalDeviceProperties2 props = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
		.pNext = &m3,
	};
	VkPhysicalDeviceRobustness2PropertiesEXT robust2_props = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ROBUSTNESS_2_PROPERTIES_EXT,
	};
	VkPhysicalDeviceFeatures features;
	const VkPhysicalDeviceLimits *lim = &props.properties.limits;
	bool host_import = has_extension(pdev, VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME);
	bool robust2 = robust_buffer_access_2(pdev);
	bool driver_props = has_extension(pdev, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
	uint32_t ts_bits = 0;

	vkGetPhysicalDeviceProperties(pdev, &props.properties);
	if (props.properties.apiVersion < VK_API_VERSION_1_1)
		return false;
	if (host_import) {
		host.pNext = props.pNext;
		props.pNext = &host;
	}
	if (driver_props || props.properties.apiVersion >= VK_API_VERSION_1_2) {
		drv.pNext = props.pNext;
		props.pNext = &drv;
	}
	if (robust2) {
		robust2_props.pNext = props.pNext;
		props.pNext = &robust2_props;
	}
	vkGetPhysicalDeviceProperties2(pdev, &props);
	vkGetPhysicalDeviceFeatures(pdev, &features);
	if (compute_family(pdev, &ts_bits) == UINT32_MAX)
		return false;

	memset(info, 0, sizeof(*info));
	copy_str(info->name, sizeof(info->name), props.properties.deviceName);
	copy_str(info->driver_name, sizeof(info->driver_name), drv.driverName);
	copy_str(info->driver_info, sizeof(info->driver_info), drv.driverInfo);
	copy_str(info->backend, sizeof(info->backend), "vulkan");
	info->index = index;
	info->device_type = (uint32_t)props.properties.deviceType;
	info->vendor_id = props.properties.vendorID;
	info->device_id = props.properties.deviceID;
	info->api_version = device_version(pdev);
	info->driver_version = props.properties.driverVersion;
	info->flags = (host_import ? MDGPU_HOST_DEVICE_HOST_IMPORT : 0) |
		      (features.robustBufferAccess ? MDGPU_HOST_DEVICE_ROBUST_ACCESS : 0) |
		      (ts_bits && lim->timestampPeriod > 0 ? MDGPU_HOST_DEVICE_TIMESTAMPS : 0);
	info->max_push_constant_size = lim->maxPushConstantsSize < MDGPU_HOST_MAX_PUSH_CONSTANTS ?
					       lim->maxPushConstantsSize :
					       MDGPU_HOST_MAX_PUSH_CONSTANTS;
	info->max_bindings = lim->maxPerStageDescriptorStorageBuffers < MDGPU_HOST_MAX_BINDINGS ?
				     lim->maxPerStageDescriptorStorageBuffers :
				     MDGPU_HOST_MAX_BINDINGS;
	for (int i = 0; i < 3; i++) {
		info->max_workgroup_count[i] = lim->maxComputeWorkGroupCount[i];
		info->max_workgroup_size[i] = lim->maxComputeWorkGroupSize[i];
	}
	info->max_workgroup_invocations = lim->maxComputeWorkGroupInvocations;
	info->timestamp_valid_bits = ts_bits;
	info->timestamp_period_ns = lim->timestampPeriod;
	info->min_import_alignment = host_import ? host.minImportedHostPointerAlignment : 0;
	info->min_binding_alignment =
		lim->minStorageBufferOffsetAlignment ? lim->minStorageBufferOffsetAlignment : 1;
	info->max_binding_size = lim->maxStorageBufferRange;
	info->max_memory_size = m3.maxMemoryAllocationSize;
	info->max_shared_memory_size = lim->maxComputeSharedMemorySize;
	if (!features.robustBufferAccess) {
		info->robustness = MDGPU_HOST_ROBUSTNESS_NONE;
	} else if (robust2) {
		info->robustness = MDGPU_HOST_ROBUSTNESS_BUFFER_ACCESS_2;
		info->robust_access_alignment =
			(uint32_t)robust2_props.robustStorageBufferAccessSizeAlignment;
	} else {
		info->robustness = MDGPU_HOST_ROBUSTNESS_BUFFER_ACCESS;
	}
	info->max_kernel_private_size = MDGPU_HOST_MAX_PRIVATE_SIZE;
	info->max_kernel_type_depth = MDGPU_HOST_MAX_TYPE_DEPTH;
	info->max_kernel_type_paths = MDGPU_HOST_MAX_TYPE_PATHS;
	info->max_kernel_module_paths = MDGPU_HOST_MAX_MODULE_PATHS;
	return true;
}

static int physical_devices(VkInstance instance, VkPhysicalDevice **out, uint32_t *count)
{
	VkResult r;

	*count = 0;
	*out = NULL;
	r = vkEnumeratePhysicalDevices(instance, count, NULL);
	if (r != VK_SUCCESS)
		return vk_fail(r, "vkEnumeratePhysicalDevices");
	if (*count == 0)
		return mdgpu_error(-ENODEV, "no Vulkan devices");
	*out = calloc(*count, sizeof(**out));
	if (!*out)
		return mdgpu_error(-ENOMEM, "out of memory");
	r = vkEnumeratePhysicalDevices(instance, count, *out);
	if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
		free(*out);
		*out = NULL;
		return vk_fail(r, "vkEnumeratePhysicalDevices");
	}
	return 0;
}

static int vk_enumerate(uint32_t index, struct mdgpu_host_device_info *info)
{
	VkPhysicalDevice *pdevs;
	VkInstance instance;
	uint32_t count;
	int ret;

	ret = create_instance(&instance);
	if (ret)
		return ret;
	ret = physical_devices(instance, &pdevs, &count);
	if (!ret) {
		if (index >= count)
			ret = mdgpu_error(-ENOENT, "enumerate: no device %u (%u devices)", index,
					  count);
		else if (!describe(pdevs[index], index, info))
			/* Listed, but not usable: say so rather than hide it. */
			copy_str(info->backend, sizeof(info->backend), "unusable");
		free(pdevs);
	}
	vkDestroyInstance(instance, NULL);
	return ret;
}

static int vk_enumerate_caps(uint32_t index, struct mdgpu_host_caps *caps)
{
	struct mdgpu_feature_set fs;
	struct feature_chain en;
	struct feature_exts x;
	VkPhysicalDevice *pdevs;
	VkInstance instance;
	uint32_t count;
	int ret;

	ret = create_instance(&instance);
	if (ret)
		return ret;
	ret = physical_devices(instance, &pdevs, &count);
	if (!ret) {
		if (index >= count)
			ret = mdgpu_error(-ENOENT, "enumerate_caps: no device %u (%u devices)",
					  index, count);
		else
			describe_caps(pdevs[index], caps, &fs, &en, &x);
		free(pdevs);
	}
	vkDestroyInstance(instance, NULL);
	return ret;
}

/* Default preference: discrete, integrated, virtual GPU, then CPU (lavapipe), then other. */
static int type_rank(uint32_t type)
{
	switch (type) {
	case MDGPU_HOST_DEVICE_DISCRETE:
		return 0;
	case MDGPU_HOST_DEVICE_INTEGRATED:
		return 1;
	case MDGPU_HOST_DEVICE_VIRTUAL:
		return 2;
	case MDGPU_HOST_DEVICE_CPU:
		return 3;
	default:
		return 4;
	}
}

static int select_device(VkInstance instance, const char *selector, VkPhysicalDevice *out,
			 struct mdgpu_host_device_info *info)
{
	struct mdgpu_host_device_info cand;
	VkPhysicalDevice *pdevs;
	uint32_t count;
	bool by_index = false;
	unsigned long want = 0;
	int best = -1, best_rank = 99, ret;

	ret = physical_devices(instance, &pdevs, &count);
	if (ret)
		return ret;
	if (selector && *selector) {
		char *end;

		want = strtoul(selector, &end, 10);
		by_index = *end == '\0' && selector[0] >= '0' && selector[0] <= '9';
	}
	for (uint32_t i = 0; i < count; i++) {
		if (!describe(pdevs[i], i, &cand))
			continue;
		if (by_index) {
			if (i != want)
				continue;
		} else if (selector && *selector) {
			if (!strcasestr(cand.name, selector) &&
			    !strcasestr(cand.driver_name, selector))
				continue;
		}
		if (type_rank(cand.device_type) < best_rank) {
			best = (int)i;
			best_rank = type_rank(cand.device_type);
			*info = cand;
		}
	}
	if (best < 0) {
		ret = mdgpu_error(-ENODEV,
				  "no usable Vulkan device matches \"%s\" (%u devices;"
				  " compute and Vulkan 1.1 are needed)",
				  selector ? selector : "", count);
	} else {
		*out = pdevs[best];
	}
	free(pdevs);
	return ret;
}

/* ---- open / close ---- */

static void vk_close(struct mdgpu_be *be)
{
	if (be->dev) {
		vkDeviceWaitIdle(be->dev);
		while (be->free_subs) {
			struct mdgpu_be_submission *s = be->free_subs;

			be->free_subs = s->next;
			if (s->fence)
				vkDestroyFence(be->dev, s->fence, NULL);
			if (s->query_pool)
				vkDestroyQueryPool(be->dev, s->query_pool, NULL);
			if (s->desc_pool)
				vkDestroyDescriptorPool(be->dev, s->desc_pool, NULL);
			if (s->zero_buf)
				vkDestroyBuffer(be->dev, s->zero_buf, NULL);
			if (s->zero_mem)
				vkFreeMemory(be->dev, s->zero_mem, NULL);
			free(s->infos);
			free(s->writes);
			free(s->ranges);
			free(s->cpu_ts);
			free(s); /* command buffers go with the pool */
		}
		if (be->pipeline_cache)
			vkDestroyPipelineCache(be->dev, be->pipeline_cache, NULL);
		if (be->cmd_pool)
			vkDestroyCommandPool(be->dev, be->cmd_pool, NULL);
		vkDestroyDevice(be->dev, NULL);
	}
	if (be->instance)
		vkDestroyInstance(be->instance, NULL);
	free(be);
}

static int vk_open(const char *selector, uint32_t flags, struct mdgpu_be **out,
		   struct mdgpu_host_device_info *info, struct mdgpu_host_caps *caps,
		   struct mdgpu_feature_set *features)
{
	struct feature_chain enable;
	struct feature_exts x;
	const char *exts[8];
	uint32_t ext_count = 0, ts_bits = 0;
	float priority = 1.0f;
	struct mdgpu_be *be;
	VkResult r;
	int ret;

	be = calloc(1, sizeof(*be));
	if (!be)
		return mdgpu_error(-ENOMEM, "device_open: out of memory");
	ret = create_instance(&be->instance);
	if (ret)
		goto err;
	ret = select_device(be->instance, selector, &be->pdev, info);
	if (ret)
		goto err;

	be->queue_family = compute_family(be->pdev, &ts_bits);
	vkGetPhysicalDeviceMemoryProperties(be->pdev, &be->mem_props);
	/*
	 * robustBufferAccess keeps every kernel access inside the VkBuffer its binding is a range
	 * of (the whole imported memory): a guest kernel indexing past its buffer cannot reach
	 * host memory. robustBufferAccess2 narrows that to the binding's own range. Enabled
	 * whenever the device has them (lavapipe has both), with the features kernels may use
	 * (describe_caps(): the same for mdgpu_host_enumerate_caps()).
	 */
	describe_caps(be->pdev, caps, features, &enable, &x);
	be->max_storage_range = caps->max_storage_buffer_range;
	be->max_uniform_range = caps->max_uniform_buffer_range;

	be->host_import = info->flags & MDGPU_HOST_DEVICE_HOST_IMPORT;
	be->import_align = info->min_import_alignment;
	if (be->host_import)
		exts[ext_count++] = VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME;
	if (info->robustness == MDGPU_HOST_ROBUSTNESS_BUFFER_ACCESS_2)
		exts[ext_count++] = VK_EXT_ROBUSTNESS_2_EXTENSION_NAME;
	else
		enable.robust2.robustBufferAccess2 = VK_FALSE; /* in the chain only if enabled */
	if (!x.core12) {
		if (x.f16i8)
			exts[ext_count++] = VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME;
		if (x.s8)
			exts[ext_count++] = VK_KHR_8BIT_STORAGE_EXTENSION_NAME;
		if (x.sgx)
			exts[ext_count++] = VK_KHR_SHADER_SUBGROUP_EXTENDED_TYPES_EXTENSION_NAME;
	}
	{
		VkDeviceQueueCreateInfo qci = {
			.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
			.queueFamilyIndex = be->queue_family,
			.queueCount = 1,
			.pQueuePriorities = &priority,
		};
		VkDeviceCreateInfo dci = {
			.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
			.pNext = &enable.f2, /* features in the chain, not pEnabledFeatures */
			.queueCreateInfoCount = 1,
			.pQueueCreateInfos = &qci,
			.enabledExtensionCount = ext_count,
			.ppEnabledExtensionNames = exts,
		};

		r = vkCreateDevice(be->pdev, &dci, NULL, &be->dev);
		if (r != VK_SUCCESS) {
			ret = vk_fail(r, "device_open: vkCreateDevice");
			goto err;
		}
	}
	vkGetDeviceQueue(be->dev, be->queue_family, 0, &be->queue);
	if (be->host_import) {
		be->get_host_pointer_props =
			(PFN_vkGetMemoryHostPointerPropertiesEXT)vkGetDeviceProcAddr(
				be->dev, "vkGetMemoryHostPointerPropertiesEXT");
		if (!be->get_host_pointer_props) {
			be->host_import = false;
			info->flags &= ~MDGPU_HOST_DEVICE_HOST_IMPORT;
		}
	}
	be->timestamps = info->flags & MDGPU_HOST_DEVICE_TIMESTAMPS;
	be->ts_period = info->timestamp_period_ns;
	be->ts_mask = ts_bits >= 64 ? UINT64_MAX : (1ull << ts_bits) - 1;
	/* The device can write ns itself only if a tick is exactly 1 ns. */
	be->cpu_timestamps = be->timestamps && (info->timestamp_period_ns != 1.0f ||
						(flags & MDGPU_HOST_OPEN_CPU_TIMESTAMPS));
	if (be->cpu_timestamps)
		info->flags |= MDGPU_HOST_DEVICE_CPU_TIMESTAMPS;
	{
		VkCommandPoolCreateInfo ci = {
			.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
			.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
			.queueFamilyIndex = be->queue_family,
		};
		VkPipelineCacheCreateInfo pci = {
			.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
		};

		r = vkCreateCommandPool(be->dev, &ci, NULL, &be->cmd_pool);
		if (r == VK_SUCCESS)
			r = vkCreatePipelineCache(be->dev, &pci, NULL, &be->pipeline_cache);
		if (r != VK_SUCCESS) {
			ret = vk_fail(r, "device_open: command pool or pipeline cache");
			goto err;
		}
	}
	*out = be;
	return 0;

err:
	vk_close(be);
	return ret;
}

/* ---- memory ---- */

static uint32_t pick_memory_type(const struct mdgpu_be *be, uint32_t bits,
				 VkMemoryPropertyFlags need, VkMemoryPropertyFlags prefer)
{
	uint32_t fallback = UINT32_MAX;

	for (uint32_t i = 0; i < be->mem_props.memoryTypeCount; i++) {
		VkMemoryPropertyFlags f = be->mem_props.memoryTypes[i].propertyFlags;

		if (!(bits & (1u << i)) || (f & need) != need)
			continue;
		if ((f & prefer) == prefer)
			return i;
		if (fallback == UINT32_MAX)
			fallback = i;
	}
	return fallback;
}

static const VkBufferUsageFlags BUFFER_USAGE =
	VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_BUFFER_BIT |
	VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;

static void memory_free(struct mdgpu_be *be, struct mdgpu_be_memory *m)
{
	if (m->stage_map)
		vkUnmapMemory(be->dev, m->stage_mem);
	if (m->stage_buf)
		vkDestroyBuffer(be->dev, m->stage_buf, NULL);
	if (m->stage_mem)
		vkFreeMemory(be->dev, m->stage_mem, NULL);
	if (m->buf)
		vkDestroyBuffer(be->dev, m->buf, NULL);
	if (m->mem)
		vkFreeMemory(be->dev, m->mem, NULL);
	free(m);
}

/*
 * Zero copy: wrap the host pages in a VkDeviceMemory (VK_EXT_external_memory_host) and a
 * buffer over all of it. Returns NULL, or why not (for the log line of the staged fallback).
 */
static const char *import_host(struct mdgpu_be *be, struct mdgpu_be_memory *m)
{
	VkMemoryHostPointerPropertiesEXT hp = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT,
	};
	VkExternalMemoryBufferCreateInfo ext = {
		.sType = VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO,
		.handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT,
	};
	VkBufferCreateInfo bci = {
		.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
		.pNext = &ext,
		.size = m->size,
		.usage = BUFFER_USAGE,
		.sharingMode = VK_SHARING_MODE_EXCLUSIVE,
	};
	VkImportMemoryHostPointerInfoEXT import = {
		.sType = VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT,
		.handleType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT,
		.pHostPointer = m->host,
	};
	VkMemoryAllocateInfo ai = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
		.pNext = &import,
		.allocationSize = m->size,
	};
	VkMemoryRequirements req;
	uint32_t type;

	if (!be->host_import)
		return "the device lacks VK_EXT_external_memory_host";
	if ((uintptr_t)m->host % be->import_align || m->size % be->import_align)
		return "pointer or size not aligned to minImportedHostPointerAlignment";
	if (be->get_host_pointer_props(be->dev,
				       VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT,
				       m->host, &hp) != VK_SUCCESS)
		return "vkGetMemoryHostPointerPropertiesEXT refused the pointer";
	if (vkCreateBuffer(be->dev, &bci, NULL, &m->buf) != VK_SUCCESS)
		return "vkCreateBuffer for external memory failed";
	vkGetBufferMemoryRequirements(be->dev, m->buf, &req);
	type = pick_memory_type(be, req.memoryTypeBits & hp.memoryTypeBits,
				VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, 0);
	if (type == UINT32_MAX || req.size > m->size) {
		vkDestroyBuffer(be->dev, m->buf, NULL);
		m->buf = VK_NULL_HANDLE;
		return "no host-coherent memory type fits the buffer";
	}
	ai.memoryTypeIndex = type;
	if (vkAllocateMemory(be->dev, &ai, NULL, &m->mem) != VK_SUCCESS) {
		vkDestroyBuffer(be->dev, m->buf, NULL);
		m->buf = VK_NULL_HANDLE;
		return "vkAllocateMemory with VkImportMemoryHostPointerInfoEXT failed";
	}
	if (vkBindBufferMemory(be->dev, m->buf, m->mem, 0) != VK_SUCCESS) {
		vkDestroyBuffer(be->dev, m->buf, NULL);
		vkFreeMemory(be->dev, m->mem, NULL);
		m->buf = VK_NULL_HANDLE;
		m->mem = VK_NULL_HANDLE;
		return "vkBindBufferMemory failed";
	}
	return NULL;
}

static int make_buffer(struct mdgpu_be *be, uint64_t size, VkMemoryPropertyFlags need,
		       VkMemoryPropertyFlags prefer, VkBuffer *buf, VkDeviceMemory *mem)
{
	VkBufferCreateInfo bci = {
		.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
		.size = size,
		.usage = BUFFER_USAGE,
		.sharingMode = VK_SHARING_MODE_EXCLUSIVE,
	};
	VkMemoryAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO };
	VkMemoryRequirements req;
	VkResult r;

	r = vkCreateBuffer(be->dev, &bci, NULL, buf);
	if (r != VK_SUCCESS)
		return vk_fail(r, "memory_import: vkCreateBuffer");
	vkGetBufferMemoryRequirements(be->dev, *buf, &req);
	ai.allocationSize = req.size;
	ai.memoryTypeIndex = pick_memory_type(be, req.memoryTypeBits, need, prefer);
	if (ai.memoryTypeIndex == UINT32_MAX)
		return mdgpu_error(-ENOMEM, "memory_import: no suitable memory type");
	r = vkAllocateMemory(be->dev, &ai, NULL, mem);
	if (r != VK_SUCCESS)
		return vk_fail(r, "memory_import: vkAllocateMemory");
	r = vkBindBufferMemory(be->dev, *buf, *mem, 0);
	if (r != VK_SUCCESS)
		return vk_fail(r, "memory_import: vkBindBufferMemory");
	return 0;
}

static int vk_memory_import(struct mdgpu_be *be, void *ptr, uint64_t size, uint32_t flags,
			    struct mdgpu_be_memory **out, uint32_t *out_flags)
{
	const char *why = "the caller asked for staging";
	struct mdgpu_be_memory *m;
	VkResult r;
	int ret;

	m = calloc(1, sizeof(*m));
	if (!m)
		return mdgpu_error(-ENOMEM, "memory_import: out of memory");
	m->host = ptr;
	m->size = size;
	if (!(flags & MDGPU_HOST_MEMORY_STAGED)) {
		why = import_host(be, m);
		if (!why) {
			*out = m;
			*out_flags = MDGPU_HOST_MEMORY_ZERO_COPY;
			return 0;
		}
	}
	/*
	 * Staged: a device buffer the kernels use, and a host-visible staging buffer of the same
	 * size. Each submission copies its ranges host -> staging (memcpy) -> device (transfer)
	 * before its commands, and back after them.
	 */
	mdgpu_log(MDGPU_LOG_INFO,
		  "memory %p+0x%" PRIx64 ": not zero copy (%s): using a device"
		  " buffer with staging copies before and after each submission",
		  ptr, size, why);
	m->staged = true;
	ret = make_buffer(be, size, 0, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, &m->buf, &m->mem);
	if (!ret)
		ret = make_buffer(be, size,
				  VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
					  VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
				  VK_MEMORY_PROPERTY_HOST_CACHED_BIT, &m->stage_buf, &m->stage_mem);
	if (!ret) {
		r = vkMapMemory(be->dev, m->stage_mem, 0, VK_WHOLE_SIZE, 0, (void **)&m->stage_map);
		if (r != VK_SUCCESS)
			ret = vk_fail(r, "memory_import: vkMapMemory");
	}
	if (ret) {
		memory_free(be, m);
		return ret;
	}
	*out = m;
	*out_flags = MDGPU_HOST_MEMORY_STAGED;
	return 0;
}

static void vk_memory_release(struct mdgpu_be *be, struct mdgpu_be_memory *m)
{
	memory_free(be, m);
}

/* ---- kernels ---- */

static void vk_kernel_release(struct mdgpu_be *be, struct mdgpu_be_kernel *k)
{
	if (k->pipeline)
		vkDestroyPipeline(be->dev, k->pipeline, NULL);
	if (k->layout)
		vkDestroyPipelineLayout(be->dev, k->layout, NULL);
	for (uint32_t i = 0; i < k->set_count; i++)
		if (k->sets[i].layout)
			vkDestroyDescriptorSetLayout(be->dev, k->sets[i].layout, NULL);
	if (k->empty_layout)
		vkDestroyDescriptorSetLayout(be->dev, k->empty_layout, NULL);
	if (k->module)
		vkDestroyShaderModule(be->dev, k->module, NULL);
	free(k->bindings);
	free(k->slot_base);
	free(k->sets);
	free(k);
}

static VkDescriptorType descriptor_type(uint32_t type)
{
	return type == MDGPU_HOST_DESCRIPTOR_UNIFORM_BUFFER ? VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER :
							      VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
}

/* One descriptor set layout per used set (bindings sorted by set), and an empty one. */
static VkResult kernel_set_layouts(struct mdgpu_be *be, struct mdgpu_be_kernel *k,
				   VkDescriptorSetLayoutBinding *binds)
{
	VkDescriptorSetLayoutCreateInfo ci = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
	};
	VkResult r;

	r = vkCreateDescriptorSetLayout(be->dev, &ci, NULL, &k->empty_layout);
	for (uint32_t i = 0; i < k->binding_count && r == VK_SUCCESS; i++) {
		const struct mdgpu_host_kernel_binding *b = &k->bindings[i];

		k->slot_base[i] = k->slots;
		k->slots += b->count;
		binds[i] = (VkDescriptorSetLayoutBinding){
			.binding = b->binding,
			.descriptorType = descriptor_type(b->type),
			.descriptorCount = b->count,
			.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
		};
		if (!k->set_count || k->sets[k->set_count - 1].set != b->set)
			k->sets[k->set_count++] =
				(struct kernel_set){ b->set, i, 0, VK_NULL_HANDLE };
		k->sets[k->set_count - 1].binding_count++;
	}
	for (uint32_t i = 0; i < k->set_count && r == VK_SUCCESS; i++) {
		ci.bindingCount = k->sets[i].binding_count;
		ci.pBindings = &binds[k->sets[i].first_binding];
		r = vkCreateDescriptorSetLayout(be->dev, &ci, NULL, &k->sets[i].layout);
	}
	return r;
}

static int vk_kernel_create(struct mdgpu_be *be, const uint32_t *words, uint32_t word_count,
			    const struct mdgpu_kernel_layout *l, struct mdgpu_be_kernel **out)
{
	VkDescriptorSetLayout set_layouts[MDGPU_HOST_MAX_SETS];
	VkSpecializationMapEntry map[MDGPU_HOST_MAX_SPEC_ENTRIES];
	VkDescriptorSetLayoutBinding *binds;
	VkShaderModuleCreateInfo smci = {
		.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
		.codeSize = (size_t)word_count * 4,
		.pCode = words,
	};
	/* The kernel's own push constants, and past them the NumWorkgroups it reads, if rewritten. */
	uint32_t push_end =
		l->nwg_offset != MDGPU_NWG_NONE ? l->nwg_offset + MDGPU_NWG_SIZE : l->push_size;
	VkPushConstantRange push = {
		.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
		.offset = 0,
		.size = push_end > l->push_size ? push_end : l->push_size,
	};
	VkPipelineLayoutCreateInfo plci = {
		.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
		.setLayoutCount = l->set_count,
		.pSetLayouts = set_layouts,
		.pushConstantRangeCount = push.size ? 1 : 0,
		.pPushConstantRanges = &push,
	};
	VkSpecializationInfo spec = { 0 };
	VkComputePipelineCreateInfo cpci = {
		.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
		.flags = (l->flags & MDGPU_HOST_KERNEL_DISPATCH_BASE) ?
				 VK_PIPELINE_CREATE_DISPATCH_BASE_BIT :
				 0,
		.stage = {
			.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
			.stage = VK_SHADER_STAGE_COMPUTE_BIT,
			.pName = l->entry,
		},
	};
	uint32_t n = l->binding_count ? l->binding_count : 1;
	struct mdgpu_be_kernel *k;
	VkResult r = VK_ERROR_OUT_OF_HOST_MEMORY;

	k = calloc(1, sizeof(*k));
	if (!k)
		return mdgpu_error(-ENOMEM, "kernel_create: out of memory");
	k->push_size = l->push_size;
	k->nwg_offset = l->nwg_offset;
	k->binding_count = l->binding_count;
	k->bindings = malloc(n * sizeof(*k->bindings));
	k->slot_base = malloc(n * sizeof(*k->slot_base));
	k->sets = calloc(n, sizeof(*k->sets));
	binds = malloc(n * sizeof(*binds));
	if (!k->bindings || !k->slot_base || !k->sets || !binds)
		goto err;
	memcpy(k->bindings, l->bindings, l->binding_count * sizeof(*k->bindings));
	r = vkCreateShaderModule(be->dev, &smci, NULL, &k->module);
	if (r == VK_SUCCESS)
		r = kernel_set_layouts(be, k, binds);
	if (r != VK_SUCCESS)
		goto err;
	/* Sets between the used ones get the empty layout (the core bounds set_count). */
	for (uint32_t i = 0; i < l->set_count; i++)
		set_layouts[i] = k->empty_layout;
	for (uint32_t i = 0; i < k->set_count; i++)
		set_layouts[k->sets[i].set] = k->sets[i].layout;
	r = vkCreatePipelineLayout(be->dev, &plci, NULL, &k->layout);
	if (r != VK_SUCCESS)
		goto err;
	if (l->spec && l->spec->count) {
		for (uint32_t i = 0; i < l->spec->count; i++)
			map[i] = (VkSpecializationMapEntry){ l->spec->entries[i].constant_id,
							     l->spec->entries[i].offset,
							     l->spec->entries[i].size };
		spec = (VkSpecializationInfo){ l->spec->count, map, l->spec->size, l->spec->data };
		cpci.stage.pSpecializationInfo = &spec;
	}
	cpci.stage.module = k->module;
	cpci.layout = k->layout;
	r = vkCreateComputePipelines(be->dev, be->pipeline_cache, 1, &cpci, NULL, &k->pipeline);
	if (r != VK_SUCCESS)
		goto err;
	free(binds);
	*out = k;
	return 0;

err:
	free(binds);
	vk_kernel_release(be, k);
	return vk_fail(r, "kernel_create: building the pipeline");
}

/* ---- submission ---- */

static int grow(void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
	void *p;
	uint32_t n;

	if (need <= *cap)
		return 0;
	n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	p = realloc(*arr, n * elem);
	if (!p)
		return mdgpu_error(-ENOMEM, "submit: out of memory");
	*arr = p;
	*cap = n;
	return 0;
}

/* Descriptor pools larger than this are not kept for the next batch (memory of idle records). */
#define POOL_KEEP_SETS 1024u
#define POOL_KEEP_DESCRIPTORS 4096u

static void vk_submission_release(struct mdgpu_be *be, struct mdgpu_be_submission *s)
{
	/* Recycled: the command buffer, fence and pools are reset on the next use. */
	if (s->desc_pool && (s->sets_cap > POOL_KEEP_SETS ||
			     s->storage_cap + s->uniform_cap > POOL_KEEP_DESCRIPTORS)) {
		vkDestroyDescriptorPool(be->dev, s->desc_pool, NULL);
		s->desc_pool = VK_NULL_HANDLE;
		s->sets_cap = s->storage_cap = s->uniform_cap = 0;
	}
	s->next = be->free_subs;
	be->free_subs = s;
}

/* A recycled or new submission with room for @queries queries and the job's descriptors. */
static int sub_get(struct mdgpu_be *be, const struct mdgpu_job *job, uint32_t queries,
		   struct mdgpu_be_submission **out)
{
	struct mdgpu_be_submission *s = be->free_subs;
	VkResult r;

	if (s) {
		be->free_subs = s->next;
		s->next = NULL;
		vkResetCommandBuffer(s->cmd, 0);
		vkResetFences(be->dev, 1, &s->fence);
	} else {
		VkCommandBufferAllocateInfo cbai = {
			.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
			.commandPool = be->cmd_pool,
			.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
			.commandBufferCount = 1,
		};
		VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };

		s = calloc(1, sizeof(*s));
		if (!s)
			return mdgpu_error(-ENOMEM, "submit: out of memory");
		r = vkAllocateCommandBuffers(be->dev, &cbai, &s->cmd);
		if (r == VK_SUCCESS)
			r = vkCreateFence(be->dev, &fci, NULL, &s->fence);
		if (r != VK_SUCCESS) {
			if (s->cmd)
				vkFreeCommandBuffers(be->dev, be->cmd_pool, 1, &s->cmd);
			free(s);
			return vk_fail(r, "submit: command buffer or fence");
		}
	}
	*out = s; /* from here on, errors recycle s through vk_submission_release() */
	s->range_count = 0;
	s->cpu_ts_count = 0;

	if (queries > s->query_cap) {
		VkQueryPoolCreateInfo qci = {
			.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
			.queryType = VK_QUERY_TYPE_TIMESTAMP,
			.queryCount = queries < 16 ? 16 : queries,
		};

		if (s->query_pool)
			vkDestroyQueryPool(be->dev, s->query_pool, NULL);
		s->query_pool = VK_NULL_HANDLE;
		s->query_cap = 0;
		r = vkCreateQueryPool(be->dev, &qci, NULL, &s->query_pool);
		if (r != VK_SUCCESS)
			return vk_fail(r, "submit: vkCreateQueryPool");
		s->query_cap = qci.queryCount;
	}
	if (job->set_total > s->sets_cap || job->storage_total > s->storage_cap ||
	    job->uniform_total > s->uniform_cap) {
		uint32_t sets = job->set_total < 16 ? 16 : job->set_total;
		uint32_t storage = job->storage_total < 64 ? 64 : job->storage_total;
		uint32_t uniform = job->uniform_total < 16 ? 16 : job->uniform_total;
		VkDescriptorPoolSize sizes[2] = {
			{ VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, storage },
			{ VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER, uniform },
		};
		VkDescriptorPoolCreateInfo dpci = {
			.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
			.maxSets = sets,
			.poolSizeCount = 2,
			.pPoolSizes = sizes,
		};

		if (s->desc_pool)
			vkDestroyDescriptorPool(be->dev, s->desc_pool, NULL);
		s->desc_pool = VK_NULL_HANDLE;
		s->sets_cap = s->storage_cap = s->uniform_cap = 0;
		r = vkCreateDescriptorPool(be->dev, &dpci, NULL, &s->desc_pool);
		if (r != VK_SUCCESS)
			return vk_fail(r, "submit: vkCreateDescriptorPool");
		s->sets_cap = sets;
		s->storage_cap = storage;
		s->uniform_cap = uniform;
	} else if (s->desc_pool) {
		vkResetDescriptorPool(be->dev, s->desc_pool, 0);
	}
	if (job->slot_max > s->scratch_cap) {
		VkDescriptorBufferInfo *infos = realloc(s->infos, job->slot_max * sizeof(*infos));
		VkWriteDescriptorSet *writes;

		if (infos)
			s->infos = infos;
		writes = realloc(s->writes, job->slot_max * sizeof(*writes));
		if (writes)
			s->writes = writes;
		if (!infos || !writes)
			return mdgpu_error(-ENOMEM, "submit: out of memory");
		s->scratch_cap = job->slot_max;
	}
	if (job->zero_buffer && !s->zero_buf) {
		int ret = make_buffer(be, MDGPU_HOST_ZERO_BUFFER_SIZE, 0,
				      VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, &s->zero_buf,
				      &s->zero_mem);

		if (ret) {
			if (s->zero_buf)
				vkDestroyBuffer(be->dev, s->zero_buf, NULL);
			if (s->zero_mem)
				vkFreeMemory(be->dev, s->zero_mem, NULL);
			s->zero_buf = VK_NULL_HANDLE;
			s->zero_mem = VK_NULL_HANDLE;
			return ret;
		}
	}
	return 0;
}

static int add_range(struct mdgpu_be_submission *s, struct mdgpu_be_memory *m, uint64_t offset,
		     uint64_t size, bool written)
{
	int ret;

	if (!m->staged)
		return 0;
	ret = grow((void **)&s->ranges, &s->range_cap, s->range_count + 1, sizeof(*s->ranges));
	if (ret)
		return ret;
	s->ranges[s->range_count++] = (struct stage_range){ m, offset, size, written };
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct stage_range *x = a, *y = b;

	if (x->mem != y->mem)
		return (uintptr_t)x->mem < (uintptr_t)y->mem ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/*
 * Sort the staged ranges and merge overlapping or touching ones (per memory), so each byte is
 * copied once and no two copies of one batch overlap.
 */
static void merge_ranges(struct mdgpu_be_submission *s)
{
	uint32_t n = 0;

	if (!s->range_count)
		return;
	qsort(s->ranges, s->range_count, sizeof(*s->ranges), range_cmp);
	for (uint32_t i = 1; i < s->range_count; i++) {
		struct stage_range *last = &s->ranges[n], *r = &s->ranges[i];

		if (r->mem == last->mem && r->offset <= last->offset + last->size) {
			uint64_t end = r->offset + r->size;

			if (end > last->offset + last->size)
				last->size = end - last->offset;
			last->written |= r->written;
		} else {
			s->ranges[++n] = *r;
		}
	}
	s->range_count = n + 1;
}

static void full_barrier(VkCommandBuffer cmd, VkPipelineStageFlags src, VkAccessFlags src_access,
			 VkPipelineStageFlags dst, VkAccessFlags dst_access)
{
	VkMemoryBarrier mb = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
		.srcAccessMask = src_access,
		.dstAccessMask = dst_access,
	};

	vkCmdPipelineBarrier(cmd, src, dst, 0, 1, &mb, 0, NULL, 0, NULL);
}

#define WORK_STAGES (VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT)
#define WORK_WRITES (VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT)
#define WORK_ACCESS                                                                             \
	(VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT | \
	 VK_ACCESS_TRANSFER_WRITE_BIT)

/*
 * A dispatch: its descriptor sets allocated from the batch's pool and written (descriptors
 * it leaves out: the zero buffer), bound, its push constants, the grid.
 */
static int record_dispatch(struct mdgpu_be *be, struct mdgpu_be_submission *s,
			   const struct mdgpu_job_cmd *jc, VkPipeline *bound)
{
	const struct mdgpu_be_kernel *k = jc->kernel;
	VkDescriptorSetLayout layouts[MDGPU_HOST_MAX_SETS];
	VkDescriptorSet sets[MDGPU_HOST_MAX_SETS];
	VkResult r;

	if (*bound != k->pipeline) {
		vkCmdBindPipeline(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k->pipeline);
		*bound = k->pipeline;
	}
	if (k->set_count) {
		VkDescriptorSetAllocateInfo dsai = {
			.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
			.descriptorPool = s->desc_pool,
			.descriptorSetCount = k->set_count,
			.pSetLayouts = layouts,
		};
		uint32_t nw = 0;

		for (uint32_t i = 0; i < k->set_count; i++)
			layouts[i] = k->sets[i].layout;
		r = vkAllocateDescriptorSets(be->dev, &dsai, sets);
		if (r != VK_SUCCESS)
			return vk_fail(r, "submit: vkAllocateDescriptorSets");
		if (jc->desc_count < k->slots) {
			/* Left out: the zero buffer, up to the type's maximum range. */
			for (uint32_t b = 0; b < k->binding_count; b++) {
				bool uniform =
					k->bindings[b].type == MDGPU_HOST_DESCRIPTOR_UNIFORM_BUFFER;
				uint32_t max =
					uniform ? be->max_uniform_range : be->max_storage_range;
				VkDescriptorBufferInfo zero = {
					.buffer = s->zero_buf,
					.offset = 0,
					.range = max < MDGPU_HOST_ZERO_BUFFER_SIZE ?
							 max :
							 MDGPU_HOST_ZERO_BUFFER_SIZE,
				};

				for (uint32_t e = 0; e < k->bindings[b].count; e++)
					s->infos[k->slot_base[b] + e] = zero;
			}
		}
		for (uint32_t d = 0; d < jc->desc_count; d++)
			s->infos[jc->descs[d].slot] = (VkDescriptorBufferInfo){
				.buffer = jc->descs[d].mem->buf,
				.offset = jc->descs[d].offset,
				.range = jc->descs[d].range,
			};
		for (uint32_t i = 0; i < k->set_count; i++) {
			const struct kernel_set *ks = &k->sets[i];

			for (uint32_t b = ks->first_binding;
			     b < ks->first_binding + ks->binding_count; b++)
				s->writes[nw++] = (VkWriteDescriptorSet){
					.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
					.dstSet = sets[i],
					.dstBinding = k->bindings[b].binding,
					.descriptorCount = k->bindings[b].count,
					.descriptorType = descriptor_type(k->bindings[b].type),
					.pBufferInfo = &s->infos[k->slot_base[b]],
				};
		}
		vkUpdateDescriptorSets(be->dev, nw, s->writes, 0, NULL);
		for (uint32_t i = 0; i < k->set_count; i++)
			vkCmdBindDescriptorSets(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k->layout,
						k->sets[i].set, 1, &sets[i], 0, NULL);
	}
	if (k->push_size)
		vkCmdPushConstants(s->cmd, k->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, k->push_size,
				   jc->data);
	if (k->nwg_offset != MDGPU_NWG_NONE)
		vkCmdPushConstants(s->cmd, k->layout, VK_SHADER_STAGE_COMPUTE_BIT, k->nwg_offset,
				   MDGPU_NWG_SIZE, jc->num_workgroups);
	if (jc->base[0] || jc->base[1] || jc->base[2])
		vkCmdDispatchBase(s->cmd, jc->base[0], jc->base[1], jc->base[2], jc->groups[0],
				  jc->groups[1], jc->groups[2]);
	else
		vkCmdDispatch(s->cmd, jc->groups[0], jc->groups[1], jc->groups[2]);
	return 0;
}

static int record(struct mdgpu_be *be, const struct mdgpu_job *job, struct mdgpu_be_submission *s)
{
	VkCommandBufferBeginInfo begin = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
		.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
	};
	VkPipeline bound = VK_NULL_HANDLE;
	uint32_t query = 2; /* 0: batch begin, 1: batch end, 2..: TIMESTAMP commands */
	VkResult r;
	int ret;

	/* Staged ranges first: which parts of which memories this batch touches. */
	for (uint32_t i = 0; i < job->cmd_count; i++) {
		const struct mdgpu_job_cmd *jc = &job->cmds[i];

		ret = 0;
		switch (jc->op) {
		case MDGPU_HOST_OP_COPY:
			ret = add_range(s, jc->mem[0], jc->offset[0], jc->size, false);
			if (!ret)
				ret = add_range(s, jc->mem[1], jc->offset[1], jc->size, true);
			break;
		case MDGPU_HOST_OP_FILL:
		case MDGPU_HOST_OP_UPDATE:
			ret = add_range(s, jc->mem[0], jc->offset[0], jc->size, true);
			break;
		case MDGPU_HOST_OP_TIMESTAMP:
			ret = add_range(s, jc->mem[0], jc->offset[0], 8, true);
			break;
		case MDGPU_HOST_OP_DISPATCH2:
			/* Kernels may write any storage buffer; uniform buffers are read only. */
			for (uint32_t d = 0; d < jc->desc_count && !ret; d++)
				ret = add_range(s, jc->descs[d].mem, jc->descs[d].offset,
						jc->descs[d].range,
						jc->descs[d].type ==
							MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER);
			break;
		}
		if (ret)
			return ret;
	}
	merge_ranges(s);

	r = vkBeginCommandBuffer(s->cmd, &begin);
	if (r != VK_SUCCESS)
		return vk_fail(r, "submit: vkBeginCommandBuffer");
	if (be->timestamps) {
		vkCmdResetQueryPool(s->cmd, s->query_pool, 0, 2 + job->timestamp_count);
		vkCmdWriteTimestamp(s->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, s->query_pool, 0);
	}
	/* The zero buffer: zeroed again (an earlier batch's kernel may have written it). */
	if (job->zero_buffer)
		vkCmdFillBuffer(s->cmd, s->zero_buf, 0, VK_WHOLE_SIZE, 0);
	if (s->range_count) {
		/* host -> staging (memcpy now, the core made sure nothing else uses it) -> device */
		for (uint32_t i = 0; i < s->range_count; i++) {
			const struct stage_range *rg = &s->ranges[i];
			VkBufferCopy region = { rg->offset, rg->offset, rg->size };

			memcpy(rg->mem->stage_map + rg->offset, rg->mem->host + rg->offset,
			       rg->size);
			vkCmdCopyBuffer(s->cmd, rg->mem->stage_buf, rg->mem->buf, 1, &region);
		}
	}
	if (s->range_count || job->zero_buffer)
		full_barrier(s->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
			     WORK_STAGES, WORK_ACCESS);

	for (uint32_t i = 0; i < job->cmd_count; i++) {
		const struct mdgpu_job_cmd *jc = &job->cmds[i];

		switch (jc->op) {
		case MDGPU_HOST_OP_COPY: {
			VkBufferCopy region = { jc->offset[0], jc->offset[1], jc->size };

			vkCmdCopyBuffer(s->cmd, jc->mem[0]->buf, jc->mem[1]->buf, 1, &region);
			break;
		}
		case MDGPU_HOST_OP_FILL:
			vkCmdFillBuffer(s->cmd, jc->mem[0]->buf, jc->offset[0], jc->size,
					jc->value);
			break;
		case MDGPU_HOST_OP_UPDATE:
			/* The data is copied into the command buffer here. */
			vkCmdUpdateBuffer(s->cmd, jc->mem[0]->buf, jc->offset[0], jc->size,
					  jc->data);
			break;
		case MDGPU_HOST_OP_DISPATCH2:
			ret = record_dispatch(be, s, jc, &bound);
			if (ret)
				return ret;
			break;
		case MDGPU_HOST_OP_BARRIER:
			full_barrier(s->cmd, WORK_STAGES, WORK_WRITES, WORK_STAGES, WORK_ACCESS);
			break;
		case MDGPU_HOST_OP_TIMESTAMP:
			/* Bottom of pipe: written when every earlier command has completed. */
			vkCmdWriteTimestamp(s->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT,
					    s->query_pool, query);
			if (be->cpu_timestamps) {
				ret = grow((void **)&s->cpu_ts, &s->cpu_ts_cap, s->cpu_ts_count + 1,
					   sizeof(*s->cpu_ts));
				if (ret)
					return ret;
				s->cpu_ts[s->cpu_ts_count++] = (struct cpu_timestamp){
					jc->mem[0],
					jc->offset[0],
					query,
				};
			} else {
				/* Tick == 1 ns: the device copies the value into place itself. */
				vkCmdCopyQueryPoolResults(s->cmd, s->query_pool, query, 1,
							  jc->mem[0]->buf, jc->offset[0], 8,
							  VK_QUERY_RESULT_64_BIT |
								  VK_QUERY_RESULT_WAIT_BIT);
			}
			query++;
			break;
		}
	}

	if (s->range_count) {
		/* device -> staging here; staging -> host (memcpy) at completion */
		full_barrier(s->cmd, WORK_STAGES, WORK_WRITES, VK_PIPELINE_STAGE_TRANSFER_BIT,
			     VK_ACCESS_TRANSFER_READ_BIT);
		for (uint32_t i = 0; i < s->range_count; i++) {
			const struct stage_range *rg = &s->ranges[i];
			VkBufferCopy region = { rg->offset, rg->offset, rg->size };

			if (rg->written)
				vkCmdCopyBuffer(s->cmd, rg->mem->buf, rg->mem->stage_buf, 1,
						&region);
		}
	}
	/* Everything the batch wrote is visible to the host once the fence signals. */
	full_barrier(s->cmd, WORK_STAGES, WORK_WRITES, VK_PIPELINE_STAGE_HOST_BIT,
		     VK_ACCESS_HOST_READ_BIT);
	if (be->timestamps)
		vkCmdWriteTimestamp(s->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s->query_pool, 1);
	r = vkEndCommandBuffer(s->cmd);
	if (r != VK_SUCCESS)
		return vk_fail(r, "submit: vkEndCommandBuffer");
	return 0;
}

static int vk_submit(struct mdgpu_be *be, const struct mdgpu_job *job,
		     struct mdgpu_be_submission **out)
{
	struct mdgpu_be_submission *s = NULL;
	VkSubmitInfo si = {
		.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
		.commandBufferCount = 1,
	};
	VkResult r;
	int ret;

	ret = sub_get(be, job, be->timestamps ? 2 + job->timestamp_count : 0, &s);
	if (!ret)
		ret = record(be, job, s);
	if (!ret) {
		si.pCommandBuffers = &s->cmd;
		r = vkQueueSubmit(be->queue, 1, &si, s->fence);
		if (r != VK_SUCCESS)
			ret = vk_fail(r, "submit: vkQueueSubmit");
	}
	if (ret) {
		if (s)
			vk_submission_release(be, s);
		return ret;
	}
	*out = s;
	return 0;
}

static int vk_wait(struct mdgpu_be *be, struct mdgpu_be_submission *s, uint64_t timeout_ns)
{
	VkResult r = vkWaitForFences(be->dev, 1, &s->fence, VK_TRUE, timeout_ns);

	if (r == VK_SUCCESS)
		return 0;
	if (r == VK_TIMEOUT)
		return -ETIMEDOUT;
	return -EIO;
}

static uint64_t ticks_to_ns(const struct mdgpu_be *be, uint64_t ticks)
{
	return (uint64_t)((double)(ticks & be->ts_mask) * be->ts_period);
}

static void vk_complete(struct mdgpu_be *be, struct mdgpu_be_submission *s, int wait_result,
			struct mdgpu_host_status *status)
{
	uint64_t ticks[2];

	status->result = wait_result;
	if (wait_result) {
		mdgpu_log(MDGPU_LOG_ERROR, "submission failed on the device (%d)", wait_result);
		return;
	}
	for (uint32_t i = 0; i < s->range_count; i++) {
		const struct stage_range *rg = &s->ranges[i];

		if (rg->written)
			memcpy(rg->mem->host + rg->offset, rg->mem->stage_map + rg->offset,
			       rg->size);
	}
	if (!be->timestamps)
		return;
	if (vkGetQueryPoolResults(be->dev, s->query_pool, 0, 2, sizeof(ticks), ticks,
				  sizeof(ticks[0]), VK_QUERY_RESULT_64_BIT) == VK_SUCCESS) {
		status->device_begin_ns = ticks_to_ns(be, ticks[0]);
		status->device_end_ns = ticks_to_ns(be, ticks[1]);
		status->device_ns = status->device_end_ns >= status->device_begin_ns ?
					    status->device_end_ns - status->device_begin_ns :
					    0;
		status->flags |= MDGPU_HOST_STATUS_DEVICE_TIME;
	}
	for (uint32_t i = 0; i < s->cpu_ts_count; i++) {
		const struct cpu_timestamp *t = &s->cpu_ts[i];
		uint64_t tick, ns;

		if (vkGetQueryPoolResults(be->dev, s->query_pool, t->query, 1, sizeof(tick), &tick,
					  sizeof(tick), VK_QUERY_RESULT_64_BIT) != VK_SUCCESS)
			continue;
		ns = ticks_to_ns(be, tick);
		memcpy(t->mem->host + t->offset, &ns, sizeof(ns));
	}
}

const struct mdgpu_backend_ops mdgpu_vulkan_ops = {
	.name = "vulkan",
	.enumerate = vk_enumerate,
	.enumerate_caps = vk_enumerate_caps,
	.open = vk_open,
	.close = vk_close,
	.memory_import = vk_memory_import,
	.memory_release = vk_memory_release,
	.kernel_create = vk_kernel_create,
	.kernel_release = vk_kernel_release,
	.submit = vk_submit,
	.wait = vk_wait,
	.complete = vk_complete,
	.submission_release = vk_submission_release,
};
