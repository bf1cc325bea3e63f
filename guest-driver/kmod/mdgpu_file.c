// SPDX-License-Identifier: GPL-2.0-only
/*
 * mdgpu guest driver: /dev/mdgpuN. One open file is one device context (CTX_CREATE at open,
 * CTX_DESTROY at release, which frees all of its buffers, queues and kernels on the device).
 * This file has what every area shares: open and release, the ioctl table and its dispatcher,
 * the ioctls about the device as a whole (GET_INFO, GET_COMPUTE_INFO, MARK, CAPS_READ) and mmap, which
 * hands the aperture offset to the buffer (mdgpu_bo.c) or the trapped window (mdgpu_window.c).
 * Queues are in mdgpu_queue.c, kernels in mdgpu_kernel.c, fence waits in mdgpu_fence.c.
 */
#include <linux/build_bug.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/nospec.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "mdgpu_bo.h"
#include "mdgpu_drv.h"
#include "mdgpu_fence.h"
#include "mdgpu_kernel.h"
#include "mdgpu_queue.h"
#include "mdgpu_window.h"

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
static_assert(MDGPU_BO_CACHED == MDGPU_BO_FLAG_CACHED);

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

static int mdgpu_release(struct inode *inode, struct file *filp)
{
	struct mdgpu_file *mf = filp->private_data;
	struct mdgpu_device *mdev = mf->mdev;
	u32 freed = 0;
	int ret;

	mutex_lock(&mdev->files_lock);
	list_del(&mf->link);
	mutex_unlock(&mdev->files_lock);

	mdgpu_window_release(mf);

	mutex_lock(&mf->lock);
	mdgpu_queue_free_all(mf);
	if (mf->ctx) {
		ret = mdgpu_mbox_ctx_destroy(mdev, mf->ctx, &freed);
		if (ret)
			dev_warn_ratelimited(&mdev->pdev->dev,
					     "context %u not destroyed: %d\n",
					     mf->ctx, ret);
		mf->ctx = 0;
	}
	mdgpu_kernel_free_all(mf);
	mdgpu_bo_free_all(mf);
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

/**
 * mdgpu_get_info_ioctl() - MDGPU_IOCTL_GET_INFO: the device's identity, aperture and quota
 * @mf: the file
 * @data: struct mdgpu_info, zeroed by the dispatcher (the caller's input is ignored)
 *
 * Return: 0, or the mailbox's errno of a QUERY.
 */
static int mdgpu_get_info_ioctl(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_device *mdev = mf->mdev;
	struct mdgpu_info *info = data;
	u64 contexts, buffers;
	int ret;

	info->version = mdev->version;
	info->vendor_id = mdev->pdev->vendor;
	info->device_id = mdev->pdev->device;
	info->max_contexts = mdev->max_contexts;
	info->max_buffers = mdev->max_buffers;
	info->aperture_size = mdev->aperture_size;
	info->alloc_base = mdev->alloc_base;
	info->quota = mdev->quota;
	info->min_align = mdev->min_align;
	info->index = mdev->index;

	ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_USED, &info->used);
	if (!ret)
		ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_LARGEST_FREE,
				       &info->largest_free);
	if (!ret)
		ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_CONTEXTS, &contexts);
	if (!ret)
		ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_BUFFERS, &buffers);
	if (ret)
		return ret;
	info->contexts = min_t(u64, contexts, U32_MAX);
	info->buffers = min_t(u64, buffers, U32_MAX);
	info->irq_count = atomic64_read(&mdev->irq_count);
	return 0;
}

/**
 * mdgpu_get_compute_info_ioctl() - MDGPU_IOCTL_GET_COMPUTE_INFO: queues, kernels, interrupts
 * @mf: the file
 * @data: struct mdgpu_compute_info, zeroed by the dispatcher (the caller's input is ignored)
 *
 * Return: 0, or -ENODEV once the file's context is gone.
 */
static int mdgpu_get_compute_info_ioctl(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_device *mdev = mf->mdev;
	struct mdgpu_compute_info *info = data;
	unsigned long id;
	void *entry;

	info->has_backend = mdev->has_backend;
	info->max_queues = mdev->max_queues;
	info->max_kernels = mdev->max_kernels;
	info->irq_vectors = mdev->irq_vectors;
	info->max_submission = mdev->max_submission;
	info->grace_us = mdev->grace_us;
	info->binding_align = mdev->binding_align;
	info->max_binding = mdev->max_binding;
	info->irq_mailbox = atomic64_read(
		&mdev->irq_source_count[MDGPU_IRQ_SOURCE_MAILBOX]);
	info->irq_fence =
		atomic64_read(&mdev->irq_source_count[MDGPU_IRQ_SOURCE_FENCE]);
	info->irq_error =
		atomic64_read(&mdev->irq_source_count[MDGPU_IRQ_SOURCE_ERROR]);
	info->fence_waits = atomic64_read(&mdev->fence_waits);
	info->fence_sleeps = atomic64_read(&mdev->fence_sleeps);
	info->fence_irq_wakeups = atomic64_read(&mdev->fence_irq_wakeups);

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		mutex_unlock(&mf->lock);
		return -ENODEV;
	}
	xa_for_each(&mf->queues, id, entry)
		info->queues++;
	xa_for_each(&mf->kernels, id, entry)
		info->kernels++;
	mutex_unlock(&mf->lock);
	return 0;
}

/**
 * mdgpu_mark_ioctl() - MDGPU_IOCTL_MARK: write a phase marker to SCRATCH
 * @mf: the file
 * @data: struct mdgpu_mark
 *
 * Return: 0, -EINVAL (padding), -ENODEV.
 */
static int mdgpu_mark_ioctl(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_mark *args = data;
	int ret = 0;

	if (args->pad)
		return -EINVAL;

	mutex_lock(&mf->lock);
	if (!mf->ctx)
		ret = -ENODEV;
	else
		mdgpu_wr32(mf->mdev, MDGPU_REG_SCRATCH, args->value);
	mutex_unlock(&mf->lock);
	return ret;
}

/**
 * mdgpu_caps_read_ioctl() - MDGPU_IOCTL_CAPS_READ: the device writes its capability record
 * into a buffer of the file (contract 1.3)
 * @mf: the file
 * @data: struct mdgpu_caps_read
 *
 * Return: 0, -EINVAL (flags, padding, an offset that is misaligned or leaves no room for the
 * record), -ENOENT (not a buffer of this file), -EOPNOTSUPP (no record: a device before 1.3 or
 * without a compute backend), -ENODEV, or the mailbox's errno.
 */
static int mdgpu_caps_read_ioctl(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_device *mdev = mf->mdev;
	struct mdgpu_caps_read *args = data;
	struct mdgpu_bo *bo;
	u32 size = 0;
	int ret;

	if (args->flags || args->pad || !IS_ALIGNED(args->offset, 8))
		return -EINVAL;
	if (!mdev->caps_size)
		return -EOPNOTSUPP;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		ret = -ENODEV;
		goto out_unlock;
	}
	bo = args->handle ? xa_load(&mf->bos, args->handle) : NULL;
	if (!bo) {
		ret = -ENOENT;
		goto out_unlock;
	}
	if (args->offset > bo->size ||
	    mdev->caps_size > bo->size - args->offset) {
		ret = -EINVAL;
		goto out_unlock;
	}
	ret = mdgpu_mbox_caps_read(mdev, mf->ctx, bo->handle, args->offset,
				   &size);
	/* The device wrote what it said, inside the range checked above. */
	if (!ret && size > bo->size - args->offset) {
		dev_err_ratelimited(
			&mdev->pdev->dev,
			"CAPS_READ says it wrote %u bytes at 0x%llx of a %llu-byte buffer\n",
			size, args->offset, bo->size);
		ret = -EIO;
	}
out_unlock:
	mutex_unlock(&mf->lock);
	if (!ret)
		args->size = size;
	return ret;
}

/*
 * ---- the ioctl table ----
 *
 * As DRM's DRM_IOCTL_DEF_DRV: each ioctl is one row, and the dispatcher does for all of them
 * what each handler did for itself before: look the command up (its number, direction and
 * argument size must all match, else -ENOTTY), copy the arguments in, call the handler on the
 * kernel's copy, copy the results out.
 */

/* Copy the caller's arguments in (otherwise the handler gets zeroes). */
#define MDGPU_ARGS_IN BIT(0)
/* Copy the results out when the handler succeeded. */
#define MDGPU_ARGS_OUT BIT(1)
/* Copy the results out whatever the handler returned (it updates them on errors too). */
#define MDGPU_ARGS_OUT_ALWAYS BIT(2)

/**
 * struct mdgpu_ioctl_desc - one ioctl
 * @cmd: the full command (type, number, direction, argument size)
 * @flags: MDGPU_ARGS_IN, MDGPU_ARGS_OUT, MDGPU_ARGS_OUT_ALWAYS
 * @func: the handler, on the kernel's copy of the arguments
 * @undo: for an ioctl that creates something: revert a successful call whose results could not
 *	be copied out (nobody learnt the new object's id, so it must not be left behind)
 * @name: the command's name, for messages
 */
struct mdgpu_ioctl_desc {
	unsigned int cmd;
	unsigned int flags;
	int (*func)(struct mdgpu_file *mf, void *data);
	void (*undo)(struct mdgpu_file *mf, void *data);
	const char *name;
};

/* Every argument structure: the dispatcher's copy of one lives on its stack. */
union mdgpu_ioctl_args {
	struct mdgpu_info info;
	struct mdgpu_bo_create bo_create;
	struct mdgpu_bo_destroy bo_destroy;
	struct mdgpu_window_set window_set;
	struct mdgpu_compute_info compute_info;
	struct mdgpu_queue_create queue_create;
	struct mdgpu_queue_destroy queue_destroy;
	struct mdgpu_queue_doorbell queue_doorbell;
	struct mdgpu_kernel_create kernel_create;
	struct mdgpu_kernel_destroy kernel_destroy;
	struct mdgpu_wait_fence wait_fence;
	struct mdgpu_mark mark;
	struct mdgpu_caps_read caps_read;
	struct mdgpu_kernel_create2 kernel_create2;
};

/* The first ioctl number; the table is indexed by number - this. */
#define MDGPU_IOCTL_NR_FIRST _IOC_NR(MDGPU_IOCTL_GET_INFO)

#define MDGPU_IOCTL_DEF(ioctl, _flags, _func, _undo)                   \
	[_IOC_NR(ioctl) - MDGPU_IOCTL_NR_FIRST +                       \
		BUILD_BUG_ON_ZERO(_IOC_SIZE(ioctl) >                   \
				  sizeof(union mdgpu_ioctl_args))] = { \
		.cmd = ioctl,                                          \
		.flags = _flags,                                       \
		.func = _func,                                         \
		.undo = _undo,                                         \
		.name = #ioctl,                                        \
	}

static const struct mdgpu_ioctl_desc mdgpu_ioctls[] = {
	MDGPU_IOCTL_DEF(MDGPU_IOCTL_GET_INFO, MDGPU_ARGS_OUT,
			mdgpu_get_info_ioctl, NULL),
	MDGPU_IOCTL_DEF(MDGPU_IOCTL_BO_CREATE, MDGPU_ARGS_IN | MDGPU_ARGS_OUT,
			mdgpu_bo_create_ioctl, mdgpu_bo_create_undo),
	MDGPU_IOCTL_DEF(MDGPU_IOCTL_BO_DESTROY, MDGPU_ARGS_IN,
			mdgpu_bo_destroy_ioctl, NULL),
	MDGPU_IOCTL_DEF(MDGPU_IOCTL_WINDOW_SET, MDGPU_ARGS_IN,
			mdgpu_window_set_ioctl, NULL),
	MDGPU_IOCTL_DEF(MDGPU_IOCTL_GET_COMPUTE_INFO, MDGPU_ARGS_OUT,
			mdgpu_get_compute_info_ioctl, NULL),
	MDGPU_IOCTL_DEF(MDGPU_IOCTL_QUEUE_CREATE,
			MDGPU_ARGS_IN | MDGPU_ARGS_OUT,
			mdgpu_queue_create_ioctl, mdgpu_queue_create_undo),
	MDGPU_IOCTL_DEF(MDGPU_IOCTL_QUEUE_DESTROY, MDGPU_ARGS_IN,
			mdgpu_queue_destroy_ioctl, NULL),
	MDGPU_IOCTL_DEF(MDGPU_IOCTL_QUEUE_DOORBELL, MDGPU_ARGS_IN,
			mdgpu_queue_doorbell_ioctl, NULL),
	MDGPU_IOCTL_DEF(MDGPU_IOCTL_KERNEL_CREATE,
			MDGPU_ARGS_IN | MDGPU_ARGS_OUT,
			mdgpu_kernel_create_ioctl, mdgpu_kernel_create_undo),
	MDGPU_IOCTL_DEF(MDGPU_IOCTL_KERNEL_DESTROY, MDGPU_ARGS_IN,
			mdgpu_kernel_destroy_ioctl, NULL),
	MDGPU_IOCTL_DEF(MDGPU_IOCTL_WAIT_FENCE,
			MDGPU_ARGS_IN | MDGPU_ARGS_OUT_ALWAYS,
			mdgpu_wait_fence_ioctl, NULL),
	MDGPU_IOCTL_DEF(MDGPU_IOCTL_MARK, MDGPU_ARGS_IN, mdgpu_mark_ioctl,
			NULL),
	MDGPU_IOCTL_DEF(MDGPU_IOCTL_CAPS_READ, MDGPU_ARGS_IN | MDGPU_ARGS_OUT,
			mdgpu_caps_read_ioctl, NULL),
	MDGPU_IOCTL_DEF(MDGPU_IOCTL_KERNEL_CREATE2,
			MDGPU_ARGS_IN | MDGPU_ARGS_OUT,
			mdgpu_kernel_create2_ioctl, mdgpu_kernel_create2_undo),
};

static long mdgpu_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct mdgpu_file *mf = filp->private_data;
	void __user *argp = (void __user *)arg;
	const struct mdgpu_ioctl_desc *desc;
	union mdgpu_ioctl_args kdata = {};
	unsigned int index = _IOC_NR(cmd) - MDGPU_IOCTL_NR_FIRST;
	unsigned int size = _IOC_SIZE(cmd);
	int ret;

	/* Below the first number, index wraps around to a large value. */
	if (_IOC_TYPE(cmd) != MDGPU_IOCTL_BASE ||
	    index >= ARRAY_SIZE(mdgpu_ioctls))
		return -ENOTTY;
	desc = &mdgpu_ioctls[array_index_nospec(index,
						ARRAY_SIZE(mdgpu_ioctls))];
	/* Number, direction and size: a caller built against another layout gets -ENOTTY. */
	if (!desc->func || desc->cmd != cmd)
		return -ENOTTY;

	if ((desc->flags & MDGPU_ARGS_IN) && copy_from_user(&kdata, argp, size))
		return -EFAULT;
	ret = desc->func(mf, &kdata);
	if ((!ret && (desc->flags & MDGPU_ARGS_OUT)) ||
	    (desc->flags & MDGPU_ARGS_OUT_ALWAYS)) {
		if (copy_to_user(argp, &kdata, size)) {
			if (!ret && desc->undo) {
				dev_dbg(&mf->mdev->pdev->dev,
					"%s: results not copied out, undone\n",
					desc->name);
				desc->undo(mf, &kdata);
			}
			ret = -EFAULT;
		}
	}
	return ret;
}

/**
 * mdgpu_mmap_aperture() - map aperture pages into a VMA
 * @mdev: the device
 * @vma: the mapping; its offset is the aperture offset
 * @prot: the memory type (write-combined or, for CACHED buffers, write-back; uncached for the
 *	window)
 *
 * Return: 0 or the error of io_remap_pfn_range().
 */
int mdgpu_mmap_aperture(struct mdgpu_device *mdev, struct vm_area_struct *vma,
			pgprot_t prot)
{
	u64 offset = (u64)vma->vm_pgoff << PAGE_SHIFT;

	mdgpu_vm_flags_set(vma, VM_IO | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_page_prot = prot;
	return io_remap_pfn_range(vma, vma->vm_start,
				  (mdev->aperture_phys + offset) >> PAGE_SHIFT,
				  vma->vm_end - vma->vm_start, prot);
}

/*
 * mmap offsets are aperture offsets: a buffer's own (mdgpu_bo.c), or 0 for the trapped window
 * (mdgpu_window.c). Both run under the file's lock with its context checked.
 */
static int mdgpu_mmap(struct file *filp, struct vm_area_struct *vma)
{
	struct mdgpu_file *mf = filp->private_data;
	int ret;

	/* A private (copy-on-write) mapping of device memory makes no sense. */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;

	mutex_lock(&mf->lock);
	if (!mf->ctx)
		ret = -ENODEV;
	else if ((u64)vma->vm_pgoff << PAGE_SHIFT == MDGPU_MMAP_WINDOW_OFFSET)
		ret = mdgpu_window_mmap(mf, vma);
	else
		ret = mdgpu_bo_mmap(mf, vma);
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
