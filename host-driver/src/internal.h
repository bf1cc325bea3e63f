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

/* Optional device features a kernel's SPIR-V capabilities may need (mdgpu_be_caps). */
#define MDGPU_FEAT_INT64 (1u << 0)
#define MDGPU_FEAT_FLOAT64 (1u << 1)
#define MDGPU_FEAT_INT16 (1u << 2)
/* Subgroup operations supported in compute, bits 8..15 (VkSubgroupFeatureFlagBits << 8). */
#define MDGPU_FEAT_SUBGROUP_SHIFT 8

/**
 * struct mdgpu_job_cmd - a checked command with its handles resolved to backend objects.
 * @cmd: the caller's command
 * @mem: COPY: source and destination; FILL, TIMESTAMP: @mem[0]
 * @kernel: DISPATCH: the kernel
 * @bindings: DISPATCH: the kernel's bindings (cmd->u.dispatch.binding_count of them)
 * @binding_mem: DISPATCH: the memory of each binding
 * @push: DISPATCH: the push constants (cmd->u.dispatch.push_size bytes)
 */
struct mdgpu_job_cmd {
	const struct mdgpu_host_cmd *cmd;
	struct mdgpu_be_memory *mem[2];
	struct mdgpu_be_kernel *kernel;
	const struct mdgpu_host_binding *bindings;
	struct mdgpu_be_memory *const *binding_mem;
	const void *push;
};

/**
 * struct mdgpu_job - a checked submission.
 * @cmds: @cmd_count commands
 * @dispatch_count: DISPATCH commands in @cmds
 * @binding_total: sum of their binding counts
 * @timestamp_count: TIMESTAMP commands in @cmds
 */
struct mdgpu_job {
	const struct mdgpu_job_cmd *cmds;
	uint32_t cmd_count;
	uint32_t dispatch_count;
	uint32_t binding_total;
	uint32_t timestamp_count;
};

/**
 * struct mdgpu_backend_ops - one execution backend (ivpu_hw_ops style).
 * @name: "vulkan"
 * @enumerate: describe device @index; -ENOENT past the end, -ENODEV without a usable API
 * @open: open the device @selector names (see mdgpu_host_device_open()); fill @info and
 *        @features (MDGPU_FEAT_*)
 * @close: wait for the device to go idle and release it (every object is released already)
 * @memory_import: make @size bytes at @ptr usable; @flags may ask for STAGED; set
 *                 *@out_flags to STAGED or ZERO_COPY
 * @memory_release: release an imported memory no submission uses any more
 * @kernel_create: build a kernel from checked SPIR-V with entry point @entry (without the
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
	int (*open)(const char *selector, uint32_t flags, struct mdgpu_be **out,
		    struct mdgpu_host_device_info *info, uint32_t *features);
	void (*close)(struct mdgpu_be *be);
	int (*memory_import)(struct mdgpu_be *be, void *ptr, uint64_t size, uint32_t flags,
			     struct mdgpu_be_memory **out, uint32_t *out_flags);
	void (*memory_release)(struct mdgpu_be *be, struct mdgpu_be_memory *mem);
	int (*kernel_create)(struct mdgpu_be *be, const uint32_t *words, uint32_t word_count,
			     const char *entry, uint32_t binding_count, uint32_t push_size,
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

/* CLOCK_MONOTONIC in ns. */
uint64_t mdgpu_now_ns(void);

/**
 * struct mdgpu_kernel_limits - what a kernel's SPIR-V is checked against.
 * @binding_count: storage buffers the caller declared (set 0, bindings 0..count-1)
 * @push_constant_size: bytes of push constants the caller declared
 * @api_version: the device's API version (which SPIR-V versions it takes)
 * @features: MDGPU_FEAT_* the device has enabled
 * @max_shared_memory_size: maxComputeSharedMemorySize
 * @max_workgroup_size: maxComputeWorkGroupSize
 * @max_workgroup_invocations: maxComputeWorkGroupInvocations
 */
struct mdgpu_kernel_limits {
	uint32_t binding_count;
	uint32_t push_constant_size;
	uint32_t api_version;
	uint32_t features;
	uint32_t max_shared_memory_size;
	uint32_t max_workgroup_size[3];
	uint32_t max_workgroup_invocations;
};

/**
 * mdgpu_spirv_check() - check a kernel's SPIR-V (spirv.c): linear pre-checks and device
 * limits, then spvValidate, then its interface against @lim.
 * @entry: receives the GLCompute entry point's name
 *
 * Touches no device state: safe to call from any thread, without locks.
 *
 * Return: 0 or -EINVAL / -E2BIG / -ENOMEM with mdgpu_error() set.
 */
int mdgpu_spirv_check(const uint32_t *words, uint32_t word_count,
		      const struct mdgpu_kernel_limits *lim, char *entry, size_t entry_size);

#endif /* MDGPU_HOST_INTERNAL_H */
