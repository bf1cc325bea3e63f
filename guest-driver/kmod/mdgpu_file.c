// SPDX-License-Identifier: GPL-2.0-only
/*
 * mdgpu guest driver: /dev/mdgpuN. One open file is one device context (CTX_CREATE at open,
 * CTX_DESTROY at release, which frees all of its buffers on the device); the ioctls of
 * include/uapi/mdgpu.h create and free buffers in it, and mmap() maps them.
 *
 * mmap offsets are aperture offsets: a mapping must start exactly at a buffer of this file and
 * may not extend beyond it. It maps the aperture pages (BAR0) write-combined, straight from
 * guest physical memory that QEMU backs with mdgpu's memfd, so loads and stores cost no VM
 * exit. Offset 0, one page, is the trapped window instead, mapped uncached so every access
 * reaches the device.
 *
 * Contract 1.1 (queues, kernels, fences): a queue is a buffer of the file that the device
 * reads; userspace fills its ring and publishes with plain stores, and calls
 * MDGPU_IOCTL_QUEUE_DOORBELL only when the device asked for it, so the driver is not on the
 * submission path at all. It creates and destroys queues and kernels through the mailbox,
 * rings doorbells, and lets processes sleep on fences (woken by the FENCE and ERROR
 * interrupts, see mdgpu_drv.c).
 */
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "mdgpu_drv.h"

/*
 * The limits the uAPI promises userspace are the device's: include/uapi/mdgpu.h spells them
 * out (userspace installs it alone), mdgpu_hw.h has them generated from the device's tables.
 */
static_assert(MDGPU_WINDOW_SIZE == MDGPU_TRAPPED_WINDOW_SIZE);
static_assert(MDGPU_BO_FLAGS_KNOWN == MDGPU_HW_BO_FLAGS_KNOWN);
static_assert(MDGPU_BO_ALIGN_MIN_LOG2 == MDGPU_MIN_ALIGN_LOG2);
static_assert(MDGPU_BO_ALIGN_MAX_LOG2 == MDGPU_MAX_ALIGN_LOG2);
static_assert(MDGPU_QUEUE_CONTROL_SIZE == MDGPU_HW_QUEUE_CONTROL_SIZE);
static_assert(MDGPU_QUEUE_RING_MIN == MDGPU_HW_QUEUE_RING_MIN);
static_assert(MDGPU_QUEUE_RING_MAX == MDGPU_HW_QUEUE_RING_MAX);
static_assert(MDGPU_QUEUE_PRIORITY_MAX == MDGPU_HW_QUEUE_PRIORITY_MAX);
static_assert(MDGPU_KERNEL_MAX_SPIRV == MDGPU_HW_KERNEL_MAX_SPIRV);
static_assert(MDGPU_KERNEL_MAX_BINDINGS == MDGPU_HW_KERNEL_MAX_BINDINGS);
static_assert(MDGPU_KERNEL_MAX_PUSH_BYTES == MDGPU_HW_KERNEL_MAX_PUSH_BYTES);
static_assert(MDGPU_FENCE_ERROR == MDGPU_HW_FENCE_ERROR);

static unsigned int fence_poll_ms = 10;
module_param(fence_poll_ms, uint, 0644);
MODULE_PARM_DESC(
	fence_poll_ms,
	"A sleeping fence wait also re-reads its fence this often, in ms, for fences written without an interrupt (0: only on interrupts; default 10)");

static unsigned int kernel_timeout_ms = 120000;
module_param(kernel_timeout_ms, uint, 0644);
MODULE_PARM_DESC(
	kernel_timeout_ms,
	"Longest wait for the device to build a kernel, in ms (default 120000)");

/* Callers hold window_lock and have checked that the device is still there. */
int mdgpu_window_write(struct mdgpu_device *mdev, u64 base)
{
	u32 lo, hi;

	lockdep_assert_held(&mdev->window_lock);
	/*
	 * The device checks every half as it is written and resets both to 0 when the
	 * combination lies outside the aperture; moving LO to 0 first keeps every intermediate
	 * value inside it.
	 */
	if (upper_32_bits(base) != upper_32_bits(mdev->window_base)) {
		mdgpu_wr32(mdev, MDGPU_REG_WINDOW_BASE_LO, 0);
		mdgpu_wr32(mdev, MDGPU_REG_WINDOW_BASE_HI, upper_32_bits(base));
	}
	mdgpu_wr32(mdev, MDGPU_REG_WINDOW_BASE_LO, lower_32_bits(base));
	lo = mdgpu_rd32(mdev, MDGPU_REG_WINDOW_BASE_LO);
	hi = mdgpu_rd32(mdev, MDGPU_REG_WINDOW_BASE_HI);
	mdev->window_base = (u64)hi << 32 | lo;
	if (mdev->window_base != base) {
		dev_err_ratelimited(
			&mdev->pdev->dev,
			"window base 0x%llx refused (reads 0x%llx)\n", base,
			mdev->window_base);
		return -EIO;
	}
	return 0;
}

/* Claim the window for @mf. Callers hold window_lock. */
static int mdgpu_window_claim(struct mdgpu_file *mf)
{
	struct mdgpu_device *mdev = mf->mdev;

	lockdep_assert_held(&mdev->window_lock);
	if (mdev->window_owner && mdev->window_owner != mf)
		return -EBUSY;
	mdev->window_owner = mf;
	return 0;
}

/* If @mf owns the window and it shows [@offset, @offset + @size), park it at offset 0. */
static void mdgpu_window_park(struct mdgpu_file *mf, u64 offset, u64 size)
{
	struct mdgpu_device *mdev = mf->mdev;

	mutex_lock(&mdev->window_lock);
	if (mdev->window_owner == mf && mdev->window_base >= offset &&
	    mdev->window_base - offset < size)
		mdgpu_window_write(mdev, 0);
	mutex_unlock(&mdev->window_lock);
}

static int mdgpu_open(struct inode *inode, struct file *filp)
{
	/* misc_open() stored the miscdevice and holds misc_mtx: remove cannot run now. */
	struct mdgpu_device *mdev =
		container_of(filp->private_data, struct mdgpu_device, misc);
	struct mdgpu_file *mf;
	int ret;

	mf = kzalloc(sizeof(*mf), GFP_KERNEL);
	if (!mf)
		return -ENOMEM;
	mutex_init(&mf->lock);
	xa_init(&mf->bos);
	xa_init(&mf->queues);
	xa_init(&mf->kernels);
	mf->mdev = mdev;
	mf->mapping = filp->f_mapping;

	ret = mdgpu_mbox_ctx_create(mdev, &mf->ctx);
	if (ret)
		goto err_free;

	kref_get(&mdev->ref);
	mutex_lock(&mdev->files_lock);
	list_add_tail(&mf->link, &mdev->files);
	mutex_unlock(&mdev->files_lock);
	filp->private_data = mf;
	return 0;

err_free:
	mutex_destroy(&mf->lock);
	kfree(mf);
	return ret;
}

/* Free the file's buffer records; the device frees the buffers themselves with the context. */
static void mdgpu_file_free_bos(struct mdgpu_file *mf)
{
	struct mdgpu_bo *bo;
	unsigned long handle;

	xa_for_each(&mf->bos, handle, bo) {
		xa_erase(&mf->bos, handle);
		kfree(bo);
	}
}

/*
 * Stop the file's queues on the device (if it still has a context) and free their records.
 * CTX_DESTROY would stop them too; stopping them first means no submission of this file is
 * taken from a ring while its context is being torn down. Caller holds mf->lock.
 */
static void mdgpu_file_free_queues(struct mdgpu_file *mf)
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
		q->bo->queue = 0;
		xa_erase(&mf->queues, id);
		kfree(q);
	}
}

/* Free the file's kernel records; CTX_DESTROY destroys the kernels on the device. */
static void mdgpu_file_free_kernels(struct mdgpu_file *mf)
{
	struct mdgpu_kernel *k;
	unsigned long id;

	xa_for_each(&mf->kernels, id, k) {
		xa_erase(&mf->kernels, id);
		kfree(k);
	}
}

static int mdgpu_release(struct inode *inode, struct file *filp)
{
	struct mdgpu_file *mf = filp->private_data;
	struct mdgpu_device *mdev = mf->mdev;
	u32 freed = 0;
	int ret;

	mutex_lock(&mdev->files_lock);
	list_del(&mf->link);
	mutex_unlock(&mdev->files_lock);

	mutex_lock(&mdev->window_lock);
	if (mdev->window_owner == mf) {
		mdgpu_window_write(mdev, 0);
		mdev->window_owner = NULL;
	}
	mutex_unlock(&mdev->window_lock);

	mutex_lock(&mf->lock);
	mdgpu_file_free_queues(mf);
	if (mf->ctx) {
		ret = mdgpu_mbox_ctx_destroy(mdev, mf->ctx, &freed);
		if (ret)
			dev_warn_ratelimited(&mdev->pdev->dev,
					     "context %u not destroyed: %d\n",
					     mf->ctx, ret);
		mf->ctx = 0;
	}
	mdgpu_file_free_kernels(mf);
	mdgpu_file_free_bos(mf);
	mutex_unlock(&mf->lock);

	xa_destroy(&mf->queues);
	xa_destroy(&mf->kernels);
	xa_destroy(&mf->bos);
	mutex_destroy(&mf->lock);
	kfree(mf);
	mdgpu_device_put(mdev);
	return 0;
}

/**
 * mdgpu_file_revoke_all() - the device is going away: end every open file's context
 * @mdev: the device, already deregistered (no new opens)
 *
 * Destroys each context on the device (its buffers with it) and zaps every mapping of the
 * file, so a later access gets SIGBUS instead of reaching aperture pages that may be handed to
 * someone else. The files stay open; their ioctls and mmap fail with -ENODEV.
 */
void mdgpu_file_revoke_all(struct mdgpu_device *mdev)
{
	struct mdgpu_file *mf;
	u32 freed;

	mutex_lock(&mdev->files_lock);
	list_for_each_entry(mf, &mdev->files, link) {
		mutex_lock(&mf->lock);
		if (mf->ctx)
			mdgpu_mbox_ctx_destroy(mdev, mf->ctx, &freed);
		mf->ctx = 0;
		mutex_unlock(&mf->lock);
		/*
		 * Known gap: a mmap() that passed its checks before ctx was cleared but whose VMA
		 * is not yet linked into the mapping escapes this zap (vfio-pci closes it with a
		 * fault handler; here it needs a hot-unplug racing an mmap).
		 */
		unmap_mapping_range(mf->mapping, 0, 0, 1);
	}
	mutex_unlock(&mdev->files_lock);
}

static int mdgpu_ioctl_get_info(struct mdgpu_file *mf, void __user *argp)
{
	struct mdgpu_device *mdev = mf->mdev;
	struct mdgpu_info info = {};
	u64 contexts, buffers;
	int ret;

	info.version = mdev->version;
	info.vendor_id = mdev->pdev->vendor;
	info.device_id = mdev->pdev->device;
	info.max_contexts = mdev->max_contexts;
	info.max_buffers = mdev->max_buffers;
	info.aperture_size = mdev->aperture_size;
	info.alloc_base = mdev->alloc_base;
	info.quota = mdev->quota;
	info.min_align = mdev->min_align;
	info.index = mdev->index;

	ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_USED, &info.used);
	if (!ret)
		ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_LARGEST_FREE,
				       &info.largest_free);
	if (!ret)
		ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_CONTEXTS, &contexts);
	if (!ret)
		ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_BUFFERS, &buffers);
	if (ret)
		return ret;
	info.contexts = min_t(u64, contexts, U32_MAX);
	info.buffers = min_t(u64, buffers, U32_MAX);
	info.irq_count = atomic64_read(&mdev->irq_count);

	if (copy_to_user(argp, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

/* Free a buffer on the device and forget it. Caller holds mf->lock; the buffer is unmapped. */
static int mdgpu_bo_free_locked(struct mdgpu_file *mf, struct mdgpu_bo *bo)
{
	int ret;

	lockdep_assert_held(&mf->lock);
	mdgpu_window_park(mf, bo->offset, bo->size);
	ret = mdgpu_mbox_bo_free(mf->mdev, mf->ctx, bo->handle);
	/* -ENOENT: the device does not know it either; nothing is left to free. */
	if (ret && ret != -ENOENT)
		return ret;
	xa_erase(&mf->bos, bo->handle);
	kfree(bo);
	return ret;
}

static int mdgpu_ioctl_bo_create(struct mdgpu_file *mf, void __user *argp)
{
	struct mdgpu_device *mdev = mf->mdev;
	struct mdgpu_bo_create args;
	struct mdgpu_bo *bo;
	u64 align, size, offset;
	u32 handle;
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~MDGPU_BO_FLAGS_KNOWN || args.pad)
		return -EINVAL;
	if (args.align_log2 && (args.align_log2 < MDGPU_BO_ALIGN_MIN_LOG2 ||
				args.align_log2 > MDGPU_BO_ALIGN_MAX_LOG2))
		return -EINVAL;
	/* The device refuses these too; checking here also keeps round_up() from overflowing. */
	if (!args.size || args.size > mdev->aperture_size)
		return -EINVAL;
	size = round_up(args.size, mdev->min_align);
	align = args.align_log2 ? BIT_ULL(args.align_log2) :
				  MDGPU_TRAPPED_WINDOW_SIZE;

	bo = kzalloc(sizeof(*bo), GFP_KERNEL);
	if (!bo)
		return -ENOMEM;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		ret = -ENODEV;
		goto err_unlock;
	}
	ret = mdgpu_mbox_bo_alloc(mdev, mf->ctx, args.size, args.align_log2,
				  &handle, &offset);
	if (ret)
		goto err_unlock;

	bo->handle = handle;
	bo->offset = offset;
	bo->size = size;
	/* What the device hands out is mapped into userspace: check it is sane first. */
	if (!handle || offset < mdev->alloc_base ||
	    !IS_ALIGNED(offset, align) || !IS_ALIGNED(offset, PAGE_SIZE) ||
	    offset > mdev->aperture_size ||
	    size > mdev->aperture_size - offset) {
		dev_err_ratelimited(
			&mdev->pdev->dev,
			"BO_ALLOC returned handle %u at 0x%llx+0x%llx: outside the aperture or misaligned\n",
			handle, offset, size);
		ret = -EIO;
		goto err_free_device;
	}
	ret = xa_insert(&mf->bos, handle, bo, GFP_KERNEL);
	if (ret) {
		if (ret == -EBUSY) {
			dev_err_ratelimited(
				&mdev->pdev->dev,
				"BO_ALLOC returned handle %u, which is in use\n",
				handle);
			ret = -EIO;
		}
		goto err_free_device;
	}
	mutex_unlock(&mf->lock);

	args.size = size;
	args.handle = handle;
	args.mmap_offset = offset;
	if (copy_to_user(argp, &args, sizeof(args))) {
		/* Nobody learnt the handle: do not leave the buffer behind. */
		mutex_lock(&mf->lock);
		if (mf->ctx && xa_load(&mf->bos, handle) == bo &&
		    !bo->map_count)
			mdgpu_bo_free_locked(mf, bo);
		mutex_unlock(&mf->lock);
		return -EFAULT;
	}
	return 0;

err_free_device:
	mdgpu_mbox_bo_free(mdev, mf->ctx, handle);
err_unlock:
	mutex_unlock(&mf->lock);
	kfree(bo);
	return ret;
}

static int mdgpu_ioctl_bo_destroy(struct mdgpu_file *mf, void __user *argp)
{
	struct mdgpu_bo_destroy args;
	struct mdgpu_bo *bo;
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.pad)
		return -EINVAL;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		ret = -ENODEV;
		goto out_unlock;
	}
	bo = args.handle ? xa_load(&mf->bos, args.handle) : NULL;
	if (!bo) {
		ret = -ENOENT;
		goto out_unlock;
	}
	if (bo->map_count || bo->queue || bo->waiters) {
		ret = -EBUSY;
		goto out_unlock;
	}
	ret = mdgpu_bo_free_locked(mf, bo);
out_unlock:
	mutex_unlock(&mf->lock);
	return ret;
}

/* The buffer of @mf that contains [@offset, @offset + @len), or NULL. Caller holds mf->lock. */
static struct mdgpu_bo *mdgpu_bo_find_range(struct mdgpu_file *mf, u64 offset,
					    u64 len)
{
	struct mdgpu_bo *bo;
	unsigned long handle;

	lockdep_assert_held(&mf->lock);
	xa_for_each(&mf->bos, handle, bo)
		if (offset >= bo->offset && offset - bo->offset < bo->size &&
		    len <= bo->size - (offset - bo->offset))
			return bo;
	return NULL;
}

static int mdgpu_ioctl_window_set(struct mdgpu_file *mf, void __user *argp)
{
	struct mdgpu_device *mdev = mf->mdev;
	struct mdgpu_window_set args;
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags || args.pad ||
	    !IS_ALIGNED(args.offset, MDGPU_WINDOW_SIZE))
		return -EINVAL;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		ret = -ENODEV;
		goto out_unlock;
	}
	if (!mdgpu_bo_find_range(mf, args.offset, MDGPU_WINDOW_SIZE)) {
		ret = -EINVAL;
		goto out_unlock;
	}
	mutex_lock(&mdev->window_lock);
	ret = mdgpu_window_claim(mf);
	if (!ret)
		ret = mdgpu_window_write(mdev, args.offset);
	mutex_unlock(&mdev->window_lock);
out_unlock:
	mutex_unlock(&mf->lock);
	return ret;
}

static int mdgpu_ioctl_get_compute_info(struct mdgpu_file *mf,
					void __user *argp)
{
	struct mdgpu_device *mdev = mf->mdev;
	struct mdgpu_compute_info info = {};
	unsigned long id;
	void *entry;

	info.has_backend = mdev->has_backend;
	info.max_queues = mdev->max_queues;
	info.max_kernels = mdev->max_kernels;
	info.irq_vectors = mdev->irq_vectors;
	info.max_submission = mdev->max_submission;
	info.grace_us = mdev->grace_us;
	info.binding_align = mdev->binding_align;
	info.max_binding = mdev->max_binding;
	info.irq_mailbox = atomic64_read(&mdev->irq_source_count[0]);
	info.irq_fence = atomic64_read(&mdev->irq_source_count[1]);
	info.irq_error = atomic64_read(&mdev->irq_source_count[2]);
	info.fence_waits = atomic64_read(&mdev->fence_waits);
	info.fence_sleeps = atomic64_read(&mdev->fence_sleeps);
	info.fence_irq_wakeups = atomic64_read(&mdev->fence_irq_wakeups);

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		mutex_unlock(&mf->lock);
		return -ENODEV;
	}
	xa_for_each(&mf->queues, id, entry)
		info.queues++;
	xa_for_each(&mf->kernels, id, entry)
		info.kernels++;
	mutex_unlock(&mf->lock);

	if (copy_to_user(argp, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

/* Forget a queue after the device stopped it. Caller holds mf->lock. */
static void mdgpu_queue_forget(struct mdgpu_file *mf, struct mdgpu_queue *q)
{
	lockdep_assert_held(&mf->lock);
	q->bo->queue = 0;
	xa_erase(&mf->queues, q->id);
	kfree(q);
}

static int mdgpu_ioctl_queue_create(struct mdgpu_file *mf, void __user *argp)
{
	struct mdgpu_device *mdev = mf->mdev;
	struct mdgpu_queue_create args;
	struct mdgpu_queue *q;
	struct mdgpu_bo *bo;
	u64 ring;
	u32 id;
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags || args.priority > MDGPU_QUEUE_PRIORITY_MAX)
		return -EINVAL;

	q = kzalloc(sizeof(*q), GFP_KERNEL);
	if (!q)
		return -ENOMEM;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		ret = -ENODEV;
		goto err_unlock;
	}
	bo = args.handle ? xa_load(&mf->bos, args.handle) : NULL;
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
	ret = mdgpu_mbox_queue_create(mdev, mf->ctx, bo->handle, args.priority,
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

	args.queue = id;
	if (copy_to_user(argp, &args, sizeof(args))) {
		/* Nobody learnt the id: do not leave the queue behind. */
		mutex_lock(&mf->lock);
		if (mf->ctx && xa_load(&mf->queues, id) == q &&
		    !mdgpu_mbox_queue_destroy(mdev, mf->ctx, id))
			mdgpu_queue_forget(mf, q);
		mutex_unlock(&mf->lock);
		return -EFAULT;
	}
	return 0;

err_destroy_device:
	mdgpu_mbox_queue_destroy(mdev, mf->ctx, id);
err_unlock:
	mutex_unlock(&mf->lock);
	kfree(q);
	return ret;
}

static int mdgpu_ioctl_queue_destroy(struct mdgpu_file *mf, void __user *argp)
{
	struct mdgpu_queue_destroy args;
	struct mdgpu_queue *q;
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.pad)
		return -EINVAL;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		ret = -ENODEV;
		goto out_unlock;
	}
	q = args.queue ? xa_load(&mf->queues, args.queue) : NULL;
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

static int mdgpu_ioctl_queue_doorbell(struct mdgpu_file *mf, void __user *argp)
{
	struct mdgpu_queue_doorbell args;
	int ret = 0;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags)
		return -EINVAL;

	/* The file's lock with a live context also keeps the registers mapped (see remove). */
	mutex_lock(&mf->lock);
	if (!mf->ctx)
		ret = -ENODEV;
	else if (!args.queue || !xa_load(&mf->queues, args.queue))
		ret = -ENOENT;
	else
		mdgpu_wr32(mf->mdev, MDGPU_REG_QUEUE_DOORBELL, args.queue);
	mutex_unlock(&mf->lock);
	return ret;
}

/*
 * Wait until the device has built kernel @id or refused it (contract 1.2). Called without the
 * file's lock; takes it around each KERNEL_STATUS. Another thread of the file may destroy the
 * kernel meanwhile (it could guess the id): the record is then only compared, never touched.
 * Returns 0 when READY, the errno of the device's refusal, -ETIMEDOUT after kernel_timeout_ms,
 * -ERESTARTSYS on a signal, -ENODEV once the device or the file's context is gone.
 */
static int mdgpu_kernel_wait_built(struct mdgpu_file *mf, u32 id)
{
	struct mdgpu_device *mdev = mf->mdev;
	unsigned long deadline = jiffies + msecs_to_jiffies(kernel_timeout_ms);
	u32 state = 0, result = 0;
	long waited;
	int seq, ret;

	for (;;) {
		seq = atomic_read(&mdev->kernel_seq);
		mutex_lock(&mf->lock);
		if (!mf->ctx)
			ret = -ENODEV;
		else if (!xa_load(&mf->kernels, id))
			ret = -ENOENT;
		else
			ret = mdgpu_mbox_kernel_status(mdev, mf->ctx, id,
						       &state, &result);
		mutex_unlock(&mf->lock);
		if (ret)
			return ret;
		if (state == MDGPU_KERNEL_READY)
			return 0;
		if (state == MDGPU_KERNEL_FAILED) {
			ret = mdgpu_mbox_result_to_errno(result);
			return ret ? ret : -EIO;
		}
		if (state != MDGPU_KERNEL_BUILDING)
			return -EIO;
		if (time_after(jiffies, deadline))
			return -ETIMEDOUT;
		/* Woken by the KERNEL interrupt; the timeout covers a lost one. */
		waited = wait_event_interruptible_timeout(
			mdev->kernel_wq,
			atomic_read(&mdev->kernel_seq) != seq ||
				READ_ONCE(mdev->gone),
			msecs_to_jiffies(100));
		if (waited < 0)
			return -ERESTARTSYS;
		if (READ_ONCE(mdev->gone))
			return -ENODEV;
	}
}

/* Forget a kernel this ioctl created and will not hand out (if it is still there). */
static void mdgpu_kernel_discard(struct mdgpu_file *mf, u32 id,
				 struct mdgpu_kernel *k)
{
	mutex_lock(&mf->lock);
	if (mf->ctx && xa_load(&mf->kernels, id) == k) {
		mdgpu_mbox_kernel_destroy(mf->mdev, mf->ctx, id);
		xa_erase(&mf->kernels, id);
		kfree(k);
	}
	mutex_unlock(&mf->lock);
}

static int mdgpu_ioctl_kernel_create(struct mdgpu_file *mf, void __user *argp)
{
	struct mdgpu_device *mdev = mf->mdev;
	struct mdgpu_kernel_create args;
	struct mdgpu_kernel *k;
	struct mdgpu_bo *bo;
	u32 id;
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags || args.pad)
		return -EINVAL;
	if (!args.size || args.size > MDGPU_KERNEL_MAX_SPIRV ||
	    !IS_ALIGNED(args.size, 4) || !IS_ALIGNED(args.offset, 4) ||
	    args.offset > U32_MAX)
		return -EINVAL;
	if (args.bindings > MDGPU_KERNEL_MAX_BINDINGS ||
	    args.push_bytes > MDGPU_KERNEL_MAX_PUSH_BYTES ||
	    !IS_ALIGNED(args.push_bytes, 4))
		return -EINVAL;

	k = kzalloc(sizeof(*k), GFP_KERNEL);
	if (!k)
		return -ENOMEM;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		ret = -ENODEV;
		goto err_unlock;
	}
	bo = args.handle ? xa_load(&mf->bos, args.handle) : NULL;
	if (!bo) {
		ret = -ENOENT;
		goto err_unlock;
	}
	if (args.offset > bo->size || args.size > bo->size - args.offset) {
		ret = -EINVAL;
		goto err_unlock;
	}
	/*
	 * The device copies the SPIR-V out inside this operation; it validates and compiles it
	 * afterwards (contract 1.2), and before 1.2 inside the operation.
	 */
	ret = mdgpu_mbox_kernel_create(mdev, mf->ctx, bo->handle, args.offset,
				       args.size, args.bindings,
				       args.push_bytes, &id);
	if (ret)
		goto err_unlock;
	k->id = id;
	k->bindings = args.bindings;
	k->push_bytes = args.push_bytes;
	ret = xa_insert(&mf->kernels, id, k, GFP_KERNEL);
	if (ret) {
		if (ret == -EBUSY) {
			dev_err_ratelimited(
				&mdev->pdev->dev,
				"KERNEL_CREATE returned kernel %u, which is in use\n",
				id);
			ret = -EIO;
		}
		goto err_destroy_device;
	}
	mutex_unlock(&mf->lock);

	/*
	 * Contract 1.2: the device builds the kernel after the mailbox operation returned. Wait
	 * without the file's lock, so other ioctls of this file (other threads creating kernels,
	 * submitting, waiting) go on meanwhile.
	 */
	if (MDGPU_FIELD_GET(VERSION, MINOR, mdev->version) >= 2) {
		ret = mdgpu_kernel_wait_built(mf, id);
		if (ret) {
			mdgpu_kernel_discard(mf, id, k);
			return ret;
		}
	}

	args.kernel = id;
	if (copy_to_user(argp, &args, sizeof(args))) {
		mdgpu_kernel_discard(mf, id, k);
		return -EFAULT;
	}
	return 0;

err_destroy_device:
	mdgpu_mbox_kernel_destroy(mdev, mf->ctx, id);
err_unlock:
	mutex_unlock(&mf->lock);
	kfree(k);
	return ret;
}

static int mdgpu_ioctl_kernel_destroy(struct mdgpu_file *mf, void __user *argp)
{
	struct mdgpu_kernel_destroy args;
	struct mdgpu_kernel *k;
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.pad)
		return -EINVAL;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		ret = -ENODEV;
		goto out_unlock;
	}
	k = args.kernel ? xa_load(&mf->kernels, args.kernel) : NULL;
	if (!k) {
		ret = -ENOENT;
		goto out_unlock;
	}
	ret = mdgpu_mbox_kernel_destroy(mf->mdev, mf->ctx, k->id);
	if (ret && ret != -ENOENT)
		goto out_unlock;
	xa_erase(&mf->kernels, k->id);
	kfree(k);
	ret = 0;
out_unlock:
	mutex_unlock(&mf->lock);
	return ret;
}

/*
 * The wait condition: the fence, error bit aside, reached @value; or the device is gone (the
 * caller sorts out which). Runs again after every wakeup.
 *
 * The error bit is masked off for the comparison: a fence location is a timeline that later
 * submissions overwrite, and the error fence of an earlier submission (value | bit 63) must
 * not end the wait for a later value, which has not completed yet.
 */
static bool mdgpu_fence_done(struct mdgpu_device *mdev,
			     const void __iomem *addr, u64 value, u64 *seen)
{
	if (READ_ONCE(mdev->gone))
		return true;
	*seen = readq(addr);
	return (*seen & ~MDGPU_FENCE_ERROR) >= value;
}

/*
 * Sleep until the fence is done, the deadline passes (-ETIME) or a signal arrives
 * (-ERESTARTSYS). Wakeups come from the FENCE and ERROR interrupts (mdgpu_drv.c explains why
 * none is lost) and, every fence_poll_ms, from a timer, for fences written without an
 * interrupt.
 */
static int mdgpu_fence_sleep(struct mdgpu_device *mdev,
			     const void __iomem *addr, u64 value,
			     ktime_t deadline, u64 *seen)
{
	ktime_t now, slice;
	int seq, ret;

	atomic64_inc(&mdev->fence_sleeps);
	for (;;) {
		now = ktime_get();
		if (ktime_compare(now, deadline) >= 0)
			return -ETIME;
		slice = ktime_sub(deadline, now);
		if (fence_poll_ms)
			slice = min_t(ktime_t, slice,
				      ms_to_ktime(fence_poll_ms));
		seq = atomic_read(&mdev->fence_seq);
		ret = wait_event_interruptible_hrtimeout(
			mdev->fence_wq,
			mdgpu_fence_done(mdev, addr, value, seen), slice);
		if (!ret) {
			if (atomic_read(&mdev->fence_seq) != seq)
				atomic64_inc(&mdev->fence_irq_wakeups);
			return 0;
		}
		if (ret != -ETIME)
			return ret;
	}
}

static int mdgpu_ioctl_wait_fence(struct mdgpu_file *mf, void __user *argp)
{
	struct mdgpu_device *mdev = mf->mdev;
	struct mdgpu_wait_fence args;
	const void __iomem *addr;
	ktime_t start, deadline;
	struct mdgpu_bo *bo;
	u64 seen = 0;
	s64 left;
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags || !IS_ALIGNED(args.offset, 8) ||
	    (args.value & MDGPU_FENCE_ERROR))
		return -EINVAL;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		mutex_unlock(&mf->lock);
		return -ENODEV;
	}
	bo = args.handle ? xa_load(&mf->bos, args.handle) : NULL;
	if (!bo) {
		mutex_unlock(&mf->lock);
		return -ENOENT;
	}
	if (args.offset > bo->size - sizeof(u64)) {
		mutex_unlock(&mf->lock);
		return -EINVAL;
	}
	/*
	 * Pin the buffer (BO_DESTROY says -EBUSY) so the range read is not handed to another
	 * context meanwhile, and count the wait so remove keeps the aperture mapped until it
	 * leaves. A live context under the file's lock means remove has not revoked this file.
	 */
	bo->waiters++;
	atomic_inc(&mdev->fence_waiters);
	addr = mdev->aperture + (bo->offset - mdev->alloc_base) + args.offset;
	mutex_unlock(&mf->lock);

	atomic64_inc(&mdev->fence_waits);
	start = ktime_get();
	/* Far beyond any real wait, and start + it cannot overflow. */
	deadline =
		ktime_add_ns(start, min_t(u64, args.timeout_ns, S64_MAX / 4));
	ret = 0;
	if (!mdgpu_fence_done(mdev, addr, args.value, &seen))
		ret = args.timeout_ns ?
			      mdgpu_fence_sleep(mdev, addr, args.value,
						deadline, &seen) :
			      -ETIME;

	if (READ_ONCE(mdev->gone))
		ret = -ENODEV;
	else if ((seen & ~MDGPU_FENCE_ERROR) >= args.value)
		ret = seen & MDGPU_FENCE_ERROR ? -EIO : 0;

	mutex_lock(&mf->lock);
	bo->waiters--;
	mutex_unlock(&mf->lock);
	/* Not a read of the aperture after this. */
	if (atomic_dec_and_test(&mdev->fence_waiters) && READ_ONCE(mdev->gone))
		wake_up_all(&mdev->fence_wq);

	left = ktime_to_ns(ktime_sub(deadline, ktime_get()));
	args.timeout_ns = ret == -ETIME || left < 0 ? 0 : left;
	args.seen = seen;
	if (copy_to_user(argp, &args, sizeof(args)))
		return -EFAULT;
	return ret;
}

static int mdgpu_ioctl_mark(struct mdgpu_file *mf, void __user *argp)
{
	struct mdgpu_mark args;
	int ret = 0;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.pad)
		return -EINVAL;

	mutex_lock(&mf->lock);
	if (!mf->ctx)
		ret = -ENODEV;
	else
		mdgpu_wr32(mf->mdev, MDGPU_REG_SCRATCH, args.value);
	mutex_unlock(&mf->lock);
	return ret;
}

static long mdgpu_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct mdgpu_file *mf = filp->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case MDGPU_IOCTL_GET_INFO:
		return mdgpu_ioctl_get_info(mf, argp);
	case MDGPU_IOCTL_BO_CREATE:
		return mdgpu_ioctl_bo_create(mf, argp);
	case MDGPU_IOCTL_BO_DESTROY:
		return mdgpu_ioctl_bo_destroy(mf, argp);
	case MDGPU_IOCTL_WINDOW_SET:
		return mdgpu_ioctl_window_set(mf, argp);
	case MDGPU_IOCTL_GET_COMPUTE_INFO:
		return mdgpu_ioctl_get_compute_info(mf, argp);
	case MDGPU_IOCTL_QUEUE_CREATE:
		return mdgpu_ioctl_queue_create(mf, argp);
	case MDGPU_IOCTL_QUEUE_DESTROY:
		return mdgpu_ioctl_queue_destroy(mf, argp);
	case MDGPU_IOCTL_QUEUE_DOORBELL:
		return mdgpu_ioctl_queue_doorbell(mf, argp);
	case MDGPU_IOCTL_KERNEL_CREATE:
		return mdgpu_ioctl_kernel_create(mf, argp);
	case MDGPU_IOCTL_KERNEL_DESTROY:
		return mdgpu_ioctl_kernel_destroy(mf, argp);
	case MDGPU_IOCTL_WAIT_FENCE:
		return mdgpu_ioctl_wait_fence(mf, argp);
	case MDGPU_IOCTL_MARK:
		return mdgpu_ioctl_mark(mf, argp);
	default:
		return -ENOTTY;
	}
}

/*
 * Mappings of a buffer are counted so that BO_DESTROY can refuse while one exists. open is
 * called when a VMA is duplicated (fork, split, mremap), close when one goes away.
 */
static void mdgpu_bo_vm_open(struct vm_area_struct *vma)
{
	struct mdgpu_file *mf = vma->vm_file->private_data;
	struct mdgpu_bo *bo = vma->vm_private_data;

	mutex_lock(&mf->lock);
	bo->map_count++;
	mutex_unlock(&mf->lock);
}

static void mdgpu_bo_vm_close(struct vm_area_struct *vma)
{
	struct mdgpu_file *mf = vma->vm_file->private_data;
	struct mdgpu_bo *bo = vma->vm_private_data;

	mutex_lock(&mf->lock);
	if (!WARN_ON_ONCE(!bo->map_count))
		bo->map_count--;
	mutex_unlock(&mf->lock);
}

static const struct vm_operations_struct mdgpu_bo_vm_ops = {
	.open = mdgpu_bo_vm_open,
	.close = mdgpu_bo_vm_close,
};

/* The window page needs no counting: the file owns the window until it is released. */
static const struct vm_operations_struct mdgpu_window_vm_ops = {};

static int mdgpu_mmap(struct file *filp, struct vm_area_struct *vma)
{
	struct mdgpu_file *mf = filp->private_data;
	struct mdgpu_device *mdev = mf->mdev;
	u64 len = vma->vm_end - vma->vm_start;
	u64 offset = (u64)vma->vm_pgoff << PAGE_SHIFT;
	struct mdgpu_bo *bo = NULL;
	pgprot_t prot;
	int ret;

	/* A private (copy-on-write) mapping of device memory makes no sense. */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		ret = -ENODEV;
		goto out_unlock;
	}
	if (offset == MDGPU_MMAP_WINDOW_OFFSET) {
		if (len != MDGPU_WINDOW_SIZE) {
			ret = -EINVAL;
			goto out_unlock;
		}
		mutex_lock(&mdev->window_lock);
		ret = mdgpu_window_claim(mf);
		mutex_unlock(&mdev->window_lock);
		if (ret)
			goto out_unlock;
		prot = pgprot_noncached(vma->vm_page_prot);
	} else {
		bo = mdgpu_bo_find_range(mf, offset, len);
		if (!bo || bo->offset != offset) {
			ret = -EINVAL;
			goto out_unlock;
		}
		prot = pgprot_writecombine(vma->vm_page_prot);
	}

	mdgpu_vm_flags_set(vma, VM_IO | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_page_prot = prot;
	ret = io_remap_pfn_range(vma, vma->vm_start,
				 (mdev->aperture_phys + offset) >> PAGE_SHIFT,
				 len, prot);
	if (ret)
		goto out_unlock;
	if (bo) {
		bo->map_count++;
		vma->vm_private_data = bo;
		vma->vm_ops = &mdgpu_bo_vm_ops;
	} else {
		vma->vm_ops = &mdgpu_window_vm_ops;
	}
out_unlock:
	mutex_unlock(&mf->lock);
	return ret;
}

const struct file_operations mdgpu_fops = {
	.owner = THIS_MODULE,
	.open = mdgpu_open,
	.release = mdgpu_release,
	.unlocked_ioctl = mdgpu_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = mdgpu_mmap,
	.llseek = noop_llseek,
};
