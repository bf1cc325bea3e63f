/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * mdgpu guest driver: private definitions shared by mdgpu_drv.c (probe, remove, interrupts),
 * mdgpu_mbox.c (the mediation mailbox) and mdgpu_file.c (/dev/mdgpuN, ioctls, mmap).
 *
 * Locking, outermost first:
 *
 *   mmap_lock (mm)  ->  mdgpu_file.lock  ->  mdgpu_device.window_lock  ->  mdgpu_device.mbox_lock
 *   mdgpu_device.files_lock  ->  mdgpu_file.lock
 *
 * mmap() and the vm_ops run under mmap_lock and take the file's lock, so no ioctl may touch
 * user memory (copy_{from,to}_user can fault and take mmap_lock) while holding it.
 */
#ifndef __MDGPU_DRV_H__
#define __MDGPU_DRV_H__

#include <linux/atomic.h>
#include <linux/io.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/types.h>
#include <linux/version.h>
#include <linux/wait.h>
#include <linux/xarray.h>

#include "mdgpu_hw.h"
#include "uapi/mdgpu.h"

#define MDGPU_DRV_NAME		"mdgpu"

/**
 * struct mdgpu_device - one mdgpu PCI function
 * @pdev: the PCI device (a reference is held until @ref drops to zero)
 * @regs: BAR2, the trapped register page
 * @aperture_phys: bus address of BAR0; the driver never maps it itself, it only hands pages
 *	of it to userspace with mmap()
 * @aperture_size: size of BAR0 in bytes
 * @version: contract version read from the VERSION register
 * @alloc_base: first aperture offset buffers come from (QUERY ALLOC_BASE)
 * @quota: bytes the VM may allocate (QUERY QUOTA)
 * @min_align: allocation granule (QUERY MIN_ALIGN)
 * @max_contexts: QUERY MAX_CONTEXTS
 * @max_buffers: QUERY MAX_BUFFERS
 * @irq: Linux interrupt number of MSI-X vector 0 (the MAILBOX source)
 * @irq_vectors: MSI-X vectors allocated
 * @irq_count: interrupts handled (diagnostic)
 * @irq_mailbox: set by the interrupt handler when a mailbox completion was signalled
 * @mbox_lock: serialises mailbox operations; guards @gone for them
 * @mbox_wq: mailbox waiters, woken by the interrupt handler
 * @mbox_timeouts: mailbox operations that did not complete in time
 * @gone: the device was removed: no register access any more
 * @window_lock: guards @window_owner and @window_base
 * @window_owner: the file that owns the trapped window, or NULL
 * @window_base: the aperture offset the window shows (cached WINDOW_BASE)
 * @files_lock: guards @files
 * @files: open files (struct mdgpu_file.link), so remove can tear down their contexts
 * @index: N of /dev/mdgpuN (from an IDA)
 * @name: "mdgpuN"
 * @misc: the character device
 * @ref: lifetime: probe holds one reference, every open file one more
 */
struct mdgpu_device {
	struct pci_dev *pdev;
	void __iomem *regs;
	phys_addr_t aperture_phys;
	u64 aperture_size;
	u32 version;
	u64 alloc_base;
	u64 quota;
	u64 min_align;
	u32 max_contexts;
	u32 max_buffers;

	int irq;
	int irq_vectors;
	atomic64_t irq_count;
	atomic_t irq_mailbox;

	struct mutex mbox_lock;
	wait_queue_head_t mbox_wq;
	atomic_t mbox_timeouts;
	bool gone;

	struct mutex window_lock;
	struct mdgpu_file *window_owner;
	u64 window_base;

	struct mutex files_lock;
	struct list_head files;

	int index;
	char name[16];
	struct miscdevice misc;
	struct kref ref;
};

/**
 * struct mdgpu_bo - a buffer of one file
 * @handle: device handle (also the key in &mdgpu_file.bos)
 * @offset: aperture offset, which is also the mmap offset
 * @size: size in bytes (a multiple of PAGE_SIZE)
 * @map_count: VMAs mapping this buffer (vm_ops open/close); guarded by &mdgpu_file.lock
 */
struct mdgpu_bo {
	u32 handle;
	u64 offset;
	u64 size;
	unsigned int map_count;
};

/**
 * struct mdgpu_file - one open file of /dev/mdgpuN, one device context
 * @mdev: the device (holds a reference)
 * @lock: guards @ctx, @bos and the buffers' map counts
 * @ctx: device context id; 0 once the context is gone (device removed)
 * @bos: buffers of this file by handle
 * @mapping: the file's address space, to zap its mappings when the device goes away
 * @link: entry in &mdgpu_device.files
 */
struct mdgpu_file {
	struct mdgpu_device *mdev;
	struct mutex lock;
	u32 ctx;
	struct xarray bos;
	struct address_space *mapping;
	struct list_head link;
};

static inline u32 mdgpu_rd32(struct mdgpu_device *mdev, u32 reg)
{
	return ioread32(mdev->regs + reg);
}

static inline void mdgpu_wr32(struct mdgpu_device *mdev, u32 reg, u32 value)
{
	iowrite32(value, mdev->regs + reg);
}

#define MDGPU_FIELD_GET(REG, FLD, val) \
	(((val) & MDGPU_REG_##REG##_##FLD##_MASK) >> MDGPU_REG_##REG##_##FLD##_SHIFT)

/* vm_flags became write-protected behind helpers in 6.3. */
static inline void mdgpu_vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, flags);
#else
	vma->vm_flags |= flags;
#endif
}

/* mdgpu_drv.c */
void mdgpu_device_put(struct mdgpu_device *mdev);

/* mdgpu_mbox.c */
int mdgpu_mbox_exec(struct mdgpu_device *mdev, u32 opcode, const u32 *args,
		    unsigned int nargs, u32 *rets, unsigned int nrets);
int mdgpu_mbox_query(struct mdgpu_device *mdev, u32 param, u64 *value);
int mdgpu_mbox_ctx_create(struct mdgpu_device *mdev, u32 *ctx);
int mdgpu_mbox_ctx_destroy(struct mdgpu_device *mdev, u32 ctx, u32 *freed);
int mdgpu_mbox_bo_alloc(struct mdgpu_device *mdev, u32 ctx, u64 size, u32 align_log2,
			u32 *handle, u64 *offset);
int mdgpu_mbox_bo_free(struct mdgpu_device *mdev, u32 ctx, u32 handle);
int mdgpu_mbox_result_to_errno(u32 result);

/* mdgpu_file.c */
extern const struct file_operations mdgpu_fops;
void mdgpu_file_revoke_all(struct mdgpu_device *mdev);
int mdgpu_window_write(struct mdgpu_device *mdev, u64 base);

#endif /* __MDGPU_DRV_H__ */
