// SPDX-License-Identifier: GPL-2.0-only
/*
 * mdgpu guest driver: PCI probe and remove, interrupts, module init.
 *
 * The device (docs/device.md, the contract) has two BARs. BAR2 holds the trapped registers
 * and the MSI-X table; the driver maps it. BAR0 is the aperture, device memory that QEMU maps
 * straight into the guest: the driver hands pages of it to userspace (mdgpu_bo.c), after the
 * device's mailbox has allocated them to the file's context, and maps the allocatable part
 * itself (write-combined, as userspace does) only to read fences for MDGPU_IOCTL_WAIT_FENCE.
 *
 * Interrupts are MSI-X only. Under TCG, QEMU permanently disables the direct BAR mappings
 * the first time it delivers an INTx itself, which would turn every aperture access into a
 * trap; a device without usable MSI-X is refused rather than driven with INTx. Source n
 * (MAILBOX 0, FENCE 1, ERROR 2, KERNEL 3) arrives on vector n, each with its own handler.
 *
 * Why a fence waiter cannot miss its wakeup. The device delivers a source as an edge: one
 * message when its IRQ_STATUS bit becomes set while enabled, none while the bit stays set. A
 * handler reads IRQ_STATUS, clears the bits it owns (write 1s), and only then wakes the
 * waiters, who re-read their fence (wait_event re-evaluates its condition after every wakeup,
 * and the condition is set up before the waiter sleeps, so a wakeup between the check and the
 * sleep is not lost either). A fence written while the bit was still set sends no message of
 * its own, but the device wrote the fence memory before it raised the source, and raised it
 * before our clear: the re-read after the wakeup sees it. A fence written after the clear sets
 * the bit again and sends a new message. Every register access is a trapped, non-posted access
 * that the device (one thread) answers only after finishing the submission step that raised
 * the source, so the memory writes of that step are visible before the handler's read returns.
 */
#include <linux/idr.h>
#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "mdgpu_drv.h"

static DEFINE_IDA(mdgpu_ida);

static const char *const mdgpu_irq_names[MDGPU_IRQ_USED] = {
	[MDGPU_IRQ_SOURCE_MAILBOX] = "mailbox",
	[MDGPU_IRQ_SOURCE_FENCE] = "fence",
	[MDGPU_IRQ_SOURCE_ERROR] = "error",
	[MDGPU_IRQ_SOURCE_KERNEL] = "kernel",
};

static irqreturn_t mdgpu_irq_handler(int irq, void *arg)
{
	struct mdgpu_irq_vector *vec = arg;
	struct mdgpu_device *mdev = vec->mdev;
	unsigned int src;
	u32 pending;

	pending = mdgpu_rd32(mdev, MDGPU_REG_IRQ_STATUS) & vec->sources;
	if (!pending)
		return IRQ_NONE;
	/* Clear first, wake second: see the comment at the top of this file. */
	mdgpu_wr32(mdev, MDGPU_REG_IRQ_STATUS, pending);
	atomic64_inc(&mdev->irq_count);
	for (src = 0; src < MDGPU_IRQ_USED; src++)
		if (pending & BIT(src))
			atomic64_inc(&mdev->irq_source_count[src]);
	if (pending & MDGPU_REG_IRQ_STATUS_MAILBOX_MASK) {
		atomic_set(&mdev->irq_mailbox, 1);
		wake_up(&mdev->mbox_wq);
	}
	if (pending & (MDGPU_REG_IRQ_STATUS_FENCE_MASK |
		       MDGPU_REG_IRQ_STATUS_ERROR_MASK)) {
		atomic_inc(&mdev->fence_seq);
		wake_up_all(&mdev->fence_wq);
	}
	if (pending & MDGPU_REG_IRQ_STATUS_KERNEL_MASK) {
		atomic_inc(&mdev->kernel_seq);
		wake_up_all(&mdev->kernel_wq);
	}
	return IRQ_HANDLED;
}

/* Request a handler for each allocated vector. Returns 0 or the errno of the first failure. */
static int mdgpu_request_irqs(struct mdgpu_device *mdev)
{
	struct pci_dev *pdev = mdev->pdev;
	int i, ret;

	for (i = 0; i < mdev->irq_vectors; i++) {
		struct mdgpu_irq_vector *vec = &mdev->vectors[i];

		vec->mdev = mdev;
		vec->irq = pci_irq_vector(pdev, i);
		vec->sources = BIT(i);
		if (i == mdev->irq_vectors - 1)
			vec->sources = MDGPU_REG_IRQ_STATUS_SOURCES_MASK &
				       ~(BIT(i) - 1);
		snprintf(vec->name, sizeof(vec->name), MDGPU_DRV_NAME "-%s",
			 mdgpu_irq_names[i]);
		ret = request_irq(vec->irq, mdgpu_irq_handler, 0, vec->name,
				  vec);
		if (ret) {
			dev_err(&pdev->dev,
				"cannot request MSI-X vector %d (irq %d): %d\n",
				i, vec->irq, ret);
			goto err_free;
		}
	}
	return 0;

err_free:
	while (--i >= 0)
		free_irq(mdev->vectors[i].irq, &mdev->vectors[i]);
	return ret;
}

static void mdgpu_free_irqs(struct mdgpu_device *mdev)
{
	int i;

	for (i = 0; i < mdev->irq_vectors; i++)
		free_irq(mdev->vectors[i].irq, &mdev->vectors[i]);
}

static void mdgpu_device_release(struct kref *ref)
{
	struct mdgpu_device *mdev = container_of(ref, struct mdgpu_device, ref);

	pci_dev_put(mdev->pdev);
	kfree(mdev);
}

void mdgpu_device_put(struct mdgpu_device *mdev)
{
	kref_put(&mdev->ref, mdgpu_device_release);
}

/*
 * Contract 1.1 parameters. A 1.0 device does not know them (BAD_PARAM): it has no queues, and
 * the driver keeps working with zeros, as the contract's minor versions promise.
 */
static int mdgpu_query_compute_params(struct mdgpu_device *mdev)
{
	u64 has_backend = 0, max_queues = 0, max_kernels = 0;
	int ret;

	if (MDGPU_FIELD_GET(VERSION, MINOR, mdev->version) < 1)
		return 0;
	ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_HAS_BACKEND, &has_backend);
	if (!ret)
		ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_MAX_QUEUES,
				       &max_queues);
	if (!ret)
		ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_MAX_KERNELS,
				       &max_kernels);
	if (!ret)
		ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_MAX_SUBMISSION,
				       &mdev->max_submission);
	if (!ret)
		ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_GRACE_US,
				       &mdev->grace_us);
	if (ret == -EINVAL) {
		dev_warn(
			&mdev->pdev->dev,
			"device reports contract 1.1 but not its queue parameters: no queues\n");
		mdev->max_submission = 0;
		mdev->grace_us = 0;
		return 0;
	}
	if (ret)
		return dev_err_probe(&mdev->pdev->dev, ret,
				     "mailbox QUERY failed\n");
	/* Added to 1.1 after the others: 0 (unknown) rather than a failed probe. */
	if (mdgpu_mbox_query(mdev, MDGPU_QUERY_BINDING_ALIGN,
			     &mdev->binding_align))
		mdev->binding_align = 0;
	if (mdgpu_mbox_query(mdev, MDGPU_QUERY_MAX_BINDING, &mdev->max_binding))
		mdev->max_binding = 0;
	/* Contract 1.2: kernels build asynchronously (KERNEL_STATUS, the KERNEL interrupt). */
	if (MDGPU_FIELD_GET(VERSION, MINOR, mdev->version) < 2 ||
	    mdgpu_mbox_query(mdev, MDGPU_QUERY_KERNEL_BUILD_MS,
			     &mdev->kernel_build_ms))
		mdev->kernel_build_ms = 0;
	/* Contract 1.3: the capability record (0: the device has none). */
	if (MDGPU_FIELD_GET(VERSION, MINOR, mdev->version) < 3 ||
	    mdgpu_mbox_query(mdev, MDGPU_QUERY_CAPS_SIZE, &mdev->caps_size))
		mdev->caps_size = 0;
	mdev->has_backend = has_backend ? 1 : 0;
	mdev->max_queues = min_t(u64, max_queues, U32_MAX);
	mdev->max_kernels = min_t(u64, max_kernels, U32_MAX);
	return 0;
}

/* Read the contract parameters the driver caches and check that they are usable. */
static int mdgpu_query_params(struct mdgpu_device *mdev)
{
	struct device *dev = &mdev->pdev->dev;
	u64 max_contexts, max_buffers, contexts;
	int ret;

	ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_ALLOC_BASE, &mdev->alloc_base);
	if (!ret)
		ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_QUOTA, &mdev->quota);
	if (!ret)
		ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_MIN_ALIGN,
				       &mdev->min_align);
	if (!ret)
		ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_MAX_CONTEXTS,
				       &max_contexts);
	if (!ret)
		ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_MAX_BUFFERS,
				       &max_buffers);
	if (!ret)
		ret = mdgpu_mbox_query(mdev, MDGPU_QUERY_CONTEXTS, &contexts);
	if (ret)
		return dev_err_probe(dev, ret, "mailbox QUERY failed\n");

	/* Buffers are handed to userspace page by page: they must be page aligned. */
	if (mdev->min_align < PAGE_SIZE || !is_power_of_2(mdev->min_align) ||
	    !IS_ALIGNED(mdev->alloc_base, PAGE_SIZE) ||
	    mdev->alloc_base < MDGPU_TRAPPED_WINDOW_SIZE ||
	    mdev->alloc_base >= mdev->aperture_size) {
		dev_err(dev,
			"unusable allocation parameters: base 0x%llx, granule 0x%llx, aperture 0x%llx\n",
			mdev->alloc_base, mdev->min_align, mdev->aperture_size);
		return -ENODEV;
	}
	mdev->max_contexts = min_t(u64, max_contexts, U32_MAX);
	mdev->max_buffers = min_t(u64, max_buffers, U32_MAX);
	if (contexts)
		dev_warn(
			dev,
			"%llu device contexts already exist (a previous driver did not clean up)\n",
			contexts);
	return mdgpu_query_compute_params(mdev);
}

static int mdgpu_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct mdgpu_device *mdev;
	u32 sig, major, minor;
	u64 regs_aperture;
	int nvec, ret;

	mdev = kzalloc(sizeof(*mdev), GFP_KERNEL);
	if (!mdev)
		return -ENOMEM;
	mdev->pdev = pci_dev_get(pdev);
	kref_init(&mdev->ref);
	mutex_init(&mdev->mbox_lock);
	mutex_init(&mdev->window_lock);
	mutex_init(&mdev->files_lock);
	init_waitqueue_head(&mdev->mbox_wq);
	init_waitqueue_head(&mdev->fence_wq);
	init_waitqueue_head(&mdev->kernel_wq);
	INIT_LIST_HEAD(&mdev->files);
	mdev->index = -1;

	ret = pci_enable_device(pdev);
	if (ret) {
		dev_err(dev, "cannot enable the device: %d\n", ret);
		goto err_put;
	}

	if (!(pci_resource_flags(pdev, MDGPU_APERTURE_BAR) & IORESOURCE_MEM) ||
	    !(pci_resource_flags(pdev, MDGPU_REGISTER_BAR) & IORESOURCE_MEM) ||
	    pci_resource_len(pdev, MDGPU_REGISTER_BAR) <
		    MDGPU_REGISTER_BAR_SIZE) {
		dev_err(dev,
			"BAR%d (aperture) or BAR%d (registers) is missing or too small\n",
			MDGPU_APERTURE_BAR, MDGPU_REGISTER_BAR);
		ret = -ENODEV;
		goto err_disable;
	}

	ret = pci_request_regions(pdev, MDGPU_DRV_NAME);
	if (ret) {
		dev_err(dev, "cannot claim the BARs: %d\n", ret);
		goto err_disable;
	}

	mdev->regs =
		pci_iomap(pdev, MDGPU_REGISTER_BAR, MDGPU_REGISTER_BAR_SIZE);
	if (!mdev->regs) {
		dev_err(dev, "cannot map BAR%d\n", MDGPU_REGISTER_BAR);
		ret = -ENOMEM;
		goto err_release;
	}

	sig = mdgpu_rd32(mdev, MDGPU_REG_ID);
	if (sig != MDGPU_ID_VALUE) {
		dev_err(dev,
			"ID register reads 0x%08x, expected 0x%08x: not an mdgpu device\n",
			sig, MDGPU_ID_VALUE);
		ret = -ENODEV;
		goto err_unmap;
	}
	mdev->version = mdgpu_rd32(mdev, MDGPU_REG_VERSION);
	major = MDGPU_FIELD_GET(VERSION, MAJOR, mdev->version);
	minor = MDGPU_FIELD_GET(VERSION, MINOR, mdev->version);
	if (major != MDGPU_CONTRACT_MAJOR) {
		dev_err(dev,
			"device contract %u.%u is not supported: this driver speaks %u.x\n",
			major, minor, MDGPU_CONTRACT_MAJOR);
		ret = -ENODEV;
		goto err_unmap;
	}
	if (!(mdgpu_rd32(mdev, MDGPU_REG_STATUS) &
	      MDGPU_REG_STATUS_READY_MASK)) {
		dev_err(dev, "device is not ready\n");
		ret = -ENODEV;
		goto err_unmap;
	}

	mdev->aperture_phys = pci_resource_start(pdev, MDGPU_APERTURE_BAR);
	mdev->aperture_size = pci_resource_len(pdev, MDGPU_APERTURE_BAR);
	regs_aperture = (u64)mdgpu_rd32(mdev, MDGPU_REG_APERTURE_SIZE_HI)
				<< 32 |
			mdgpu_rd32(mdev, MDGPU_REG_APERTURE_SIZE_LO);
	if (regs_aperture != mdev->aperture_size ||
	    !IS_ALIGNED(mdev->aperture_phys, PAGE_SIZE) ||
	    mdev->aperture_size <= MDGPU_TRAPPED_WINDOW_SIZE) {
		dev_err(dev,
			"aperture: BAR%d is %llu bytes at %pa, the device reports %llu bytes\n",
			MDGPU_APERTURE_BAR, mdev->aperture_size,
			&mdev->aperture_phys, regs_aperture);
		ret = -ENODEV;
		goto err_unmap;
	}

	pci_set_master(pdev);

	nvec = pci_msix_vec_count(pdev);
	if (nvec < 1) {
		dev_err(dev,
			"no MSI-X capability: refusing INTx (it disables QEMU's BAR mappings)\n");
		ret = -ENODEV;
		goto err_unmap;
	}
	nvec = pci_alloc_irq_vectors(pdev, 1, min(nvec, MDGPU_IRQ_USED),
				     PCI_IRQ_MSIX);
	if (nvec < 0) {
		dev_err(dev, "cannot allocate MSI-X vectors: %d\n", nvec);
		ret = nvec;
		goto err_unmap;
	}
	mdev->irq_vectors = nvec;
	if (nvec < MDGPU_IRQ_USED)
		dev_warn(
			dev,
			"only %d MSI-X vector%s: sources above %d are not delivered, fence waits poll\n",
			nvec, nvec == 1 ? "" : "s", nvec - 1);

	/* Nothing may be pending or enabled from a previous driver when the handler arrives. */
	mdgpu_wr32(mdev, MDGPU_REG_IRQ_ENABLE, 0);
	mdgpu_wr32(mdev, MDGPU_REG_IRQ_STATUS,
		   MDGPU_REG_IRQ_STATUS_SOURCES_MASK);
	mdgpu_wr32(mdev, MDGPU_REG_WINDOW_BASE_LO, 0);
	mdgpu_wr32(mdev, MDGPU_REG_WINDOW_BASE_HI, 0);

	ret = mdgpu_request_irqs(mdev);
	if (ret)
		goto err_vectors;
	mdgpu_wr32(mdev, MDGPU_REG_IRQ_ENABLE, MDGPU_IRQ_USED_MASK);

	ret = mdgpu_query_params(mdev);
	if (ret)
		goto err_irq;

	/*
	 * The driver keeps no mapping of the aperture of its own: a fence wait maps the page of its
	 * fence with its buffer's memory type (mdgpu_fence.c). x86 PAT gives every mapping of a
	 * range the memory type of the first, so a standing write-combined mapping of the whole
	 * aperture would silently turn the write-back mappings of CACHED buffers (and the uncached
	 * one of the trapped window) write-combined.
	 */
	ret = ida_alloc(&mdgpu_ida, GFP_KERNEL);
	if (ret < 0)
		goto err_irq;
	mdev->index = ret;
	snprintf(mdev->name, sizeof(mdev->name), MDGPU_DRV_NAME "%d",
		 mdev->index);

	mdev->misc.minor = MISC_DYNAMIC_MINOR;
	mdev->misc.name = mdev->name;
	mdev->misc.fops = &mdgpu_fops;
	mdev->misc.parent = dev;
	/* Like a DRM render node: contexts isolate users, the device enforces the quota. */
	mdev->misc.mode = 0666;
	pci_set_drvdata(pdev, mdev);

	ret = misc_register(&mdev->misc);
	if (ret) {
		dev_err(dev, "cannot register /dev/%s: %d\n", mdev->name, ret);
		goto err_ida;
	}

	dev_info(
		dev,
		"%s: mdgpu contract %u.%u, aperture %llu MiB at %pa, quota %llu MiB, %d MSI-X vector%s, %s\n",
		mdev->name, major, minor, mdev->aperture_size >> 20,
		&mdev->aperture_phys, mdev->quota >> 20, nvec,
		nvec == 1 ? "" : "s",
		mdev->has_backend ? "compute backend" : "no compute backend");
	return 0;

err_ida:
	pci_set_drvdata(pdev, NULL);
	ida_free(&mdgpu_ida, mdev->index);
err_irq:
	mdgpu_wr32(mdev, MDGPU_REG_IRQ_ENABLE, 0);
	mdgpu_free_irqs(mdev);
err_vectors:
	pci_free_irq_vectors(pdev);
err_unmap:
	pci_iounmap(pdev, mdev->regs);
err_release:
	pci_release_regions(pdev);
err_disable:
	pci_disable_device(pdev);
err_put:
	mdgpu_device_put(mdev);
	return ret;
}

static void mdgpu_remove(struct pci_dev *pdev)
{
	struct mdgpu_device *mdev = pci_get_drvdata(pdev);

	/* No new opens; files still open keep mdev (not the hardware) alive. */
	misc_deregister(&mdev->misc);
	/* Destroy every context and zap every mapping while the mailbox still works. */
	mdgpu_file_revoke_all(mdev);

	mutex_lock(&mdev->window_lock);
	mdev->window_owner = NULL;
	mutex_unlock(&mdev->window_lock);

	mutex_lock(&mdev->mbox_lock);
	WRITE_ONCE(mdev->gone, true);
	mutex_unlock(&mdev->mbox_lock);

	/*
	 * Fence waiters see gone and leave with -ENODEV; the BAR stays reserved until the last
	 * of them has stopped reading (and unmapped) its fence page. No new waiter can start: every file's context is
	 * gone, and waits start only under the file's lock with a live context.
	 */
	wake_up_all(&mdev->kernel_wq);
	wake_up_all(&mdev->fence_wq);
	wait_event(mdev->fence_wq, atomic_read(&mdev->fence_waiters) == 0);

	mdgpu_wr32(mdev, MDGPU_REG_IRQ_ENABLE, 0);
	mdgpu_free_irqs(mdev);
	pci_free_irq_vectors(pdev);
	pci_iounmap(pdev, mdev->regs);
	mdev->regs = NULL;
	pci_release_regions(pdev);
	pci_disable_device(pdev);
	pci_set_drvdata(pdev, NULL);
	ida_free(&mdgpu_ida, mdev->index);
	dev_info(&pdev->dev, "%s removed\n", mdev->name);
	mdgpu_device_put(mdev);
}

static const struct pci_device_id mdgpu_pci_ids[] = {
	{ PCI_DEVICE(MDGPU_PCI_VENDOR_ID, MDGPU_PCI_DEVICE_ID) },
	{}
};
MODULE_DEVICE_TABLE(pci, mdgpu_pci_ids);

static struct pci_driver mdgpu_pci_driver = {
	.name = MDGPU_DRV_NAME,
	.id_table = mdgpu_pci_ids,
	.probe = mdgpu_probe,
	.remove = mdgpu_remove,
};
module_pci_driver(mdgpu_pci_driver);

MODULE_AUTHOR("mdgpu developers");
MODULE_DESCRIPTION(
	"mdgpu virtual GPGPU: mediated aperture memory, queues and kernels for userspace");
MODULE_LICENSE("GPL");
