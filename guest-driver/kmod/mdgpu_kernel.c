// SPDX-License-Identifier: GPL-2.0-only
/*
 * mdgpu guest driver: compute kernels. KERNEL_CREATE hands the device SPIR-V placed in a buffer
 * of the file (KERNEL_CREATE2, contract 1.3: a kernel record naming the SPIR-V, its entry point
 * and specialization constants in the same buffer); the device copies it out inside the mailbox operation, so the buffer may go
 * right after. Since contract 1.2 the device validates and compiles it afterwards, off its
 * control path: MDGPU_IOCTL_KERNEL_CREATE then sleeps, without the file's lock, until the build
 * ended (KERNEL_STATUS, woken by the KERNEL interrupt) and hands out only a READY kernel.
 * Kernels belong to the file: the device destroys them with its context.
 */
#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/wait.h>
#include <linux/xarray.h>

#include "mdgpu_bo.h"
#include "mdgpu_drv.h"
#include "mdgpu_kernel.h"

static unsigned int kernel_timeout_ms = 120000;
module_param(kernel_timeout_ms, uint, 0644);
MODULE_PARM_DESC(
	kernel_timeout_ms,
	"Longest wait for the device to build a kernel, in ms (default 120000)");

/**
 * mdgpu_kernel_free_all() - forget every kernel of a file that is being released
 * @mf: the file
 *
 * Only the records: CTX_DESTROY destroys the kernels on the device.
 */
void mdgpu_kernel_free_all(struct mdgpu_file *mf)
{
	struct mdgpu_kernel *k;
	unsigned long id;

	xa_for_each(&mf->kernels, id, k) {
		xa_erase(&mf->kernels, id);
		kfree(k);
	}
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

/*
 * The part of KERNEL_CREATE and KERNEL_CREATE2 after the device created kernel @id (under the
 * file's lock, which this releases): record it in @k, then wait for its build without the lock,
 * so other ioctls of this file (other threads creating kernels, submitting, waiting) go on
 * meanwhile. Returns 0 once it is READY; on failure the kernel and @k are gone.
 */
static int mdgpu_kernel_add_and_wait(struct mdgpu_file *mf, u32 id,
				     struct mdgpu_kernel *k)
{
	struct mdgpu_device *mdev = mf->mdev;
	int ret;

	lockdep_assert_held(&mf->lock);
	k->id = id;
	ret = xa_insert(&mf->kernels, id, k, GFP_KERNEL);
	if (ret) {
		if (ret == -EBUSY) {
			dev_err_ratelimited(
				&mdev->pdev->dev,
				"the device returned kernel %u, which is in use\n",
				id);
			ret = -EIO;
		}
		mdgpu_mbox_kernel_destroy(mdev, mf->ctx, id);
		mutex_unlock(&mf->lock);
		kfree(k);
		return ret;
	}
	mutex_unlock(&mf->lock);

	/* Contract 1.2: the device builds the kernel after the mailbox operation returned. */
	if (MDGPU_FIELD_GET(VERSION, MINOR, mdev->version) >= 2) {
		ret = mdgpu_kernel_wait_built(mf, id);
		if (ret) {
			mdgpu_kernel_discard(mf, id, k);
			return ret;
		}
	}
	return 0;
}

/**
 * mdgpu_kernel_create_ioctl() - MDGPU_IOCTL_KERNEL_CREATE: build a kernel from SPIR-V
 * @mf: the file
 * @data: struct mdgpu_kernel_create
 *
 * Return: 0 once the kernel is READY; -EINVAL (arguments, or the device refused the SPIR-V),
 * -ENOENT (not a buffer of this file), -EAGAIN (throttled), -ETIMEDOUT (no end of the build
 * within kernel_timeout_ms), -ERESTARTSYS, -ENODEV, -ENOMEM, -EIO, or the mailbox's errno.
 */
int mdgpu_kernel_create_ioctl(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_device *mdev = mf->mdev;
	struct mdgpu_kernel_create *args = data;
	struct mdgpu_kernel *k;
	struct mdgpu_bo *bo;
	u32 id;
	int ret;

	if (args->flags || args->pad)
		return -EINVAL;
	if (!args->size || args->size > MDGPU_KERNEL_MAX_SPIRV ||
	    !IS_ALIGNED(args->size, 4) || !IS_ALIGNED(args->offset, 4) ||
	    args->offset > U32_MAX)
		return -EINVAL;
	if (args->bindings > MDGPU_KERNEL_MAX_BINDINGS ||
	    args->push_bytes > MDGPU_KERNEL_MAX_PUSH_BYTES ||
	    !IS_ALIGNED(args->push_bytes, 4))
		return -EINVAL;

	k = kzalloc(sizeof(*k), GFP_KERNEL);
	if (!k)
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
	if (args->offset > bo->size || args->size > bo->size - args->offset) {
		ret = -EINVAL;
		goto err_unlock;
	}
	/*
	 * The device copies the SPIR-V out inside this operation; it validates and compiles it
	 * afterwards (contract 1.2), and before 1.2 inside the operation.
	 */
	ret = mdgpu_mbox_kernel_create(mdev, mf->ctx, bo->handle, args->offset,
				       args->size, args->bindings,
				       args->push_bytes, &id);
	if (ret)
		goto err_unlock;
	k->bindings = args->bindings;
	k->push_bytes = args->push_bytes;
	ret = mdgpu_kernel_add_and_wait(mf, id, k);
	if (!ret)
		args->kernel = id;
	return ret;

err_unlock:
	mutex_unlock(&mf->lock);
	kfree(k);
	return ret;
}

/* Destroy kernel @id of the file, if it is one (the undo of a create). */
static void mdgpu_kernel_forget(struct mdgpu_file *mf, u32 id)
{
	struct mdgpu_kernel *k;

	mutex_lock(&mf->lock);
	k = mf->ctx && id ? xa_load(&mf->kernels, id) : NULL;
	if (k) {
		mdgpu_mbox_kernel_destroy(mf->mdev, mf->ctx, k->id);
		xa_erase(&mf->kernels, k->id);
		kfree(k);
	}
	mutex_unlock(&mf->lock);
}

/**
 * mdgpu_kernel_create_undo() - destroy a kernel whose id never reached userspace
 * @mf: the file
 * @data: struct mdgpu_kernel_create as mdgpu_kernel_create_ioctl() filled it in
 *
 * Called by the dispatcher when it could not copy the results out.
 */
void mdgpu_kernel_create_undo(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_kernel_create *args = data;

	mdgpu_kernel_forget(mf, args->kernel);
}

/**
 * mdgpu_kernel_create2_ioctl() - MDGPU_IOCTL_KERNEL_CREATE2: build a kernel from a kernel record
 * @mf: the file
 * @data: struct mdgpu_kernel_create2
 *
 * The record (struct mdgpu_kernel_desc) and everything it names lie in one buffer of the file;
 * the device reads and checks them all inside the mailbox operation (contract 1.3), so the
 * driver checks only that the record is inside the buffer.
 *
 * Return: as mdgpu_kernel_create_ioctl().
 */
int mdgpu_kernel_create2_ioctl(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_device *mdev = mf->mdev;
	struct mdgpu_kernel_create2 *args = data;
	struct mdgpu_kernel *k;
	struct mdgpu_bo *bo;
	u32 id;
	int ret;

	if (args->flags)
		return -EINVAL;
	if (args->size < MDGPU_KERNEL_DESC_MIN_SIZE ||
	    args->size > MDGPU_KERNEL_DESC_MAX_SIZE ||
	    !IS_ALIGNED(args->offset, 8) || args->offset > U32_MAX)
		return -EINVAL;

	k = kzalloc(sizeof(*k), GFP_KERNEL);
	if (!k)
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
	if (args->offset > bo->size || args->size > bo->size - args->offset) {
		ret = -EINVAL;
		goto err_unlock;
	}
	ret = mdgpu_mbox_kernel_create2(mdev, mf->ctx, bo->handle, args->offset,
					args->size, &id);
	if (ret)
		goto err_unlock;
	ret = mdgpu_kernel_add_and_wait(mf, id, k);
	if (!ret)
		args->kernel = id;
	return ret;

err_unlock:
	mutex_unlock(&mf->lock);
	kfree(k);
	return ret;
}

/**
 * mdgpu_kernel_create2_undo() - destroy a kernel whose id never reached userspace
 * @mf: the file
 * @data: struct mdgpu_kernel_create2 as mdgpu_kernel_create2_ioctl() filled it in
 */
void mdgpu_kernel_create2_undo(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_kernel_create2 *args = data;

	mdgpu_kernel_forget(mf, args->kernel);
}

/**
 * mdgpu_kernel_destroy_ioctl() - MDGPU_IOCTL_KERNEL_DESTROY: destroy a kernel of the file
 * @mf: the file
 * @data: struct mdgpu_kernel_destroy
 *
 * Return: 0, -EINVAL (padding), -ENOENT (not a kernel of this file), -ENODEV, or the
 * mailbox's errno.
 */
int mdgpu_kernel_destroy_ioctl(struct mdgpu_file *mf, void *data)
{
	struct mdgpu_kernel_destroy *args = data;
	struct mdgpu_kernel *k;
	int ret;

	if (args->pad)
		return -EINVAL;

	mutex_lock(&mf->lock);
	if (!mf->ctx) {
		ret = -ENODEV;
		goto out_unlock;
	}
	k = args->kernel ? xa_load(&mf->kernels, args->kernel) : NULL;
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
