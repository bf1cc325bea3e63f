// SPDX-License-Identifier: MIT
/*
 * libmdgpu: open/close, information, buffers, mappings and the trapped window over the ioctls
 * of include/uapi/mdgpu.h. Plain C, no dependencies beyond libc; linked statically into the
 * tools that run in the guest's initramfs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "mdgpu_hw.h"
#include "mdgpu_priv.h"

/*
 * The limits the uAPI promises are the device's (mdgpu_hw.h, generated from its tables); the
 * kernel module asserts the same (mdgpu_file.c).
 */
_Static_assert(MDGPU_WINDOW_SIZE == MDGPU_TRAPPED_WINDOW_SIZE, "uapi limit");
_Static_assert(MDGPU_BO_FLAGS_KNOWN == MDGPU_HW_BO_FLAGS_KNOWN, "uapi limit");
_Static_assert(MDGPU_BO_ALIGN_MIN_LOG2 == MDGPU_MIN_ALIGN_LOG2, "uapi limit");
_Static_assert(MDGPU_BO_ALIGN_MAX_LOG2 == MDGPU_MAX_ALIGN_LOG2, "uapi limit");
_Static_assert(MDGPU_QUEUE_CONTROL_SIZE == MDGPU_HW_QUEUE_CONTROL_SIZE, "uapi limit");
_Static_assert(MDGPU_QUEUE_RING_MIN == MDGPU_HW_QUEUE_RING_MIN, "uapi limit");
_Static_assert(MDGPU_QUEUE_RING_MAX == MDGPU_HW_QUEUE_RING_MAX, "uapi limit");
_Static_assert(MDGPU_QUEUE_PRIORITY_MAX == MDGPU_HW_QUEUE_PRIORITY_MAX, "uapi limit");
_Static_assert(MDGPU_KERNEL_MAX_SPIRV == MDGPU_HW_KERNEL_MAX_SPIRV, "uapi limit");
_Static_assert(MDGPU_KERNEL_MAX_BINDINGS == MDGPU_HW_KERNEL_MAX_BINDINGS, "uapi limit");
_Static_assert(MDGPU_KERNEL_MAX_PUSH_BYTES == MDGPU_HW_KERNEL_MAX_PUSH_BYTES, "uapi limit");
_Static_assert(MDGPU_FENCE_ERROR == MDGPU_HW_FENCE_ERROR, "uapi limit");
_Static_assert(sizeof(struct mdgpu_queue_control) <= MDGPU_QUEUE_CONTROL_SIZE, "control block");
_Static_assert(MDGPU_BO_CACHED == MDGPU_BO_FLAG_CACHED, "uapi flag");
_Static_assert(MDGPU_KERNEL_DESC_MIN_SIZE == sizeof(struct mdgpu_kernel_desc), "kernel record");
_Static_assert(sizeof(struct mdgpu_caps) == MDGPU_CAPS_SIZE, "capability record");

/* The uAPI layout must not depend on the ABI: no implicit padding anywhere. */
_Static_assert(sizeof(struct mdgpu_info) == 88, "struct mdgpu_info layout");
_Static_assert(offsetof(struct mdgpu_info, aperture_size) == 16, "struct mdgpu_info layout");
_Static_assert(offsetof(struct mdgpu_info, max_buffers) == 64, "struct mdgpu_info layout");
_Static_assert(offsetof(struct mdgpu_info, irq_count) == 80, "struct mdgpu_info layout");
_Static_assert(sizeof(struct mdgpu_bo_create) == 32, "struct mdgpu_bo_create layout");
_Static_assert(offsetof(struct mdgpu_bo_create, handle) == 16, "struct mdgpu_bo_create layout");
_Static_assert(offsetof(struct mdgpu_bo_create, mmap_offset) == 24,
	       "struct mdgpu_bo_create layout");
_Static_assert(sizeof(struct mdgpu_bo_destroy) == 8, "struct mdgpu_bo_destroy layout");
_Static_assert(sizeof(struct mdgpu_window_set) == 16, "struct mdgpu_window_set layout");
_Static_assert(sizeof(struct mdgpu_compute_info) == 104, "struct mdgpu_compute_info layout");
_Static_assert(offsetof(struct mdgpu_compute_info, max_submission) == 16,
	       "struct mdgpu_compute_info layout");
_Static_assert(offsetof(struct mdgpu_compute_info, queues) == 96,
	       "struct mdgpu_compute_info layout");
_Static_assert(sizeof(struct mdgpu_queue_create) == 16, "struct mdgpu_queue_create layout");
_Static_assert(sizeof(struct mdgpu_queue_destroy) == 8, "struct mdgpu_queue_destroy layout");
_Static_assert(sizeof(struct mdgpu_queue_doorbell) == 8, "struct mdgpu_queue_doorbell layout");
_Static_assert(sizeof(struct mdgpu_kernel_create) == 40, "struct mdgpu_kernel_create layout");
_Static_assert(offsetof(struct mdgpu_kernel_create, bindings) == 24,
	       "struct mdgpu_kernel_create layout");
_Static_assert(sizeof(struct mdgpu_kernel_destroy) == 8, "struct mdgpu_kernel_destroy layout");
_Static_assert(sizeof(struct mdgpu_wait_fence) == 40, "struct mdgpu_wait_fence layout");
_Static_assert(offsetof(struct mdgpu_wait_fence, seen) == 32, "struct mdgpu_wait_fence layout");
_Static_assert(sizeof(struct mdgpu_mark) == 8, "struct mdgpu_mark layout");
_Static_assert(sizeof(struct mdgpu_caps_read) == 24, "struct mdgpu_caps_read layout");
_Static_assert(offsetof(struct mdgpu_caps_read, size) == 16, "struct mdgpu_caps_read layout");
_Static_assert(sizeof(struct mdgpu_kernel_create2) == 24, "struct mdgpu_kernel_create2 layout");
_Static_assert(offsetof(struct mdgpu_kernel_create2, kernel) == 20,
	       "struct mdgpu_kernel_create2 layout");

/*
 * An interrupted ioctl is simply made again: the ones that sleep (WAIT_FENCE) update their
 * arguments with the time left before they return -EINTR.
 */
int mdgpu_priv_ioctl(struct mdgpu *dev, unsigned long cmd, void *arg)
{
	int ret;

	do {
		ret = ioctl(dev->fd, cmd, arg);
	} while (ret == -1 && errno == EINTR);
	return ret == -1 ? -errno : 0;
}

uint64_t mdgpu_priv_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int mdgpu_open(const char *path, struct mdgpu **out)
{
	struct mdgpu *dev;
	int err;

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->fence_spin_ns = MDGPU_FENCE_SPIN_DEFAULT_NS;
	dev->fd = open(path ? path : MDGPU_DEFAULT_PATH, O_RDWR | O_CLOEXEC);
	if (dev->fd < 0) {
		err = -errno;
		free(dev);
		return err;
	}
	*out = dev;
	return 0;
}

void mdgpu_close(struct mdgpu *dev)
{
	if (!dev)
		return;
	close(dev->fd);
	free(dev);
}

int mdgpu_fd(const struct mdgpu *dev)
{
	return dev->fd;
}

int mdgpu_get_info(struct mdgpu *dev, struct mdgpu_info *info)
{
	memset(info, 0, sizeof(*info));
	return mdgpu_priv_ioctl(dev, MDGPU_IOCTL_GET_INFO, info);
}

int mdgpu_get_compute_info(struct mdgpu *dev, struct mdgpu_compute_info *info)
{
	memset(info, 0, sizeof(*info));
	return mdgpu_priv_ioctl(dev, MDGPU_IOCTL_GET_COMPUTE_INFO, info);
}

int mdgpu_mark(struct mdgpu *dev, uint32_t value)
{
	struct mdgpu_mark args = { .value = value };

	return mdgpu_priv_ioctl(dev, MDGPU_IOCTL_MARK, &args);
}

int mdgpu_bo_create(struct mdgpu *dev, uint64_t size, uint32_t align_log2, uint32_t flags,
		    struct mdgpu_buffer *bo)
{
	struct mdgpu_bo_create args = {
		.size = size,
		.align_log2 = align_log2,
		.flags = flags,
	};
	int ret;

	ret = mdgpu_priv_ioctl(dev, MDGPU_IOCTL_BO_CREATE, &args);
	if (ret)
		return ret;
	bo->handle = args.handle;
	bo->size = args.size;
	bo->offset = args.mmap_offset;
	bo->map = NULL;
	return 0;
}

int mdgpu_bo_destroy(struct mdgpu *dev, struct mdgpu_buffer *bo)
{
	struct mdgpu_bo_destroy args = { .handle = bo->handle };

	return mdgpu_priv_ioctl(dev, MDGPU_IOCTL_BO_DESTROY, &args);
}

int mdgpu_bo_map(struct mdgpu *dev, struct mdgpu_buffer *bo)
{
	void *p;

	if (bo->map)
		return 0;
	p = mmap(NULL, bo->size, PROT_READ | PROT_WRITE, MAP_SHARED, dev->fd, (off_t)bo->offset);
	if (p == MAP_FAILED)
		return -errno;
	bo->map = p;
	return 0;
}

int mdgpu_bo_unmap(struct mdgpu_buffer *bo)
{
	if (!bo->map)
		return 0;
	if (munmap(bo->map, bo->size))
		return -errno;
	bo->map = NULL;
	return 0;
}

int mdgpu_window_map(struct mdgpu *dev, volatile void **ptr)
{
	void *p;

	p = mmap(NULL, MDGPU_WINDOW_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, dev->fd,
		 MDGPU_MMAP_WINDOW_OFFSET);
	if (p == MAP_FAILED)
		return -errno;
	*ptr = p;
	return 0;
}

int mdgpu_window_unmap(volatile void *ptr)
{
	if (munmap((void *)ptr, MDGPU_WINDOW_SIZE))
		return -errno;
	return 0;
}

int mdgpu_window_set(struct mdgpu *dev, uint64_t offset)
{
	struct mdgpu_window_set args = { .offset = offset };

	return mdgpu_priv_ioctl(dev, MDGPU_IOCTL_WINDOW_SET, &args);
}

int mdgpu_caps_read(struct mdgpu *dev, struct mdgpu_caps *caps)
{
	struct mdgpu_caps_read args = { 0 };
	struct mdgpu_buffer bo;
	int ret, r;

	ret = mdgpu_bo_create(dev, 4096, 0, 0, &bo);
	if (ret)
		return ret;
	args.handle = bo.handle;
	ret = mdgpu_priv_ioctl(dev, MDGPU_IOCTL_CAPS_READ, &args);
	if (!ret)
		ret = mdgpu_bo_map(dev, &bo);
	if (!ret) {
		/* The record's own version and size say what it holds; later ones only append. */
		if (args.size < sizeof(*caps) || args.size > bo.size) {
			ret = -EIO;
		} else {
			memcpy(caps, bo.map, sizeof(*caps));
			if (caps->version < MDGPU_CAPS_VERSION || caps->size < sizeof(*caps))
				ret = -EIO;
		}
		r = mdgpu_bo_unmap(&bo);
		if (!ret)
			ret = r;
	}
	r = mdgpu_bo_destroy(dev, &bo);
	return ret ? ret : r;
}

static const struct {
	int err;
	const char *name;
	const char *msg;
} mdgpu_errors[] = {
	{ EDQUOT, "EDQUOT", "over the VM's device memory quota" },
	{ ENOSPC, "ENOSPC", "no free aperture range of that size and alignment" },
	{ EMFILE, "EMFILE", "too many device contexts or buffers" },
	{ EBUSY, "EBUSY",
	  "busy: the buffer is mapped, holds a queue or is waited on, or another file owns the window" },
	{ ENOENT, "ENOENT", "no such buffer, queue or kernel (or device node)" },
	{ EINVAL, "EINVAL",
	  "invalid argument (size, alignment, flags, padding or offset), or SPIR-V refused" },
	{ EBADFD, "EBADFD", "the device context is gone (device reset)" },
	{ ETIMEDOUT, "ETIMEDOUT", "the device did not answer (or free ring space) in time" },
	{ ETIME, "ETIME", "the fence was not signalled in time" },
	{ E2BIG, "E2BIG", "the submission is larger than the ring or the device's limit" },
	{ ENODEV, "ENODEV", "the device was removed" },
	{ EOPNOTSUPP, "EOPNOTSUPP",
	  "the device does not support this operation (no compute backend)" },
	{ EIO, "EIO",
	  "a submission failed (error fence), or the device answered something unexpected" },
	{ ENOTTY, "ENOTTY", "not an mdgpu device, or an unknown ioctl" },
	{ ENOMEM, "ENOMEM", "out of memory" },
	{ EFAULT, "EFAULT", "bad address" },
	{ EACCES, "EACCES", "permission denied" },
};

int mdgpu_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	if (*end) {
		const char *units = "KMG", *u = strchr(units, *end & ~0x20);
		unsigned int shift;

		if (!u)
			return -EINVAL;
		shift = 10 * (unsigned int)(u - units + 1);
		if (v > (~0ull >> shift))
			return -EINVAL;
		v <<= shift;
		end++;
	}
	if (*end && strcmp(end, "iB") && strcmp(end, "B"))
		return -EINVAL;
	*out = v;
	return 0;
}

const char *mdgpu_strerror(int err)
{
	size_t i;

	if (err < 0)
		err = -err;
	if (err == 0)
		return "success";
	for (i = 0; i < sizeof(mdgpu_errors) / sizeof(mdgpu_errors[0]); i++)
		if (mdgpu_errors[i].err == err)
			return mdgpu_errors[i].msg;
	return strerror(err);
}

const char *mdgpu_errname(int err)
{
	size_t i;

	if (err < 0)
		err = -err;
	if (err == 0)
		return "0";
	for (i = 0; i < sizeof(mdgpu_errors) / sizeof(mdgpu_errors[0]); i++)
		if (mdgpu_errors[i].err == err)
			return mdgpu_errors[i].name;
	return "E?";
}
