/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * mdgpu virtual GPGPU: userspace interface of the guest driver (/dev/mdgpuN).
 *
 * Every open file of /dev/mdgpuN is one device context: buffers created through a file belong
 * to it, are visible only through it, and are freed on the device when the file is closed
 * (however the process ends).
 *
 * Conventions (as DRM's uapi headers): every ioctl is _IOWR, every structure is made of
 * __u32/__u64 fields with explicit padding so that its layout is the same for 32- and 64-bit
 * userspace, and padding and unused flag bits must be zero on input (-EINVAL otherwise) so they
 * can be given a meaning later.
 *
 * Errors are negative errno values from the ioctl (errno in userspace). The device's mailbox
 * result codes map to errno as documented in guest-driver/kmod/mdgpu_mbox.c:
 *
 *   OVER_QUOTA     -EDQUOT    the allocation would exceed the VM's quota
 *   NO_MEMORY      -ENOSPC    no free aperture range of that size and alignment
 *   TOO_MANY       -EMFILE    too many contexts (open files), buffers, queues or kernels
 *   BAD_SIZE       -EINVAL    size 0 or larger than the allocatable aperture
 *   BAD_FLAGS      -EINVAL    unknown flags or alignment out of range
 *   BAD_PARAM      -EINVAL    unknown query parameter
 *   BUSY           -EBUSY     the object is in use (contract 1.1 queues)
 *   BAD_KERNEL     -EINVAL    SPIR-V refused (contract 1.1 kernels)
 *   UNSUPPORTED    -EOPNOTSUPP no execution backend (contract 1.1)
 *   THROTTLED      -EAGAIN    refused for a cool-off period after this VM's work caused device
 *                             resets or kernel builds that failed by time or memory, or too
 *                             many kernel builds at once (contract 1.2)
 *   BAD_HANDLE     -ENOENT    no such buffer, queue or kernel in this file
 *   BAD_CONTEXT    -EBADFD    the file's device context is gone (device reset)
 *   UNKNOWN_OPCODE -EOPNOTSUPP
 *   (no completion within the mailbox timeout: -ETIMEDOUT; device removed: -ENODEV)
 */
#ifndef _UAPI_MDGPU_H_
#define _UAPI_MDGPU_H_

#include <linux/ioctl.h>
#include <linux/types.h>

#if defined(__cplusplus)
extern "C" {
#endif

/** MDGPU_IOCTL_BASE: ioctl type letter ('M', numbers 0x40.. to stay clear of other 'M' users). */
#define MDGPU_IOCTL_BASE 'M'

/*
 * The limits below are the device's. This header spells them out so that it stands alone in
 * userspace; the kernel module and libmdgpu _Static_assert that each equals its generated twin
 * in mdgpu_hw.h (MDGPU_X here is MDGPU_HW_X there, or the name the comment gives), which
 * src/vgpu/c-header.ts writes from the device's TypeScript tables.
 */

/** MDGPU_WINDOW_SIZE: the trapped window page, BAR0[0, 4 KiB) (MDGPU_TRAPPED_WINDOW_SIZE). */
#define MDGPU_WINDOW_SIZE 0x1000

/**
 * MDGPU_MMAP_WINDOW_OFFSET: mmap offset of the trapped window page. Buffers are never at
 * aperture offset 0 (the first page is the window), so this offset cannot name a buffer.
 */
#define MDGPU_MMAP_WINDOW_OFFSET 0

/**
 * MDGPU_BO_CACHED: BO_CREATE flag (contract 1.3): map the buffer write-back rather than
 * write-combined, for buffers the CPU reads (the aperture is RAM on the host, so the device
 * sees the same data either way).
 */
#define MDGPU_BO_CACHED (1u << 0)

/** MDGPU_BO_FLAGS_KNOWN: BO_CREATE flags this interface defines. */
#define MDGPU_BO_FLAGS_KNOWN 0x1u

/** MDGPU_BO_ALIGN_MIN_LOG2: smallest explicit alignment, 4 KiB (MDGPU_MIN_ALIGN_LOG2); 0 too. */
#define MDGPU_BO_ALIGN_MIN_LOG2 12

/** MDGPU_BO_ALIGN_MAX_LOG2: largest alignment a buffer may ask for, 1 GiB (MDGPU_MAX_ALIGN_LOG2) */
#define MDGPU_BO_ALIGN_MAX_LOG2 30

/**
 * struct mdgpu_info - device information (MDGPU_IOCTL_GET_INFO)
 *
 * All fields are output; whatever the caller passes in is ignored.
 */
struct mdgpu_info {
	/**
	 * @version: device contract version, major in bits 31:16, minor in bits 15:0
	 * (0x00010000 is contract 1.0).
	 */
	__u32 version;
	/** @vendor_id: PCI vendor id of the device (0x4d44). */
	__u32 vendor_id;
	/** @device_id: PCI device id of the device (0x4750). */
	__u32 device_id;
	/** @max_contexts: most contexts (open files, VM-wide) the device allows at once. */
	__u32 max_contexts;
	/** @aperture_size: size of the aperture (BAR0) in bytes. */
	__u64 aperture_size;
	/** @alloc_base: first aperture offset buffers are allocated from. */
	__u64 alloc_base;
	/** @quota: bytes this VM may have allocated at once. */
	__u64 quota;
	/** @used: bytes allocated now, by every context of the VM. */
	__u64 used;
	/** @largest_free: largest free aperture range in bytes (fragmentation permitting). */
	__u64 largest_free;
	/** @min_align: allocation granule in bytes; buffer sizes are rounded up to it. */
	__u64 min_align;
	/** @max_buffers: most buffers (over the whole VM) the device allows at once. */
	__u32 max_buffers;
	/** @contexts: contexts alive on the device now. */
	__u32 contexts;
	/** @buffers: buffers alive on the device now. */
	__u32 buffers;
	/** @index: N of this device's node, /dev/mdgpuN. */
	__u32 index;
	/**
	 * @irq_count: MSI-X interrupts the driver has taken from the device since probe
	 * (diagnostic: proves interrupt delivery).
	 */
	__u64 irq_count;
};

/**
 * struct mdgpu_bo_create - create a buffer (MDGPU_IOCTL_BO_CREATE)
 *
 * The buffer is zeroed, owned by the file the ioctl is made on and freed on the device when
 * that file is closed if it was not destroyed before.
 */
struct mdgpu_bo_create {
	/**
	 * @size: in: requested size in bytes, not 0; out: the buffer's size, rounded up to the
	 * allocation granule (struct mdgpu_info.min_align).
	 */
	__u64 size;
	/**
	 * @align_log2: in: alignment of the buffer's aperture offset as a power of two: 0 for the
	 * default (4 KiB) or MDGPU_BO_ALIGN_MIN_LOG2..MDGPU_BO_ALIGN_MAX_LOG2.
	 */
	__u32 align_log2;
	/**
	 * @flags: in: MDGPU_BO_CACHED or 0 (other bits: -EINVAL). A CACHED buffer is mapped
	 * write-back, others write-combined; the device sees the same data either way.
	 */
	__u32 flags;
	/** @handle: out: the buffer's handle, never 0, valid in this file only. */
	__u32 handle;
	/** @pad: must be 0. */
	__u32 pad;
	/**
	 * @mmap_offset: out: the offset to pass to mmap() on this file to map the buffer; it is
	 * also the buffer's aperture (BAR0) offset.
	 */
	__u64 mmap_offset;
};

/**
 * struct mdgpu_bo_destroy - free a buffer (MDGPU_IOCTL_BO_DESTROY)
 *
 * Fails with -EBUSY while any mapping of the buffer exists: otherwise the freed aperture range
 * could be handed to another context while this process still maps it. Also -EBUSY while the
 * buffer holds a queue or a MDGPU_IOCTL_WAIT_FENCE sleeps on it. Fails with -ENOENT for
 * a handle this file does not own (never created, already destroyed, another file's).
 */
struct mdgpu_bo_destroy {
	/** @handle: in: handle from MDGPU_IOCTL_BO_CREATE on this file. */
	__u32 handle;
	/** @pad: must be 0. */
	__u32 pad;
};

/**
 * struct mdgpu_window_set - point the trapped window at a page of a buffer
 * (MDGPU_IOCTL_WINDOW_SET)
 *
 * The trapped window, mapped with mmap(MDGPU_MMAP_WINDOW_OFFSET, MDGPU_WINDOW_SIZE), shows
 * one page of the aperture; every access to it traps to the device (the slow path the
 * benchmark compares with the direct mapping). The window is a single device-wide register, so
 * one file at a time owns it: the first file that maps it or sets it, until that file is
 * closed (-EBUSY for others). When the buffer the window shows is destroyed, or its owner
 * closes, the window is moved back to aperture offset 0, which no buffer ever occupies.
 */
struct mdgpu_window_set {
	/**
	 * @offset: in: aperture offset the window shows, a multiple of MDGPU_WINDOW_SIZE, with
	 * [offset, offset + MDGPU_WINDOW_SIZE) inside a buffer of this file.
	 */
	__u64 offset;
	/** @flags: in: must be 0. */
	__u32 flags;
	/** @pad: must be 0. */
	__u32 pad;
};

/* ---- Contract 1.1: queues, kernels, fences ---- */

/** MDGPU_QUEUE_CONTROL_SIZE: the control block at the start of a queue buffer (one page). */
#define MDGPU_QUEUE_CONTROL_SIZE 0x1000

/** MDGPU_QUEUE_RING_MIN: smallest ring (after the control block); rings are powers of two. */
#define MDGPU_QUEUE_RING_MIN 0x1000

/** MDGPU_QUEUE_RING_MAX: largest ring (16 MiB). */
#define MDGPU_QUEUE_RING_MAX 0x1000000

/** MDGPU_QUEUE_PRIORITY_MAX: queue priorities are 0..MDGPU_QUEUE_PRIORITY_MAX. */
#define MDGPU_QUEUE_PRIORITY_MAX 3

/** MDGPU_KERNEL_MAX_SPIRV: largest SPIR-V module the device accepts, in bytes. */
#define MDGPU_KERNEL_MAX_SPIRV 0x100000

/** MDGPU_KERNEL_MAX_BINDINGS: most storage-buffer bindings a kernel may declare. */
#define MDGPU_KERNEL_MAX_BINDINGS 16

/** MDGPU_KERNEL_MAX_PUSH_BYTES: most push-constant bytes a kernel may take. */
#define MDGPU_KERNEL_MAX_PUSH_BYTES 128

/**
 * MDGPU_FENCE_ERROR: bit 63 of a fence value. The device writes a failed submission's fence
 * value with this bit set (an error fence); a waited-for value may not have it.
 */
#define MDGPU_FENCE_ERROR (1ULL << 63)

/**
 * struct mdgpu_compute_info - queues and kernels (MDGPU_IOCTL_GET_COMPUTE_INFO)
 *
 * All fields are output; whatever the caller passes in is ignored. A contract 1.0 device
 * reports zeros for the device parameters.
 */
struct mdgpu_compute_info {
	/** @has_backend: 1 when the device can execute queues (QUERY HAS_BACKEND), else 0. */
	__u32 has_backend;
	/** @max_queues: most queues the device allows at once, VM-wide (QUERY MAX_QUEUES). */
	__u32 max_queues;
	/** @max_kernels: most kernels the device allows at once, VM-wide (QUERY MAX_KERNELS). */
	__u32 max_kernels;
	/**
	 * @irq_vectors: MSI-X vectors the driver uses. Interrupt source n arrives on vector n;
	 * with fewer than 3 vectors the last one also takes the higher sources.
	 */
	__u32 irq_vectors;
	/** @max_submission: largest submission in bytes (QUERY MAX_SUBMISSION). */
	__u64 max_submission;
	/**
	 * @grace_us: how long, in microseconds, the device keeps polling a drained queue before
	 * it asks for a doorbell (QUERY GRACE_US).
	 */
	__u64 grace_us;
	/**
	 * @binding_align: DISPATCH binding offsets must be multiples of this (QUERY
	 * BINDING_ALIGN; 0 when the device does not say).
	 */
	__u64 binding_align;
	/** @max_binding: largest DISPATCH binding in bytes (QUERY MAX_BINDING; 0: not said). */
	__u64 max_binding;
	/** @irq_mailbox: MAILBOX interrupts handled since probe. */
	__u64 irq_mailbox;
	/** @irq_fence: FENCE interrupts handled since probe. */
	__u64 irq_fence;
	/** @irq_error: ERROR interrupts handled since probe. */
	__u64 irq_error;
	/** @fence_waits: MDGPU_IOCTL_WAIT_FENCE calls since probe, every file together. */
	__u64 fence_waits;
	/** @fence_sleeps: of those, the ones that found the fence unsignalled and slept. */
	__u64 fence_sleeps;
	/**
	 * @fence_irq_wakeups: sleeping waits that ended with the fence signalled after a FENCE or
	 * ERROR interrupt woke them (rather than after a timeout slice, see fence_poll_ms).
	 */
	__u64 fence_irq_wakeups;
	/** @queues: queues of this file now. */
	__u32 queues;
	/** @kernels: kernels of this file now. */
	__u32 kernels;
};

/**
 * struct mdgpu_queue_create - make a buffer a queue (MDGPU_IOCTL_QUEUE_CREATE)
 *
 * The buffer's first MDGPU_QUEUE_CONTROL_SIZE bytes become the queue's control block, the rest
 * its ring, which must be a power of two from MDGPU_QUEUE_RING_MIN to MDGPU_QUEUE_RING_MAX
 * bytes. Userspace maps the buffer and publishes work with plain stores (docs/device.md,
 * "Queues"). While the queue exists the buffer cannot be destroyed (-EBUSY). Queues belong to
 * the file: closing it destroys them.
 */
struct mdgpu_queue_create {
	/** @handle: in: a buffer of this file that holds no queue yet. */
	__u32 handle;
	/** @priority: in: 0 (lowest) to MDGPU_QUEUE_PRIORITY_MAX. */
	__u32 priority;
	/** @flags: in: must be 0. */
	__u32 flags;
	/** @queue: out: the queue id, never 0, valid in this file only. */
	__u32 queue;
};

/**
 * struct mdgpu_queue_destroy - stop a queue (MDGPU_IOCTL_QUEUE_DESTROY)
 *
 * Submissions the device already took complete; nothing more is read from the ring. The
 * buffer stays allocated (and may then be destroyed).
 */
struct mdgpu_queue_destroy {
	/** @queue: in: a queue of this file. */
	__u32 queue;
	/** @pad: must be 0. */
	__u32 pad;
};

/**
 * struct mdgpu_queue_doorbell - wake a sleeping queue (MDGPU_IOCTL_QUEUE_DOORBELL)
 *
 * One trapped register write. Only needed when the control block's doorbell_needed is 1 after
 * tail was stored (the notification protocol); ringing a busy queue is harmless.
 */
struct mdgpu_queue_doorbell {
	/** @queue: in: a queue of this file. */
	__u32 queue;
	/** @flags: in: must be 0. */
	__u32 flags;
};

/**
 * struct mdgpu_kernel_create - create a compute kernel from SPIR-V (MDGPU_IOCTL_KERNEL_CREATE)
 *
 * The device copies the SPIR-V out of the buffer inside the ioctl, so the buffer may be reused
 * or destroyed right after. It then validates and compiles the kernel off its control path
 * (contract 1.2); the ioctl sleeps until that ends (woken by the device's KERNEL interrupt,
 * without holding the file's lock: several threads may create kernels at once), and returns
 * -EINVAL when the SPIR-V is refused, -EAGAIN when the VM is throttled, -ETIMEDOUT after the
 * module's kernel_timeout_ms, or restarts on a signal. Kernels belong to the file; closing it
 * destroys them (the device does, with the context).
 */
struct mdgpu_kernel_create {
	/** @handle: in: a buffer of this file holding the SPIR-V. */
	__u32 handle;
	/** @flags: in: must be 0. */
	__u32 flags;
	/** @offset: in: where the SPIR-V starts in the buffer, a multiple of 4. */
	__u64 offset;
	/**
	 * @size: in: SPIR-V size in bytes, a multiple of 4, 1..MDGPU_KERNEL_MAX_SPIRV, inside the
	 * buffer.
	 */
	__u64 size;
	/**
	 * @bindings: in: storage buffers the kernel uses (set 0, bindings 0..n-1), at most
	 * MDGPU_KERNEL_MAX_BINDINGS. A DISPATCH of the kernel must bind exactly this many.
	 */
	__u32 bindings;
	/**
	 * @push_bytes: in: push-constant bytes the kernel takes, a multiple of 4, at most
	 * MDGPU_KERNEL_MAX_PUSH_BYTES. A DISPATCH must pass exactly this many.
	 */
	__u32 push_bytes;
	/** @kernel: out: the kernel id, never 0, to put in DISPATCH commands. */
	__u32 kernel;
	/** @pad: must be 0. */
	__u32 pad;
};

/** struct mdgpu_kernel_destroy - destroy a kernel (MDGPU_IOCTL_KERNEL_DESTROY) */
struct mdgpu_kernel_destroy {
	/**
	 * @kernel: in: a kernel of this file. Submissions already taken by the device that use it
	 * fail with BAD_KERNEL if they have not run yet.
	 */
	__u32 kernel;
	/** @pad: must be 0. */
	__u32 pad;
};

/**
 * struct mdgpu_wait_fence - sleep until a fence in a buffer is signalled
 * (MDGPU_IOCTL_WAIT_FENCE)
 *
 * A fence is a u64 in a buffer that submissions write (SUBMIT's completion fence, FENCE
 * commands) with increasing values. The wait ends when the u64 at @offset in the buffer,
 * MDGPU_FENCE_ERROR masked off, is >= @value: it returns 0, or -EIO if MDGPU_FENCE_ERROR is set
 * (an error fence: the submission that wrote it failed). After @timeout_ns it returns -ETIME.
 * The error bit is masked for the comparison so that the error fence of an earlier submission
 * does not end a wait for a later value; an error at or after @value does. A sleeping waiter
 * is woken by the device's FENCE and ERROR interrupts, so fences it waits for should be written
 * with the IRQ flag; other fences are still noticed, at the latest one fence_poll_ms (module
 * parameter) later. Interrupted by a signal, the ioctl
 * returns -EINTR (or restarts) with @timeout_ns lowered to the time left. The buffer cannot be
 * destroyed while a wait on it sleeps (-EBUSY).
 */
struct mdgpu_wait_fence {
	/** @handle: in: a buffer of this file. */
	__u32 handle;
	/** @flags: in: must be 0. */
	__u32 flags;
	/** @offset: in: offset of the fence in the buffer, a multiple of 8, inside it. */
	__u64 offset;
	/** @value: in: the value to wait for; MDGPU_FENCE_ERROR must be clear. */
	__u64 value;
	/**
	 * @timeout_ns: in: longest wait in nanoseconds, relative; 0 only checks the fence.
	 * out: the time left (0 after a timeout).
	 */
	__u64 timeout_ns;
	/** @seen: out: the fence's value when the wait ended. */
	__u64 seen;
};

/**
 * struct mdgpu_mark - write a phase marker (MDGPU_IOCTL_MARK)
 *
 * Writes @value to the device's SCRATCH register: one trapped write the host observes, so
 * benchmarks can tell it where their phases begin and end (mdgpu counts trapped accesses
 * between marks). The values are the tools' convention (see guest-driver/README.md).
 */
struct mdgpu_mark {
	/** @value: in: the marker. */
	__u32 value;
	/** @pad: must be 0. */
	__u32 pad;
};

/* ---- Contract 1.3: the capability record, kernel records ---- */

/**
 * MDGPU_KERNEL_DESC_MIN_SIZE: size of the kernel record (struct mdgpu_kernel_desc in
 * mdgpu_cmd.h), the least MDGPU_IOCTL_KERNEL_CREATE2 accepts.
 */
#define MDGPU_KERNEL_DESC_MIN_SIZE 64

/** MDGPU_KERNEL_DESC_MAX_SIZE: the largest kernel record the device reads (later versions). */
#define MDGPU_KERNEL_DESC_MAX_SIZE 4096

/**
 * struct mdgpu_caps_read - write the capability record into a buffer (MDGPU_IOCTL_CAPS_READ)
 *
 * The device writes its capability record (struct mdgpu_caps in mdgpu_cmd.h: the host
 * device's identity, limits and kernel features within what mdgpu mediates, and the VM's
 * largest allocation) at @offset in a buffer of this file, which userspace then reads through
 * its mapping. A device without a compute backend has no record (-EOPNOTSUPP), nor has one
 * older than contract 1.3 (-EOPNOTSUPP).
 */
struct mdgpu_caps_read {
	/** @handle: in: a buffer of this file. */
	__u32 handle;
	/** @flags: in: must be 0. */
	__u32 flags;
	/**
	 * @offset: in: where the record goes in the buffer, a multiple of 8; the whole record
	 * must fit (-EINVAL otherwise).
	 */
	__u64 offset;
	/** @size: out: bytes the device wrote (the record's size). */
	__u32 size;
	/** @pad: must be 0. */
	__u32 pad;
};

/**
 * struct mdgpu_kernel_create2 - build a compute kernel from a kernel record
 * (MDGPU_IOCTL_KERNEL_CREATE2)
 *
 * The record (struct mdgpu_kernel_desc in mdgpu_cmd.h: flags, push-constant bytes, and the
 * offsets of the SPIR-V, the entry point name and the specialization map and data) lies at
 * @offset in a buffer of this file, and every offset in it is an offset into that same buffer.
 * The device copies all of it out and checks it inside the ioctl, so the buffer may be reused
 * right after; the kernel's descriptor layout is whatever its SPIR-V declares (storage and
 * uniform buffers in any set, arrays). Like MDGPU_IOCTL_KERNEL_CREATE, the ioctl then sleeps
 * until the device built the kernel, without holding the file's lock, and returns -EINVAL when
 * the record or the SPIR-V is refused, -EAGAIN when the VM is throttled, -EDQUOT over the
 * quota, -ETIMEDOUT after kernel_timeout_ms.
 */
struct mdgpu_kernel_create2 {
	/** @handle: in: a buffer of this file holding the record and what it names. */
	__u32 handle;
	/** @flags: in: must be 0 (the kernel's own flags are in the record). */
	__u32 flags;
	/** @offset: in: where the record starts in the buffer, a multiple of 8. */
	__u64 offset;
	/**
	 * @size: in: the record's size in bytes, MDGPU_KERNEL_DESC_MIN_SIZE..
	 * MDGPU_KERNEL_DESC_MAX_SIZE, inside the buffer.
	 */
	__u32 size;
	/** @kernel: out: the kernel id, never 0, to put in DISPATCH2 commands. */
	__u32 kernel;
};

/** MDGPU_IOCTL_GET_INFO: read struct mdgpu_info. */
#define MDGPU_IOCTL_GET_INFO _IOWR(MDGPU_IOCTL_BASE, 0x40, struct mdgpu_info)
/** MDGPU_IOCTL_BO_CREATE: create a buffer, see struct mdgpu_bo_create. */
#define MDGPU_IOCTL_BO_CREATE _IOWR(MDGPU_IOCTL_BASE, 0x41, struct mdgpu_bo_create)
/** MDGPU_IOCTL_BO_DESTROY: free a buffer, see struct mdgpu_bo_destroy. */
#define MDGPU_IOCTL_BO_DESTROY _IOWR(MDGPU_IOCTL_BASE, 0x42, struct mdgpu_bo_destroy)
/** MDGPU_IOCTL_WINDOW_SET: move the trapped window, see struct mdgpu_window_set. */
#define MDGPU_IOCTL_WINDOW_SET _IOWR(MDGPU_IOCTL_BASE, 0x43, struct mdgpu_window_set)
/** MDGPU_IOCTL_GET_COMPUTE_INFO: read struct mdgpu_compute_info. */
#define MDGPU_IOCTL_GET_COMPUTE_INFO _IOWR(MDGPU_IOCTL_BASE, 0x44, struct mdgpu_compute_info)
/** MDGPU_IOCTL_QUEUE_CREATE: make a buffer a queue, see struct mdgpu_queue_create. */
#define MDGPU_IOCTL_QUEUE_CREATE _IOWR(MDGPU_IOCTL_BASE, 0x45, struct mdgpu_queue_create)
/** MDGPU_IOCTL_QUEUE_DESTROY: stop a queue, see struct mdgpu_queue_destroy. */
#define MDGPU_IOCTL_QUEUE_DESTROY _IOWR(MDGPU_IOCTL_BASE, 0x46, struct mdgpu_queue_destroy)
/** MDGPU_IOCTL_QUEUE_DOORBELL: wake a sleeping queue, see struct mdgpu_queue_doorbell. */
#define MDGPU_IOCTL_QUEUE_DOORBELL _IOWR(MDGPU_IOCTL_BASE, 0x47, struct mdgpu_queue_doorbell)
/** MDGPU_IOCTL_KERNEL_CREATE: create a kernel from SPIR-V, see struct mdgpu_kernel_create. */
#define MDGPU_IOCTL_KERNEL_CREATE _IOWR(MDGPU_IOCTL_BASE, 0x48, struct mdgpu_kernel_create)
/** MDGPU_IOCTL_KERNEL_DESTROY: destroy a kernel, see struct mdgpu_kernel_destroy. */
#define MDGPU_IOCTL_KERNEL_DESTROY _IOWR(MDGPU_IOCTL_BASE, 0x49, struct mdgpu_kernel_destroy)
/** MDGPU_IOCTL_WAIT_FENCE: wait for a fence, see struct mdgpu_wait_fence. */
#define MDGPU_IOCTL_WAIT_FENCE _IOWR(MDGPU_IOCTL_BASE, 0x4a, struct mdgpu_wait_fence)
/** MDGPU_IOCTL_MARK: write a phase marker, see struct mdgpu_mark. */
#define MDGPU_IOCTL_MARK _IOWR(MDGPU_IOCTL_BASE, 0x4b, struct mdgpu_mark)
/** MDGPU_IOCTL_CAPS_READ: write the capability record, see struct mdgpu_caps_read (1.3). */
#define MDGPU_IOCTL_CAPS_READ _IOWR(MDGPU_IOCTL_BASE, 0x4c, struct mdgpu_caps_read)
/** MDGPU_IOCTL_KERNEL_CREATE2: build a kernel from a record, see struct mdgpu_kernel_create2. */
#define MDGPU_IOCTL_KERNEL_CREATE2 _IOWR(MDGPU_IOCTL_BASE, 0x4d, struct mdgpu_kernel_create2)

#if defined(__cplusplus)
}
#endif

#endif /* _UAPI_MDGPU_H_ */
