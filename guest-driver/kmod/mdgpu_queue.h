/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * mdgpu guest driver: queues (mdgpu_queue.c).
 */
#ifndef __MDGPU_QUEUE_H__
#define __MDGPU_QUEUE_H__

#include <linux/types.h>

struct mdgpu_bo;
struct mdgpu_file;

/**
 * struct mdgpu_queue - a queue of one file
 * @id: device queue id (also the key in &mdgpu_file.queues)
 * @bo: the buffer holding its control block and ring
 */
struct mdgpu_queue {
	u32 id;
	struct mdgpu_bo *bo;
};

void mdgpu_queue_free_all(struct mdgpu_file *mf);

int mdgpu_queue_create_ioctl(struct mdgpu_file *mf, void *data);
void mdgpu_queue_create_undo(struct mdgpu_file *mf, void *data);
int mdgpu_queue_destroy_ioctl(struct mdgpu_file *mf, void *data);
int mdgpu_queue_doorbell_ioctl(struct mdgpu_file *mf, void *data);

#endif /* __MDGPU_QUEUE_H__ */
