/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * mdgpu guest driver: compute kernels (mdgpu_kernel.c).
 */
#ifndef __MDGPU_KERNEL_H__
#define __MDGPU_KERNEL_H__

#include <linux/types.h>

struct mdgpu_file;

/**
 * struct mdgpu_kernel - a compute kernel of one file
 * @id: device kernel id (also the key in &mdgpu_file.kernels)
 * @bindings: storage buffers it binds (KERNEL_CREATE; 0 for KERNEL_CREATE2 kernels)
 * @push_bytes: push-constant bytes it takes (KERNEL_CREATE; 0 for KERNEL_CREATE2 kernels)
 */
struct mdgpu_kernel {
	u32 id;
	u32 bindings;
	u32 push_bytes;
};

void mdgpu_kernel_free_all(struct mdgpu_file *mf);

int mdgpu_kernel_create_ioctl(struct mdgpu_file *mf, void *data);
void mdgpu_kernel_create_undo(struct mdgpu_file *mf, void *data);
int mdgpu_kernel_create2_ioctl(struct mdgpu_file *mf, void *data);
void mdgpu_kernel_create2_undo(struct mdgpu_file *mf, void *data);
int mdgpu_kernel_destroy_ioctl(struct mdgpu_file *mf, void *data);

#endif /* __MDGPU_KERNEL_H__ */
