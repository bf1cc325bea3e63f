/* SPDX-License-Identifier: MIT */
/*
 * vks: the common part of mdgpu's Vulkan compute suite. Every program of the suite is written
 * against the Vulkan API only (the headers and libvulkan.so.1, through the Khronos loader):
 * nothing of mdgpu, so the same binaries run natively on any Vulkan device and in a guest
 * through mdgpu's ICD, and their results can be compared.
 *
 * Output contract (parsed by the runner, test/helpers/vksuite.ts and bench/vulkan): one line
 * per check,
 *
 *   VKSUITE name=<check> ok=<0|1> digest=<16 hex digits | -> ms=<device ms> [key=value ...]
 *
 * where the digest is a hash of the check's output that does not depend on timing (equal
 * digests on two devices mean equal results), ms the device time of its main work measured
 * with timestamp queries (0 when it has none). A check the device cannot run because it lacks
 * a feature prints ok=1 skipped=feature digest=- and names the feature. Other lines:
 *
 *   VKSUITE-DEVICE prog=<program> name="<device>" api=<x.y.z> driver=<id> ...
 *   VKSUITE-VALIDATION prog=<program> errors=<n> warnings=<n> layer=<0|1>
 *       (when a debug messenger ran: the validation layer's errors and warnings, and whether
 *       the Khronos validation layer announced itself; VKSUITE_VERBOSE=1 prints its and the
 *       loader's information messages too)
 *   VKSUITE-PHASE prog=<program> name=<phase> state=<begin|end>
 *       (benchmark programs, around a measured phase: an observer outside the process, such
 *       as the host of a VM counting the VM's exits, samples its counters when the line
 *       arrives. With VKSUITE_PHASE_SYNC=<file> (a serial port the observer writes to) the
 *       program then waits for a line from that file, the observer's "sampled"; with
 *       VKSUITE_PHASE_PAUSE_MS=N it sleeps N ms, so that the sample falls in a quiet gap)
 *
 * The exit status is 0 when every check of the program passed, 1 otherwise.
 */
#ifndef VKS_H
#define VKS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

#define VKS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A fence or semaphore wait that takes longer than this is reported as a failure, never a hang. */
#define VKS_WAIT_NS (20ull * 1000 * 1000 * 1000)

/* What a program asks of the device; each is enabled only when the device has it. */
enum vks_want {
	VKS_WANT_ROBUST = 1u << 0, /* robustBufferAccess (hostile programs) */
	VKS_WANT_TYPES = 1u << 1, /* 8/16/64-bit arithmetic and 8/16-bit storage */
	VKS_WANT_BUDGET = 1u << 2, /* VK_EXT_memory_budget */
	VKS_WANT_SYNC2 = 1u << 3, /* synchronization2 (Vulkan 1.3) */
	VKS_WANT_MAINTENANCE4 = 1u << 4, /* maintenance4 (LocalSizeId) */
};

struct vks_opts {
	uint64_t size; /* --size: problem size (0: the program's default) */
	uint32_t iterations; /* --iterations: timed repetitions (default 1) */
	int iterations_set; /* --iterations was given (programs with another default) */
	const char *cache; /* --cache: the pipeline cache file */
	uint32_t device; /* --device: physical device index (or $VKSUITE_DEVICE) */
	int quiet; /* --quiet: no VKSUITE-DEVICE line */
};

struct vks {
	const char *prog;
	struct vks_opts opt;
	VkInstance instance;
	VkDebugUtilsMessengerEXT messenger;
	VkPhysicalDevice phys;
	VkDevice dev;
	VkQueue queue;
	uint32_t queue_family;
	uint32_t api; /* the device's apiVersion, capped at what we asked for */
	VkPhysicalDeviceProperties props;
	VkPhysicalDeviceSubgroupProperties subgroup;
	VkPhysicalDeviceMemoryProperties mem;
	VkQueueFamilyProperties queue_props;
	/* What the device supports ... */
	VkPhysicalDeviceFeatures2 has;
	VkPhysicalDeviceVulkan11Features has11;
	VkPhysicalDeviceVulkan12Features has12;
	VkPhysicalDeviceVulkan13Features has13;
	/* ... and what this program enabled (a subset). */
	VkPhysicalDeviceFeatures2 on;
	VkPhysicalDeviceVulkan11Features on11;
	VkPhysicalDeviceVulkan12Features on12;
	VkPhysicalDeviceVulkan13Features on13;
	bool budget; /* VK_EXT_memory_budget enabled */
	VkCommandPool pool;
	VkQueryPool timer; /* two timestamps for vks_timer_* */
	int checks, failures, skips;
	const char *current; /* the check in progress, for fatal errors */
};

/* A buffer with its own memory, host-visible and mapped for its whole life. */
struct vks_buf {
	VkBuffer buf;
	VkDeviceMemory mem;
	VkDeviceSize size;
	void *map;
	uint32_t type; /* memory type index */
};

/* A compute pipeline whose set 0 holds `nbuf` storage buffers at bindings 0..nbuf-1. */
struct vks_pipe {
	VkShaderModule module;
	VkDescriptorSetLayout set_layout;
	VkPipelineLayout layout;
	VkPipeline pipeline;
	VkDescriptorPool pool;
	VkDescriptorSet set;
	uint32_t nbuf;
};

/* Parse the options, create the instance and device, print the device line. Exits on failure. */
void vks_init(struct vks *v, const char *prog, int argc, char **argv, unsigned want);
/* Destroy everything, print the validation line; returns the exit status (0: all passed). */
int vks_finish(struct vks *v);

/* Name a failed Vulkan call and leave: the current check fails (exit status 1). */
_Noreturn void vks_fatal(struct vks *v, const char *call, VkResult r);
#define VKS_CHECK(v, call)                             \
	do {                                           \
		VkResult vks_r_ = (call);              \
		if (vks_r_ != VK_SUCCESS)              \
			vks_fatal((v), #call, vks_r_); \
	} while (0)
const char *vks_result_name(VkResult r);

/* Report one check; `extra` (may be NULL) is printf-formatted key=value pairs. */
void vks_report(struct vks *v, const char *name, bool ok, uint64_t digest, double ms,
		const char *extra, ...) __attribute__((format(printf, 6, 7)));
/*
 * Mark the beginning or the end of a measured phase: print its VKSUITE-PHASE line, then wait
 * for a line from $VKSUITE_PHASE_SYNC if set, then sleep $VKSUITE_PHASE_PAUSE_MS (default 0)
 * milliseconds doing nothing.
 */
void vks_phase(struct vks *v, const char *name, bool begin);
/* Report a check skipped because the device lacks `feature`. */
void vks_skip(struct vks *v, const char *name, const char *feature);
/* Print a diagnostic line for the current check (stderr). */
void vks_note(struct vks *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Digests: 64-bit FNV-1a over bytes, chainable. */
#define VKS_HASH_INIT 0xcbf29ce484222325ull
uint64_t vks_hash(uint64_t h, const void *data, size_t len);

/* A deterministic generator for inputs (xorshift64*). */
uint64_t vks_rand(uint64_t *state);
double vks_now_ms(void);
double vks_median(double *values, uint32_t n);

/* Memory. `props` are the memory property flags wanted; HOST_VISIBLE is always added. */
int vks_memory_type(struct vks *v, uint32_t type_bits, VkMemoryPropertyFlags props);
void vks_buf_create(struct vks *v, struct vks_buf *b, VkDeviceSize size, VkBufferUsageFlags usage);
void vks_buf_create_typed(struct vks *v, struct vks_buf *b, VkDeviceSize size,
			  VkBufferUsageFlags usage, VkMemoryPropertyFlags props);
void vks_buf_destroy(struct vks *v, struct vks_buf *b);
/* The usual usage of the suite's buffers: storage, uniform, transfer, indirect. */
#define VKS_USAGE_ALL                                                              \
	(VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_BUFFER_BIT | \
	 VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT |     \
	 VK_BUFFER_USAGE_INDIRECT_BUFFER_BIT)

/* Shaders and pipelines. */
VkShaderModule vks_shader(struct vks *v, const uint32_t *code, size_t size);
VkDescriptorSetLayout vks_set_layout(struct vks *v, const VkDescriptorSetLayoutBinding *bindings,
				     uint32_t n);
/* A layout of `nsets` sets and one compute push-constant range [push_offset, +push_size). */
VkPipelineLayout vks_pipeline_layout(struct vks *v, const VkDescriptorSetLayout *sets,
				     uint32_t nsets, uint32_t push_offset, uint32_t push_size);
VkPipeline vks_compute_pipeline(struct vks *v, VkShaderModule module, VkPipelineLayout layout,
				const VkSpecializationInfo *spec, VkPipelineCreateFlags flags,
				VkPipelineCache cache);
/* Allocate one set of `layout` from `pool`. */
VkDescriptorSet vks_alloc_set(struct vks *v, VkDescriptorPool pool, VkDescriptorSetLayout layout);
/* One buffer descriptor: set/binding/array element. */
void vks_write_buffer(struct vks *v, VkDescriptorSet set, uint32_t binding, uint32_t element,
		      VkDescriptorType type, VkBuffer buf, VkDeviceSize offset, VkDeviceSize range);
void vks_pipe_create(struct vks *v, struct vks_pipe *p, const uint32_t *code, size_t size,
		     uint32_t nbuf, uint32_t push_size, const VkSpecializationInfo *spec);
void vks_pipe_create_flags(struct vks *v, struct vks_pipe *p, const uint32_t *code, size_t size,
			   uint32_t nbuf, uint32_t push_size, const VkSpecializationInfo *spec,
			   VkPipelineCreateFlags flags);
/* Point binding i of the pipeline's set at bufs[i] (whole buffers). */
void vks_pipe_bind(struct vks *v, struct vks_pipe *p, struct vks_buf *const *bufs);
void vks_pipe_destroy(struct vks *v, struct vks_pipe *p);
/* Bind pipeline and set 0, push `push` (push_size bytes, may be NULL) on `cmd`. */
void vks_pipe_use(struct vks_pipe *p, VkCommandBuffer cmd, const void *push, uint32_t push_size);

/* Command buffers: a primary buffer, begun for one submission. */
VkCommandBuffer vks_cmd_begin(struct vks *v);
/* End, submit, wait (VKS_WAIT_NS) and free. */
void vks_cmd_submit_wait(struct vks *v, VkCommandBuffer cmd);
/* A full compute/transfer -> compute/transfer/host memory barrier. */
void vks_barrier(VkCommandBuffer cmd);

/* Device time of what is recorded between vks_timer_begin and vks_timer_end, in ms. */
void vks_timer_begin(struct vks *v, VkCommandBuffer cmd);
void vks_timer_end(struct vks *v, VkCommandBuffer cmd);
double vks_timer_ms(struct vks *v);

/*
 * Run a measured piece of work --iterations times, each its own submission: `prepare` on the
 * host (may be NULL; resets inputs), then `record` between two timestamps; wall time is submit
 * to fence. Returns the medians.
 */
struct vks_timing {
	double ms; /* device time, median */
	double wall_ms; /* submit to fence signalled, median */
	uint32_t iterations;
};
typedef void (*vks_prepare_fn)(struct vks *v, void *ctx);
typedef void (*vks_record_fn)(struct vks *v, VkCommandBuffer cmd, void *ctx);
struct vks_timing vks_timed(struct vks *v, vks_prepare_fn prepare, vks_record_fn record, void *ctx);

/* Split `groups` workgroups into a 2D grid within the device's limits (shaders linearise it). */
void vks_groups(struct vks *v, uint64_t groups, uint32_t *gx, uint32_t *gy);

/* The size option or a default, in elements. */
uint64_t vks_size(struct vks *v, uint64_t fallback);

/* Compare words, print the first mismatches; returns the number of differences. */
uint64_t vks_compare_u32(struct vks *v, const char *what, const uint32_t *got, const uint32_t *want,
			 uint64_t n);

#endif
