/* SPDX-License-Identifier: MIT */
/*
 * Inside libmdgpu-host: the backend vtable and what the core (core.c: handles, locking,
 * argument checks, SPIR-V checks) shares with backends (vulkan.c).
 *
 * Split of work: the core owns every handle, reference count and lock, and checks every
 * argument against the device's limits before a backend sees it. A backend only turns checked
 * requests into device work. The core calls backend ops with the device lock held, except:
 * - ->wait(), which must be safe to call concurrently with anything but ->submission_release()
 *   of the same submission (the core never releases a submission while a thread waits on it);
 * - ->kernel_create(), which builds a new object that nothing else can see yet, and must be
 *   safe to call from several threads at once and concurrently with every other op (Vulkan
 *   object creation is: only the objects it creates are new). Compiling a kernel can take
 *   seconds; submissions, polls and other kernel creations do not wait for it.
 */
#ifndef MDGPU_HOST_INTERNAL_H
#define MDGPU_HOST_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mdgpu_host.h"

/* Opaque backend objects. */
struct mdgpu_be;
struct mdgpu_be_memory;
struct mdgpu_be_kernel;
struct mdgpu_be_submission;

/**
 * struct mdgpu_feature_set - what kernels on a device may use: the SPIR-V capabilities a
 * module may declare follow from it (spirv.c).
 * @features: MDGPU_HOST_FEATURE_* the device has and the backend enabled
 * @subgroup_ops: VkSubgroupFeatureFlags supported in compute shaders (0: none)
 * @subgroup_extended_types: shaderSubgroupExtendedTypes enabled (group operations on 8-, 16-
 *                           and 64-bit integers and 16-bit floats)
 * @max_per_stage_resources: maxPerStageResources (a limit struct mdgpu_host_caps lacks)
 */
struct mdgpu_feature_set {
	uint32_t features;
	uint32_t subgroup_ops;
	bool subgroup_extended_types;
	uint32_t max_per_stage_resources;
};

/**
 * struct mdgpu_spec - checked specialization data of a kernel.
 * @entries: @count entries sorted by constant_id, ids unique, each inside @data
 * @data: @size bytes
 */
struct mdgpu_spec {
	const struct mdgpu_host_spec_entry *entries;
	uint32_t count;
	const uint8_t *data;
	uint32_t size;
};

/**
 * struct mdgpu_job_desc - one descriptor of a dispatch, checked and resolved.
 * @slot: its place among the kernel's descriptors: the first slot of its binding (bindings
 *        sorted by set, then binding; an array takes one slot per element) plus its index
 * @type: enum mdgpu_host_descriptor_type (the kernel's for the slot)
 * @mem: the memory it is a range of
 * @offset: offset into @mem
 * @range: bytes
 */
struct mdgpu_job_desc {
	uint32_t slot;
	uint32_t type;
	struct mdgpu_be_memory *mem;
	uint64_t offset;
	uint64_t range;
};

/**
 * struct mdgpu_job_cmd - a checked command with its handles resolved to backend objects; the
 * same for mdgpu_host_submit() and mdgpu_host_submit2() (DISPATCH becomes DISPATCH2 with its
 * bindings as descriptors of set 0).
 * @op: MDGPU_HOST_OP_* (never MDGPU_HOST_OP_DISPATCH)
 * @mem: COPY: source, destination; FILL, UPDATE, TIMESTAMP: @mem[0]
 * @offset: COPY: source, destination offsets; FILL, UPDATE, TIMESTAMP: @offset[0]
 * @size: COPY, FILL, UPDATE: bytes
 * @value: FILL: the 32-bit pattern
 * @data: UPDATE: the @size bytes to write; DISPATCH2: the push constants (the kernel's size)
 * @kernel: DISPATCH2: the kernel
 * @descs: DISPATCH2: @desc_count descriptors, each slot at most once
 * @base: DISPATCH2: first workgroup
 * @groups: DISPATCH2: workgroups (none 0: the core drops dispatches that run nothing)
 * @num_workgroups: DISPATCH2: what the kernel's NumWorkgroups reads (@groups unless the
 *                  dispatch is a range of a larger one); pushed for a rewritten kernel
 */
struct mdgpu_job_cmd {
	uint32_t op;
	struct mdgpu_be_memory *mem[2];
	uint64_t offset[2];
	uint64_t size;
	uint32_t value;
	const void *data;
	struct mdgpu_be_kernel *kernel;
	const struct mdgpu_job_desc *descs;
	uint32_t desc_count;
	uint32_t base[3];
	uint32_t groups[3];
	uint32_t num_workgroups[3];
};

/**
 * struct mdgpu_job - a checked submission.
 * @cmds: @cmd_count commands
 * @timestamp_count: TIMESTAMP commands in @cmds
 * @set_total: descriptor sets the dispatches allocate (their kernels' non-empty sets)
 * @storage_total: storage-buffer descriptors they write (every one their kernels declare)
 * @uniform_total: uniform-buffer descriptors they write
 * @slot_max: the largest number of descriptors one of their kernels declares
 * @zero_buffer: some dispatch leaves a declared descriptor out (bound to the zero buffer)
 */
struct mdgpu_job {
	const struct mdgpu_job_cmd *cmds;
	uint32_t cmd_count;
	uint32_t timestamp_count;
	uint32_t set_total;
	uint32_t storage_total;
	uint32_t uniform_total;
	uint32_t slot_max;
	bool zero_buffer;
};

/**
 * struct mdgpu_kernel_layout - what a kernel declares, as the core checked it.
 * @bindings: @binding_count descriptor bindings sorted by set, then binding (set < @set_count)
 * @set_count: descriptor set layouts: one per set up to the highest used (0 without bindings)
 * @push_size: bytes of push constants
 * @flags: MDGPU_HOST_KERNEL_* bits
 * @nwg_offset: MDGPU_NWG_NONE, or the push-constant offset of the 12 bytes the rewritten
 *              kernel reads NumWorkgroups from (spirv-rewrite.c): the pipeline layout's range
 *              reaches past them, and every dispatch pushes the job command's @num_workgroups
 * @entry: the entry point's name
 * @spec: the specialization applied
 */
struct mdgpu_kernel_layout {
	const struct mdgpu_host_kernel_binding *bindings;
	uint32_t binding_count;
	uint32_t set_count;
	uint32_t push_size;
	uint32_t flags;
	uint32_t nwg_offset;
	const char *entry;
	const struct mdgpu_spec *spec;
};

/**
 * struct mdgpu_backend_ops - one execution backend (ivpu_hw_ops style).
 * @name: "vulkan"
 * @enumerate: describe device @index; -ENOENT past the end, -ENODEV without a usable API
 * @enumerate_caps: the capabilities of device @index (all of struct mdgpu_host_caps but
 *                  @size); -ENOENT past the end, -ENODEV without a usable API
 * @open: open the device @selector names (see mdgpu_host_device_open()); fill @info, @caps
 *        and @features (what the backend enabled: @caps->features is @features->features)
 * @close: wait for the device to go idle and release it (every object is released already)
 * @memory_import: make @size bytes at @ptr usable; @flags may ask for STAGED; set
 *                 *@out_flags to STAGED or ZERO_COPY
 * @memory_release: release an imported memory no submission uses any more
 * @kernel_create: build a kernel from checked SPIR-V with the checked @layout (without the
 *                 device lock, see above)
 * @kernel_release: release a kernel no submission uses any more
 * @submit: record and start @job; a job using STAGED memory is submitted only when no earlier
 *          submission is unfinished
 * @wait: wait up to @timeout_ns for @sub: 0 done, -ETIMEDOUT, -EIO (device lost). Called
 *        without the device lock, possibly from several threads at once
 * @complete: once, after ->wait() returned 0 or -EIO: fill @status's device times and
 *            @status->result, copy STAGED results back, write CPU timestamps
 * @submission_release: release @sub's device objects (after ->complete(), no waiters left)
 */
struct mdgpu_backend_ops {
	const char *name;
	int (*enumerate)(uint32_t index, struct mdgpu_host_device_info *info);
	int (*enumerate_caps)(uint32_t index, struct mdgpu_host_caps *caps);
	int (*open)(const char *selector, uint32_t flags, struct mdgpu_be **out,
		    struct mdgpu_host_device_info *info, struct mdgpu_host_caps *caps,
		    struct mdgpu_feature_set *features);
	void (*close)(struct mdgpu_be *be);
	int (*memory_import)(struct mdgpu_be *be, void *ptr, uint64_t size, uint32_t flags,
			     struct mdgpu_be_memory **out, uint32_t *out_flags);
	void (*memory_release)(struct mdgpu_be *be, struct mdgpu_be_memory *mem);
	int (*kernel_create)(struct mdgpu_be *be, const uint32_t *words, uint32_t word_count,
			     const struct mdgpu_kernel_layout *layout,
			     struct mdgpu_be_kernel **out);
	void (*kernel_release)(struct mdgpu_be *be, struct mdgpu_be_kernel *kernel);
	int (*submit)(struct mdgpu_be *be, const struct mdgpu_job *job,
		      struct mdgpu_be_submission **out);
	int (*wait)(struct mdgpu_be *be, struct mdgpu_be_submission *sub, uint64_t timeout_ns);
	void (*complete)(struct mdgpu_be *be, struct mdgpu_be_submission *sub, int wait_result,
			 struct mdgpu_host_status *status);
	void (*submission_release)(struct mdgpu_be *be, struct mdgpu_be_submission *sub);
};

extern const struct mdgpu_backend_ops mdgpu_vulkan_ops;

/* Logging (stderr, "mdgpu-host: " prefix); MDGPU_HOST_LOG=quiet|info|debug, default info. */
enum mdgpu_log_level { MDGPU_LOG_ERROR = 0, MDGPU_LOG_INFO = 1, MDGPU_LOG_DEBUG = 2 };
void mdgpu_log(enum mdgpu_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Set the calling thread's mdgpu_host_last_error() message and return @code (a negative
 * errno), so that failures read `return mdgpu_error(-EINVAL, "...", ...);`.
 */
int mdgpu_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The current message, for a caller that adds context in front of it. */
const char *mdgpu_error_message(void);
/* Clear it (what every public function does first). */
void mdgpu_error_clear(void);

/* CLOCK_MONOTONIC in ns. */
uint64_t mdgpu_now_ns(void);

/**
 * struct mdgpu_kernel_limits - what a kernel's SPIR-V is checked against.
 * @legacy_bindings: >= 0: the module may use only storage buffers in set 0 below this binding
 *                   (contract 1.1 kernels; the layout is that many, whatever the module
 *                   uses); -1: its layout is what it declares (reflected)
 * @push_constant_size: bytes of push constants the caller declared
 * @api_version: the device's API version (which SPIR-V versions it takes)
 * @features: what the device enabled
 * @max_shared_memory_size: maxComputeSharedMemorySize
 * @max_workgroup_size: maxComputeWorkGroupSize
 * @max_workgroup_invocations: maxComputeWorkGroupInvocations
 * @max_sets: set numbers a kernel may use are below this (maxBoundDescriptorSets, clamped)
 * @max_storage: storage-buffer descriptors per kernel (maxPerStageDescriptorStorageBuffers,
 *               clamped), also at most maxDescriptorSetStorageBuffers
 * @max_uniform: uniform-buffer descriptors per kernel, likewise
 * @max_resources: both together (maxPerStageResources)
 */
struct mdgpu_kernel_limits {
	int32_t legacy_bindings;
	uint32_t push_constant_size;
	uint32_t api_version;
	struct mdgpu_feature_set features;
	uint32_t max_shared_memory_size;
	uint32_t max_workgroup_size[3];
	uint32_t max_workgroup_invocations;
	uint32_t max_sets;
	uint32_t max_storage;
	uint32_t max_uniform;
	uint32_t max_resources;
};

/**
 * struct mdgpu_kernel_iface - what mdgpu_spirv_check() found.
 * @entry: the entry point's name
 * @local_size: its workgroup size, after specialization
 * @bindings: @binding_count descriptor bindings (malloc'd; the caller frees), sorted by set,
 *            then binding; for a legacy kernel, its @legacy_bindings storage buffers
 */
struct mdgpu_kernel_iface {
	char entry[MDGPU_HOST_MAX_ENTRY_NAME + 1];
	uint32_t local_size[3];
	struct mdgpu_host_kernel_binding *bindings;
	uint32_t binding_count;
};

/**
 * mdgpu_spirv_check() - check a kernel's SPIR-V (spirv.c): linear pre-checks and device
 * limits (after @spec is applied), then spvValidate, then its interface against @lim.
 * @entry: the GLCompute entry point to use; NULL: the module must have exactly one
 * @spec: the checked specialization (entries sorted by id, unique, inside the data)
 * @out: what the module declares (on success)
 *
 * Touches no device state: safe to call from any thread, without locks.
 *
 * Return: 0 or -EINVAL / -E2BIG / -ENOMEM with mdgpu_error() set.
 */
int mdgpu_spirv_check(const uint32_t *words, uint32_t word_count,
		      const struct mdgpu_kernel_limits *lim, const char *entry,
		      const struct mdgpu_spec *spec, struct mdgpu_kernel_iface *out);

/* spvValidate for the Vulkan environment the module's version needs on @api_version (spirv.c). */
int mdgpu_spirv_validate(const uint32_t *words, uint32_t word_count, uint32_t api_version);

/* No NumWorkgroups push constants (struct mdgpu_kernel_layout.nwg_offset). */
#define MDGPU_NWG_NONE UINT32_MAX
/* Bytes of the NumWorkgroups value in push constants (a 3-component vector of 32-bit ints). */
#define MDGPU_NWG_SIZE 12u

/**
 * mdgpu_spirv_supply_num_workgroups() - make a kernel read NumWorkgroups from push constants
 * (spirv-rewrite.c), so that a range of a dispatch can be told the whole dispatch's count.
 * @words: a module mdgpu_spirv_check() accepted
 * @entry: its entry point's name
 * @offset: push-constant byte offset of the value: a multiple of 16 at or past the end of the
 *          kernel's push-constant block
 * @out: the rewritten module (malloc'd; the caller frees), when the return is 1
 *
 * The NumWorkgroups input becomes a Private variable that the entry point's function sets,
 * before anything else, from a member appended to the push-constant block (a new block when
 * there is none). The result must be validated again (mdgpu_spirv_validate()).
 *
 * Return: 0 the module does not read NumWorkgroups; 1 rewritten; -ENOTSUP it uses
 * NumWorkgroups, or its push-constant block, in a way this does not rewrite (@why says how,
 * no mdgpu_error() set); -ENOMEM.
 */
int mdgpu_spirv_supply_num_workgroups(const uint32_t *words, uint32_t word_count, const char *entry,
				      uint32_t offset, uint32_t **out, uint32_t *out_count,
				      const char **why);

#endif /* MDGPU_HOST_INTERNAL_H */
