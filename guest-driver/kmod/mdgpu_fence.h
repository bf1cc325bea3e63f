/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * mdgpu guest driver: fence waits (mdgpu_fence.c).
 */
#ifndef __MDGPU_FENCE_H__
#define __MDGPU_FENCE_H__

struct mdgpu_file;

int mdgpu_wait_fence_ioctl(struct mdgpu_file *mf, void *data);

#endif /* __MDGPU_FENCE_H__ */
