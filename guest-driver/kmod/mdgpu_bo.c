// SPDX-License-Identifier: GPL-2.0-only
/*
 * mdgpu guest driver: buffers. The device's mailbox allocates them in the file's context
 * (BO_ALLOC, zeroed) and frees them (BO_FREE, or all of them with CTX_DESTROY); the driver keeps
 * a record per buffer to check what userspace asks for and to refuse destroying a buffer that
 * is still mapped, holds a queue or has a fence waiter.
 *
 * mmap offsets are aperture offsets: a mapping must start exactly at a buffer of this file and
 * may not extend beyond it. It maps the aperture pages (BAR0) write-combined, or write-back
 * for buffers created with MDGPU_BO_CACHED (contract 1.3: the aperture is RAM on the host, and
 * a CPU reading results wants its caches), straight from guest physical memory that QEMU backs
 * with mdgpu's memfd, so loads and stores cost no VM exit. Mappings are counted (vm_ops open/close) so that BO_DESTROY can refuse while one
 * exists: otherwise the freed range could be handed to another context while this process
 * still maps it.
 */
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/xarray.h>

#include "mdgpu_bo.h"
#include "mdgpu_drv.h"
#include "mdgpu_window.h"

/**
 * mdgpu_bo_find_range() - the buffer of a file that contains an aperture range
 * @mf: the file; the caller holds its lock
 * @offset: aperture offset
 * @len: length in bytes
 *
 * Return: the buffer containing [@offset, @offset + @len), or NULL.
 */
struct mdgpu_bo *mdgpu_bo_find_range(struct mdgpu_file *mf, u64 offset, u64 len)
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

/**
 * mdgpu_bo_free_all() - forget every buffer of a file that is being released
 * @mf: the file
 *
 * Only the records: the device frees the buffers themselves with the context (CTX_DESTROY).
 */
void mdgpu_bo_free_all(struct mdgpu_file *mf)
{
	struct mdgpu_bo *bo;
	unsigned long handle;

	xa_for_each(&mf->bos, handle, bo) {
		xa_erase(&mf->bos, handle);
		kfree(bo);
	}
}

/**
 * mdgpu_bo_create_ioctl() - MDGPU_IOCTL_BO_CREATE: allocate a buffer in the file's context
 * @mf: the file
 * @data: struct mdgpu_bo_create
 *
 * What the device hands out is mapped into userspace later, so its handle, offset and size
 * are checked before the buffer is recorded.
 *
 * Return: 0, -EINVAL (flags, padding, size, alignment), -ENODEV, -ENOMEM, -EIO (the device
 * returned a range outside the aperture, misaligned, or a handle in use), or the mailbox's
 * errno (-EDQUOT, -ENOSPC, -EMFILE, ...).
 */
int mdgpu_bo_create_ioctl(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_device *mdev = mf->mdev;
	struct mdgpu_bo_create *args = data;
	struct mdgpu_bo *bo;
	u64 align, size, offset;
	u32 handle;
	int ret;

	if (args->flags & ~MDGPU_BO_FLAGS_KNOWN || args->pad)
		return -EINVAL;
	if (args->align_log2 && (args->align_log2 < MDGPU_BO_ALIGN_MIN_LOG2 ||
				 args->align_log2 > MDGPU_BO_ALIGN_MAX_LOG2))
		return -EINVAL;
	/* The device refuses these too; checking here also keeps round_up() from overflowing. */
	if (!args->size || args->size > mdev->aperture_size)
		return -EINVAL;
	size = round_up(args->size, mdev->min_align);
	align = BIT_ULL(args->align_log2 ? args->align_log2 :
					   MDGPU_BO_ALIGN_MIN_LOG2);

	bo = kzalloc(sizeof(*bo), GFP_KERNEL);
	if (!bo)
		return -ENOMEM;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		ret = -ENODEV;
		goto err_unlock;
	}
	/* The uapi's flag bits are the device's BO_ALLOC flags (asserted in mdgpu_file.c). */
	ret = mdgpu_mbox_bo_alloc(mdev, mf->ctx, args->size, args->align_log2,
				  args->flags, &handle, &offset);
	if (ret)
		goto err_unlock;

	bo->handle = handle;
	bo->offset = offset;
	bo->size = size;
	bo->cached = args->flags & MDGPU_BO_CACHED;
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

	args->size = size;
	args->handle = handle;
	args->mmap_offset = offset;
	return 0;

err_free_device:
	mdgpu_mbox_bo_free(mdev, mf->ctx, handle);
err_unlock:
	mutex_unlock(&mf->lock);
	kfree(bo);
	return ret;
}

/**
 * mdgpu_bo_create_undo() - free a buffer whose handle never reached userspace
 * @mf: the file
 * @data: struct mdgpu_bo_create as mdgpu_bo_create_ioctl() filled it in
 *
 * The dispatcher calls this when it could not copy the results out: nobody learnt the handle,
 * so the buffer must not be left behind. Another thread of the file may have guessed the
 * handle meanwhile: a buffer it mapped, made a queue of or waits on is left alone (the file's
 * release frees it).
 */
void mdgpu_bo_create_undo(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_bo_create *args = data;
	struct mdgpu_bo *bo;

	mutex_lock(&mf->lock);
	bo = mf->ctx ? xa_load(&mf->bos, args->handle) : NULL;
	if (bo && !bo->map_count && !bo->queue && !bo->waiters)
		mdgpu_bo_free_locked(mf, bo);
	mutex_unlock(&mf->lock);
}

/**
 * mdgpu_bo_destroy_ioctl() - MDGPU_IOCTL_BO_DESTROY: free a buffer of the file
 * @mf: the file
 * @data: struct mdgpu_bo_destroy
 *
 * Return: 0, -EINVAL (padding), -ENOENT (not a buffer of this file), -EBUSY (mapped, holds a
 * queue or has a fence waiter), -ENODEV, or the mailbox's errno.
 */
int mdgpu_bo_destroy_ioctl(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_bo_destroy *args = data;
	struct mdgpu_bo *bo;
	int ret;

	if (args->pad)
		return -EINVAL;

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
	if (bo->map_count || bo->queue || bo->waiters) {
		ret = -EBUSY;
		goto out_unlock;
	}
	ret = mdgpu_bo_free_locked(mf, bo);
out_unlock:
	mutex_unlock(&mf->lock);
	return ret;
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

/**
 * mdgpu_bo_mmap() - map a whole buffer, or its beginning, write-combined (write-back if CACHED)
 * @mf: the file; the caller holds its lock and has checked its context
 * @vma: a shared mapping whose offset is the buffer's aperture offset
 *
 * Return: 0, -EINVAL when the mapping does not start exactly at a buffer of this file or
 * extends beyond it, or the error of the remapping.
 */
int mdgpu_bo_mmap(struct mdgpu_file *mf, struct vm_area_struct *vma)
{
	u64 offset = (u64)vma->vm_pgoff << PAGE_SHIFT;
	struct mdgpu_bo *bo;
	int ret;

	lockdep_assert_held(&mf->lock);
	bo = mdgpu_bo_find_range(mf, offset, vma->vm_end - vma->vm_start);
	if (!bo || bo->offset != offset)
		return -EINVAL;
	ret = mdgpu_mmap_aperture(
		mf->mdev, vma,
		bo->cached ? vma->vm_page_prot :
			     pgprot_writecombine(vma->vm_page_prot));
	if (ret)
		return ret;
	bo->map_count++;
	vma->vm_private_data = bo;
	vma->vm_ops = &mdgpu_bo_vm_ops;
	return 0;
}
