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
 *   TOO_MANY       -EMFILE    too many contexts (open files) or buffers on the device
 *   BAD_SIZE       -EINVAL    size 0 or larger than the allocatable aperture
 *   BAD_FLAGS      -EINVAL    unknown flags or alignment out of range
 *   BAD_PARAM      -EINVAL    unknown query parameter
 *   BUSY           -EBUSY     the object is in use (contract 1.1 queues)
 *   BAD_KERNEL     -EINVAL    SPIR-V refused (contract 1.1 kernels)
 *   UNSUPPORTED    -EOPNOTSUPP no execution backend (contract 1.1)
 *   BAD_HANDLE     -ENOENT    no such buffer in this file
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
#define MDGPU_IOCTL_BASE		'M'

/** MDGPU_WINDOW_SIZE: size of the trapped window page (BAR0[0, 4 KiB)). */
#define MDGPU_WINDOW_SIZE		0x1000

/**
 * MDGPU_MMAP_WINDOW_OFFSET: mmap offset of the trapped window page. Buffers are never at
 * aperture offset 0 (the first page is the window), so this offset cannot name a buffer.
 */
#define MDGPU_MMAP_WINDOW_OFFSET	0

/** MDGPU_BO_FLAGS_KNOWN: BO_CREATE flags this interface defines (none yet). */
#define MDGPU_BO_FLAGS_KNOWN		0u

/** MDGPU_BO_ALIGN_MIN_LOG2: smallest explicit alignment (4 KiB); 0 also means 4 KiB. */
#define MDGPU_BO_ALIGN_MIN_LOG2		12

/** MDGPU_BO_ALIGN_MAX_LOG2: largest alignment a buffer may ask for (1 GiB). */
#define MDGPU_BO_ALIGN_MAX_LOG2		30

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
	/** @flags: in: must be 0 (no flags are defined yet). */
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
 * could be handed to another context while this process still maps it. Fails with -ENOENT for
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

/** MDGPU_IOCTL_GET_INFO: read struct mdgpu_info. */
#define MDGPU_IOCTL_GET_INFO		_IOWR(MDGPU_IOCTL_BASE, 0x40, struct mdgpu_info)
/** MDGPU_IOCTL_BO_CREATE: create a buffer, see struct mdgpu_bo_create. */
#define MDGPU_IOCTL_BO_CREATE		_IOWR(MDGPU_IOCTL_BASE, 0x41, struct mdgpu_bo_create)
/** MDGPU_IOCTL_BO_DESTROY: free a buffer, see struct mdgpu_bo_destroy. */
#define MDGPU_IOCTL_BO_DESTROY		_IOWR(MDGPU_IOCTL_BASE, 0x42, struct mdgpu_bo_destroy)
/** MDGPU_IOCTL_WINDOW_SET: move the trapped window, see struct mdgpu_window_set. */
#define MDGPU_IOCTL_WINDOW_SET		_IOWR(MDGPU_IOCTL_BASE, 0x43, struct mdgpu_window_set)

#if defined(__cplusplus)
}
#endif

#endif /* _UAPI_MDGPU_H_ */
