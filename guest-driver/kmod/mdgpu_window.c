// SPDX-License-Identifier: GPL-2.0-only
/*
 * mdgpu guest driver: the trapped window. BAR0's first page is not mapped straight into the
 * guest: every access to it traps to the device, which shows the aperture page WINDOW_BASE
 * points at. WINDOW_BASE is one register of the device, so one file owns the window at a time:
 * the first that maps it (mmap at MDGPU_MMAP_WINDOW_OFFSET) or moves it
 * (MDGPU_IOCTL_WINDOW_SET), until that file is released. The window is parked at offset 0,
 * which no buffer occupies, whenever the buffer it shows or its owner goes away.
 */
#include <linux/mm.h>
#include <linux/mutex.h>

#include "mdgpu_bo.h"
#include "mdgpu_drv.h"
#include "mdgpu_window.h"

/**
 * mdgpu_window_write() - point the window at an aperture offset
 * @mdev: the device
 * @base: page-aligned aperture offset
 *
 * Callers hold &mdgpu_device.window_lock and have checked that the device is still there.
 *
 * Return: 0, or -EIO when the device refused the value (it reads back something else).
 */
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

/**
 * mdgpu_window_park() - move the window off a buffer that goes away
 * @mf: the file
 * @offset: the buffer's aperture offset
 * @size: its size
 *
 * If @mf owns the window and it shows [@offset, @offset + @size), park it at offset 0.
 */
void mdgpu_window_park(struct mdgpu_file *mf, u64 offset, u64 size)
{
	struct mdgpu_device *mdev = mf->mdev;

	mutex_lock(&mdev->window_lock);
	if (mdev->window_owner == mf && mdev->window_base >= offset &&
	    mdev->window_base - offset < size)
		mdgpu_window_write(mdev, 0);
	mutex_unlock(&mdev->window_lock);
}

/**
 * mdgpu_window_release() - the file is being released: give up the window if it owns it
 * @mf: the file
 */
void mdgpu_window_release(struct mdgpu_file *mf)
{
	struct mdgpu_device *mdev = mf->mdev;

	mutex_lock(&mdev->window_lock);
	if (mdev->window_owner == mf) {
		mdgpu_window_write(mdev, 0);
		mdev->window_owner = NULL;
	}
	mutex_unlock(&mdev->window_lock);
}

/* The window page needs no counting: the file owns the window until it is released. */
static const struct vm_operations_struct mdgpu_window_vm_ops = {};

/**
 * mdgpu_window_mmap() - map the trapped window page, claiming the window
 * @mf: the file; the caller holds its lock and has checked its context
 * @vma: a shared mapping at MDGPU_MMAP_WINDOW_OFFSET
 *
 * Uncached, so that every access reaches the device.
 *
 * Return: 0, -EINVAL for a length other than MDGPU_WINDOW_SIZE, -EBUSY when another file owns
 * the window, or the error of the remapping.
 */
int mdgpu_window_mmap(struct mdgpu_file *mf, struct vm_area_struct *vma)
{
	struct mdgpu_device *mdev = mf->mdev;
	int ret;

	if (vma->vm_end - vma->vm_start != MDGPU_WINDOW_SIZE)
		return -EINVAL;
	mutex_lock(&mdev->window_lock);
	ret = mdgpu_window_claim(mf);
	mutex_unlock(&mdev->window_lock);
	if (ret)
		return ret;
	ret = mdgpu_mmap_aperture(mdev, vma,
				  pgprot_noncached(vma->vm_page_prot));
	if (!ret)
		vma->vm_ops = &mdgpu_window_vm_ops;
	return ret;
}

/**
 * mdgpu_window_set_ioctl() - MDGPU_IOCTL_WINDOW_SET: point the window at a page of a buffer
 * @mf: the file
 * @data: struct mdgpu_window_set
 *
 * Return: 0, -EINVAL (flags, padding, a misaligned offset or a page outside the file's
 * buffers), -EBUSY (another file owns the window), -ENODEV, -EIO.
 */
int mdgpu_window_set_ioctl(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_device *mdev = mf->mdev;
	struct mdgpu_window_set *args = data;
	int ret;

	if (args->flags || args->pad ||
	    !IS_ALIGNED(args->offset, MDGPU_WINDOW_SIZE))
		return -EINVAL;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		ret = -ENODEV;
		goto out_unlock;
	}
	if (!mdgpu_bo_find_range(mf, args->offset, MDGPU_WINDOW_SIZE)) {
		ret = -EINVAL;
		goto out_unlock;
	}
	mutex_lock(&mdev->window_lock);
	ret = mdgpu_window_claim(mf);
	if (!ret)
		ret = mdgpu_window_write(mdev, args->offset);
	mutex_unlock(&mdev->window_lock);
out_unlock:
	mutex_unlock(&mf->lock);
	return ret;
}
