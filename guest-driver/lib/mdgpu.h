/* SPDX-License-Identifier: MIT */
/*
 * libmdgpu: a thin C library over /dev/mdgpuN (include/uapi/mdgpu.h).
 *
 * Every function that can fail returns 0 or a negative errno value (never sets errno as its
 * result); mdgpu_strerror() explains one in terms of the device. The device's own definitions
 * come with it: the queue format (mdgpu_cmd.h) and the hardware interface and limits
 * (mdgpu_hw.h: kernel record flags, capability feature bits, the 1.3 limits).
 */
#ifndef LIBMDGPU_H
#define LIBMDGPU_H

#include <stddef.h>
#include <stdint.h>

#include "uapi/mdgpu.h"
#include "mdgpu_cmd.h"
#include "mdgpu_hw.h"

#ifdef __cplusplus
extern "C" {
#endif

/** MDGPU_DEFAULT_PATH: the first device node. */
#define MDGPU_DEFAULT_PATH "/dev/mdgpu0"

/** struct mdgpu: an open device: one device context (opaque). */
struct mdgpu;

/**
 * struct mdgpu_buffer - a buffer as libmdgpu tracks it
 * @handle: the driver's handle (valid in the struct mdgpu that created it)
 * @size: size in bytes, rounded up to the allocation granule
 * @offset: aperture offset, which is also the mmap offset
 * @map: the mapping from mdgpu_bo_map(), or NULL
 */
struct mdgpu_buffer {
	uint32_t handle;
	uint64_t size;
	uint64_t offset;
	void *map;
};

/**
 * mdgpu_open() - open a device node, creating a device context
 * @path: device node, NULL for MDGPU_DEFAULT_PATH
 * @out: receives the device
 *
 * Return: 0 or a negative errno (-ENOENT: no such node, -EMFILE: the device has no context
 * left, ...).
 */
int mdgpu_open(const char *path, struct mdgpu **out);

/**
 * mdgpu_close() - close the device: the driver frees every buffer of this context
 * @dev: the device, may be NULL
 *
 * Mappings made with mdgpu_bo_map() stay valid until unmapped; the buffers are freed on the
 * device only when the last of them is gone.
 */
void mdgpu_close(struct mdgpu *dev);

/**
 * mdgpu_fd() - the file descriptor of a device, for raw ioctls or mmap()
 * @dev: the device
 *
 * Return: the file descriptor (owned by @dev: do not close it).
 */
int mdgpu_fd(const struct mdgpu *dev);

/**
 * mdgpu_get_info() - device identity, contract version, aperture, quota and usage
 * @dev: the device
 * @info: receives the information
 *
 * Return: 0 or a negative errno.
 */
int mdgpu_get_info(struct mdgpu *dev, struct mdgpu_info *info);

/**
 * mdgpu_bo_create() - create a zeroed buffer
 * @dev: the device
 * @size: bytes, not 0 (rounded up to the allocation granule)
 * @align_log2: 0 (4 KiB) or MDGPU_BO_ALIGN_MIN_LOG2..MDGPU_BO_ALIGN_MAX_LOG2
 * @flags: 0, or MDGPU_BO_CACHED (contract 1.3): mapped write-back rather than write-combined
 * @bo: receives the buffer (not mapped)
 *
 * Return: 0, -EDQUOT (over the VM's quota), -ENOSPC (no free aperture range), -EMFILE (too
 * many buffers), -EINVAL (bad size, alignment or flags), ...
 */
int mdgpu_bo_create(struct mdgpu *dev, uint64_t size, uint32_t align_log2, uint32_t flags,
		    struct mdgpu_buffer *bo);

/**
 * mdgpu_bo_destroy() - free a buffer
 * @dev: the device that created it
 * @bo: the buffer
 *
 * Return: 0, -EBUSY while it is mapped (unmap it first), -ENOENT for a handle this device does
 * not own.
 */
int mdgpu_bo_destroy(struct mdgpu *dev, struct mdgpu_buffer *bo);

/**
 * mdgpu_bo_map() - map a whole buffer (read/write, shared; write-combined, or write-back if it
 * was created MDGPU_BO_CACHED) at @bo->map
 * @dev: the device that created it
 * @bo: the buffer; already mapped is not an error
 *
 * Return: 0 or a negative errno.
 */
int mdgpu_bo_map(struct mdgpu *dev, struct mdgpu_buffer *bo);

/**
 * mdgpu_bo_unmap() - undo mdgpu_bo_map()
 * @bo: the buffer; not mapped is not an error
 *
 * Return: 0 or a negative errno.
 */
int mdgpu_bo_unmap(struct mdgpu_buffer *bo);

/**
 * mdgpu_window_map() - map the trapped window page (MDGPU_WINDOW_SIZE bytes, uncached)
 * @dev: the device
 * @ptr: receives the mapping
 *
 * Every access to the page is a VM exit handled by the device. The window is device-wide:
 * the first file that maps or sets it owns it until it is closed.
 *
 * Return: 0, -EBUSY when another open file owns the window, or another negative errno.
 */
int mdgpu_window_map(struct mdgpu *dev, volatile void **ptr);

/**
 * mdgpu_window_unmap() - undo mdgpu_window_map()
 * @ptr: the mapping
 *
 * Return: 0 or a negative errno.
 */
int mdgpu_window_unmap(volatile void *ptr);

/**
 * mdgpu_window_set() - show one page of a buffer through the trapped window
 * @dev: the device
 * @offset: aperture offset, a multiple of MDGPU_WINDOW_SIZE, of a page inside a buffer of @dev
 *
 * Return: 0, -EINVAL (misaligned, or not inside a buffer of @dev), -EBUSY (another open file
 * owns the window), or another negative errno.
 */
int mdgpu_window_set(struct mdgpu *dev, uint64_t offset);

/* ---- Contract 1.1: queues, submissions, fences, kernels ---- */

/**
 * mdgpu_get_compute_info() - queue and kernel limits, interrupt and fence-wait counters
 * @dev: the device
 * @info: receives the information
 *
 * Return: 0 or a negative errno.
 */
int mdgpu_get_compute_info(struct mdgpu *dev, struct mdgpu_compute_info *info);

/**
 * mdgpu_mark() - write a phase marker the host can see (one trapped register write)
 * @dev: the device
 * @value: the marker (see guest-driver/README.md for the tools' values)
 *
 * Return: 0 or a negative errno.
 */
int mdgpu_mark(struct mdgpu *dev, uint32_t value);

/**
 * struct mdgpu_binding - one storage buffer of a DISPATCH
 * @handle: buffer handle (of the submitting device; the device checks it)
 * @pad: 0
 * @offset: byte offset in the buffer, a multiple of 4
 * @size: bytes, a multiple of 4
 */
struct mdgpu_binding {
	uint32_t handle;
	uint32_t pad;
	uint64_t offset;
	uint64_t size;
};

/**
 * struct mdgpu_submission - a submission being encoded
 * @data: the encoded bytes (owned; freed by mdgpu_sub_fini())
 * @len: bytes encoded so far
 * @cap: bytes allocated
 * @commands: commands after the SUBMIT header
 * @error: the first encoding failure (sticky), or 0
 *
 * Initialise with mdgpu_sub_init() (or zero it), start with mdgpu_sub_begin(), add commands,
 * publish with mdgpu_queue_submit(); begin again to reuse the memory. The encoder writes the
 * device's little-endian layouts (docs/device.md, "Commands") byte for byte, exactly as
 * src/vgpu/command-builder.ts does; it checks only what the encoding needs (lengths), so a
 * test can build submissions the device must refuse. The mdgpu_sub_*() adders return the
 * sticky error, so a sequence may be checked once at the end.
 */
struct mdgpu_submission {
	uint8_t *data;
	size_t len;
	size_t cap;
	unsigned int commands;
	int error;
};

/** mdgpu_sub_init() - an empty submission that owns no memory yet */
void mdgpu_sub_init(struct mdgpu_submission *s);

/** mdgpu_sub_fini() - free a submission's memory */
void mdgpu_sub_fini(struct mdgpu_submission *s);

/**
 * mdgpu_sub_begin() - start a submission: the SUBMIT header
 * @s: the submission (its previous contents are dropped)
 * @fence_handle: buffer of the completion fence, 0 for none
 * @fence_offset: its offset in the buffer, a multiple of 8
 * @fence_value: the value written on completion (with MDGPU_FENCE_ERROR set on failure)
 * @flags: MDGPU_CMD_FLAG_IRQ to raise the FENCE interrupt on completion (needed to wake a
 *	sleeping mdgpu_fence_wait() promptly), or 0
 *
 * Return: the sticky error (-ENOMEM).
 */
int mdgpu_sub_begin(struct mdgpu_submission *s, uint32_t fence_handle, uint64_t fence_offset,
		    uint64_t fence_value, uint32_t flags);

/**
 * mdgpu_sub_copy() - COPY @size bytes between buffers (any alignment since contract 1.3; 4-byte
 * aligned offsets and size before)
 */
int mdgpu_sub_copy(struct mdgpu_submission *s, uint32_t src_handle, uint64_t src_offset,
		   uint32_t dst_handle, uint64_t dst_offset, uint64_t size);

/** mdgpu_sub_fill() - FILL @size bytes with a 32-bit @value */
int mdgpu_sub_fill(struct mdgpu_submission *s, uint32_t handle, uint64_t offset, uint64_t size,
		   uint32_t value);

/**
 * mdgpu_sub_dispatch() - DISPATCH a kernel
 * @s: the submission
 * @kernel: kernel id from mdgpu_kernel_create()
 * @groups_x: workgroups in x (1..65535)
 * @groups_y: workgroups in y
 * @groups_z: workgroups in z
 * @bindings: @nbindings storage buffers, in binding order
 * @nbindings: as the kernel was created with
 * @push: @push_size bytes of push constants (may be NULL when 0)
 * @push_size: as the kernel was created with; padded to 8 in the command
 *
 * Return: the sticky error (-ENOMEM, -EINVAL for more than 16 bindings or 128 push bytes,
 * which no encoding can carry).
 */
int mdgpu_sub_dispatch(struct mdgpu_submission *s, uint32_t kernel, uint32_t groups_x,
		       uint32_t groups_y, uint32_t groups_z, const struct mdgpu_binding *bindings,
		       uint32_t nbindings, const void *push, uint32_t push_size);

/** mdgpu_sub_fence() - FENCE: write @value once everything before it completed */
int mdgpu_sub_fence(struct mdgpu_submission *s, uint32_t handle, uint64_t offset, uint64_t value,
		    uint32_t flags);

/** mdgpu_sub_wait() - WAIT until the u64 there is >= @value (0 timeout: the device's bound) */
int mdgpu_sub_wait(struct mdgpu_submission *s, uint32_t handle, uint64_t offset, uint64_t value,
		   uint64_t timeout_ns);

/** mdgpu_sub_timestamp() - TIMESTAMP: write the device time in ns (8-byte aligned offset) */
int mdgpu_sub_timestamp(struct mdgpu_submission *s, uint32_t handle, uint64_t offset);

/** mdgpu_sub_barrier() - BARRIER: order memory accesses before it against those after */
int mdgpu_sub_barrier(struct mdgpu_submission *s);

/** mdgpu_sub_nop() - NOP of @length bytes (a multiple of 8, at least 8) */
int mdgpu_sub_nop(struct mdgpu_submission *s, uint32_t length);

/**
 * mdgpu_sub_set_fence() - change the completion fence of a begun submission
 * @s: the submission
 * @fence_handle: as mdgpu_sub_begin()
 * @fence_offset: as mdgpu_sub_begin()
 * @fence_value: as mdgpu_sub_begin()
 * @flags: as mdgpu_sub_begin()
 *
 * For drivers that learn only when a submission is full whether it is the last of a batch.
 *
 * Return: the sticky error, or -EINVAL without mdgpu_sub_begin().
 */
int mdgpu_sub_set_fence(struct mdgpu_submission *s, uint32_t fence_handle, uint64_t fence_offset,
			uint64_t fence_value, uint32_t flags);

/**
 * struct mdgpu_descriptor - one descriptor of a DISPATCH2 or DISPATCH_INDIRECT (contract 1.3)
 * @set: descriptor set
 * @binding: binding in the set
 * @index: array element
 * @type: MDGPU_DESCRIPTOR_STORAGE_BUFFER or MDGPU_DESCRIPTOR_UNIFORM_BUFFER
 * @handle: buffer handle
 * @pad: 0
 * @offset: byte offset in the buffer (a multiple of the type's offset alignment)
 * @range: bytes the kernel sees, > 0
 */
struct mdgpu_descriptor {
	uint32_t set;
	uint32_t binding;
	uint32_t index;
	uint32_t type;
	uint32_t handle;
	uint32_t pad;
	uint64_t offset;
	uint64_t range;
};

/**
 * struct mdgpu_grid - the workgroups of a DISPATCH2
 * @base_x: first workgroup id in x (non-zero bases only for kernels created with
 *	MDGPU_KERNEL_FLAG_DISPATCH_BASE)
 * @base_y: first workgroup id in y
 * @base_z: first workgroup id in z
 * @groups_x: workgroups in x; a 0 in any count makes the command a no-op
 * @groups_y: workgroups in y
 * @groups_z: workgroups in z
 */
struct mdgpu_grid {
	uint32_t base_x, base_y, base_z;
	uint32_t groups_x, groups_y, groups_z;
};

/**
 * mdgpu_sub_dispatch2() - DISPATCH2 a kernel made by mdgpu_kernel_create2() (contract 1.3)
 * @s: the submission
 * @kernel: kernel id
 * @grid: the workgroups
 * @descriptors: @ndescriptors descriptors, each one the kernel declares
 * @ndescriptors: at most MDGPU_DISPATCH_MAX_DESCRIPTORS
 * @push: @push_size bytes of push constants (NULL when 0)
 * @push_size: as the kernel was created with; padded to 8 in the command
 *
 * Return: the sticky error (-ENOMEM, -EINVAL for more descriptors or push bytes than a
 * command can carry).
 */
int mdgpu_sub_dispatch2(struct mdgpu_submission *s, uint32_t kernel, const struct mdgpu_grid *grid,
			const struct mdgpu_descriptor *descriptors, uint32_t ndescriptors,
			const void *push, uint32_t push_size);

/**
 * mdgpu_sub_dispatch_indirect() - DISPATCH_INDIRECT: DISPATCH2 with base 0 and the three u32
 * group counts read from a buffer when the command is due (contract 1.3)
 * @s: the submission
 * @kernel: kernel id
 * @args_handle: buffer holding the counts
 * @args_offset: their offset, a multiple of 4
 * @descriptors: as mdgpu_sub_dispatch2()
 * @ndescriptors: as mdgpu_sub_dispatch2()
 * @push: as mdgpu_sub_dispatch2()
 * @push_size: as mdgpu_sub_dispatch2()
 *
 * Return: as mdgpu_sub_dispatch2().
 */
int mdgpu_sub_dispatch_indirect(struct mdgpu_submission *s, uint32_t kernel, uint32_t args_handle,
				uint64_t args_offset, const struct mdgpu_descriptor *descriptors,
				uint32_t ndescriptors, const void *push, uint32_t push_size);

/**
 * mdgpu_sub_update() - UPDATE: write @size bytes of inline data at @offset of a buffer, in order
 * with the other commands (contract 1.3)
 * @s: the submission
 * @handle: the buffer
 * @offset: a multiple of 4
 * @data: the bytes
 * @size: a multiple of 4, 1..MDGPU_UPDATE_MAX_BYTES; padded to 8 in the command
 *
 * Return: the sticky error (-ENOMEM, -EINVAL for a size no command can carry).
 */
int mdgpu_sub_update(struct mdgpu_submission *s, uint32_t handle, uint64_t offset, const void *data,
		     uint32_t size);

/**
 * mdgpu_sub_append() - append the commands of another submission (after its SUBMIT header)
 * @s: the submission, begun
 * @from: a begun submission whose commands are appended (its header is not)
 *
 * For drivers that record command streams ahead of time (a Vulkan command buffer) and join
 * them into submissions when they are submitted. A stream that does not fit leaves @s as it
 * was, so the caller can publish @s and begin another.
 *
 * Return: 0, -E2BIG when @s would exceed the device's size or command limits (@s unchanged,
 * no sticky error), the sticky error of @s or @from, or -EINVAL (@from not begun).
 */
int mdgpu_sub_append(struct mdgpu_submission *s, const struct mdgpu_submission *from);

/**
 * mdgpu_sub_end() - finish the submission: its length goes into the SUBMIT header
 * @s: the submission
 *
 * mdgpu_queue_submit() calls it; callers that only want the bytes call it themselves.
 *
 * Return: the sticky error, -EINVAL without mdgpu_sub_begin(), -E2BIG above 1 MiB or 4096
 * commands (the device's limits).
 */
int mdgpu_sub_end(struct mdgpu_submission *s);

/**
 * struct mdgpu_queue: a queue of a device, its buffer mapped (opaque). Not locked: one thread
 * publishes to a queue at a time (use a queue per thread).
 */
struct mdgpu_queue;

/** MDGPU_QUEUE_FORCE_DOORBELL: ring the doorbell after every submission (for comparison). */
#define MDGPU_QUEUE_FORCE_DOORBELL 0x1u

/**
 * struct mdgpu_queue_stats - what a queue did on the guest side
 * @submissions: submissions published
 * @bytes: bytes published
 * @doorbells: doorbells rung (MDGPU_IOCTL_QUEUE_DOORBELL: one trapped write each)
 * @space_waits: publications that had to wait for the device to free ring space
 */
struct mdgpu_queue_stats {
	uint64_t submissions;
	uint64_t bytes;
	uint64_t doorbells;
	uint64_t space_waits;
};

/**
 * mdgpu_queue_create() - create a queue with a ring of @ring_bytes
 * @dev: the device
 * @ring_bytes: a power of two, MDGPU_QUEUE_RING_MIN..MDGPU_QUEUE_RING_MAX
 * @priority: 0..MDGPU_QUEUE_PRIORITY_MAX
 * @out: receives the queue
 *
 * Allocates a buffer of MDGPU_QUEUE_CONTROL_SIZE + @ring_bytes, maps it and makes it a queue.
 *
 * Return: 0, -EINVAL (ring size or priority), -EMFILE (the device's queue limit), ...
 */
int mdgpu_queue_create(struct mdgpu *dev, uint64_t ring_bytes, uint32_t priority,
		       struct mdgpu_queue **out);

/**
 * mdgpu_queue_destroy() - stop the queue and free its buffer
 * @q: the queue, may be NULL
 *
 * Return: 0 or the first negative errno (everything is released regardless).
 */
int mdgpu_queue_destroy(struct mdgpu_queue *q);

/** mdgpu_queue_id() - the queue's id */
uint32_t mdgpu_queue_id(const struct mdgpu_queue *q);

/** mdgpu_queue_buffer() - the buffer holding the control block and the ring */
const struct mdgpu_buffer *mdgpu_queue_buffer(const struct mdgpu_queue *q);

/** mdgpu_queue_control() - the control block, as the device updates it */
const volatile struct mdgpu_queue_control *mdgpu_queue_control(const struct mdgpu_queue *q);

/** mdgpu_queue_set_flags() - MDGPU_QUEUE_FORCE_DOORBELL or 0 */
void mdgpu_queue_set_flags(struct mdgpu_queue *q, unsigned int flags);

/** mdgpu_queue_get_stats() - copy the queue's counters */
void mdgpu_queue_get_stats(const struct mdgpu_queue *q, struct mdgpu_queue_stats *stats);

/**
 * mdgpu_queue_write() - publish raw bytes into the ring
 * @q: the queue
 * @bytes: whole submissions (or, in tests, anything)
 * @len: a multiple of 8, at most the ring size
 *
 * Waits (spinning briefly, then sleeping in short steps, at most 10 s) until the device has
 * consumed enough of the ring, copies the bytes in at tail (wrapping around the end), then
 * publishes: a full fence, the store of tail, a full fence, the load of doorbell_needed, and
 * MDGPU_IOCTL_QUEUE_DOORBELL only if it is 1 (or the queue forces doorbells). The ring is
 * mapped write-combined, and x86 orders write-combined stores against nothing but fences, so
 * the first fence is what makes the bytes visible before tail.
 *
 * Return: 0, -EINVAL (length), -E2BIG (longer than the ring), -EIO (the device stopped the
 * ring: BAD_RING), -ETIMEDOUT (no room within 10 s), or the doorbell's errno.
 */
int mdgpu_queue_write(struct mdgpu_queue *q, const void *bytes, size_t len);

/**
 * mdgpu_queue_submit() - finish a submission (mdgpu_sub_end()) and publish it
 * @q: the queue
 * @s: the submission
 *
 * Return: as mdgpu_sub_end(), then as mdgpu_queue_write().
 */
int mdgpu_queue_submit(struct mdgpu_queue *q, struct mdgpu_submission *s);

/**
 * mdgpu_fence_read() - the current value of a fence in a mapped buffer
 * @bo: the buffer, mapped
 * @offset: the fence's offset, a multiple of 8
 */
uint64_t mdgpu_fence_read(const struct mdgpu_buffer *bo, uint64_t offset);

/**
 * mdgpu_fence_wait() - wait until a fence is >= @value
 * @dev: the device that owns @bo
 * @bo: the buffer holding the fence
 * @offset: the fence's offset, a multiple of 8
 * @value: the value to wait for (bit 63 clear)
 * @timeout_ns: longest wait
 *
 * If @bo is mapped, first spins on the fence for a short while (mdgpu_set_fence_spin(),
 * default 20 us), then sleeps in MDGPU_IOCTL_WAIT_FENCE, woken by the device's interrupt
 * (write fences one waits for with MDGPU_CMD_FLAG_IRQ).
 *
 * Fences are timelines: the wait ends when the fence, bit 63 masked off, is >= @value; with
 * bit 63 set, a submission at or after @value failed (MDGPU_IOCTL_WAIT_FENCE).
 *
 * Return: 0, -EIO (error fence: the submission failed), -ETIME (timeout), or another errno.
 */
int mdgpu_fence_wait(struct mdgpu *dev, const struct mdgpu_buffer *bo, uint64_t offset,
		     uint64_t value, uint64_t timeout_ns);

/**
 * mdgpu_fence_wait_kernel() - MDGPU_IOCTL_WAIT_FENCE only, no spinning
 * @dev: the device
 * @handle: buffer handle
 * @offset: fence offset
 * @value: value to wait for
 * @timeout_ns: longest wait
 * @seen: receives the fence's value when the wait ended (may be NULL)
 *
 * Return: as mdgpu_fence_wait().
 */
int mdgpu_fence_wait_kernel(struct mdgpu *dev, uint32_t handle, uint64_t offset, uint64_t value,
			    uint64_t timeout_ns, uint64_t *seen);

/** mdgpu_set_fence_spin() - how long mdgpu_fence_wait() spins before it sleeps, in ns */
void mdgpu_set_fence_spin(struct mdgpu *dev, uint64_t spin_ns);

/**
 * mdgpu_kernel_create() - create a compute kernel from SPIR-V
 * @dev: the device
 * @spirv: the module
 * @size: its size in bytes (a multiple of 4, at most MDGPU_KERNEL_MAX_SPIRV)
 * @bindings: storage buffers it binds (set 0, bindings 0..n-1)
 * @push_bytes: push-constant bytes it takes
 * @kernel: receives the kernel id
 *
 * Copies the module into a temporary buffer, which the device copies it out of.
 *
 * Return: 0, -EINVAL (refused: bad SPIR-V or arguments), -EOPNOTSUPP (no compute backend),
 * -EMFILE (the device's kernel limit), ...
 */
int mdgpu_kernel_create(struct mdgpu *dev, const void *spirv, size_t size, uint32_t bindings,
			uint32_t push_bytes, uint32_t *kernel);

/**
 * mdgpu_kernel_load() - mdgpu_kernel_create() from a file
 * @dev: the device
 * @path: a .spv file
 * @bindings: as mdgpu_kernel_create()
 * @push_bytes: as mdgpu_kernel_create()
 * @kernel: receives the kernel id
 *
 * Return: as mdgpu_kernel_create(), or the errno of reading the file.
 */
int mdgpu_kernel_load(struct mdgpu *dev, const char *path, uint32_t bindings, uint32_t push_bytes,
		      uint32_t *kernel);

/** mdgpu_kernel_destroy() - destroy a kernel of @dev */
int mdgpu_kernel_destroy(struct mdgpu *dev, uint32_t kernel);

/**
 * struct mdgpu_spec_constant - one specialization constant of a kernel (VkSpecializationMapEntry)
 * @constant_id: the SpecId in the SPIR-V
 * @offset: where its value starts in the specialization data
 * @size: 1, 2, 4 or 8 bytes
 */
struct mdgpu_spec_constant {
	uint32_t constant_id;
	uint32_t offset;
	uint32_t size;
};

/**
 * struct mdgpu_kernel_params - what mdgpu_kernel_create2() builds (contract 1.3)
 * @spirv: the module
 * @spirv_size: its size in bytes (a multiple of 4, at most MDGPU_KERNEL_MAX_SPIRV)
 * @entry: the entry point's name, NULL for "main"
 * @spec: @spec_count specialization constants (NULL when 0)
 * @spec_count: at most MDGPU_KERNEL_MAX_SPEC_ENTRIES
 * @spec_data: @spec_data_size bytes every constant lies in (NULL when 0)
 * @spec_data_size: at most MDGPU_KERNEL_MAX_SPEC_DATA
 * @push_bytes: push-constant bytes every dispatch passes (a multiple of 4)
 * @flags: MDGPU_KERNEL_FLAG_* (MDGPU_KERNEL_FLAG_DISPATCH_BASE)
 */
struct mdgpu_kernel_params {
	const void *spirv;
	size_t spirv_size;
	const char *entry;
	const struct mdgpu_spec_constant *spec;
	uint32_t spec_count;
	const void *spec_data;
	uint32_t spec_data_size;
	uint32_t push_bytes;
	uint32_t flags;
};

/**
 * mdgpu_kernel_create2() - create a compute kernel from a kernel record (contract 1.3)
 * @dev: the device
 * @params: the module, entry point, specialization, push constants and flags
 * @kernel: receives the kernel id (for DISPATCH2 and DISPATCH_INDIRECT)
 *
 * Writes the record (struct mdgpu_kernel_desc) and everything it names into a temporary
 * buffer, which the device copies out of; the kernel's descriptor layout is whatever its SPIR-V
 * declares. Sleeps until the device has built the kernel. Thread-safe.
 *
 * Return: 0, -EINVAL (refused: bad SPIR-V, entry point, specialization or arguments),
 * -EOPNOTSUPP (no compute backend, or a device before contract 1.3), -EAGAIN (throttled),
 * -EDQUOT, -EMFILE (the device's kernel limit), ...
 */
int mdgpu_kernel_create2(struct mdgpu *dev, const struct mdgpu_kernel_params *params,
			 uint32_t *kernel);

/**
 * mdgpu_kernel_record_size() - bytes mdgpu_kernel_record_write() needs for @params
 * @params: as mdgpu_kernel_create2()
 * @size: receives the size
 *
 * Return: 0, or -EINVAL for parameters no record can carry.
 */
int mdgpu_kernel_record_size(const struct mdgpu_kernel_params *params, size_t *size);

/**
 * mdgpu_kernel_record_write() - the contents of the buffer KERNEL_CREATE2 reads
 * @params: as mdgpu_kernel_create2()
 * @buf: where to write: the record (struct mdgpu_kernel_desc) at 0, then what it names at the
 *	offsets it gives (relative to @buf)
 * @size: bytes available at @buf
 *
 * For callers that keep their own staging buffer; mdgpu_kernel_create2() uses it.
 *
 * Return: 0, -EINVAL (as mdgpu_kernel_record_size()), -E2BIG (@size too small).
 */
int mdgpu_kernel_record_write(const struct mdgpu_kernel_params *params, void *buf, size_t size);

/**
 * mdgpu_caps_read() - the device's capability record (contract 1.3)
 * @dev: the device
 * @caps: receives the record (struct mdgpu_caps: little-endian fields, as on the guest CPU)
 *
 * Has the device write the record into a temporary buffer and copies it out. A device that
 * writes a longer record (a later version) has the fields this library knows copied; a shorter
 * one is refused.
 *
 * Return: 0, -EOPNOTSUPP (no record: a device before 1.3 or without a compute backend), -EIO (a
 * record shorter than struct mdgpu_caps or of another layout), or another negative errno.
 */
int mdgpu_caps_read(struct mdgpu *dev, struct mdgpu_caps *caps);

/**
 * mdgpu_submit_error_name() - the name of a submission error code
 * @code: MDGPU_SUBMIT_*, e.g. from the control block's error_code
 *
 * Return: "BAD_BUFFER" and the like, "?" for codes the table does not know.
 */
const char *mdgpu_submit_error_name(uint32_t code);

/**
 * mdgpu_strerror() - explain an error in terms of the device
 * @err: a negative (or positive) errno returned by libmdgpu
 *
 * Return: a static message.
 */
const char *mdgpu_strerror(int err);

/**
 * mdgpu_parse_size() - parse a size as the tools take it: "4096", "0x1000", "64K", "16M", "1GiB"
 * @s: the text
 * @out: the size in bytes
 *
 * Return: 0, or -EINVAL for anything else (including overflowing units).
 */
int mdgpu_parse_size(const char *s, uint64_t *out);

/**
 * mdgpu_errname() - the symbolic name of an errno
 * @err: a negative (or positive) errno
 *
 * Return: "EDQUOT" and the like, "0" for 0, "E?" for numbers the table does not know.
 */
const char *mdgpu_errname(int err);

#ifdef __cplusplus
}
#endif

#endif /* LIBMDGPU_H */
