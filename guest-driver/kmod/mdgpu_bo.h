/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * mdgpu guest driver: buffers and their mappings (mdgpu_bo.c).
 */
#ifndef __MDGPU_BO_H__
#define __MDGPU_BO_H__

#include <linux/types.h>

struct mdgpu_file;
struct vm_area_struct;

/**
 * struct mdgpu_bo - a buffer of one file
 * @handle: device handle (also the key in &mdgpu_file.bos)
 * @offset: aperture offset, which is also the mmap offset
 * @size: size in bytes (a multiple of PAGE_SIZE)
 * @map_count: VMAs mapping this buffer (vm_ops open/close); guarded by &mdgpu_file.lock
 * @queue: the queue this buffer holds, or 0; guarded by &mdgpu_file.lock
 * @waiters: fence waits sleeping on this buffer; guarded by &mdgpu_file.lock
 * @cached: created with MDGPU_BO_CACHED: mapped write-back rather than write-combined
 *
 * A buffer that is mapped, holds a queue or has waiters cannot be destroyed (-EBUSY).
 */
struct mdgpu_bo {
	u32 handle;
	u64 offset;
	u64 size;
	unsigned int map_count;
	u32 queue;
	unsigned int waiters;
	bool cached;
};

struct mdgpu_bo *mdgpu_bo_find_range(struct mdgpu_file *mf, u64 offset,
				     u64 len);
int mdgpu_bo_mmap(struct mdgpu_file *mf, struct vm_area_struct *vma);
void mdgpu_bo_free_all(struct mdgpu_file *mf);

int mdgpu_bo_create_ioctl(struct mdgpu_file *mf, void *data);
void mdgpu_bo_create_undo(struct mdgpu_file *mf, void *data);
int mdgpu_bo_destroy_ioctl(struct mdgpu_file *mf, void *data);

#endif /* __MDGPU_BO_H__ */
