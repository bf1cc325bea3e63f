// SPDX-License-Identifier: GPL-2.0-only
/*
 * mdgpu guest driver: the mediation mailbox.
 *
 * An operation is MBOX_ARG0..n and MBOX_OPCODE, then a write to MBOX_DOORBELL. The device
 * executes it while it handles that (trapped) write, so normally MBOX_STATUS already holds the
 * result when the next register read completes; completion also raises the MAILBOX interrupt
 * source. The driver does not trust that: it checks that the completion sequence number in
 * MBOX_STATUS advanced by exactly one, and otherwise sleeps on the interrupt (or polls) for at
 * most mbox_timeout_ms, so a broken or hostile device costs a caller -ETIMEDOUT, never a hung
 * kernel. Operations are serialised by mbox_lock; an operation only writes the arguments it
 * takes (every register access is a VM exit).
 *
 * Result codes become negative errno values (also documented in include/uapi/mdgpu.h):
 *
 *   OK              0
 *   UNKNOWN_OPCODE  -EOPNOTSUPP  the device does not implement the operation
 *   BAD_CONTEXT     -EBADFD      the file's device context is gone (device reset under us)
 *   BAD_SIZE        -EINVAL      size 0 or larger than the allocatable aperture
 *   BAD_FLAGS       -EINVAL      unknown flags or alignment out of range
 *   NO_MEMORY       -ENOSPC      no free aperture range that fits (address space, as drm_mm)
 *   OVER_QUOTA      -EDQUOT      the VM's quota would be exceeded
 *   BAD_HANDLE      -ENOENT      no such buffer in this context (as a bad GEM handle)
 *   TOO_MANY        -EMFILE      too many contexts (open files) or buffers on the device
 *   BAD_PARAM       -EINVAL      unknown query parameter
 *   BUSY            -EBUSY       the object is in use (contract 1.1: a buffer holding a queue)
 *   BAD_KERNEL      -EINVAL      SPIR-V refused: bad magic or rejected by validation (1.1)
 *   UNSUPPORTED     -EOPNOTSUPP  no execution backend (contract 1.1)
 *   THROTTLED       -EAGAIN      refused for a cool-off period after this VM's work caused
 *                                device resets or failed builds, or too many builds (1.2)
 *   anything else   -EIO         the device answered with a code contract 1.2 does not have
 *
 * BAD_HANDLE also answers queue and kernel ids the context does not own (the driver checks its
 * own records first, so userspace normally gets -ENOENT from them without a mailbox round trip).
 *
 * -ENOMEM stays reserved for kernel allocation failures, so userspace can tell "the aperture
 * is full" (-ENOSPC) and "over quota" (-EDQUOT) from "the guest kernel is out of memory".
 */
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/module.h>

#include "mdgpu_drv.h"

static unsigned int mbox_timeout_ms = 2000;
module_param(mbox_timeout_ms, uint, 0644);
MODULE_PARM_DESC(mbox_timeout_ms,
		 "Longest wait for a mailbox completion, in ms (default 2000)");

int mdgpu_mbox_result_to_errno(u32 result)
{
	switch (result) {
	case MDGPU_RESULT_OK:
		return 0;
	case MDGPU_RESULT_UNKNOWN_OPCODE:
		return -EOPNOTSUPP;
	case MDGPU_RESULT_BAD_CONTEXT:
		return -EBADFD;
	case MDGPU_RESULT_BAD_SIZE:
	case MDGPU_RESULT_BAD_FLAGS:
	case MDGPU_RESULT_BAD_PARAM:
		return -EINVAL;
	case MDGPU_RESULT_NO_MEMORY:
		return -ENOSPC;
	case MDGPU_RESULT_OVER_QUOTA:
		return -EDQUOT;
	case MDGPU_RESULT_BAD_HANDLE:
		return -ENOENT;
	case MDGPU_RESULT_TOO_MANY:
		return -EMFILE;
	case MDGPU_RESULT_BUSY:
		return -EBUSY;
	case MDGPU_RESULT_BAD_KERNEL:
		return -EINVAL;
	case MDGPU_RESULT_UNSUPPORTED:
		return -EOPNOTSUPP;
	case MDGPU_RESULT_THROTTLED:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

static const struct {
	u32 opcode;
	const char *name;
} mdgpu_mbox_ops[] = {
	{ MDGPU_OP_NOP, "NOP" },
	{ MDGPU_OP_QUERY, "QUERY" },
	{ MDGPU_OP_CTX_CREATE, "CTX_CREATE" },
	{ MDGPU_OP_CTX_DESTROY, "CTX_DESTROY" },
	{ MDGPU_OP_CAPS_READ, "CAPS_READ" },
	{ MDGPU_OP_BO_ALLOC, "BO_ALLOC" },
	{ MDGPU_OP_BO_FREE, "BO_FREE" },
	{ MDGPU_OP_BO_INFO, "BO_INFO" },
	{ MDGPU_OP_QUEUE_CREATE, "QUEUE_CREATE" },
	{ MDGPU_OP_QUEUE_DESTROY, "QUEUE_DESTROY" },
	{ MDGPU_OP_KERNEL_CREATE, "KERNEL_CREATE" },
	{ MDGPU_OP_KERNEL_DESTROY, "KERNEL_DESTROY" },
	{ MDGPU_OP_KERNEL_STATUS, "KERNEL_STATUS" },
	{ MDGPU_OP_KERNEL_CREATE2, "KERNEL_CREATE2" },
};

static const char *mdgpu_mbox_op_name(u32 opcode)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(mdgpu_mbox_ops); i++)
		if (mdgpu_mbox_ops[i].opcode == opcode)
			return mdgpu_mbox_ops[i].name;
	return "?";
}

/**
 * mdgpu_mbox_exec() - run one mailbox operation
 * @mdev: the device
 * @opcode: MDGPU_OP_*
 * @args: @nargs arguments for MBOX_ARG0..
 * @nargs: number of arguments (at most MDGPU_MAILBOX_ARGS)
 * @rets: receives MBOX_RET0..@nrets-1 on success (may be NULL when @nrets is 0)
 * @nrets: number of results wanted (at most MDGPU_MAILBOX_RETS)
 *
 * Context: process context, may sleep. Takes mbox_lock.
 * Return: 0, the errno of the device's result code (see the table above), -ETIMEDOUT when the
 * device does not complete in time, or -ENODEV once the device has been removed.
 */
int mdgpu_mbox_exec(struct mdgpu_device *mdev, u32 opcode, const u32 *args,
		    unsigned int nargs, u32 *rets, unsigned int nrets)
{
	unsigned long deadline;
	u32 status, prev, expect, result;
	unsigned int i;
	int ret;

	if (WARN_ON(nargs > MDGPU_MAILBOX_ARGS || nrets > MDGPU_MAILBOX_RETS))
		return -EINVAL;

	mutex_lock(&mdev->mbox_lock);
	if (unlikely(mdev->gone)) {
		ret = -ENODEV;
		goto out_unlock;
	}

	prev = mdgpu_rd32(mdev, MDGPU_REG_MBOX_STATUS);
	expect = (MDGPU_FIELD_GET(MBOX_STATUS, SEQ, prev) + 1) & 0xffff;
	atomic_set(&mdev->irq_mailbox, 0);
	for (i = 0; i < nargs; i++)
		mdgpu_wr32(mdev, MDGPU_REG_MBOX_ARG0 + 4 * i, args[i]);
	mdgpu_wr32(mdev, MDGPU_REG_MBOX_OPCODE, opcode);
	mdgpu_wr32(mdev, MDGPU_REG_MBOX_DOORBELL, 1);

	deadline = jiffies + msecs_to_jiffies(mbox_timeout_ms);
	for (;;) {
		status = mdgpu_rd32(mdev, MDGPU_REG_MBOX_STATUS);
		if (MDGPU_FIELD_GET(MBOX_STATUS, SEQ, status) == expect)
			break;
		if (time_after(jiffies, deadline)) {
			atomic_inc(&mdev->mbox_timeouts);
			dev_err_ratelimited(
				&mdev->pdev->dev,
				"mailbox %s (0x%04x) did not complete in %u ms (status 0x%08x, expected seq %u)\n",
				mdgpu_mbox_op_name(opcode), opcode,
				mbox_timeout_ms, status, expect);
			ret = -ETIMEDOUT;
			goto out_unlock;
		}
		/* Woken by the MAILBOX interrupt; the short timeout also covers a device that
		 * completes without interrupting.
		 */
		wait_event_timeout(mdev->mbox_wq,
				   atomic_read(&mdev->irq_mailbox),
				   msecs_to_jiffies(1));
		atomic_set(&mdev->irq_mailbox, 0);
	}

	result = MDGPU_FIELD_GET(MBOX_STATUS, RESULT, status);
	ret = mdgpu_mbox_result_to_errno(result);
	if (ret == -EIO)
		dev_err_ratelimited(&mdev->pdev->dev,
				    "mailbox %s: unknown result code %u\n",
				    mdgpu_mbox_op_name(opcode), result);
	else if (ret)
		dev_dbg(&mdev->pdev->dev, "mailbox %s: result %u (%d)\n",
			mdgpu_mbox_op_name(opcode), result, ret);
	else
		for (i = 0; i < nrets; i++)
			rets[i] = mdgpu_rd32(mdev, MDGPU_REG_MBOX_RET0 + 4 * i);

out_unlock:
	mutex_unlock(&mdev->mbox_lock);
	return ret;
}

int mdgpu_mbox_query(struct mdgpu_device *mdev, u32 param, u64 *value)
{
	u32 rets[2];
	int ret;

	ret = mdgpu_mbox_exec(mdev, MDGPU_OP_QUERY, &param, 1, rets, 2);
	if (ret)
		return ret;
	*value = (u64)rets[1] << 32 | rets[0];
	return 0;
}

int mdgpu_mbox_ctx_create(struct mdgpu_device *mdev, u32 *ctx)
{
	int ret;

	ret = mdgpu_mbox_exec(mdev, MDGPU_OP_CTX_CREATE, NULL, 0, ctx, 1);
	if (ret)
		return ret;
	if (unlikely(*ctx == 0)) {
		dev_err_ratelimited(&mdev->pdev->dev,
				    "device returned context id 0\n");
		return -EIO;
	}
	return 0;
}

int mdgpu_mbox_ctx_destroy(struct mdgpu_device *mdev, u32 ctx, u32 *freed)
{
	return mdgpu_mbox_exec(mdev, MDGPU_OP_CTX_DESTROY, &ctx, 1, freed, 1);
}

int mdgpu_mbox_bo_alloc(struct mdgpu_device *mdev, u32 ctx, u64 size,
			u32 align_log2, u32 flags, u32 *handle, u64 *offset)
{
	const u32 args[5] = { ctx, lower_32_bits(size), upper_32_bits(size),
			      align_log2, flags };
	u32 rets[3];
	int ret;

	ret = mdgpu_mbox_exec(mdev, MDGPU_OP_BO_ALLOC, args, ARRAY_SIZE(args),
			      rets, 3);
	if (ret)
		return ret;
	*handle = rets[0];
	*offset = (u64)rets[2] << 32 | rets[1];
	return 0;
}

int mdgpu_mbox_bo_free(struct mdgpu_device *mdev, u32 ctx, u32 handle)
{
	const u32 args[2] = { ctx, handle };

	return mdgpu_mbox_exec(mdev, MDGPU_OP_BO_FREE, args, ARRAY_SIZE(args),
			       NULL, 0);
}

int mdgpu_mbox_queue_create(struct mdgpu_device *mdev, u32 ctx, u32 handle,
			    u32 priority, u32 *queue)
{
	const u32 args[3] = { ctx, handle, priority };
	int ret;

	ret = mdgpu_mbox_exec(mdev, MDGPU_OP_QUEUE_CREATE, args,
			      ARRAY_SIZE(args), queue, 1);
	if (ret)
		return ret;
	if (unlikely(*queue == 0)) {
		dev_err_ratelimited(&mdev->pdev->dev,
				    "device returned queue id 0\n");
		return -EIO;
	}
	return 0;
}

int mdgpu_mbox_queue_destroy(struct mdgpu_device *mdev, u32 ctx, u32 queue)
{
	const u32 args[2] = { ctx, queue };

	return mdgpu_mbox_exec(mdev, MDGPU_OP_QUEUE_DESTROY, args,
			       ARRAY_SIZE(args), NULL, 0);
}

int mdgpu_mbox_kernel_create(struct mdgpu_device *mdev, u32 ctx, u32 handle,
			     u32 offset, u32 size, u32 bindings, u32 push_bytes,
			     u32 *kernel)
{
	const u32 args[6] = { ctx, handle, offset, size, bindings, push_bytes };
	int ret;

	ret = mdgpu_mbox_exec(mdev, MDGPU_OP_KERNEL_CREATE, args,
			      ARRAY_SIZE(args), kernel, 1);
	if (ret)
		return ret;
	if (unlikely(*kernel == 0)) {
		dev_err_ratelimited(&mdev->pdev->dev,
				    "device returned kernel id 0\n");
		return -EIO;
	}
	return 0;
}

int mdgpu_mbox_kernel_create2(struct mdgpu_device *mdev, u32 ctx, u32 handle,
			      u32 offset, u32 size, u32 *kernel)
{
	const u32 args[4] = { ctx, handle, offset, size };
	int ret;

	ret = mdgpu_mbox_exec(mdev, MDGPU_OP_KERNEL_CREATE2, args,
			      ARRAY_SIZE(args), kernel, 1);
	if (ret)
		return ret;
	if (unlikely(*kernel == 0)) {
		dev_err_ratelimited(&mdev->pdev->dev,
				    "device returned kernel id 0\n");
		return -EIO;
	}
	return 0;
}

int mdgpu_mbox_caps_read(struct mdgpu_device *mdev, u32 ctx, u32 handle,
			 u32 offset, u32 *size)
{
	const u32 args[3] = { ctx, handle, offset };

	return mdgpu_mbox_exec(mdev, MDGPU_OP_CAPS_READ, args, ARRAY_SIZE(args),
			       size, 1);
}

int mdgpu_mbox_kernel_destroy(struct mdgpu_device *mdev, u32 ctx, u32 kernel)
{
	const u32 args[2] = { ctx, kernel };

	return mdgpu_mbox_exec(mdev, MDGPU_OP_KERNEL_DESTROY, args,
			       ARRAY_SIZE(args), NULL, 0);
}

int mdgpu_mbox_kernel_status(struct mdgpu_device *mdev, u32 ctx, u32 kernel,
			     u32 *state, u32 *result)
{
	const u32 args[2] = { ctx, kernel };
	u32 rets[2];
	int ret;

	ret = mdgpu_mbox_exec(mdev, MDGPU_OP_KERNEL_STATUS, args,
			      ARRAY_SIZE(args), rets, 2);
	if (ret)
		return ret;
	*state = rets[0];
	*result = rets[1];
	return 0;
}
