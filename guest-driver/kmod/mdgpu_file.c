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
 */
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "mdgpu_drv.h"

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
		dev_err_ratelimited(&mdev->pdev->dev, "window base 0x%llx refused (reads 0x%llx)\n",
				    base, mdev->window_base);
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
	struct mdgpu_device *mdev = container_of(filp->private_data, struct mdgpu_device, misc);
	struct mdgpu_file *mf;
	int ret;

	mf = kzalloc(sizeof(*mf), GFP_KERNEL);
	if (!mf)
		return -ENOMEM;
	mutex_init(&mf->lock);
	xa_init(&mf->bos);
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
	if (mf->ctx) {
		ret = mdgpu_mbox_ctx_destroy(mdev, mf->ctx, &freed);
		if (ret)
			dev_warn_ratelimited(&mdev->pdev->dev, "context %u not destroyed: %d\n",
					     mf->ctx, ret);
		mf->ctx = 0;
	}
	mdgpu_file_free_bos(mf);
	mutex_unlock(&mf->lock);

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
		ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_LARGEST_FREE, &info.largest_free);
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
	align = args.align_log2 ? BIT_ULL(args.align_log2) : MDGPU_TRAPPED_WINDOW_SIZE;

	bo = kzalloc(sizeof(*bo), GFP_KERNEL);
	if (!bo)
		return -ENOMEM;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		ret = -ENODEV;
		goto err_unlock;
	}
	ret = mdgpu_mbox_bo_alloc(mdev, mf->ctx, args.size, args.align_log2, &handle, &offset);
	if (ret)
		goto err_unlock;

	bo->handle = handle;
	bo->offset = offset;
	bo->size = size;
	/* What the device hands out is mapped into userspace: check it is sane first. */
	if (!handle || offset < mdev->alloc_base || !IS_ALIGNED(offset, align) ||
	    !IS_ALIGNED(offset, PAGE_SIZE) || offset > mdev->aperture_size ||
	    size > mdev->aperture_size - offset) {
		dev_err_ratelimited(&mdev->pdev->dev,
				    "BO_ALLOC returned handle %u at 0x%llx+0x%llx: outside the aperture or misaligned\n",
				    handle, offset, size);
		ret = -EIO;
		goto err_free_device;
	}
	ret = xa_insert(&mf->bos, handle, bo, GFP_KERNEL);
	if (ret) {
		if (ret == -EBUSY) {
			dev_err_ratelimited(&mdev->pdev->dev,
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
		if (mf->ctx && xa_load(&mf->bos, handle) == bo && !bo->map_count)
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
	if (bo->map_count) {
		ret = -EBUSY;
		goto out_unlock;
	}
	ret = mdgpu_bo_free_locked(mf, bo);
out_unlock:
	mutex_unlock(&mf->lock);
	return ret;
}

/* The buffer of @mf that contains [@offset, @offset + @len), or NULL. Caller holds mf->lock. */
static struct mdgpu_bo *mdgpu_bo_find_range(struct mdgpu_file *mf, u64 offset, u64 len)
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
	if (args.flags || args.pad || !IS_ALIGNED(args.offset, MDGPU_WINDOW_SIZE))
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
	ret = io_remap_pfn_range(vma, vma->vm_start, (mdev->aperture_phys + offset) >> PAGE_SHIFT,
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
