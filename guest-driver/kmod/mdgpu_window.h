/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * mdgpu guest driver: the trapped window (mdgpu_window.c).
 */
#ifndef __MDGPU_WINDOW_H__
#define __MDGPU_WINDOW_H__

#include <linux/types.h>

struct mdgpu_device;
struct mdgpu_file;
struct vm_area_struct;

int mdgpu_window_write(struct mdgpu_device *mdev, u64 base);
void mdgpu_window_park(struct mdgpu_file *mf, u64 offset, u64 size);
void mdgpu_window_release(struct mdgpu_file *mf);
int mdgpu_window_mmap(struct mdgpu_file *mf, struct vm_area_struct *vma);

int mdgpu_window_set_ioctl(struct mdgpu_file *mf, void *data);

#endif /* __MDGPU_WINDOW_H__ */
