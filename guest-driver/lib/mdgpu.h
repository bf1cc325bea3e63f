/* SPDX-License-Identifier: MIT */
/*
 * libmdgpu: a thin C library over /dev/mdgpuN (include/uapi/mdgpu.h).
 *
 * Every function that can fail returns 0 or a negative errno value (never sets errno as its
 * result); mdgpu_strerror() explains one in terms of the device.
 */
#ifndef LIBMDGPU_H
#define LIBMDGPU_H

#include <stddef.h>
#include <stdint.h>

#include "uapi/mdgpu.h"

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
 * @flags: 0
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
 * mdgpu_bo_map() - map a whole buffer (read/write, shared, write-combined) at @bo->map
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

/**
 * mdgpu_strerror() - explain an error in terms of the device
 * @err: a negative (or positive) errno returned by libmdgpu
 *
 * Return: a static message.
 */
const char *mdgpu_strerror(int err);

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
