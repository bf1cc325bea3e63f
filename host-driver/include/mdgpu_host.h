/* SPDX-License-Identifier: MIT */
/*
 * mdgpu host driver: executes validated compute work on the host's GPU (or on the CPU through
 * Mesa lavapipe) on behalf of mdgpu. This header is the whole ABI of libmdgpu-host.so.
 *
 * Who calls it: mdgpu's TypeScript process through koffi (src/backend/host-driver.ts), the C
 * tests and the native benchmark. mdgpu has already validated the guest's intent (which memory
 * a command may touch, which kernel it may run); the library still checks every handle, range
 * and size it is given and answers a bad one with a negative errno, never with a crash.
 *
 * Conventions:
 * - Every function returning int32_t returns 0 (or a documented positive value) on success and
 *   a negative errno on failure: -EINVAL (malformed argument), -ENOENT (unknown or destroyed
 *   handle), -ENODEV (no such device, or no Vulkan), -ENOMEM, -E2BIG (over a device limit),
 *   -EAGAIN (too many submissions not yet collected; or poll: not done yet), -ETIMEDOUT (wait),
 *   -ENOTSUP (the device lacks a feature), -EIO (the backend failed, e.g. device lost).
 *   mdgpu_host_last_error() then describes the failure in words.
 * - Handles are nonzero uint32_t values; 0 is never a valid handle. A destroyed handle is
 *   rejected (-ENOENT): handles carry a generation, so a stale one does not name a new object.
 * - Sizes and offsets are in bytes; times are in nanoseconds.
 * - All functions are thread-safe. mdgpu_host_wait() blocks only its own thread and does not
 *   hold the device lock while it waits, so another thread may submit or poll meanwhile.
 * - Structs have fixed-width fields and explicit padding (pad fields must be zero); their
 *   layouts are checked by static assertions in the library and by the TypeScript tests.
 */
#ifndef MDGPU_HOST_H
#define MDGPU_HOST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MDGPU_HOST_BUILD)
#define MDGPU_HOST_API __attribute__((visibility("default")))
#else
#define MDGPU_HOST_API
#endif

/*
 * ABI version: major in the high 16 bits, minor in the low 16. A caller accepts a library with
 * the same major and a minor at least the one it was written for.
 */
#define MDGPU_HOST_ABI_MAJOR 2u
#define MDGPU_HOST_ABI_MINOR 2u
#define MDGPU_HOST_ABI_VERSION ((MDGPU_HOST_ABI_MAJOR << 16) | MDGPU_HOST_ABI_MINOR)

/* Limits the library enforces on every device (a device may report lower ones in its info). */
#define MDGPU_HOST_MAX_BINDINGS 16u /* storage buffers per kernel */
#define MDGPU_HOST_MAX_PUSH_CONSTANTS 128u /* bytes of push constants per kernel */
#define MDGPU_HOST_MAX_SPIRV_WORDS (1u << 20) /* 4 MiB of SPIR-V */
#define MDGPU_HOST_MAX_COMMANDS 4096u /* commands per submission */
#define MDGPU_HOST_MAX_INFLIGHT 256u /* submissions not yet collected, per device */

/*
 * Limits on a kernel's SPIR-V, checked in one linear pass before the module is validated (see
 * mdgpu_host_kernel_create()). They bound the work of validating and compiling a module that
 * a guest wrote to be expensive; real compute kernels stay far below them.
 */
/* Structs and arrays nested in one type (a struct of an array of a struct is 3). */
#define MDGPU_HOST_MAX_TYPE_DEPTH 16u
/*
 * Member paths one type expands to, following struct members into structs and arrays into
 * their element type (an array counts once, whatever its length): a struct of 3 floats has 3,
 * a struct of 4 such structs 12. SPIRV-Tools walks every path of a type for every variable
 * and for every load or store of it, without memoisation.
 */
#define MDGPU_HOST_MAX_TYPE_PATHS 256u
/*
 * Member paths the validator walks over the whole module, estimated as the module is read:
 * each variable counts its type's paths x (depth + 4) x 8 (its layout check), each other
 * instruction the paths of the types it names and of the values it uses (a pointer counts
 * what it points to); types of one path count nothing. About a quarter of a second of
 * validation at this limit; ordinary kernels count a few hundred.
 */
#define MDGPU_HOST_MAX_MODULE_PATHS (1u << 22)
/*
 * Bytes of Private and Function variables (arrays, mostly) of one invocation, summed over the
 * module. Every invocation has its own copy (GPUs spill it to scratch memory): on lavapipe,
 * 1024 invocations of a 16 KiB array cost ~200 MiB, of a 64 KiB one ~580 MiB and 10 s per
 * workgroup, of a 1 MiB one over 4 GiB.
 */
#define MDGPU_HOST_MAX_PRIVATE_SIZE 16384u

/**
 * enum mdgpu_host_device_type - kind of device (the Vulkan numbering).
 * @MDGPU_HOST_DEVICE_OTHER: anything else
 * @MDGPU_HOST_DEVICE_INTEGRATED: a GPU sharing memory with the CPU
 * @MDGPU_HOST_DEVICE_DISCRETE: a GPU with its own memory
 * @MDGPU_HOST_DEVICE_VIRTUAL: a GPU of a virtual machine
 * @MDGPU_HOST_DEVICE_CPU: a software implementation (Mesa lavapipe)
 */
enum mdgpu_host_device_type {
	MDGPU_HOST_DEVICE_OTHER = 0,
	MDGPU_HOST_DEVICE_INTEGRATED = 1,
	MDGPU_HOST_DEVICE_DISCRETE = 2,
	MDGPU_HOST_DEVICE_VIRTUAL = 3,
	MDGPU_HOST_DEVICE_CPU = 4,
};

/* mdgpu_host_device_info.flags */
#define MDGPU_HOST_DEVICE_HOST_IMPORT (1u << 0) /* VK_EXT_external_memory_host: zero-copy imports */
#define MDGPU_HOST_DEVICE_ROBUST_ACCESS \
	(1u << 1) /* robustBufferAccess on (how far it confines a kernel: device_info.robustness) */
#define MDGPU_HOST_DEVICE_TIMESTAMPS \
	(1u << 2) /* the compute queue has timestamps: TIMESTAMP and device times work */
#define MDGPU_HOST_DEVICE_CPU_TIMESTAMPS \
	(1u                              \
	 << 3) /* TIMESTAMP values are converted to ns by the CPU at completion (see MDGPU_HOST_OP_TIMESTAMP) */

/**
 * enum mdgpu_host_robustness - what a kernel's out-of-bounds buffer access can touch.
 * @MDGPU_HOST_ROBUSTNESS_NONE: anything (undefined behaviour): the device lacks
 *                              robustBufferAccess
 * @MDGPU_HOST_ROBUSTNESS_BUFFER_ACCESS: robustBufferAccess: an access outside a binding stays
 *                                       inside the VkBuffer it is a range of (for a zero-copy
 *                                       import, the whole imported memory): reads return
 *                                       values from anywhere in it or zero, writes may land
 *                                       anywhere in it
 * @MDGPU_HOST_ROBUSTNESS_BUFFER_ACCESS_2: VK_EXT_robustness2 robustBufferAccess2: an access
 *                                         outside a binding's range (rounded up to
 *                                         robust_access_alignment) reads zero and writes
 *                                         nothing
 */
enum mdgpu_host_robustness {
	MDGPU_HOST_ROBUSTNESS_NONE = 0,
	MDGPU_HOST_ROBUSTNESS_BUFFER_ACCESS = 1,
	MDGPU_HOST_ROBUSTNESS_BUFFER_ACCESS_2 = 2,
};

/**
 * struct mdgpu_host_device_info - what a device is and what it can do.
 * @name: device name, NUL-terminated (e.g. "llvmpipe (LLVM 15.0.6, 256 bits)")
 * @driver_name: driver name, NUL-terminated (e.g. "llvmpipe")
 * @driver_info: driver version text, NUL-terminated (e.g. "Mesa 22.3.6 (LLVM 15.0.6)")
 * @backend: backend name, NUL-terminated ("vulkan")
 * @index: index of the device in mdgpu_host_enumerate() order
 * @device_type: enum mdgpu_host_device_type
 * @vendor_id: PCI vendor ID (or a driver-defined value)
 * @device_id: PCI device ID (or a driver-defined value)
 * @api_version: backend API version; for Vulkan major << 22 | minor << 12 | patch
 * @driver_version: driver version, driver-specific encoding
 * @flags: MDGPU_HOST_DEVICE_* bits
 * @max_push_constant_size: bytes of push constants a kernel may declare
 * @max_bindings: storage buffers a kernel may declare
 * @max_workgroup_count: largest group count per dispatch dimension
 * @max_workgroup_size: largest local size per dimension
 * @max_workgroup_invocations: largest product of the local size
 * @timestamp_valid_bits: meaningful low bits of a device timestamp (0: none)
 * @timestamp_period_ns: nanoseconds per device timestamp tick
 * @min_import_alignment: alignment of pointer and size for a zero-copy import
 *                        (minImportedHostPointerAlignment); 0 without HOST_IMPORT
 * @min_binding_alignment: alignment of a binding's offset (minStorageBufferOffsetAlignment)
 * @max_binding_size: largest binding size (maxStorageBufferRange)
 * @max_memory_size: largest single memory object (maxMemoryAllocationSize)
 * @max_shared_memory_size: bytes of Workgroup (shared) variables a kernel may declare
 *                          (maxComputeSharedMemorySize)
 * @robustness: enum mdgpu_host_robustness: what the device enables
 * @robust_access_alignment: with ROBUSTNESS_BUFFER_ACCESS_2, the granularity in bytes to which
 *                           a binding's range is rounded up for the bounds check
 *                           (robustStorageBufferAccessSizeAlignment: 1 or 4); else 0
 * @max_kernel_private_size: MDGPU_HOST_MAX_PRIVATE_SIZE
 * @max_kernel_type_depth: MDGPU_HOST_MAX_TYPE_DEPTH
 * @max_kernel_type_paths: MDGPU_HOST_MAX_TYPE_PATHS
 * @max_kernel_module_paths: MDGPU_HOST_MAX_MODULE_PATHS
 * @reserved: zero; room for fields of later minor versions
 */
struct mdgpu_host_device_info {
	char name[256];
	char driver_name[256];
	char driver_info[256];
	char backend[16];
	uint32_t index;
	uint32_t device_type;
	uint32_t vendor_id;
	uint32_t device_id;
	uint32_t api_version;
	uint32_t driver_version;
	uint32_t flags;
	uint32_t max_push_constant_size;
	uint32_t max_bindings;
	uint32_t max_workgroup_count[3];
	uint32_t max_workgroup_size[3];
	uint32_t max_workgroup_invocations;
	uint32_t timestamp_valid_bits;
	float timestamp_period_ns;
	uint64_t min_import_alignment;
	uint64_t min_binding_alignment;
	uint64_t max_binding_size;
	uint64_t max_memory_size;
	uint32_t max_shared_memory_size;
	uint32_t robustness;
	uint32_t robust_access_alignment;
	uint32_t max_kernel_private_size;
	uint32_t max_kernel_type_depth;
	uint32_t max_kernel_type_paths;
	uint32_t max_kernel_module_paths;
	uint32_t reserved[19];
};

/* mdgpu_host_device_open() flags */
/*
 * Convert TIMESTAMP values on the CPU at completion even where the device tick is 1 ns (where
 * it is not, the library always does). For tests of that path.
 */
#define MDGPU_HOST_OPEN_CPU_TIMESTAMPS (1u << 0)

/* mdgpu_host_memory_import*() flags, and mdgpu_host_memory_info.flags */
#define MDGPU_HOST_MEMORY_STAGED \
	(1u << 0) /* not zero copy: a device buffer with staging copies (import flag: force it) */
#define MDGPU_HOST_MEMORY_ZERO_COPY \
	(1u << 1) /* info only: the device reads and writes the host memory itself */
#define MDGPU_HOST_MEMORY_FD_MAPPED \
	(1u << 2) /* info only: imported from an fd, mapped by the library */

/**
 * struct mdgpu_host_memory_info - an imported memory object.
 * @size: size in bytes
 * @host_address: address of the host memory the object stands for (the caller's pointer, or
 *                the library's own mapping of an fd)
 * @flags: MDGPU_HOST_MEMORY_* bits; exactly one of STAGED and ZERO_COPY is set
 * @pad: zero
 */
struct mdgpu_host_memory_info {
	uint64_t size;
	uint64_t host_address;
	uint32_t flags;
	uint32_t pad;
};

/**
 * enum mdgpu_host_op - command opcodes of struct mdgpu_host_cmd.
 * @MDGPU_HOST_OP_COPY: copy @u.copy.size bytes between memory ranges (they must not overlap)
 * @MDGPU_HOST_OP_FILL: fill a range with a 32-bit value; offset and size multiples of 4
 * @MDGPU_HOST_OP_DISPATCH: run a kernel over a grid of workgroups
 * @MDGPU_HOST_OP_BARRIER: every earlier command's memory writes (kernels and transfers) are
 *                         visible to every later command
 * @MDGPU_HOST_OP_TIMESTAMP: write the device time (u64, ns) when every earlier command has
 *                           completed to 8 bytes at an 8-aligned offset. The value is written
 *                           by the device in the command stream where the device tick is 1 ns
 *                           (lavapipe and many GPUs); otherwise (flag DEVICE_CPU_TIMESTAMPS) it
 *                           is converted and written by the CPU when the submission completes,
 *                           so later commands of the same batch do not see it.
 *
 * Commands run in order of submission only as far as BARRIER commands say: like Vulkan, two
 * commands without a BARRIER between them may overlap.
 */
enum mdgpu_host_op {
	MDGPU_HOST_OP_COPY = 1,
	MDGPU_HOST_OP_FILL = 2,
	MDGPU_HOST_OP_DISPATCH = 3,
	MDGPU_HOST_OP_BARRIER = 4,
	MDGPU_HOST_OP_TIMESTAMP = 5,
};

/**
 * struct mdgpu_host_cmd_copy - MDGPU_HOST_OP_COPY arguments.
 * @src_mem: source memory handle
 * @dst_mem: destination memory handle (may equal @src_mem if the ranges do not overlap)
 * @src_offset: source offset
 * @dst_offset: destination offset
 * @size: bytes to copy, > 0
 */
struct mdgpu_host_cmd_copy {
	uint32_t src_mem;
	uint32_t dst_mem;
	uint64_t src_offset;
	uint64_t dst_offset;
	uint64_t size;
};

/**
 * struct mdgpu_host_cmd_fill - MDGPU_HOST_OP_FILL arguments.
 * @mem: memory handle
 * @value: 32-bit pattern written to every word
 * @offset: offset, a multiple of 4
 * @size: bytes, a multiple of 4, > 0
 */
struct mdgpu_host_cmd_fill {
	uint32_t mem;
	uint32_t value;
	uint64_t offset;
	uint64_t size;
};

/**
 * struct mdgpu_host_cmd_dispatch - MDGPU_HOST_OP_DISPATCH arguments.
 * @kernel: kernel handle
 * @group_count_x: workgroups in x (0 runs nothing)
 * @group_count_y: workgroups in y
 * @group_count_z: workgroups in z
 * @first_binding: index of the first of the kernel's bindings in the submission's binding array
 * @binding_count: must equal the kernel's binding count; binding i of the kernel is
 *                 bindings[@first_binding + i]
 * @push_offset: offset of the push constants in the submission's push data
 * @push_size: must equal the kernel's push-constant size
 */
struct mdgpu_host_cmd_dispatch {
	uint32_t kernel;
	uint32_t group_count_x;
	uint32_t group_count_y;
	uint32_t group_count_z;
	uint32_t first_binding;
	uint32_t binding_count;
	uint32_t push_offset;
	uint32_t push_size;
};

/**
 * struct mdgpu_host_cmd_timestamp - MDGPU_HOST_OP_TIMESTAMP arguments.
 * @mem: memory handle
 * @pad: zero
 * @offset: offset of the u64 written, a multiple of 8
 */
struct mdgpu_host_cmd_timestamp {
	uint32_t mem;
	uint32_t pad;
	uint64_t offset;
};

/**
 * struct mdgpu_host_cmd - one command of a submission (40 bytes).
 * @op: enum mdgpu_host_op
 * @flags: zero
 * @u: arguments of @op (BARRIER has none; leave them zero)
 */
struct mdgpu_host_cmd {
	uint32_t op;
	uint32_t flags;
	union {
		struct mdgpu_host_cmd_copy copy;
		struct mdgpu_host_cmd_fill fill;
		struct mdgpu_host_cmd_dispatch dispatch;
		struct mdgpu_host_cmd_timestamp timestamp;
	} u;
};

/**
 * struct mdgpu_host_binding - a storage buffer bound to a kernel (24 bytes).
 * @mem: memory handle
 * @pad: zero
 * @offset: offset into the memory, a multiple of the device's min_binding_alignment
 * @size: bytes visible to the kernel, > 0 and at most max_binding_size
 */
struct mdgpu_host_binding {
	uint32_t mem;
	uint32_t pad;
	uint64_t offset;
	uint64_t size;
};

/* mdgpu_host_status.flags */
#define MDGPU_HOST_STATUS_DEVICE_TIME \
	(1u << 0) /* device_begin_ns, device_end_ns and device_ns are valid */

/**
 * struct mdgpu_host_status - outcome of a completed submission (56 bytes).
 * @submission: the submission id
 * @result: 0, or a negative errno: -EIO when the device failed to run it (e.g. device lost)
 * @flags: MDGPU_HOST_STATUS_* bits
 * @device_begin_ns: device time when the batch began (device clock, ns)
 * @device_end_ns: device time when the batch ended
 * @device_ns: @device_end_ns - @device_begin_ns: time the device spent on the batch
 * @submit_ns: CLOCK_MONOTONIC when the batch was submitted
 * @complete_ns: CLOCK_MONOTONIC when the library first saw it complete
 */
struct mdgpu_host_status {
	uint64_t submission;
	int32_t result;
	uint32_t flags;
	uint64_t device_begin_ns;
	uint64_t device_end_ns;
	uint64_t device_ns;
	uint64_t submit_ns;
	uint64_t complete_ns;
};

/** mdgpu_host_abi_version() - MDGPU_HOST_ABI_VERSION of the library. */
MDGPU_HOST_API uint32_t mdgpu_host_abi_version(void);

/**
 * mdgpu_host_last_error() - description of the last failure on the calling thread.
 *
 * Return: a NUL-terminated message such as "kernel_create: SPIR-V invalid: ...", valid until
 * the thread's next call into the library; "" if the last call succeeded.
 */
MDGPU_HOST_API const char *mdgpu_host_last_error(void);

/**
 * mdgpu_host_enumerate() - describe the device at @index without opening it.
 * @index: 0, 1, ... in the backend's order
 * @info: filled on success
 *
 * Return: 0; -ENOENT past the last device; -ENODEV when no backend is usable (no Vulkan loader
 * or driver).
 */
MDGPU_HOST_API int32_t mdgpu_host_enumerate(uint32_t index, struct mdgpu_host_device_info *info);

/**
 * mdgpu_host_device_open() - open a device and create a context on it.
 * @selector: NULL or "" for the default (the first discrete GPU, else integrated, virtual,
 *            then CPU: Mesa lavapipe when there is no GPU); a decimal index ("1"); or a
 *            case-insensitive substring of the device name ("llvmpipe", "radeon")
 * @flags: MDGPU_HOST_OPEN_* bits
 * @out_device: receives the device handle
 *
 * Logs one line naming the device chosen (stderr, see MDGPU_HOST_LOG in the README).
 *
 * Return: 0; -ENODEV when nothing matches or Vulkan is unusable; -EINVAL for unknown flags.
 */
MDGPU_HOST_API int32_t mdgpu_host_device_open(const char *selector, uint32_t flags,
					      uint32_t *out_device);

/** mdgpu_host_device_info() - describe an open device. Return: 0 or -ENOENT. */
MDGPU_HOST_API int32_t mdgpu_host_device_info(uint32_t device, struct mdgpu_host_device_info *info);

/**
 * mdgpu_host_device_destroy() - close a device and every object made on it.
 *
 * The handle is invalid at once. The device itself is released when the last call still
 * using it (e.g. a wait on another thread) returns; submissions in flight are waited for.
 *
 * Return: 0 or -ENOENT.
 */
MDGPU_HOST_API int32_t mdgpu_host_device_destroy(uint32_t device);

/**
 * mdgpu_host_memory_import() - make host memory usable by commands.
 * @device: device handle
 * @ptr: start of the memory (e.g. inside mdgpu's mmapped aperture memfd)
 * @size: bytes, > 0
 * @flags: 0, or MDGPU_HOST_MEMORY_STAGED to refuse zero copy
 * @out_mem: receives the memory handle
 *
 * With VK_EXT_external_memory_host and @ptr and @size aligned to min_import_alignment, the
 * device uses the memory itself (ZERO_COPY). Otherwise the library makes a device buffer of
 * @size bytes and logs why: each submission then copies the ranges its commands use from the
 * host memory before it runs and back after it completes (STAGED); staged submissions wait
 * for earlier ones.
 *
 * The memory must stay mapped until the handle is destroyed and every submission that used
 * it has completed.
 *
 * Return: 0; -EINVAL (NULL @ptr, zero @size, unknown flags); -E2BIG (over max_memory_size);
 * -ENOMEM; -ENOENT.
 */
MDGPU_HOST_API int32_t mdgpu_host_memory_import(uint32_t device, void *ptr, uint64_t size,
						uint32_t flags, uint32_t *out_mem);

/**
 * mdgpu_host_memory_import_fd() - import @size bytes of a file at @offset (e.g. a memfd).
 * @fd: file descriptor; the library mmaps it MAP_SHARED read-write and does not keep or close
 *      @fd (the mapping keeps the file alive until the handle is destroyed)
 * @offset: a multiple of the page size
 * @size: bytes, > 0; the file must be at least @offset + @size long
 *
 * As mdgpu_host_memory_import() otherwise; the library unmaps when the memory is released.
 *
 * Return: as mdgpu_host_memory_import(), plus -EBADF or another mmap errno.
 */
MDGPU_HOST_API int32_t mdgpu_host_memory_import_fd(uint32_t device, int32_t fd, uint64_t offset,
						   uint64_t size, uint32_t flags,
						   uint32_t *out_mem);

/** mdgpu_host_memory_info() - describe an imported memory. Return: 0 or -ENOENT. */
MDGPU_HOST_API int32_t mdgpu_host_memory_info(uint32_t device, uint32_t mem,
					      struct mdgpu_host_memory_info *info);

/**
 * mdgpu_host_memory_destroy() - forget a memory handle.
 *
 * Submissions already made with it still complete; the device objects (and the library's
 * mapping of an fd import) are released after the last of them.
 *
 * Return: 0 or -ENOENT.
 */
MDGPU_HOST_API int32_t mdgpu_host_memory_destroy(uint32_t device, uint32_t mem);

/**
 * mdgpu_host_kernel_create() - make a compute kernel from SPIR-V.
 * @device: device handle
 * @words: SPIR-V module, @word_count 32-bit words
 * @word_count: at most MDGPU_HOST_MAX_SPIRV_WORDS
 * @binding_count: storage buffers the kernel uses, in descriptor set 0 at bindings
 *                 0..@binding_count-1 (at most max_bindings)
 * @push_constant_size: bytes of push constants, a multiple of 4, at most max_push_constant_size
 * @out_kernel: receives the kernel handle
 *
 * Checked in three steps, all before the driver sees the module:
 * 1. One linear walk (fast whatever the module holds): every instruction's length and every
 *    id the walk uses; types made only of types defined before them, nested at most
 *    MDGPU_HOST_MAX_TYPE_DEPTH deep, expanding to at most MDGPU_HOST_MAX_TYPE_PATHS member
 *    paths, at most MDGPU_HOST_MAX_MODULE_PATHS walked in all; capabilities the device has
 *    enabled; and the device's limits: every LocalSize, LocalSizeId and BuiltIn WorkgroupSize
 *    constant within max_workgroup_size per dimension and max_workgroup_invocations in all
 *    (0 is refused too); Workgroup variables at most max_shared_memory_size
 *    bytes in all (natural sizes, 3-vectors as 4-vectors, each variable rounded up to 16);
 *    Private and Function variables at most MDGPU_HOST_MAX_PRIVATE_SIZE bytes in all.
 * 2. SPIRV-Tools validation for the Vulkan environment the module's version needs (1.1 for
 *    SPIR-V 1.3 and older).
 * 3. The interface: one GLCompute entry point; resources only storage buffers in set 0 below
 *    @binding_count and one push-constant block no larger than @push_constant_size.
 * The compute pipeline is then built once, here. The device lock is not held while the
 * module is checked and compiled: submissions, polls and other kernel creations on the same
 * device (from other threads) go on meanwhile.
 *
 * Return: 0; -EINVAL (invalid SPIR-V or a mismatch, see mdgpu_host_last_error()); -E2BIG (over
 * a limit above, or a size argument over its maximum); -ENOENT; -ENOMEM; -EIO (the driver
 * refused the pipeline).
 */
MDGPU_HOST_API int32_t mdgpu_host_kernel_create(uint32_t device, const uint32_t *words,
						uint32_t word_count, uint32_t binding_count,
						uint32_t push_constant_size, uint32_t *out_kernel);

/**
 * mdgpu_host_kernel_create_errbuf() - mdgpu_host_kernel_create() that also copies the failure's
 * description into @error.
 * @error: receives the NUL-terminated text mdgpu_host_last_error() would return ("" on
 *         success), truncated to @error_size bytes; may be NULL when @error_size is 0
 *
 * For callers that run the call on a worker thread (koffi's async calls), where the thread's
 * last error cannot be read afterwards.
 *
 * Return: as mdgpu_host_kernel_create().
 */
MDGPU_HOST_API int32_t mdgpu_host_kernel_create_errbuf(uint32_t device, const uint32_t *words,
						       uint32_t word_count, uint32_t binding_count,
						       uint32_t push_constant_size,
						       uint32_t *out_kernel, char *error,
						       uint32_t error_size);

/**
 * mdgpu_host_kernel_destroy() - forget a kernel handle (submissions using it still complete).
 *
 * Return: 0 or -ENOENT.
 */
MDGPU_HOST_API int32_t mdgpu_host_kernel_destroy(uint32_t device, uint32_t kernel);

/**
 * mdgpu_host_submit() - record a batch of commands and start it.
 * @device: device handle
 * @cmds: @cmd_count commands, 1..MDGPU_HOST_MAX_COMMANDS
 * @bindings: the bindings DISPATCH commands refer to (may be NULL when @binding_count is 0)
 * @push_data: the push constants DISPATCH commands refer to (may be NULL when
 *             @push_data_size is 0)
 * @out_submission: receives the submission id (1, 2, ... per device)
 *
 * Every command is checked (handles, ranges inside their memory, alignment, sizes, counts)
 * before anything is recorded: a bad command fails the whole call and nothing runs. The batch
 * is recorded into a command buffer and submitted with a fence; the call does not wait for it
 * (except that a batch using STAGED memory waits for earlier submissions first).
 *
 * Return: 0; -EINVAL; -ENOENT; -E2BIG; -EAGAIN (MDGPU_HOST_MAX_INFLIGHT submissions are
 * waiting to be collected by poll or wait); -ENOTSUP (TIMESTAMP on a device without
 * timestamps); -ENOMEM; -EIO.
 */
MDGPU_HOST_API int32_t mdgpu_host_submit(uint32_t device, const struct mdgpu_host_cmd *cmds,
					 uint32_t cmd_count,
					 const struct mdgpu_host_binding *bindings,
					 uint32_t binding_count, const void *push_data,
					 uint32_t push_data_size, uint64_t *out_submission);

/**
 * mdgpu_host_poll() - collect a submission if it has completed, without waiting.
 * @status: filled when it has completed
 *
 * A submission is collected once: after a 0 return its id is unknown (-ENOENT).
 *
 * Return: 0 (completed: @status says how); -EAGAIN (still running); -ENOENT (unknown or
 * already collected).
 */
MDGPU_HOST_API int32_t mdgpu_host_poll(uint32_t device, uint64_t submission,
				       struct mdgpu_host_status *status);

/**
 * mdgpu_host_wait() - wait up to @timeout_ns for a submission to complete, and collect it.
 * @timeout_ns: 0 polls; UINT64_MAX waits forever
 *
 * Return: as mdgpu_host_poll(), with -ETIMEDOUT instead of -EAGAIN.
 */
MDGPU_HOST_API int32_t mdgpu_host_wait(uint32_t device, uint64_t submission, uint64_t timeout_ns,
				       struct mdgpu_host_status *status);

/* ---- ABI 2.1: what a guest Vulkan driver needs (device contract 1.3) ---- */

/*
 * Limits of ABI 2.1 the library enforces on every device. They bound the work one kernel or
 * one submission can make (descriptor writes, set layouts, recorded data); struct
 * mdgpu_host_caps reports the device's limits clamped to them.
 */
#define MDGPU_HOST_MAX_SETS 32u /* descriptor sets a kernel may use (set numbers below this) */
/* Storage buffers, and separately uniform buffers, per kernel (array elements counted). */
#define MDGPU_HOST_MAX_STAGE_DESCRIPTORS 128u
/* Binding numbers are below this (drivers size set layouts by the highest binding number). */
#define MDGPU_HOST_MAX_BINDING_NUMBER 1024u
#define MDGPU_HOST_MAX_DISPATCH_DESCRIPTORS 256u /* descriptors one DISPATCH2 may pass */
#define MDGPU_HOST_MAX_SPEC_ENTRIES 256u /* specialization constants per kernel */
#define MDGPU_HOST_MAX_SPEC_DATA 4096u /* bytes of specialization data per kernel */
#define MDGPU_HOST_MAX_ENTRY_NAME 255u /* bytes of an entry point name, without its NUL */
#define MDGPU_HOST_MAX_UPDATE 65536u /* bytes one UPDATE writes (vkCmdUpdateBuffer's limit) */
/* Bytes of the data area of one mdgpu_host_submit2() (push constants and UPDATE data). */
#define MDGPU_HOST_MAX_SUBMIT_DATA (16u << 20)
/*
 * Bytes of the zeroed buffer a descriptor a dispatch leaves out is bound to (the range bound
 * is this, or the type's maximum range if smaller): the largest maxUniformBufferRange most
 * devices have, so that a kernel reading a uniform block of any size the device allows reads
 * zeros. Each submission has its own, zeroed before its first dispatch: a kernel writing
 * through a storage descriptor it was not given writes only into its own batch's copy.
 */
#define MDGPU_HOST_ZERO_BUFFER_SIZE 65536u

/* MDGPU_HOST_FEATURE_* bits of mdgpu_host_caps.features: what kernels may use. */
#define MDGPU_HOST_FEATURE_SHADER_INT64 (1u << 0)
#define MDGPU_HOST_FEATURE_SHADER_FLOAT64 (1u << 1)
#define MDGPU_HOST_FEATURE_SHADER_INT16 (1u << 2)
#define MDGPU_HOST_FEATURE_SHADER_INT8 (1u << 3)
#define MDGPU_HOST_FEATURE_SHADER_FLOAT16 (1u << 4)
#define MDGPU_HOST_FEATURE_STORAGE_BUFFER_16BIT (1u << 5)
#define MDGPU_HOST_FEATURE_UNIFORM_16BIT (1u << 6)
#define MDGPU_HOST_FEATURE_PUSH_CONSTANT_16BIT (1u << 7)
#define MDGPU_HOST_FEATURE_STORAGE_BUFFER_8BIT (1u << 8)
#define MDGPU_HOST_FEATURE_UNIFORM_8BIT (1u << 9)
#define MDGPU_HOST_FEATURE_PUSH_CONSTANT_8BIT (1u << 10)
#define MDGPU_HOST_FEATURE_VARIABLE_POINTERS (1u << 12)

/**
 * struct mdgpu_host_caps - more of what a device can do (for a guest Vulkan driver).
 * @size: in: sizeof(struct mdgpu_host_caps) as the caller knows it; out: as the library filled
 * @features: MDGPU_HOST_FEATURE_* the device has and the library enables and lets kernels use:
 *            a kernel may declare exactly the SPIR-V capabilities these (and
 *            @subgroup_operations) cover, and Shader and Matrix
 * @pipeline_cache_uuid: the device's pipelineCacheUUID
 * @driver_version: the device's driverVersion
 * @max_bound_descriptor_sets: maxBoundDescriptorSets, at most MDGPU_HOST_MAX_SETS
 * @max_per_stage_storage_buffers: maxPerStageDescriptorStorageBuffers, at most
 *                                 MDGPU_HOST_MAX_STAGE_DESCRIPTORS
 * @max_per_stage_uniform_buffers: maxPerStageDescriptorUniformBuffers, likewise
 * @max_set_storage_buffers: maxDescriptorSetStorageBuffers, likewise
 * @max_set_uniform_buffers: maxDescriptorSetUniformBuffers, likewise
 * @max_storage_buffer_range: maxStorageBufferRange
 * @max_uniform_buffer_range: maxUniformBufferRange
 * @min_storage_offset_alignment: minStorageBufferOffsetAlignment
 * @min_uniform_offset_alignment: minUniformBufferOffsetAlignment
 * @subgroup_size: subgroupSize
 * @subgroup_operations: VkSubgroupFeatureFlags supported in the compute stage (BASIC .. QUAD,
 *                       0xff at most; 0 where compute has no subgroup operations); group
 *                       operations on 8-, 16- and 64-bit integers and 16-bit floats also need
 *                       shaderSubgroupExtendedTypes, which the library enables where the
 *                       device has it (kernels using them are refused otherwise)
 * @max_memory_allocation_size: maxMemoryAllocationSize
 * @reserved: zero
 *
 * A kernel's descriptors are also bounded by the device's maxPerStageResources, its binding
 * numbers by MDGPU_HOST_MAX_BINDING_NUMBER.
 */
struct mdgpu_host_caps {
	uint32_t size;
	uint32_t features;
	uint8_t pipeline_cache_uuid[16];
	uint32_t driver_version;
	uint32_t max_bound_descriptor_sets;
	uint32_t max_per_stage_storage_buffers;
	uint32_t max_per_stage_uniform_buffers;
	uint32_t max_set_storage_buffers;
	uint32_t max_set_uniform_buffers;
	uint32_t max_storage_buffer_range;
	uint32_t max_uniform_buffer_range;
	uint32_t min_storage_offset_alignment;
	uint32_t min_uniform_offset_alignment;
	uint32_t subgroup_size;
	uint32_t subgroup_operations;
	uint64_t max_memory_allocation_size;
	uint32_t reserved[16];
};

/**
 * mdgpu_host_enumerate_caps() - the capabilities of the device at @index, without opening it.
 * @caps: @caps->size says how large the caller's struct is (at least this one); the library
 *        fills its own sizeof(struct mdgpu_host_caps) bytes, sets @caps->size to that and
 *        leaves any bytes after them alone
 *
 * What an opened device enables is the same (mdgpu_host_device_open() computes it alike).
 *
 * Return: 0, -ENOENT past the last device, -ENODEV without Vulkan, -EINVAL for a bad @caps->size.
 */
MDGPU_HOST_API int32_t mdgpu_host_enumerate_caps(uint32_t index, struct mdgpu_host_caps *caps);

/* Descriptor types of struct mdgpu_host_descriptor and struct mdgpu_host_kernel_binding. */
enum mdgpu_host_descriptor_type {
	MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER = 0,
	MDGPU_HOST_DESCRIPTOR_UNIFORM_BUFFER = 1,
};

/** struct mdgpu_host_spec_entry - one specialization constant (VkSpecializationMapEntry). */
struct mdgpu_host_spec_entry {
	uint32_t constant_id;
	uint32_t offset;
	uint32_t size;
	uint32_t pad;
};

/* mdgpu_host_kernel_desc.flags */
#define MDGPU_HOST_KERNEL_DISPATCH_BASE \
	(1u << 0) /* dispatches may give a non-zero base (VK_PIPELINE_CREATE_DISPATCH_BASE) */
/*
 * mdgpu_host_kernel_info.flags only (never given to kernel_create2): a DISPATCH2 of this kernel
 * may be run as several over ranges of its workgroups, with the whole dispatch's count in
 * @num_workgroups, and compute exactly what the whole one does. Set for a kernel made with
 * MDGPU_HOST_KERNEL_DISPATCH_BASE unless it reads NumWorkgroups in a way the library cannot
 * supply a value for (see struct mdgpu_host_cmd_dispatch2).
 */
#define MDGPU_HOST_KERNEL_SPLITTABLE (1u << 31)

/**
 * struct mdgpu_host_kernel_desc - what mdgpu_host_kernel_create2() builds.
 * @words: SPIR-V words (read during the call only)
 * @word_count: number of words
 * @flags: MDGPU_HOST_KERNEL_* bits
 * @entry: NUL-terminated entry point name (at most 255 bytes); NULL for "main"
 * @spec_entries: @spec_entry_count specialization constants (at most 256); NULL when 0
 * @spec_entry_count: number of @spec_entries
 * @spec_data_size: bytes of @spec_data (at most 4096); every entry lies inside it
 * @spec_data: specialization data; NULL when @spec_data_size is 0
 * @push_size: push-constant bytes dispatches pass; the module's push block must fit in it
 * @legacy_bindings: >= 0: the module must declare exactly this many storage buffers, set 0,
 *                   bindings 0..n-1 (contract 1.1 kernels); -1: any layout, reflected
 * @reserved: zero
 *
 * The module is checked as by mdgpu_host_kernel_create(), but with the specialization applied
 * to every value the checks take from a specialization constant (local size, including
 * LocalSizeId and a WorkgroupSize constant; array lengths, so shared and private memory and
 * the push block; descriptor array sizes): the limits hold for what the driver compiles. Each
 * entry given for a constant of the module must have that constant's size (4 for a boolean);
 * entries for other ids are ignored, as by Vulkan. Its descriptor bindings are reflected:
 * storage and uniform buffer blocks, or fixed-size arrays of them, in sets below
 * max_bound_descriptor_sets, bindings below MDGPU_HOST_MAX_BINDING_NUMBER, at most the
 * device's per-stage counts of each type and maxPerStageResources in all; variables sharing a
 * binding must agree on its type and size. Images, samplers, runtime-sized and
 * multi-dimensional descriptor arrays are refused with a message saying so. One descriptor
 * set layout is made per set up to the highest used (empty ones in the gaps), and a pipeline
 * layout with a push-constant range of @push_size bytes.
 */
struct mdgpu_host_kernel_desc {
	const uint32_t *words;
	uint32_t word_count;
	uint32_t flags;
	const char *entry;
	const struct mdgpu_host_spec_entry *spec_entries;
	uint32_t spec_entry_count;
	uint32_t spec_data_size;
	const void *spec_data;
	uint32_t push_size;
	int32_t legacy_bindings;
	uint32_t reserved[4];
};

/** struct mdgpu_host_kernel_binding - a descriptor binding a kernel declares. */
struct mdgpu_host_kernel_binding {
	uint32_t set;
	uint32_t binding;
	uint32_t type;
	uint32_t count;
};

/**
 * struct mdgpu_host_kernel_info - what a kernel declares.
 * @binding_count: descriptor bindings it declares (mdgpu_host_kernel_info() fills at most
 *                 its @capacity of them)
 * @local_size: workgroup size after specialization
 * @push_size: push-constant bytes dispatches pass
 * @flags: MDGPU_HOST_KERNEL_* bits it was created with, and MDGPU_HOST_KERNEL_SPLITTABLE
 * @reserved: zero
 */
struct mdgpu_host_kernel_info {
	uint32_t binding_count;
	uint32_t local_size[3];
	uint32_t push_size;
	uint32_t flags;
	uint32_t reserved[6];
};

/**
 * mdgpu_host_kernel_create2() - mdgpu_host_kernel_create() with an entry point, specialization
 * and a reflected layout (struct mdgpu_host_kernel_desc). Thread-safe like kernel_create (no
 * device lock while the module is checked and compiled); @error (if not NULL) receives the
 * text of mdgpu_host_last_error() as kernel_create_errbuf ("" on success).
 *
 * The entry point must exist with the GLCompute model; other entry points may be in the
 * module (the old call needs exactly one). Legacy kernels (@legacy_bindings >= 0) may use
 * only storage buffers in set 0 below that count, and their layout is that many.
 *
 * Return: 0; -EINVAL (refused), -E2BIG (over a limit), -EIO (the driver failed), -ENOENT.
 */
MDGPU_HOST_API int32_t mdgpu_host_kernel_create2(uint32_t device,
						 const struct mdgpu_host_kernel_desc *desc,
						 uint32_t *out_kernel, char *error,
						 uint32_t error_size);

/**
 * mdgpu_host_kernel_info() - what a kernel declares: @info, and its first @capacity descriptor
 * bindings in @bindings (sorted by set, then binding; NULL when @capacity is 0). A kernel of
 * the old call, or with @legacy_bindings, declares its storage buffers at set 0.
 * Return: 0, -EINVAL (NULL @info), or -ENOENT.
 */
MDGPU_HOST_API int32_t mdgpu_host_kernel_info(uint32_t device, uint32_t kernel,
					      struct mdgpu_host_kernel_info *info,
					      struct mdgpu_host_kernel_binding *bindings,
					      uint32_t capacity);

/*
 * Commands of mdgpu_host_submit2(): COPY (any alignment), FILL, BARRIER and TIMESTAMP as in
 * mdgpu_host_submit(), plus these (DISPATCH is refused: use DISPATCH2).
 * @MDGPU_HOST_OP_UPDATE: write @u.update.size bytes (a multiple of 4, 4..MDGPU_HOST_MAX_UPDATE)
 *                        of the submission's data from @u.update.data_offset (any alignment)
 *                        at a 4-aligned offset (vkCmdUpdateBuffer: the data is copied when the
 *                        call returns)
 * @MDGPU_HOST_OP_DISPATCH2: run a kernel on workgroups base .. base + groups - 1 with
 *                           descriptors in any set; declared descriptors the command leaves
 *                           out are bound to a zeroed buffer of MDGPU_HOST_ZERO_BUFFER_SIZE
 *                           bytes, the submission's own (zeroed again before each batch that
 *                           uses it, so a kernel writing through one cannot reach another
 *                           batch)
 */
#define MDGPU_HOST_OP_UPDATE 6u
#define MDGPU_HOST_OP_DISPATCH2 7u

/**
 * struct mdgpu_host_descriptor - one descriptor of a DISPATCH2 (40 bytes).
 * @mem: memory handle
 * @set: descriptor set
 * @binding: binding in the set
 * @index: array element
 * @type: enum mdgpu_host_descriptor_type; must match the kernel's binding
 * @pad: zero
 * @offset: offset into the memory, a multiple of the type's minimum offset alignment
 *          (min_binding_alignment, min_uniform_offset_alignment)
 * @range: bytes visible to the kernel, > 0, at most the type's maximum range (max_binding_size,
 *         max_uniform_buffer_range); offset + range inside the memory
 *
 * Each (set, binding, index) must be one the kernel declares, of its type, at most once per
 * dispatch.
 */
struct mdgpu_host_descriptor {
	uint32_t mem;
	uint32_t set;
	uint32_t binding;
	uint32_t index;
	uint32_t type;
	uint32_t pad;
	uint64_t offset;
	uint64_t range;
};

/** struct mdgpu_host_cmd_update - MDGPU_HOST_OP_UPDATE arguments (offsets in bytes). */
struct mdgpu_host_cmd_update {
	uint32_t mem;
	uint32_t size;
	uint64_t offset;
	uint32_t data_offset;
	uint32_t pad;
};

/**
 * struct mdgpu_host_cmd_dispatch2 - MDGPU_HOST_OP_DISPATCH2 arguments.
 * @kernel: kernel handle
 * @first_descriptor: index of its first descriptor in the submission's descriptor array
 * @descriptor_count: descriptors it passes
 * @push_offset: offset of its push constants in the submission's data
 * @push_size: must equal the kernel's push-constant size
 * @base: first workgroup id (non-zero needs MDGPU_HOST_KERNEL_DISPATCH_BASE)
 * @groups: workgroup counts (0 in any: nothing runs; the command is checked all the same);
 *          base + groups at most max_workgroup_count per dimension
 * @num_workgroups: what the kernel's NumWorkgroups reads: 0,0,0 for @groups (as Vulkan);
 *                  otherwise 1..max_workgroup_count per dimension, the count of the whole
 *                  dispatch this one is a range of (a dispatch split for preemption); only a
 *                  kernel with MDGPU_HOST_KERNEL_SPLITTABLE, or one that does not read
 *                  NumWorkgroups, takes a count other than @groups
 *
 * @descriptor_count is at most MDGPU_HOST_MAX_DISPATCH_DESCRIPTORS; dispatches may share
 * descriptors of the array.
 *
 * WorkgroupId and GlobalInvocationId include @base (vkCmdDispatchBase). NumWorkgroups is a
 * built-in of the device's own: it reads the count of the dispatch as recorded. So that a
 * range of a dispatch reads the whole count, the library rewrites a kernel made with
 * MDGPU_HOST_KERNEL_DISPATCH_BASE that reads NumWorkgroups (src/spirv-rewrite.c): the
 * built-in becomes a Private variable set, at the entry point's start, from 12 bytes of push
 * constants past the kernel's own (at its push size rounded up to 16), which every dispatch
 * of it pushes (@num_workgroups, or @groups). The rewritten module is validated again. A
 * kernel whose push constants leave no room for them, or that uses NumWorkgroups otherwise
 * than by loads (a pointer to it passed to a function, say), is not rewritten: it runs as
 * made, and is not MDGPU_HOST_KERNEL_SPLITTABLE.
 */
struct mdgpu_host_cmd_dispatch2 {
	uint32_t kernel;
	uint32_t first_descriptor;
	uint32_t descriptor_count;
	uint32_t push_offset;
	uint32_t push_size;
	uint32_t base[3];
	uint32_t groups[3];
	uint32_t num_workgroups[3];
};

/**
 * struct mdgpu_host_cmd2 - one command of mdgpu_host_submit2() (64 bytes).
 * @op: MDGPU_HOST_OP_*
 * @flags: zero
 * @u: arguments of @op (BARRIER has none)
 */
struct mdgpu_host_cmd2 {
	uint32_t op;
	uint32_t flags;
	union {
		struct mdgpu_host_cmd_copy copy;
		struct mdgpu_host_cmd_fill fill;
		struct mdgpu_host_cmd_timestamp timestamp;
		struct mdgpu_host_cmd_update update;
		struct mdgpu_host_cmd_dispatch2 dispatch2;
		uint8_t raw[56];
	} u;
};

/**
 * mdgpu_host_submit2() - start a batch of struct mdgpu_host_cmd2 commands, as mdgpu_host_submit.
 * @descriptors: @descriptor_count descriptors the DISPATCH2 commands index (NULL when 0; at
 *               most MDGPU_HOST_MAX_COMMANDS * MDGPU_HOST_MAX_DISPATCH_DESCRIPTORS)
 * @data: @data_size bytes of push constants and UPDATE data the commands index (NULL when 0;
 *        at most MDGPU_HOST_MAX_SUBMIT_DATA); read during the call only
 *
 * Every command is checked as by mdgpu_host_submit() before anything is recorded; a bad one
 * fails the whole call and nothing runs. Memory of the batch's commands is staged as there.
 *
 * Return: as mdgpu_host_submit().
 */
MDGPU_HOST_API int32_t mdgpu_host_submit2(uint32_t device, const struct mdgpu_host_cmd2 *cmds,
					  uint32_t cmd_count,
					  const struct mdgpu_host_descriptor *descriptors,
					  uint32_t descriptor_count, const void *data,
					  uint32_t data_size, uint64_t *out_submission);

/*
 * ---- ABI 2.2: the ring service ----
 *
 * A ring service is a thread of the library that takes batches from a submission ring in
 * memory shared with the submitter (another process, or another thread of this one), runs each
 * exactly as mdgpu_host_submit2() with the same checks, waits for it itself and writes how it
 * went into a completion ring: batches travel as the records of mdgpu_host_submit2() (struct
 * mdgpu_host_cmd2, struct mdgpu_host_descriptor, data bytes) with no translation on the way
 * but one: memories and kernels are named by ids of the submitter's choosing, bound to the
 * library's handles with mdgpu_host_ring_bind(), so that they stay valid when a new process
 * replaces one that was killed.
 *
 * The memory (one file, e.g. a memfd): a header page (struct mdgpu_host_ring_header), then the
 * submission area (@submit_size bytes), then the completion area (@complete_size bytes). Each
 * area is a byte ring of records with one writer and one reader: the writer writes records at
 * its tail and then publishes the new tail (a release store); the reader reads up to the tail
 * (acquire), copies each record out before it looks at it, and then publishes its head. Heads
 * and tails count bytes modulo 2^32; a record's offset in its area is its position modulo the
 * area's size (a power of two). Records are 8-aligned, contiguous, and at most the area's size;
 * one that does not fit before the end of the area follows a PAD record that fills the rest.
 *
 * Doorbells are eventfds: the submitter adds to @submit_event after publishing records, the
 * service adds 1 to @complete_event after publishing completions (several at once where it
 * can: a batch's STARTED goes with its DONE when the batch completes within
 * @started_delay_ns).
 *
 * The service trusts nothing it reads: a record of an unknown type or with sizes that do not
 * add up fails with a FAILED record (EINVAL, the batch does not run) where the framing still
 * holds; when the framing itself is gone (a size that points outside the published bytes,
 * positions more than an area apart) it writes one BROKEN record and takes nothing more.
 */
#define MDGPU_HOST_RING_MAGIC 0x4752444du /* "MDRG", little endian */
#define MDGPU_HOST_RING_VERSION 1u
#define MDGPU_HOST_RING_HEADER_SIZE 4096u /* the areas start after one page */
#define MDGPU_HOST_RING_MIN_AREA 4096u /* smallest area */
#define MDGPU_HOST_RING_MAX_AREA (1u << 30) /* largest area */
/* Batches a ring service has submitted and not yet collected, at most. */
#define MDGPU_HOST_RING_MAX_INFLIGHT 64u
/* Bytes of a FAILED or BROKEN record's message, NUL included, at most. */
#define MDGPU_HOST_RING_MAX_MESSAGE 1024u

/**
 * struct mdgpu_host_ring_header - the first bytes of a ring's memory (the rest of the page is
 * zero). The submitter writes @magic .. @complete_size before mdgpu_host_ring_create(); each
 * position has a cache line of its own.
 * @magic: MDGPU_HOST_RING_MAGIC
 * @version: MDGPU_HOST_RING_VERSION
 * @submit_size: bytes of the submission area, a power of two
 * @complete_size: bytes of the completion area, a power of two
 * @submit_tail: written by the submitter: bytes of records published
 * @submit_head: written by the service: bytes of records it has taken
 * @complete_tail: written by the service: bytes of completion records published
 * @complete_head: written by the submitter: bytes of completion records it has read
 */
struct mdgpu_host_ring_header {
	uint32_t magic;
	uint32_t version;
	uint32_t submit_size;
	uint32_t complete_size;
	uint32_t reserved0[12];
	uint32_t submit_tail;
	uint32_t pad1[15];
	uint32_t submit_head;
	uint32_t pad2[15];
	uint32_t complete_tail;
	uint32_t pad3[15];
	uint32_t complete_head;
	uint32_t pad4[15];
};

/**
 * enum mdgpu_host_ring_type - record types.
 * @MDGPU_HOST_RING_PAD: either area: nothing up to the end of the area; go on at its start
 * @MDGPU_HOST_RING_SUBMIT: submission: a batch (struct mdgpu_host_ring_submit)
 * @MDGPU_HOST_RING_RELEASE: submission: forget a memory or kernel id and destroy its handle,
 *                           after every batch before it was taken (struct
 *                           mdgpu_host_ring_release)
 * @MDGPU_HOST_RING_STARTED: completion: the batch is on the device (struct
 *                           mdgpu_host_ring_started)
 * @MDGPU_HOST_RING_DONE: completion: the batch completed (struct mdgpu_host_ring_done)
 * @MDGPU_HOST_RING_FAILED: completion: the batch was refused, or failed (struct
 *                          mdgpu_host_ring_failed)
 * @MDGPU_HOST_RING_BROKEN: completion: the submission area is unreadable; the service takes
 *                          nothing more (struct mdgpu_host_ring_failed, @tag 0)
 */
enum mdgpu_host_ring_type {
	MDGPU_HOST_RING_PAD = 0,
	MDGPU_HOST_RING_SUBMIT = 1,
	MDGPU_HOST_RING_RELEASE = 2,
	MDGPU_HOST_RING_STARTED = 16,
	MDGPU_HOST_RING_DONE = 17,
	MDGPU_HOST_RING_FAILED = 18,
	MDGPU_HOST_RING_BROKEN = 19,
};

/** struct mdgpu_host_ring_record - the start of every record (@size: header included, 8k). */
struct mdgpu_host_ring_record {
	uint32_t type;
	uint32_t size;
};

/**
 * struct mdgpu_host_ring_submit - a batch (32 bytes), followed by @cmd_count struct
 * mdgpu_host_cmd2, @descriptor_count struct mdgpu_host_descriptor and @data_size bytes of data
 * (zero-padded to 8): the arguments of mdgpu_host_submit2(), with every memory handle (of
 * COPY, FILL, UPDATE, TIMESTAMP and of descriptors) and every DISPATCH2 kernel handle an id
 * bound to the ring. Every other field is passed on as it is.
 * @type: MDGPU_HOST_RING_SUBMIT
 * @size: 32 + 64 * @cmd_count + 40 * @descriptor_count + @data_size rounded up to 8
 * @tag: the submitter's name for the batch, in its completion records
 * @cmd_count: commands
 * @descriptor_count: descriptors
 * @data_size: bytes of data
 * @flags: zero
 * @reserved: zero
 */
struct mdgpu_host_ring_submit {
	uint32_t type;
	uint32_t size;
	uint32_t tag;
	uint32_t cmd_count;
	uint32_t descriptor_count;
	uint32_t data_size;
	uint32_t flags;
	uint32_t reserved;
};

/* Kinds of ids bound to a ring. */
enum mdgpu_host_ring_kind {
	MDGPU_HOST_RING_MEMORY = 1,
	MDGPU_HOST_RING_KERNEL = 2,
};

/** struct mdgpu_host_ring_release - RELEASE (16 bytes): @kind, @id as for mdgpu_host_ring_bind(). */
struct mdgpu_host_ring_release {
	uint32_t type;
	uint32_t size;
	uint32_t kind;
	uint32_t id;
};

/**
 * struct mdgpu_host_ring_started - STARTED (24 bytes): the batch @tag passed every check and
 * is on the device as submission @submission (its work starts when the work before it ends).
 */
struct mdgpu_host_ring_started {
	uint32_t type;
	uint32_t size;
	uint32_t tag;
	uint32_t reserved;
	uint64_t submission;
};

/** struct mdgpu_host_ring_done - DONE (72 bytes): batch @tag completed; @status as from mdgpu_host_wait(). */
struct mdgpu_host_ring_done {
	uint32_t type;
	uint32_t size;
	uint32_t tag;
	uint32_t reserved;
	struct mdgpu_host_status status;
};

/* struct mdgpu_host_ring_failed.stage: where a batch failed. */
enum mdgpu_host_ring_stage {
	MDGPU_HOST_RING_STAGE_RECORD =
		1, /* its record is malformed, or names an unbound id: nothing ran */
	MDGPU_HOST_RING_STAGE_SUBMIT = 2, /* mdgpu_host_submit2() refused it: nothing ran */
	MDGPU_HOST_RING_STAGE_WAIT = 3, /* mdgpu_host_wait() failed */
	MDGPU_HOST_RING_STAGE_DEVICE = 4, /* it ran and the device failed (status.result) */
};

/**
 * struct mdgpu_host_ring_failed - FAILED or BROKEN (24 bytes and the message).
 * @type: MDGPU_HOST_RING_FAILED or MDGPU_HOST_RING_BROKEN
 * @size: 24 + the message's bytes with its NUL, rounded up to 8
 * @tag: the batch's tag (0 for BROKEN)
 * @error: a negative errno
 * @stage: enum mdgpu_host_ring_stage (0 for BROKEN)
 * @reserved: zero
 * @message: NUL-terminated, at most MDGPU_HOST_RING_MAX_MESSAGE bytes (mdgpu_host_last_error()
 *           of the call that failed)
 */
struct mdgpu_host_ring_failed {
	uint32_t type;
	uint32_t size;
	uint32_t tag;
	int32_t error;
	uint32_t stage;
	uint32_t reserved;
	char message[];
};

/**
 * struct mdgpu_host_ring_desc - what mdgpu_host_ring_create() serves.
 * @fd: the ring's memory, its header written (the library maps it itself and keeps a duplicate
 *      of the descriptor; the caller may close its own)
 * @submit_event: an eventfd the submitter adds to after publishing records (duplicated)
 * @complete_event: an eventfd the service adds 1 to after publishing completions (duplicated)
 * @flags: zero
 * @wait_slice_ns: while batches run, the service looks for new records at least this often
 *                 (0: 2 ms)
 * @started_delay_ns: how long a batch's STARTED may wait for its DONE before the doorbell
 *                    rings for it alone (0: 1 ms; the record is in the ring at once, only the
 *                    doorbell waits, so a short batch wakes the submitter once)
 * @reserved: zero
 */
struct mdgpu_host_ring_desc {
	int32_t fd;
	int32_t submit_event;
	int32_t complete_event;
	uint32_t flags;
	uint64_t wait_slice_ns;
	uint64_t started_delay_ns;
	uint32_t reserved[8];
};

/**
 * mdgpu_host_ring_create() - start a ring service for @device on the ring @desc describes.
 * @out_ring: receives the ring handle
 *
 * Checks the header (magic, version, sizes: powers of two from MDGPU_HOST_RING_MIN_AREA to
 * MDGPU_HOST_RING_MAX_AREA that fit in the file) and that both positions of each area are 0,
 * then starts the service thread, which inherits the calling thread's scheduling priority.
 *
 * Return: 0; -EINVAL (a bad header, size, descriptor or flag), -ENOENT (no such device),
 * -ENOMEM, -EAGAIN (too many rings), or -errno of mmap or the thread's creation.
 */
MDGPU_HOST_API int32_t mdgpu_host_ring_create(uint32_t device,
					      const struct mdgpu_host_ring_desc *desc,
					      uint32_t *out_ring);

/**
 * mdgpu_host_ring_bind() - name a memory or kernel of the ring's device @id (nonzero) in the
 * ring's records.
 * @kind: enum mdgpu_host_ring_kind
 * @handle: the library's handle, which the ring owns from now on (it destroys it when @id is
 *          released, rebound, or the ring is destroyed); 0: release @id now (as a RELEASE
 *          record would, but without waiting for earlier records)
 *
 * Return: 0; -EINVAL (a zero @id, a bad @kind), -ENOENT (no such ring; releasing an unbound
 * id), -ENOMEM.
 */
MDGPU_HOST_API int32_t mdgpu_host_ring_bind(uint32_t ring, uint32_t kind, uint32_t id,
					    uint32_t handle);

/**
 * mdgpu_host_ring_take() - take the records published so far on the calling thread, as the
 * service would (submitting each batch and writing its STARTED or FAILED before returning), and
 * leave the waiting to the service. For a submitter in the same process: the batch is on the
 * device when the call returns, without waiting for the service thread to wake up, and its
 * STARTED (or FAILED) is in the completion area already. The doorbell rings for them later, as
 * for any record. Where the completion area is full the record is dropped (the caller is its
 * reader: waiting would never end); keep fewer batches outstanding than the area holds.
 *
 * Return: 0 or -ENOENT.
 */
MDGPU_HOST_API int32_t mdgpu_host_ring_take(uint32_t ring);

/**
 * mdgpu_host_ring_destroy() - stop the service and release everything bound to the ring.
 *
 * The service first waits for the batches it has submitted (and writes their completions);
 * records not yet taken are left. Then the bound handles are destroyed (batches still holding
 * them complete as usual), and the mapping and descriptors released.
 *
 * Return: 0 or -ENOENT.
 */
MDGPU_HOST_API int32_t mdgpu_host_ring_destroy(uint32_t ring);

#ifdef __cplusplus
}
#endif

#endif /* MDGPU_HOST_H */
