/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * mdgpu guest driver: private definitions shared by every area of the driver, split as
 * drivers/accel/ivpu is (one file and header per area):
 *
 *   mdgpu_drv.c     probe, remove, interrupts, module init
 *   mdgpu_mbox.c    the mediation mailbox (device operations, result codes to errno)
 *   mdgpu_file.c    /dev/mdgpuN: open, release, the ioctl table and dispatcher, mmap
 *   mdgpu_bo.c      buffers and their mappings
 *   mdgpu_window.c  the trapped window
 *   mdgpu_queue.c   queues and doorbells
 *   mdgpu_kernel.c  compute kernels and the wait for their build
 *   mdgpu_fence.c   fence waits
 *
 * This header has what they all use; mdgpu_<area>.h has an area's structures and entry points.
 *
 * Locking, outermost first:
 *
 *   mmap_lock (mm)  ->  mdgpu_file.lock  ->  mdgpu_device.window_lock  ->  mdgpu_device.mbox_lock
 *   mdgpu_device.files_lock  ->  mdgpu_file.lock
 *
 * mmap() and the vm_ops run under mmap_lock and take the file's lock, so no ioctl may touch
 * user memory (copy_{from,to}_user can fault and take mmap_lock) while holding it.
 *
 * Fence waits (MDGPU_IOCTL_WAIT_FENCE) sleep holding no lock: they pin their buffer
 * (&mdgpu_bo.waiters, under the file's lock) and count themselves in
 * &mdgpu_device.fence_waiters, which remove drains before it releases the BARs; each wait
 * maps the page of its fence itself, with its buffer's memory type.
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

#define MDGPU_DRV_NAME "mdgpu"

/*
 * Interrupt sources the driver uses: MAILBOX, FENCE, ERROR, KERNEL (contract 1.2). Source n
 * arrives on MSI-X vector n, so the driver asks for this many vectors (the device has 4 by
 * default).
 */
#define MDGPU_IRQ_USED (MDGPU_IRQ_SOURCE_KERNEL + 1)
#define MDGPU_IRQ_USED_MASK                                                    \
	(MDGPU_REG_IRQ_ENABLE_MAILBOX_MASK | MDGPU_REG_IRQ_ENABLE_FENCE_MASK | \
	 MDGPU_REG_IRQ_ENABLE_ERROR_MASK | MDGPU_REG_IRQ_ENABLE_KERNEL_MASK)

struct mdgpu_device;

/**
 * struct mdgpu_irq_vector - one MSI-X vector
 * @mdev: the device
 * @irq: its Linux interrupt number
 * @sources: IRQ_STATUS bits its handler owns: bit n for vector n; the last vector also owns
 *	every higher source (when the device has fewer vectors than sources)
 * @name: for /proc/interrupts
 */
struct mdgpu_irq_vector {
	struct mdgpu_device *mdev;
	int irq;
	u32 sources;
	char name[24];
};

/**
 * struct mdgpu_device - one mdgpu PCI function
 * @pdev: the PCI device (a reference is held until @ref drops to zero)
 * @regs: BAR2, the trapped register page
 * @aperture_phys: bus address of BAR0; pages of it are handed to userspace with mmap()
 * @aperture_size: size of BAR0 in bytes
 * @has_backend: QUERY HAS_BACKEND (0 on a contract 1.0 device)
 * @max_queues: QUERY MAX_QUEUES
 * @max_kernels: QUERY MAX_KERNELS
 * @max_submission: QUERY MAX_SUBMISSION
 * @grace_us: QUERY GRACE_US
 * @binding_align: QUERY BINDING_ALIGN (0 when the device does not know it)
 * @max_binding: QUERY MAX_BINDING (0 when the device does not know it)
 * @version: contract version read from the VERSION register
 * @alloc_base: first aperture offset buffers come from (QUERY ALLOC_BASE)
 * @quota: bytes the VM may allocate (QUERY QUOTA)
 * @min_align: allocation granule (QUERY MIN_ALIGN)
 * @max_contexts: QUERY MAX_CONTEXTS
 * @max_buffers: QUERY MAX_BUFFERS
 * @vectors: the MSI-X vectors requested (@irq_vectors of them)
 * @irq_vectors: MSI-X vectors allocated and requested
 * @irq_count: interrupts handled (diagnostic)
 * @irq_source_count: interrupts handled per source (MAILBOX, FENCE, ERROR)
 * @irq_mailbox: set by the interrupt handler when a mailbox completion was signalled
 * @fence_wq: fence waiters, woken by the FENCE and ERROR interrupts and by remove
 * @fence_seq: counts FENCE and ERROR interrupts, so a waiter knows an interrupt woke it
 * @fence_waiters: waits in progress; remove waits for them to leave before unmapping
 * @fence_waits: WAIT_FENCE calls (diagnostic)
 * @fence_sleeps: waits that slept (diagnostic)
 * @fence_irq_wakeups: sleeping waits completed after an interrupt (diagnostic)
 * @kernel_wq: kernel-build waiters, woken by the KERNEL interrupt and by remove
 * @kernel_seq: counts KERNEL interrupts, so a waiter knows a build may have ended
 * @kernel_build_ms: QUERY KERNEL_BUILD_MS (0 before contract 1.2)
 * @caps_size: QUERY CAPS_SIZE, bytes of the capability record (0 before contract 1.3)
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
	u32 has_backend;
	u32 max_queues;
	u32 max_kernels;
	u64 max_submission;
	u64 grace_us;
	u64 binding_align;
	u64 max_binding;

	struct mdgpu_irq_vector vectors[MDGPU_IRQ_USED];
	int irq_vectors;
	atomic64_t irq_count;
	atomic64_t irq_source_count[MDGPU_IRQ_USED];
	atomic_t irq_mailbox;

	wait_queue_head_t fence_wq;
	atomic_t fence_seq;
	atomic_t fence_waiters;
	atomic64_t fence_waits;
	atomic64_t fence_sleeps;
	atomic64_t fence_irq_wakeups;

	wait_queue_head_t kernel_wq;
	atomic_t kernel_seq;
	u64 kernel_build_ms;
	u64 caps_size;

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
 * struct mdgpu_file - one open file of /dev/mdgpuN, one device context
 * @mdev: the device (holds a reference)
 * @lock: guards @ctx, @bos, @queues, @kernels and the buffers' counts
 * @ctx: device context id; 0 once the context is gone (device removed)
 * @bos: buffers of this file by handle
 * @queues: queues of this file by id
 * @kernels: kernels of this file by id
 * @mapping: the file's address space, to zap its mappings when the device goes away
 * @link: entry in &mdgpu_device.files
 */
struct mdgpu_file {
	struct mdgpu_device *mdev;
	struct mutex lock;
	u32 ctx;
	struct xarray bos;
	struct xarray queues;
	struct xarray kernels;
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

#define MDGPU_FIELD_GET(REG, FLD, val)             \
	(((val)&MDGPU_REG_##REG##_##FLD##_MASK) >> \
	 MDGPU_REG_##REG##_##FLD##_SHIFT)

/* vm_flags became write-protected behind helpers in 6.3. */
static inline void mdgpu_vm_flags_set(struct vm_area_struct *vma,
				      vm_flags_t flags)
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
int mdgpu_mbox_bo_alloc(struct mdgpu_device *mdev, u32 ctx, u64 size,
			u32 align_log2, u32 flags, u32 *handle, u64 *offset);
int mdgpu_mbox_bo_free(struct mdgpu_device *mdev, u32 ctx, u32 handle);
int mdgpu_mbox_queue_create(struct mdgpu_device *mdev, u32 ctx, u32 handle,
			    u32 priority, u32 *queue);
int mdgpu_mbox_queue_destroy(struct mdgpu_device *mdev, u32 ctx, u32 queue);
int mdgpu_mbox_kernel_create(struct mdgpu_device *mdev, u32 ctx, u32 handle,
			     u32 offset, u32 size, u32 bindings, u32 push_bytes,
			     u32 *kernel);
int mdgpu_mbox_kernel_create2(struct mdgpu_device *mdev, u32 ctx, u32 handle,
			      u32 offset, u32 size, u32 *kernel);
int mdgpu_mbox_kernel_destroy(struct mdgpu_device *mdev, u32 ctx, u32 kernel);
int mdgpu_mbox_caps_read(struct mdgpu_device *mdev, u32 ctx, u32 handle,
			 u32 offset, u32 *size);
int mdgpu_mbox_kernel_status(struct mdgpu_device *mdev, u32 ctx, u32 kernel,
			     u32 *state, u32 *result);
int mdgpu_mbox_result_to_errno(u32 result);

/* mdgpu_file.c */
extern const struct file_operations mdgpu_fops;
void mdgpu_file_revoke_all(struct mdgpu_device *mdev);
int mdgpu_mmap_aperture(struct mdgpu_device *mdev, struct vm_area_struct *vma,
			pgprot_t prot);

#endif /* __MDGPU_DRV_H__ */
