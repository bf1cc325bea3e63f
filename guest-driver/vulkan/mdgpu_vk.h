/* SPDX-License-Identifier: MIT */
/*
 * libvulkan_mdgpu: a Vulkan installable client driver (ICD) for the mdgpu virtual GPU, for
 * compute only (docs/vulkan.md). Written against the Khronos headers and libmdgpu, nothing else.
 *
 * The objects and the files that own them (split by area, as drivers/accel/ivpu is):
 *
 *   mdgpu_vk_entry.c       the loader interface, the entry point tables
 *   mdgpu_vk_instance.c    instances, physical devices: properties, features and limits from
 *                          the device's capability record (CAPS_READ)
 *   mdgpu_vk_device.c      devices, the queue, vkQueueSubmit (mdgpu submissions in the ring)
 *   mdgpu_vk_memory.c      device memory (mdgpu buffers), VkBuffer, memory budget
 *   mdgpu_vk_descriptor.c  set layouts, pools, sets, updates, update templates
 *   mdgpu_vk_pipeline.c    shader modules, pipeline layouts, compute pipelines (KERNEL_CREATE2),
 *                          pipeline caches
 *   mdgpu_vk_spirv.c       which descriptors a kernel uses (a small SPIR-V reader)
 *   mdgpu_vk_cmd.c         command pools and buffers: vkCmd* recorded as mdgpu commands
 *   mdgpu_vk_sync.c        fences, semaphores (binary, timeline), events, host waits
 *   mdgpu_vk_query.c       timestamp query pools
 *   mdgpu_vk_unsupported.c graphics, images, sparse: entry points that fail cleanly
 *
 * Dispatchable objects (instance, physical device, device, queue, command buffer) start with
 * the loader's VK_LOADER_DATA; non-dispatchable handles are pointers to the structs below.
 *
 * Thread safety follows the Vulkan rules: objects the application must synchronise externally
 * (command buffers and their pool, descriptor pools, a queue, memory being mapped) are not
 * locked; what the driver shares behind the application's back is: the device's synchronisation
 * slots (&mdgpu_vk_device.slot_lock), the queue's ring and timeline (&mdgpu_vk_queue.lock, also
 * taken by waits that read the submitted value), pipeline caches (their own lock), kernels
 * (reference counts), and the instance's device list.
 */
#ifndef MDGPU_VK_H
#define MDGPU_VK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vulkan/vk_icd.h>
#include <vulkan/vulkan.h>

#include "mdgpu.h"

/* Everything in the driver is hidden except what the version script exports (vk_icd*). */
#define MDGPU_VK_EXPORT __attribute__((visibility("default")))

/* The Vulkan version the driver implements (the patch level is the headers'). */
#define MDGPU_VK_API_VERSION VK_MAKE_API_VERSION(0, 1, 3, VK_HEADER_VERSION)

/* Most physical devices (/dev/mdgpuN) one instance shows. */
#define MDGPU_VK_MAX_PHYSICAL_DEVICES 8
/* Descriptor sets a pipeline layout may have (maxBoundDescriptorSets is the caps' or this). */
#define MDGPU_VK_MAX_SETS 32
/* Dynamic buffers per pipeline layout (maxDescriptorSet{Storage,Uniform}BuffersDynamic). */
#define MDGPU_VK_MAX_DYNAMIC_STORAGE 8
#define MDGPU_VK_MAX_DYNAMIC_UNIFORM 8
#define MDGPU_VK_MAX_DYNAMIC (MDGPU_VK_MAX_DYNAMIC_STORAGE + MDGPU_VK_MAX_DYNAMIC_UNIFORM)
/* Push-constant bytes (the device's MDGPU_HW_KERNEL_MAX_PUSH_BYTES). */
#define MDGPU_VK_MAX_PUSH MDGPU_HW_KERNEL_MAX_PUSH_BYTES
/* The queue's ring: at least one largest submission, several in flight. */
#define MDGPU_VK_RING_BYTES (4u << 20)
/*
 * A command buffer is recorded in chunks no larger than this, so that any chunk fits into a
 * submission together with a batch's semaphore waits and signals (the device takes 1 MiB and
 * 4096 commands per submission).
 */
#define MDGPU_VK_CHUNK_BYTES (512u << 10)
#define MDGPU_VK_CHUNK_COMMANDS 2048u
/* Synchronisation slots (u64 words) per slot buffer. */
#define MDGPU_VK_SLOTS_PER_POOL 4096u
/*
 * A wait for work the device has accepted gives up with VK_ERROR_DEVICE_LOST when the queue
 * made no progress at all for this long (the device bounds every batch and WAIT at 10 s, so a
 * live device never stays still this long with work queued).
 */
#define MDGPU_VK_WATCHDOG_NS (60ull * 1000 * 1000 * 1000)

struct mdgpu_vk_instance;
struct mdgpu_vk_device;

/* ---- instance and physical devices (mdgpu_vk_instance.c) ---- */

struct mdgpu_vk_physical_device {
	VK_LOADER_DATA loader;
	struct mdgpu_vk_instance *instance;
	char path[32];
	struct mdgpu_info info;
	struct mdgpu_compute_info compute;
	struct mdgpu_caps caps;
	VkPhysicalDeviceProperties props;
	VkPhysicalDeviceFeatures features;
	VkPhysicalDeviceMemoryProperties memory;
	uint8_t device_uuid[VK_UUID_SIZE];
	uint8_t driver_uuid[VK_UUID_SIZE];
};

struct mdgpu_vk_instance {
	VK_LOADER_DATA loader;
	uint32_t api_version;
	pthread_mutex_t lock;
	bool enumerated;
	uint32_t physical_count;
	struct mdgpu_vk_physical_device *physical[MDGPU_VK_MAX_PHYSICAL_DEVICES];
};

/* Fill a VkPhysicalDeviceFeatures2 chain with what the device supports. */
void mdgpu_vk_fill_features(const struct mdgpu_vk_physical_device *pd, VkBaseOutStructure *chain);
/* Is the extension one the device offers? */
bool mdgpu_vk_device_extension_supported(const struct mdgpu_vk_physical_device *pd,
					 const char *name);
/* Count device memory this process allocated from @pd (the memory budget's heapUsage). */
void mdgpu_vk_account_memory(const struct mdgpu_vk_physical_device *pd, int64_t delta);
/* Is every feature the create info asks for supported? */
VkResult mdgpu_vk_check_features(const struct mdgpu_vk_physical_device *pd,
				 const VkDeviceCreateInfo *info);

/* ---- synchronisation slots and waits (mdgpu_vk_sync.c) ---- */

/* A u64 word in a slot buffer: where FENCE and SUBMIT write, WAIT and WAIT_FENCE look. */
struct mdgpu_vk_slot {
	struct mdgpu_vk_slot_pool *pool;
	uint32_t handle;
	uint32_t index;
	uint64_t offset;
	uint64_t *ptr;
};

struct mdgpu_vk_slot_pool {
	struct mdgpu_vk_slot_pool *next;
	struct mdgpu_buffer bo;
	uint32_t used;
	uint32_t free_count;
	uint32_t free_list[MDGPU_VK_SLOTS_PER_POOL];
};

VkResult mdgpu_vk_slot_alloc(struct mdgpu_vk_device *dev, struct mdgpu_vk_slot *slot);
void mdgpu_vk_slot_free(struct mdgpu_vk_device *dev, struct mdgpu_vk_slot *slot);
void mdgpu_vk_slot_pools_destroy(struct mdgpu_vk_device *dev);

static inline uint64_t mdgpu_vk_slot_read(const struct mdgpu_vk_slot *slot)
{
	return __atomic_load_n(slot->ptr, __ATOMIC_ACQUIRE);
}

static inline void mdgpu_vk_slot_write(const struct mdgpu_vk_slot *slot, uint64_t value)
{
	__atomic_store_n(slot->ptr, value, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/*
 * One thing a host wait waits for: @slot reaching @value. @submitted: the value will be
 * written by work the queue already has (so the queue watchdog applies); @done: already
 * satisfied without looking (a signalled fence).
 */
struct mdgpu_vk_wait {
	const struct mdgpu_vk_slot *slot;
	uint64_t value;
	bool submitted;
	bool done;
};

/* Wait for all (or any) of @waits until @timeout_ns (relative; UINT64_MAX: no limit). */
VkResult mdgpu_vk_wait_many(struct mdgpu_vk_device *dev, struct mdgpu_vk_wait *waits, uint32_t n,
			    bool all, uint64_t timeout_ns);

enum mdgpu_vk_semaphore_kind {
	MDGPU_VK_SEMAPHORE_BINARY,
	MDGPU_VK_SEMAPHORE_TIMELINE,
};

struct mdgpu_vk_semaphore {
	enum mdgpu_vk_semaphore_kind kind;
	struct mdgpu_vk_slot slot;
	/* Guarded by the queue's lock: the last value a submitted batch signals. */
	uint64_t submitted;
	/* Binary: the value of the last signal operation (waits wait for it). */
	uint64_t binary_signal;
	uint64_t binary_waited;
};

struct mdgpu_vk_fence {
	/* Signalled by creation or vkResetFences's opposite: no queue work behind it. */
	bool signaled;
	/* The queue timeline value of the batch it was submitted with, 0: never submitted. */
	uint64_t value;
};

struct mdgpu_vk_event {
	struct mdgpu_vk_slot slot;
};

/* ---- the device and its queue (mdgpu_vk_device.c) ---- */

struct mdgpu_vk_queue {
	VK_LOADER_DATA loader;
	struct mdgpu_vk_device *device;
	uint32_t family;
	uint32_t index;
	VkDeviceQueueCreateFlags flags;
	struct mdgpu_queue *q;
	pthread_mutex_t lock;
	/* The timeline value of the last submission written into the ring. */
	atomic_uint_fast64_t submitted;
	/* The last timeline value submitted with the FENCE interrupt (MDGPU_CMD_FLAG_IRQ). */
	atomic_uint_fast64_t irq_value;
	/* Where each submission's completion (SUBMIT's fence) is written: the queue timeline. */
	struct mdgpu_vk_slot timeline;
	struct mdgpu_submission sub;
};

struct mdgpu_vk_device {
	VK_LOADER_DATA loader;
	struct mdgpu_vk_physical_device *physical;
	struct mdgpu *mdgpu;
	struct mdgpu_vk_queue queue;
	pthread_mutex_t slot_lock;
	struct mdgpu_vk_slot_pool *slot_pools;
	atomic_bool lost;
	/* Bytes of device memory this device allocated (VK_EXT_memory_budget's heapUsage). */
	atomic_uint_fast64_t allocated;
	bool budget_enabled;
	VkPhysicalDeviceFeatures enabled;
	/* Private data (VK_EXT_private_data, core 1.3). */
	pthread_mutex_t private_lock;
	struct mdgpu_vk_private_entry *private_data;
};

/* The device is lost (a failed submission, a ring the device stopped): sticky. */
void mdgpu_vk_device_set_lost(struct mdgpu_vk_device *dev, const char *why);
/* Has the device reported a failed submission? Marks the device lost if so. */
bool mdgpu_vk_device_check_lost(struct mdgpu_vk_device *dev);
/* The queue's completed timeline value (bit 63, an error fence, masked off). */
uint64_t mdgpu_vk_queue_completed(struct mdgpu_vk_queue *queue);
/* Queue progress counters, for the wait watchdog. */
uint64_t mdgpu_vk_queue_progress(struct mdgpu_vk_queue *queue);
/*
 * Make sure a submission at or after timeline @value raises the FENCE interrupt (submitting an
 * empty one that does if none will): called before sleeping until @value.
 */
VkResult mdgpu_vk_queue_want_irq(struct mdgpu_vk_queue *queue, uint64_t value);

/* A VkResult for a negative errno from libmdgpu. */
VkResult mdgpu_vk_result(int err);
/* A debug line on stderr when MDGPU_VK_DEBUG is set. */
void mdgpu_vk_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- memory and buffers (mdgpu_vk_memory.c) ---- */

struct mdgpu_vk_memory {
	struct mdgpu_buffer bo;
	uint32_t type;
	VkDeviceSize size;
};

struct mdgpu_vk_buffer {
	VkDeviceSize size;
	VkBufferUsageFlags usage;
	struct mdgpu_vk_memory *memory;
	VkDeviceSize offset;
};

/* Alignment of a buffer's offset in its memory (the largest descriptor offset alignment). */
VkDeviceSize mdgpu_vk_buffer_alignment(const struct mdgpu_vk_physical_device *pd);

/* ---- descriptors (mdgpu_vk_descriptor.c) ---- */

struct mdgpu_vk_set_binding {
	uint32_t binding;
	VkDescriptorType type;
	uint32_t count;
	/* Its first element in the set's descriptor array, and in the set's dynamic offsets. */
	uint32_t first;
	uint32_t dynamic_first;
};

struct mdgpu_vk_set_layout {
	atomic_uint refs;
	uint32_t binding_count;
	uint32_t descriptor_count;
	uint32_t dynamic_count;
	struct mdgpu_vk_set_binding bindings[];
};

/* One descriptor as written: the memory, the absolute offset in it and the range. */
struct mdgpu_vk_descriptor {
	uint32_t handle;
	bool valid;
	uint64_t offset;
	uint64_t range;
};

struct mdgpu_vk_descriptor_set {
	struct mdgpu_vk_descriptor_pool *pool;
	struct mdgpu_vk_descriptor_set *prev, *next;
	struct mdgpu_vk_set_layout *layout;
	struct mdgpu_vk_descriptor descriptors[];
};

struct mdgpu_vk_descriptor_pool {
	VkDescriptorPoolCreateFlags flags;
	uint32_t max_sets;
	uint32_t sets;
	uint64_t max_descriptors;
	uint64_t descriptors;
	struct mdgpu_vk_descriptor_set *head;
};

struct mdgpu_vk_update_template {
	uint32_t entry_count;
	VkDescriptorUpdateTemplateEntry entries[];
};

void mdgpu_vk_set_layout_ref(struct mdgpu_vk_set_layout *l);
void mdgpu_vk_set_layout_unref(struct mdgpu_vk_set_layout *l);
const struct mdgpu_vk_set_binding *mdgpu_vk_set_layout_find(const struct mdgpu_vk_set_layout *l,
							    uint32_t binding);
static inline bool mdgpu_vk_descriptor_dynamic(VkDescriptorType type)
{
	return type == VK_DESCRIPTOR_TYPE_STORAGE_BUFFER_DYNAMIC ||
	       type == VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER_DYNAMIC;
}

/* ---- pipelines (mdgpu_vk_pipeline.c, mdgpu_vk_spirv.c) ---- */

struct mdgpu_vk_shader_module {
	size_t size;
	uint32_t *code;
};

struct mdgpu_vk_pipeline_layout {
	uint32_t set_count;
	struct mdgpu_vk_set_layout *sets[MDGPU_VK_MAX_SETS];
	uint32_t push_size;
};

/* A descriptor binding a kernel uses, as its SPIR-V declares it. */
struct mdgpu_vk_kernel_binding {
	uint32_t set;
	uint32_t binding;
	uint32_t type; /* MDGPU_DESCRIPTOR_* */
	uint32_t count; /* array elements; 0: a runtime array (as many as the layout has) */
};

struct mdgpu_vk_reflection {
	uint32_t binding_count;
	struct mdgpu_vk_kernel_binding *bindings;
};

/*
 * Which descriptors the entry point @entry of a module uses. @spec: specialization, for array
 * lengths given by specialization constants. Returns VK_SUCCESS or
 * VK_ERROR_INVALID_SHADER_NV-like failures as VK_ERROR_UNKNOWN (malformed module).
 */
VkResult mdgpu_vk_reflect(const uint32_t *code, size_t size, const char *entry,
			  const VkSpecializationInfo *spec, struct mdgpu_vk_reflection *out);
void mdgpu_vk_reflection_fini(struct mdgpu_vk_reflection *r);

/*
 * The module with its integer OpSpecConstantOps (declarations only) folded into OpConstants of
 * their values under @spec, in *@out (malloc'd), or *@out NULL when there is nothing to fold.
 */
VkResult mdgpu_vk_fold_spec_ops(const uint32_t *code, size_t size, const VkSpecializationInfo *spec,
				uint32_t **out, size_t *out_size);

/* A kernel on the device, shared by pipelines created from the same cache entry. */
struct mdgpu_vk_kernel {
	atomic_uint refs;
	uint32_t id;
};

void mdgpu_vk_kernel_unref(struct mdgpu_vk_device *dev, struct mdgpu_vk_kernel *k);

struct mdgpu_vk_pipeline {
	struct mdgpu_vk_kernel *kernel;
	uint32_t push_size;
	struct mdgpu_vk_reflection reflection;
};

/* ---- command buffers (mdgpu_vk_cmd.c) ---- */

struct mdgpu_vk_command_pool {
	VkCommandPoolCreateFlags flags;
	uint32_t family;
	struct mdgpu_vk_command_buffer *head;
};

enum mdgpu_vk_cmd_state {
	MDGPU_VK_CMD_INITIAL,
	MDGPU_VK_CMD_RECORDING,
	MDGPU_VK_CMD_EXECUTABLE,
	MDGPU_VK_CMD_INVALID,
};

struct mdgpu_vk_bound_set {
	struct mdgpu_vk_descriptor_set *set;
	uint32_t dynamic[MDGPU_VK_MAX_DYNAMIC];
};

struct mdgpu_vk_command_buffer {
	VK_LOADER_DATA loader;
	struct mdgpu_vk_device *device;
	struct mdgpu_vk_command_pool *pool;
	struct mdgpu_vk_command_buffer *prev, *next;
	VkCommandBufferLevel level;
	enum mdgpu_vk_cmd_state state;
	VkResult record_result;
	/* The recorded commands, each chunk a begun mdgpu_submission (placeholder header). */
	struct mdgpu_submission *chunks;
	uint32_t chunk_count;
	uint32_t chunk_cap;
	/* Recording state. */
	struct mdgpu_vk_pipeline *pipeline;
	struct mdgpu_vk_bound_set sets[MDGPU_VK_MAX_SETS];
	uint8_t push[MDGPU_VK_MAX_PUSH];
	bool last_was_barrier;
};

/* A command mdgpu does not mediate was recorded: the command buffer fails at its end. */
void mdgpu_vk_cmd_unsupported(VkCommandBuffer commandBuffer, const char *what);

/* ---- queries (mdgpu_vk_query.c) ---- */

/* Each query is 16 bytes of its buffer: the timestamp, then its availability (0 or 1). */
#define MDGPU_VK_QUERY_STRIDE 16u

struct mdgpu_vk_query_pool {
	VkQueryType type;
	uint32_t count;
	struct mdgpu_buffer bo;
};

/* ---- handles ---- */

#define MDGPU_VK_FROM_HANDLE(type, name, handle) struct mdgpu_vk_##type *name = (void *)(handle)
#define MDGPU_VK_TO_HANDLE(vktype, ptr) ((vktype)(uintptr_t)(ptr))

/* Walk a pNext chain for a structure of @stype (NULL if absent). */
const void *mdgpu_vk_find_struct(const void *chain, VkStructureType stype);

/* Round @v up to a multiple of the power of two @a. */
static inline uint64_t mdgpu_vk_align(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

#endif /* MDGPU_VK_H */
