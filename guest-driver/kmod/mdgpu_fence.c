// SPDX-License-Identifier: GPL-2.0-only
/*
 * mdgpu guest driver: fence waits. A fence is a u64 in a buffer that submissions write with
 * rising values; MDGPU_IOCTL_WAIT_FENCE sleeps until it reaches a value, woken by the FENCE and
 * ERROR interrupts (mdgpu_drv.c explains why none is lost) and, for fences written without an
 * interrupt, every fence_poll_ms. A wait maps the page of its fence for as long as it lasts,
 * with the memory type of its buffer's userspace mappings (write-combined, or write-back for
 * CACHED buffers: x86 PAT wants one memory type per page). It sleeps holding no lock: it pins
 * its buffer (&mdgpu_bo.waiters) and counts itself in &mdgpu_device.fence_waiters, which
 * remove drains before it releases the BAR.
 */
#include <linux/hrtimer.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/wait.h>
#include <linux/xarray.h>

#include "mdgpu_bo.h"
#include "mdgpu_drv.h"
#include "mdgpu_fence.h"

static unsigned int fence_poll_ms = 10;
module_param(fence_poll_ms, uint, 0644);
MODULE_PARM_DESC(
	fence_poll_ms,
	"A sleeping fence wait also re-reads its fence this often, in ms, for fences written without an interrupt (0: only on interrupts; default 10)");

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

/**
 * mdgpu_wait_fence_ioctl() - MDGPU_IOCTL_WAIT_FENCE: sleep until a fence reaches a value
 * @mf: the file
 * @data: struct mdgpu_wait_fence; @timeout_ns and @seen are written back whatever the result
 *	(the dispatcher copies them out on errors too), so a restarted wait uses the time left
 *
 * Return: 0, -EIO (an error fence at or after the value), -ETIME (timeout), -ERESTARTSYS,
 * -EINVAL (flags, a misaligned offset or one outside the buffer, a value with
 * MDGPU_FENCE_ERROR), -ENOENT (not a buffer of this file), -ENODEV (device gone).
 */
int mdgpu_wait_fence_ioctl(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_device *mdev = mf->mdev;
	struct mdgpu_wait_fence *args = data;
	void __iomem *page;
	const void __iomem *addr;
	phys_addr_t phys;
	bool cached;
	ktime_t start, deadline;
	struct mdgpu_bo *bo;
	u64 seen = 0;
	s64 left;
	int ret;

	if (args->flags || !IS_ALIGNED(args->offset, sizeof(u64)) ||
	    (args->value & MDGPU_FENCE_ERROR))
		return -EINVAL;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		mutex_unlock(&mf->lock);
		return -ENODEV;
	}
	bo = args->handle ? xa_load(&mf->bos, args->handle) : NULL;
	if (!bo) {
		mutex_unlock(&mf->lock);
		return -ENOENT;
	}
	if (args->offset > bo->size - sizeof(u64)) {
		mutex_unlock(&mf->lock);
		return -EINVAL;
	}
	/*
	 * Pin the buffer (BO_DESTROY says -EBUSY) so the range read is not handed to another
	 * context meanwhile, and count the wait so remove keeps the BAR reserved until it
	 * leaves. A live context under the file's lock means remove has not revoked this file.
	 */
	bo->waiters++;
	atomic_inc(&mdev->fence_waiters);
	phys = mdev->aperture_phys + bo->offset + (args->offset & PAGE_MASK);
	cached = bo->cached;
	mutex_unlock(&mf->lock);

	atomic64_inc(&mdev->fence_waits);
	start = ktime_get();
	/* Far beyond any real wait, and start + it cannot overflow. */
	deadline =
		ktime_add_ns(start, min_t(u64, args->timeout_ns, S64_MAX / 4));

	/* A u64 at an 8-aligned offset never crosses a page. */
	page = cached ? ioremap_cache(phys, PAGE_SIZE) :
			ioremap_wc(phys, PAGE_SIZE);
	if (!page) {
		ret = -ENOMEM;
		goto out_unpin;
	}
	addr = page + offset_in_page(args->offset);
	ret = 0;
	if (!mdgpu_fence_done(mdev, addr, args->value, &seen))
		ret = args->timeout_ns ?
			      mdgpu_fence_sleep(mdev, addr, args->value,
						deadline, &seen) :
			      -ETIME;

	if (READ_ONCE(mdev->gone))
		ret = -ENODEV;
	else if ((seen & ~MDGPU_FENCE_ERROR) >= args->value)
		ret = seen & MDGPU_FENCE_ERROR ? -EIO : 0;
	iounmap(page);

out_unpin:
	mutex_lock(&mf->lock);
	bo->waiters--;
	mutex_unlock(&mf->lock);
	/* Not an access to the BAR after this. */
	if (atomic_dec_and_test(&mdev->fence_waiters) && READ_ONCE(mdev->gone))
		wake_up_all(&mdev->fence_wq);

	left = ktime_to_ns(ktime_sub(deadline, ktime_get()));
	args->timeout_ns = ret == -ETIME || left < 0 ? 0 : left;
	args->seen = seen;
	return ret;
}
