// SPDX-License-Identifier: GPL-2.0-only
/*
 * mdgpu guest driver: queues (contract 1.1). A queue is a buffer of the file that the device
 * reads: its first page the control block, the rest the ring. Userspace fills the ring and
 * publishes with plain stores, and calls MDGPU_IOCTL_QUEUE_DOORBELL only when the device asked
 * for it, so the driver is not on the submission path at all: it creates and destroys queues
 * through the mailbox and rings doorbells. While a queue exists its buffer cannot be destroyed.
 */
#include <linux/log2.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/xarray.h>

#include "mdgpu_bo.h"
#include "mdgpu_drv.h"
#include "mdgpu_queue.h"

/* Forget a queue after the device stopped it. Caller holds mf->lock. */
static void mdgpu_queue_forget(struct mdgpu_file *mf, struct mdgpu_queue *q)
{
	lockdep_assert_held(&mf->lock);
	q->bo->queue = 0;
	xa_erase(&mf->queues, q->id);
	kfree(q);
}

/**
 * mdgpu_queue_free_all() - stop every queue of a file that is being released
 * @mf: the file; the caller holds its lock
 *
 * Stops the file's queues on the device (if it still has a context) and frees their records.
 * CTX_DESTROY would stop them too; stopping them first means no submission of this file is
 * taken from a ring while its context is being torn down.
 */
void mdgpu_queue_free_all(struct mdgpu_file *mf)
{
	struct mdgpu_queue *q;
	unsigned long id;
	int ret;

	lockdep_assert_held(&mf->lock);
	xa_for_each(&mf->queues, id, q) {
		if (mf->ctx) {
			ret = mdgpu_mbox_queue_destroy(mf->mdev, mf->ctx,
						       q->id);
			if (ret && ret != -ENOENT)
				dev_warn_ratelimited(
					&mf->mdev->pdev->dev,
					"queue %u not destroyed: %d\n", q->id,
					ret);
		}
		mdgpu_queue_forget(mf, q);
	}
}

/**
 * mdgpu_queue_create_ioctl() - MDGPU_IOCTL_QUEUE_CREATE: make a buffer of the file a queue
 * @mf: the file
 * @data: struct mdgpu_queue_create
 *
 * Return: 0, -EINVAL (flags, priority, a buffer whose ring is not a power of two in range),
 * -ENOENT (not a buffer of this file), -EBUSY (it holds a queue already), -ENODEV, -ENOMEM,
 * -EIO (the device returned a queue id in use), or the mailbox's errno.
 */
int mdgpu_queue_create_ioctl(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_device *mdev = mf->mdev;
	struct mdgpu_queue_create *args = data;
	struct mdgpu_queue *q;
	struct mdgpu_bo *bo;
	u64 ring;
	u32 id;
	int ret;

	if (args->flags || args->priority > MDGPU_QUEUE_PRIORITY_MAX)
		return -EINVAL;

	q = kzalloc(sizeof(*q), GFP_KERNEL);
	if (!q)
		return -ENOMEM;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		ret = -ENODEV;
		goto err_unlock;
	}
	bo = args->handle ? xa_load(&mf->bos, args->handle) : NULL;
	if (!bo) {
		ret = -ENOENT;
		goto err_unlock;
	}
	if (bo->queue) {
		ret = -EBUSY;
		goto err_unlock;
	}
	/* The device checks this too; checking here names the problem without a round trip. */
	ring = bo->size - MDGPU_QUEUE_CONTROL_SIZE;
	if (bo->size <= MDGPU_QUEUE_CONTROL_SIZE || !is_power_of_2(ring) ||
	    ring < MDGPU_QUEUE_RING_MIN || ring > MDGPU_QUEUE_RING_MAX) {
		ret = -EINVAL;
		goto err_unlock;
	}
	ret = mdgpu_mbox_queue_create(mdev, mf->ctx, bo->handle, args->priority,
				      &id);
	if (ret)
		goto err_unlock;
	q->id = id;
	q->bo = bo;
	ret = xa_insert(&mf->queues, id, q, GFP_KERNEL);
	if (ret) {
		if (ret == -EBUSY) {
			dev_err_ratelimited(
				&mdev->pdev->dev,
				"QUEUE_CREATE returned queue %u, which is in use\n",
				id);
			ret = -EIO;
		}
		goto err_destroy_device;
	}
	bo->queue = id;
	mutex_unlock(&mf->lock);

	args->queue = id;
	return 0;

err_destroy_device:
	mdgpu_mbox_queue_destroy(mdev, mf->ctx, id);
err_unlock:
	mutex_unlock(&mf->lock);
	kfree(q);
	return ret;
}

/**
 * mdgpu_queue_create_undo() - stop a queue whose id never reached userspace
 * @mf: the file
 * @data: struct mdgpu_queue_create as mdgpu_queue_create_ioctl() filled it in
 *
 * Called by the dispatcher when it could not copy the results out.
 */
void mdgpu_queue_create_undo(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_queue_create *args = data;
	struct mdgpu_queue *q;

	mutex_lock(&mf->lock);
	q = mf->ctx ? xa_load(&mf->queues, args->queue) : NULL;
	if (q && !mdgpu_mbox_queue_destroy(mf->mdev, mf->ctx, q->id))
		mdgpu_queue_forget(mf, q);
	mutex_unlock(&mf->lock);
}

/**
 * mdgpu_queue_destroy_ioctl() - MDGPU_IOCTL_QUEUE_DESTROY: stop a queue of the file
 * @mf: the file
 * @data: struct mdgpu_queue_destroy
 *
 * Submissions the device already took complete; nothing more is read from the ring. The
 * buffer stays allocated.
 *
 * Return: 0, -EINVAL (padding), -ENOENT (not a queue of this file), -ENODEV, or the mailbox's
 * errno.
 */
int mdgpu_queue_destroy_ioctl(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_queue_destroy *args = data;
	struct mdgpu_queue *q;
	int ret;

	if (args->pad)
		return -EINVAL;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		ret = -ENODEV;
		goto out_unlock;
	}
	q = args->queue ? xa_load(&mf->queues, args->queue) : NULL;
	if (!q) {
		ret = -ENOENT;
		goto out_unlock;
	}
	ret = mdgpu_mbox_queue_destroy(mf->mdev, mf->ctx, q->id);
	/* -ENOENT: the device does not know it either; nothing is left to stop. */
	if (ret && ret != -ENOENT)
		goto out_unlock;
	mdgpu_queue_forget(mf, q);
	ret = 0;
out_unlock:
	mutex_unlock(&mf->lock);
	return ret;
}

/**
 * mdgpu_queue_doorbell_ioctl() - MDGPU_IOCTL_QUEUE_DOORBELL: wake a sleeping queue
 * @mf: the file
 * @data: struct mdgpu_queue_doorbell
 *
 * One trapped write of QUEUE_DOORBELL.
 *
 * Return: 0, -EINVAL (flags), -ENOENT (not a queue of this file), -ENODEV.
 */
int mdgpu_queue_doorbell_ioctl(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_queue_doorbell *args = data;
	int ret = 0;

	if (args->flags)
		return -EINVAL;

	/* The file's lock with a live context also keeps the registers mapped (see remove). */
	mutex_lock(&mf->lock);
	if (!mf->ctx)
		ret = -ENODEV;
	else if (!args->queue || !xa_load(&mf->queues, args->queue))
		ret = -ENOENT;
	else
		mdgpu_wr32(mf->mdev, MDGPU_REG_QUEUE_DOORBELL, args->queue);
	mutex_unlock(&mf->lock);
	return ret;
}
