// SPDX-License-Identifier: MIT
/*
 * The public entry points of libmdgpu-host: handle tables, reference counts, locking and every
 * argument check, in front of a backend (struct mdgpu_backend_ops).
 *
 * Locking: one global mutex guards the device table and device reference counts; each device
 * has a mutex guarding its objects and submissions, held across backend calls except ->wait().
 * The global mutex is never taken while a device mutex is held.
 *
 * Lifetimes: memory and kernel objects are reference counted: the handle holds one reference
 * and each unfinished submission that uses the object holds one, so destroying a handle while
 * the device still uses the object is safe. A submission record lives from submit until it is
 * collected by poll/wait and no other thread is still waiting on it.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ABI layout checks: the TypeScript binding declares the same layouts (and tests them). */
_Static_assert(sizeof(struct mdgpu_host_cmd) == 40, "mdgpu_host_cmd is 40 bytes");
_Static_assert(offsetof(struct mdgpu_host_cmd, u) == 8, "mdgpu_host_cmd.u at 8");
_Static_assert(sizeof(struct mdgpu_host_cmd_copy) == 32, "copy args are 32 bytes");
_Static_assert(sizeof(struct mdgpu_host_cmd_fill) == 24, "fill args are 24 bytes");
_Static_assert(sizeof(struct mdgpu_host_cmd_dispatch) == 32, "dispatch args are 32 bytes");
_Static_assert(sizeof(struct mdgpu_host_cmd_timestamp) == 16, "timestamp args are 16 bytes");
_Static_assert(sizeof(struct mdgpu_host_binding) == 24, "mdgpu_host_binding is 24 bytes");
_Static_assert(sizeof(struct mdgpu_host_status) == 56, "mdgpu_host_status is 56 bytes");
_Static_assert(sizeof(struct mdgpu_host_memory_info) == 24, "mdgpu_host_memory_info is 24 bytes");
_Static_assert(offsetof(struct mdgpu_host_device_info, index) == 784, "device_info.index at 784");
_Static_assert(offsetof(struct mdgpu_host_device_info, min_import_alignment) == 856,
	       "device_info.min_import_alignment at 856");
_Static_assert(offsetof(struct mdgpu_host_device_info, max_shared_memory_size) == 888,
	       "device_info.max_shared_memory_size at 888");
_Static_assert(sizeof(struct mdgpu_host_device_info) == 992, "mdgpu_host_device_info is 992 bytes");
/* ABI 2.1 */
_Static_assert(sizeof(struct mdgpu_host_caps) == 144, "mdgpu_host_caps is 144 bytes");
_Static_assert(offsetof(struct mdgpu_host_caps, max_memory_allocation_size) == 72,
	       "caps.max_memory_allocation_size at 72");
_Static_assert(sizeof(struct mdgpu_host_spec_entry) == 16, "mdgpu_host_spec_entry is 16 bytes");
_Static_assert(sizeof(struct mdgpu_host_kernel_desc) == 72, "mdgpu_host_kernel_desc is 72 bytes");
_Static_assert(offsetof(struct mdgpu_host_kernel_desc, push_size) == 48,
	       "kernel_desc.push_size at 48");
_Static_assert(sizeof(struct mdgpu_host_kernel_binding) == 16,
	       "mdgpu_host_kernel_binding is 16 bytes");
_Static_assert(sizeof(struct mdgpu_host_kernel_info) == 48, "mdgpu_host_kernel_info is 48 bytes");
_Static_assert(sizeof(struct mdgpu_host_descriptor) == 40, "mdgpu_host_descriptor is 40 bytes");
_Static_assert(sizeof(struct mdgpu_host_cmd_update) == 24, "update args are 24 bytes");
_Static_assert(sizeof(struct mdgpu_host_cmd_dispatch2) == 56, "dispatch2 args are 56 bytes");
_Static_assert(offsetof(struct mdgpu_host_cmd_dispatch2, num_workgroups) == 44,
	       "dispatch2.num_workgroups at 44");
_Static_assert(sizeof(struct mdgpu_host_cmd2) == 64, "mdgpu_host_cmd2 is 64 bytes");
_Static_assert(offsetof(struct mdgpu_host_cmd2, u) == 8, "mdgpu_host_cmd2.u at 8");

/* ---- logging, errors, time ---- */

static _Thread_local char last_error[1024];

static enum mdgpu_log_level log_level(void)
{
	static int level = -1; /* read once; a benign race sets it to the same value */

	if (level < 0) {
		const char *env = getenv("MDGPU_HOST_LOG");

		if (!env || !*env || !strcmp(env, "info"))
			level = MDGPU_LOG_INFO;
		else if (!strcmp(env, "debug"))
			level = MDGPU_LOG_DEBUG;
		else
			level = MDGPU_LOG_ERROR; /* "quiet", "0", "error": errors only */
	}
	return (enum mdgpu_log_level)level;
}

void mdgpu_log(enum mdgpu_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (level > log_level())
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line, so lines from several threads do not interleave. */
	fprintf(stderr, "mdgpu-host: %s\n", line);
}

int mdgpu_error(int code, const char *fmt, ...)
{
	char msg[sizeof(last_error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(last_error, msg, sizeof(msg));
	mdgpu_log(MDGPU_LOG_DEBUG, "error %d: %s", code, msg);
	return code;
}

const char *mdgpu_error_message(void)
{
	return last_error;
}

void mdgpu_error_clear(void)
{
	last_error[0] = '\0';
}

uint64_t mdgpu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- handle tables ---- */

/*
 * A handle is (generation << 20) | (slot + 1): slot 0..2^20-2, generation 1..4095 (bumped on
 * every free of the slot, never 0), so handle 0 is never valid and a stale handle misses.
 */
#define SLOT_BITS 20u
#define SLOT_MAX ((1u << SLOT_BITS) - 1u)
#define GEN_MASK 0xfffu

struct table {
	void **obj;
	uint16_t *gen;
	uint32_t cap;
	uint32_t count;
};

static void *table_get(const struct table *t, uint32_t handle)
{
	uint32_t slot = (handle & SLOT_MAX);
	uint32_t gen = handle >> SLOT_BITS;

	if (slot == 0 || slot > t->cap)
		return NULL;
	slot--;
	if (!t->obj[slot] || t->gen[slot] != gen)
		return NULL;
	return t->obj[slot];
}

static int table_add(struct table *t, void *obj, uint32_t *out)
{
	uint32_t slot;

	for (slot = 0; slot < t->cap; slot++)
		if (!t->obj[slot])
			break;
	if (slot == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 16;
		void **o;
		uint16_t *g;

		if (cap > SLOT_MAX - 1)
			cap = SLOT_MAX - 1;
		if (cap <= t->cap)
			return mdgpu_error(-ENOMEM, "too many handles");
		o = realloc(t->obj, cap * sizeof(*o));
		if (!o)
			return mdgpu_error(-ENOMEM, "out of memory");
		t->obj = o;
		g = realloc(t->gen, cap * sizeof(*g));
		if (!g)
			return mdgpu_error(-ENOMEM, "out of memory");
		t->gen = g;
		for (uint32_t i = t->cap; i < cap; i++) {
			t->obj[i] = NULL;
			t->gen[i] = 1;
		}
		t->cap = cap;
	}
	t->obj[slot] = obj;
	t->count++;
	*out = ((uint32_t)t->gen[slot] << SLOT_BITS) | (slot + 1);
	return 0;
}

static void *table_remove(struct table *t, uint32_t handle)
{
	void *obj = table_get(t, handle);
	uint32_t slot = (handle & SLOT_MAX) - 1;

	if (!obj)
		return NULL;
	t->obj[slot] = NULL;
	t->gen[slot] = (uint16_t)(((t->gen[slot]) & GEN_MASK) % GEN_MASK + 1);
	t->count--;
	return obj;
}

static void table_free(struct table *t)
{
	free(t->obj);
	free(t->gen);
	memset(t, 0, sizeof(*t));
}

/* ---- objects ---- */

struct memory {
	uint32_t refs;
	uint32_t flags; /* MDGPU_HOST_MEMORY_* */
	uint64_t size;
	void *host;
	void *mapping; /* fd imports: our mmap, unmapped on release */
	uint64_t stamp; /* last submission that counted a reference (dedup) */
	struct mdgpu_be_memory *be;
};

/*
 * A kernel's descriptors are numbered in "slots": its bindings sorted by set, then binding,
 * each taking one slot per array element (slot_base[i] is binding i's first).
 */
struct kernel {
	uint32_t refs;
	uint32_t push_size;
	uint32_t flags; /* MDGPU_HOST_KERNEL_*, with MDGPU_HOST_KERNEL_SPLITTABLE */
	/* It reads NumWorkgroups as the device gives it: a dispatch cannot tell it another count. */
	bool nwg_fixed;
	uint32_t local_size[3];
	/* Bindings of DISPATCH (mdgpu_host_submit): n storage buffers at set 0, bindings 0..n-1; -1 other layouts. */
	int32_t legacy_count;
	struct mdgpu_host_kernel_binding *bindings;
	uint32_t *slot_base;
	uint32_t binding_count;
	uint32_t slots;
	uint32_t storage_slots;
	uint32_t uniform_slots;
	uint32_t set_count; /* non-empty descriptor sets */
	uint64_t stamp;
	struct mdgpu_be_kernel *be;
};

struct submission {
	uint64_t id;
	uint32_t waiters; /* threads inside ->wait() on it */
	bool completed;
	bool collected;
	bool staged; /* uses STAGED memory */
	struct mdgpu_host_status status;
	struct mdgpu_be_submission *be; /* NULL once released */
	struct memory **mems; /* references held until completion */
	uint32_t mem_count;
	struct kernel **kernels;
	uint32_t kernel_count;
};

struct device {
	pthread_mutex_t lock;
	uint32_t refs; /* guarded by the global lock */
	uint32_t handle;
	struct mdgpu_feature_set features;
	const struct mdgpu_backend_ops *ops;
	struct mdgpu_be *be;
	struct mdgpu_host_device_info info;
	struct mdgpu_host_caps caps;
	struct table mems;
	struct table kernels;
	struct submission *subs[MDGPU_HOST_MAX_INFLIGHT]; /* uncollected submissions */
	uint64_t next_id;
};

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static struct table devices;

static const struct mdgpu_backend_ops *const backends[] = { &mdgpu_vulkan_ops };

static struct device *device_get(uint32_t handle)
{
	struct device *dev;

	pthread_mutex_lock(&global_lock);
	dev = table_get(&devices, handle);
	if (dev)
		dev->refs++;
	pthread_mutex_unlock(&global_lock);
	return dev;
}

static void memory_put(struct device *dev, struct memory *mem)
{
	if (--mem->refs)
		return;
	dev->ops->memory_release(dev->be, mem->be);
	if (mem->mapping)
		munmap(mem->mapping, mem->size); /* our mapping of an fd import */
	free(mem);
}

static void kernel_put(struct device *dev, struct kernel *k)
{
	if (--k->refs)
		return;
	dev->ops->kernel_release(dev->be, k->be);
	free(k->bindings);
	free(k->slot_base);
	free(k);
}

/* Record completion (device lock held): backend results, then drop the object references. */
static void submission_complete(struct device *dev, struct submission *s, int wait_result)
{
	s->status.submission = s->id;
	s->status.complete_ns = mdgpu_now_ns();
	dev->ops->complete(dev->be, s->be, wait_result, &s->status);
	s->completed = true;
	for (uint32_t i = 0; i < s->mem_count; i++)
		memory_put(dev, s->mems[i]);
	for (uint32_t i = 0; i < s->kernel_count; i++)
		kernel_put(dev, s->kernels[i]);
	s->mem_count = 0;
	s->kernel_count = 0;
}

/* Free a record once it is completed, collected and nobody waits on it (device lock held). */
static void submission_maybe_free(struct device *dev, struct submission *s)
{
	if (!s->completed || !s->collected || s->waiters)
		return;
	if (s->be)
		dev->ops->submission_release(dev->be, s->be);
	free(s->mems);
	free(s->kernels);
	free(s);
}

static void subs_remove(struct device *dev, struct submission *s)
{
	for (uint32_t i = 0; i < MDGPU_HOST_MAX_INFLIGHT; i++)
		if (dev->subs[i] == s)
			dev->subs[i] = NULL;
}

/* Wait for and complete every unfinished submission (device lock held; used rarely). */
static void drain(struct device *dev)
{
	for (uint32_t i = 0; i < MDGPU_HOST_MAX_INFLIGHT; i++) {
		struct submission *s = dev->subs[i];

		if (s && !s->completed)
			submission_complete(dev, s, dev->ops->wait(dev->be, s->be, UINT64_MAX));
	}
}

static void device_free(struct device *dev)
{
	pthread_mutex_lock(&dev->lock);
	drain(dev);
	for (uint32_t i = 0; i < MDGPU_HOST_MAX_INFLIGHT; i++) {
		struct submission *s = dev->subs[i];

		if (s) {
			dev->subs[i] = NULL;
			s->collected = true;
			submission_maybe_free(dev, s);
		}
	}
	for (uint32_t i = 0; i < dev->kernels.cap; i++)
		if (dev->kernels.obj[i])
			kernel_put(dev, dev->kernels.obj[i]);
	for (uint32_t i = 0; i < dev->mems.cap; i++)
		if (dev->mems.obj[i])
			memory_put(dev, dev->mems.obj[i]);
	table_free(&dev->kernels);
	table_free(&dev->mems);
	dev->ops->close(dev->be);
	pthread_mutex_unlock(&dev->lock);
	pthread_mutex_destroy(&dev->lock);
	free(dev);
}

static void device_put(struct device *dev)
{
	bool last;

	pthread_mutex_lock(&global_lock);
	last = --dev->refs == 0;
	pthread_mutex_unlock(&global_lock);
	if (last)
		device_free(dev);
}

/* Every public function starts with a clean last error. */
#define ENTER() (last_error[0] = '\0')

/* ---- public API: version, errors, devices ---- */

MDGPU_HOST_API uint32_t mdgpu_host_abi_version(void)
{
	return MDGPU_HOST_ABI_VERSION;
}

MDGPU_HOST_API const char *mdgpu_host_last_error(void)
{
	return last_error;
}

MDGPU_HOST_API int32_t mdgpu_host_enumerate(uint32_t index, struct mdgpu_host_device_info *info)
{
	ENTER();
	if (!info)
		return mdgpu_error(-EINVAL, "enumerate: info is NULL");
	memset(info, 0, sizeof(*info));
	return backends[0]->enumerate(index, info);
}

MDGPU_HOST_API int32_t mdgpu_host_enumerate_caps(uint32_t index, struct mdgpu_host_caps *caps)
{
	uint32_t size;
	int ret;

	ENTER();
	if (!caps)
		return mdgpu_error(-EINVAL, "enumerate_caps: caps is NULL");
	size = caps->size;
	if (size < sizeof(*caps))
		return mdgpu_error(-EINVAL,
				   "enumerate_caps: caps->size %u is smaller than struct"
				   " mdgpu_host_caps (%zu bytes)",
				   size, sizeof(*caps));
	memset(caps, 0, sizeof(*caps));
	ret = backends[0]->enumerate_caps(index, caps);
	caps->size = sizeof(*caps); /* what the library filled, also on failure */
	return ret;
}

/* For the device banner: how far an out-of-bounds access by a kernel can reach. */
static const char *robustness_text(uint32_t robustness)
{
	switch (robustness) {
	case MDGPU_HOST_ROBUSTNESS_BUFFER_ACCESS_2:
		return "robustBufferAccess2 (out-of-bounds accesses confined to the binding)";
	case MDGPU_HOST_ROBUSTNESS_BUFFER_ACCESS:
		return "robustBufferAccess (out-of-bounds accesses confined to the imported memory)";
	default:
		return "no robust buffer access (out-of-bounds accesses unchecked)";
	}
}

MDGPU_HOST_API int32_t mdgpu_host_device_open(const char *selector, uint32_t flags,
					      uint32_t *out_device)
{
	struct device *dev;
	int ret;

	ENTER();
	if (!out_device)
		return mdgpu_error(-EINVAL, "device_open: out_device is NULL");
	*out_device = 0;
	if (flags & ~MDGPU_HOST_OPEN_CPU_TIMESTAMPS)
		return mdgpu_error(-EINVAL, "device_open: unknown flags 0x%x", flags);
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return mdgpu_error(-ENOMEM, "device_open: out of memory");
	pthread_mutex_init(&dev->lock, NULL);
	dev->ops = backends[0];
	dev->next_id = 1;
	dev->refs = 1; /* the table's reference */
	ret = dev->ops->open(selector, flags, &dev->be, &dev->info, &dev->caps, &dev->features);
	if (ret)
		goto err_free;
	mdgpu_log(MDGPU_LOG_INFO, "device: %s (%s %s, %s %u.%u.%u)%s, %s", dev->info.name,
		  dev->info.driver_name, dev->info.driver_info, dev->info.backend,
		  dev->info.api_version >> 22, (dev->info.api_version >> 12) & 0x3ff,
		  dev->info.api_version & 0xfff,
		  (dev->info.flags & MDGPU_HOST_DEVICE_HOST_IMPORT) ?
			  ", zero-copy host memory import" :
			  ", no host memory import (staged copies)",
		  robustness_text(dev->info.robustness));
	pthread_mutex_lock(&global_lock);
	ret = table_add(&devices, dev, &dev->handle);
	pthread_mutex_unlock(&global_lock);
	if (ret) {
		dev->ops->close(dev->be);
		goto err_free;
	}
	*out_device = dev->handle;
	return 0;

err_free:
	pthread_mutex_destroy(&dev->lock);
	free(dev);
	return ret;
}

MDGPU_HOST_API int32_t mdgpu_host_device_info(uint32_t device, struct mdgpu_host_device_info *info)
{
	struct device *dev;

	ENTER();
	if (!info)
		return mdgpu_error(-EINVAL, "device_info: info is NULL");
	dev = device_get(device);
	if (!dev)
		return mdgpu_error(-ENOENT, "device_info: no device 0x%x", device);
	*info = dev->info; /* immutable after open */
	device_put(dev);
	return 0;
}

MDGPU_HOST_API int32_t mdgpu_host_device_destroy(uint32_t device)
{
	struct device *dev;

	ENTER();
	pthread_mutex_lock(&global_lock);
	dev = table_remove(&devices, device);
	pthread_mutex_unlock(&global_lock);
	if (!dev)
		return mdgpu_error(-ENOENT, "device_destroy: no device 0x%x", device);
	device_put(dev); /* the table's reference; freed now or by the last caller inside */
	return 0;
}

/* ---- memory ---- */

static int memory_add(struct device *dev, void *host, void *mapping, uint64_t size, uint32_t flags,
		      uint32_t *out_mem)
{
	struct memory *mem;
	uint32_t be_flags = 0;
	int ret;

	mem = calloc(1, sizeof(*mem));
	if (!mem)
		return mdgpu_error(-ENOMEM, "memory_import: out of memory");
	mem->refs = 1;
	mem->size = size;
	mem->host = host;
	pthread_mutex_lock(&dev->lock);
	ret = dev->ops->memory_import(dev->be, host, size, flags, &mem->be, &be_flags);
	if (ret)
		goto err_unlock;
	mem->flags = be_flags | (mapping ? MDGPU_HOST_MEMORY_FD_MAPPED : 0);
	mem->mapping = mapping;
	ret = table_add(&dev->mems, mem, out_mem);
	if (ret) {
		dev->ops->memory_release(dev->be, mem->be);
		goto err_unlock;
	}
	pthread_mutex_unlock(&dev->lock);
	return 0;

err_unlock:
	pthread_mutex_unlock(&dev->lock);
	free(mem);
	return ret;
}

static int memory_check_args(struct device *dev, uint64_t size, uint32_t flags, uint32_t *out_mem)
{
	if (!out_mem)
		return mdgpu_error(-EINVAL, "memory_import: out_mem is NULL");
	*out_mem = 0;
	if (flags & ~MDGPU_HOST_MEMORY_STAGED)
		return mdgpu_error(-EINVAL, "memory_import: unknown flags 0x%x", flags);
	if (size == 0)
		return mdgpu_error(-EINVAL, "memory_import: size is 0");
	if (dev->info.max_memory_size && size > dev->info.max_memory_size)
		return mdgpu_error(-E2BIG,
				   "memory_import: size %" PRIu64 " > device maximum %" PRIu64,
				   size, dev->info.max_memory_size);
	return 0;
}

MDGPU_HOST_API int32_t mdgpu_host_memory_import(uint32_t device, void *ptr, uint64_t size,
						uint32_t flags, uint32_t *out_mem)
{
	struct device *dev;
	int ret;

	ENTER();
	dev = device_get(device);
	if (!dev)
		return mdgpu_error(-ENOENT, "memory_import: no device 0x%x", device);
	ret = memory_check_args(dev, size, flags, out_mem);
	if (!ret && !ptr)
		ret = mdgpu_error(-EINVAL, "memory_import: ptr is NULL");
	if (!ret)
		ret = memory_add(dev, ptr, NULL, size, flags, out_mem);
	device_put(dev);
	return ret;
}

MDGPU_HOST_API int32_t mdgpu_host_memory_import_fd(uint32_t device, int32_t fd, uint64_t offset,
						   uint64_t size, uint32_t flags, uint32_t *out_mem)
{
	long page = sysconf(_SC_PAGESIZE);
	struct device *dev;
	void *map;
	int ret;

	ENTER();
	dev = device_get(device);
	if (!dev)
		return mdgpu_error(-ENOENT, "memory_import_fd: no device 0x%x", device);
	ret = memory_check_args(dev, size, flags, out_mem);
	if (ret)
		goto out;
	if (fd < 0) {
		ret = mdgpu_error(-EBADF, "memory_import_fd: fd %d", fd);
		goto out;
	}
	if (offset % (uint64_t)page || offset > INT64_MAX || size > SIZE_MAX) {
		ret = mdgpu_error(-EINVAL,
				  "memory_import_fd: offset 0x%" PRIx64
				  " not a multiple of the page size",
				  offset);
		goto out;
	}
	/*
	 * mmap MAP_SHARED: the library needs its own address for the file's pages to hand to
	 * the device (zero copy) or to stage from; the mapping keeps the file alive after the
	 * caller closes fd. Pages past the end of the file would fault (SIGBUS), so check first.
	 */
	{
		struct stat st;

		if (fstat(fd, &st) < 0) {
			ret = mdgpu_error(-errno, "memory_import_fd: fstat fd %d: %s", fd,
					  strerror(errno));
			goto out;
		}
		if (st.st_size < 0 || (uint64_t)st.st_size < offset ||
		    (uint64_t)st.st_size - offset < size) {
			ret = mdgpu_error(-EINVAL,
					  "memory_import_fd: 0x%" PRIx64 "+0x%" PRIx64
					  " is past the end of the file (0x%" PRIx64 ")",
					  offset, size, (uint64_t)st.st_size);
			goto out;
		}
	}
	map = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
	if (map == MAP_FAILED) {
		ret = mdgpu_error(-errno, "memory_import_fd: mmap: %s", strerror(errno));
		goto out;
	}
	ret = memory_add(dev, map, map, size, flags, out_mem);
	if (ret)
		munmap(map, (size_t)size);
out:
	device_put(dev);
	return ret;
}

MDGPU_HOST_API int32_t mdgpu_host_memory_info(uint32_t device, uint32_t mem,
					      struct mdgpu_host_memory_info *info)
{
	struct device *dev;
	struct memory *m;
	int ret = 0;

	ENTER();
	if (!info)
		return mdgpu_error(-EINVAL, "memory_info: info is NULL");
	dev = device_get(device);
	if (!dev)
		return mdgpu_error(-ENOENT, "memory_info: no device 0x%x", device);
	pthread_mutex_lock(&dev->lock);
	m = table_get(&dev->mems, mem);
	if (m) {
		memset(info, 0, sizeof(*info));
		info->size = m->size;
		info->host_address = (uint64_t)(uintptr_t)m->host;
		info->flags = m->flags;
	} else {
		ret = mdgpu_error(-ENOENT, "memory_info: no memory 0x%x", mem);
	}
	pthread_mutex_unlock(&dev->lock);
	device_put(dev);
	return ret;
}

MDGPU_HOST_API int32_t mdgpu_host_memory_destroy(uint32_t device, uint32_t mem)
{
	struct device *dev;
	struct memory *m;

	ENTER();
	dev = device_get(device);
	if (!dev)
		return mdgpu_error(-ENOENT, "memory_destroy: no device 0x%x", device);
	pthread_mutex_lock(&dev->lock);
	m = table_remove(&dev->mems, mem);
	if (m)
		memory_put(dev, m);
	pthread_mutex_unlock(&dev->lock);
	device_put(dev);
	return m ? 0 : mdgpu_error(-ENOENT, "memory_destroy: no memory 0x%x", mem);
}

/* ---- kernels ---- */

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static int spec_cmp(const void *a, const void *b)
{
	const struct mdgpu_host_spec_entry *x = a, *y = b;

	return x->constant_id < y->constant_id ? -1 : x->constant_id > y->constant_id;
}

/*
 * Check the caller's specialization (before anything reads the data through it) and sort a
 * copy of its entries by id into @sorted (MDGPU_HOST_MAX_SPEC_ENTRIES of them).
 */
static int spec_check(const struct mdgpu_host_kernel_desc *d, struct mdgpu_host_spec_entry *sorted,
		      struct mdgpu_spec *spec)
{
	if (d->spec_entry_count > MDGPU_HOST_MAX_SPEC_ENTRIES ||
	    d->spec_data_size > MDGPU_HOST_MAX_SPEC_DATA)
		return mdgpu_error(-E2BIG,
				   "kernel_create: %u specialization constants and %u bytes of"
				   " data; at most %u and %u",
				   d->spec_entry_count, d->spec_data_size,
				   MDGPU_HOST_MAX_SPEC_ENTRIES, MDGPU_HOST_MAX_SPEC_DATA);
	if ((d->spec_entry_count && !d->spec_entries) || (d->spec_data_size && !d->spec_data))
		return mdgpu_error(-EINVAL, "kernel_create: NULL specialization entries or data"
					    " with a nonzero count");
	for (uint32_t i = 0; i < d->spec_entry_count; i++) {
		const struct mdgpu_host_spec_entry *e = &d->spec_entries[i];

		if (e->pad)
			return mdgpu_error(-EINVAL,
					   "kernel_create: specialization entry %u: pad must be 0",
					   i);
		if (e->size != 1 && e->size != 2 && e->size != 4 && e->size != 8)
			return mdgpu_error(-EINVAL,
					   "kernel_create: specialization entry %u: size %u is not"
					   " 1, 2, 4 or 8",
					   i, e->size);
		/* offset + size inside the data; size <= 8, so the sum cannot overflow. */
		if (e->offset > d->spec_data_size || e->size > d->spec_data_size - e->offset)
			return mdgpu_error(-EINVAL,
					   "kernel_create: specialization entry %u: %u+%u is"
					   " outside the %u bytes of data",
					   i, e->offset, e->size, d->spec_data_size);
		sorted[i] = *e;
	}
	qsort(sorted, d->spec_entry_count, sizeof(*sorted), spec_cmp);
	for (uint32_t i = 1; i < d->spec_entry_count; i++)
		if (sorted[i].constant_id == sorted[i - 1].constant_id)
			return mdgpu_error(-EINVAL,
					   "kernel_create: specialization constant %u is given"
					   " twice",
					   sorted[i].constant_id);
	*spec = (struct mdgpu_spec){ sorted, d->spec_entry_count, d->spec_data, d->spec_data_size };
	return 0;
}

/* The slots of a new kernel's bindings, and what DISPATCH (ABI 2.0) can bind of them. */
static void kernel_slots(struct kernel *k)
{
	bool legacy = true;
	uint32_t last_set = UINT32_MAX;

	for (uint32_t i = 0; i < k->binding_count; i++) {
		const struct mdgpu_host_kernel_binding *b = &k->bindings[i];

		k->slot_base[i] = k->slots;
		k->slots += b->count;
		if (b->type == MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER)
			k->storage_slots += b->count;
		else
			k->uniform_slots += b->count;
		if (b->set != last_set)
			k->set_count++;
		last_set = b->set;
		legacy &= b->set == 0 && b->binding == i && b->count == 1 &&
			  b->type == MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER;
	}
	k->legacy_count = legacy ? (int32_t)k->binding_count : -1;
}

/*
 * A kernel that may be dispatched with a base may be run in ranges of its workgroups (struct
 * mdgpu_host_cmd_dispatch2): if it reads NumWorkgroups, rewrite it to read the value from 12
 * bytes of push constants past its own (spirv-rewrite.c), and check the result again. Where
 * there is no room for them, or the rewrite does not apply or does not validate, the kernel
 * is built as it is and reads NumWorkgroups as the device gives it (*@fixed). *@out is the
 * rewritten module or NULL; only running out of memory fails.
 */
static int supply_num_workgroups(struct device *dev, const uint32_t *words, uint32_t word_count,
				 const char *entry, uint32_t push_size, uint32_t **out,
				 uint32_t *out_count, uint32_t *offset, bool *fixed)
{
	uint32_t at = (push_size + 15) & ~15u;
	const char *why = NULL;
	int ret;

	ret = mdgpu_spirv_supply_num_workgroups(words, word_count, entry, at, out, out_count, &why);
	if (ret == -ENOMEM)
		return mdgpu_error(-ENOMEM, "kernel_create: out of memory");
	if (ret == 0)
		return 0;
	*fixed = true;
	if (ret < 0) {
		mdgpu_log(MDGPU_LOG_DEBUG, "kernel reads NumWorkgroups and is not split: %s", why);
		return 0;
	}
	if (at + MDGPU_NWG_SIZE > dev->info.max_push_constant_size) {
		why = "no room in push constants";
	} else if (mdgpu_spirv_validate(*out, *out_count, dev->info.api_version)) {
		why = mdgpu_error_message();
	} else {
		*offset = at;
		*fixed = false;
		return 0;
	}
	mdgpu_log(MDGPU_LOG_DEBUG, "kernel reads NumWorkgroups and is not split: %s", why);
	last_error[0] = '\0'; /* not a failure of the call */
	free(*out);
	*out = NULL;
	*out_count = 0;
	return 0;
}

/*
 * Check, reflect and build a kernel (mdgpu_host_kernel_create and _create2). @entry NULL: the
 * module's only GLCompute entry point.
 */
static int kernel_build(uint32_t device, const uint32_t *words, uint32_t word_count,
			const char *entry, const struct mdgpu_spec *spec, int32_t legacy_bindings,
			uint32_t push_size, uint32_t flags, uint32_t *out_kernel)
{
	struct mdgpu_kernel_iface iface;
	struct mdgpu_kernel_limits lim;
	struct mdgpu_kernel_layout layout;
	struct device *dev;
	struct kernel *k = NULL;
	uint32_t *rewritten = NULL, rewritten_count = 0, nwg_offset = MDGPU_NWG_NONE;
	bool nwg_fixed = false;
	int ret;

	dev = device_get(device);
	if (!dev)
		return mdgpu_error(-ENOENT, "kernel_create: no device 0x%x", device);
	if (!words || word_count == 0) {
		ret = mdgpu_error(-EINVAL, "kernel_create: no SPIR-V");
		goto out;
	}
	if (word_count > MDGPU_HOST_MAX_SPIRV_WORDS) {
		ret = mdgpu_error(-E2BIG, "kernel_create: %u SPIR-V words > %u", word_count,
				  MDGPU_HOST_MAX_SPIRV_WORDS);
		goto out;
	}
	if (legacy_bindings > (int32_t)dev->info.max_bindings) {
		ret = mdgpu_error(-E2BIG, "kernel_create: %d bindings > %u", legacy_bindings,
				  dev->info.max_bindings);
		goto out;
	}
	if (push_size % 4 || push_size > dev->info.max_push_constant_size) {
		ret = mdgpu_error(-EINVAL,
				  "kernel_create: push-constant size %u is not a multiple"
				  " of 4 up to %u",
				  push_size, dev->info.max_push_constant_size);
		goto out;
	}
	/*
	 * Checking and compiling run without the device lock: they are the slow part (up to
	 * seconds for a large module), touch no shared state (dev->info, dev->caps and
	 * dev->features are immutable after open, and the backend builds a new object), and the
	 * device reference taken above keeps the device alive. The lock is taken only to publish
	 * the handle.
	 */
	lim = (struct mdgpu_kernel_limits){
		.legacy_bindings = legacy_bindings,
		.push_constant_size = push_size,
		.api_version = dev->info.api_version,
		.features = dev->features,
		.max_shared_memory_size = dev->info.max_shared_memory_size,
		.max_workgroup_size = { dev->info.max_workgroup_size[0],
					dev->info.max_workgroup_size[1],
					dev->info.max_workgroup_size[2] },
		.max_workgroup_invocations = dev->info.max_workgroup_invocations,
		.max_sets = dev->caps.max_bound_descriptor_sets,
		.max_storage = min_u32(dev->caps.max_per_stage_storage_buffers,
				       dev->caps.max_set_storage_buffers),
		.max_uniform = min_u32(dev->caps.max_per_stage_uniform_buffers,
				       dev->caps.max_set_uniform_buffers),
		.max_resources = dev->features.max_per_stage_resources,
	};
	ret = mdgpu_spirv_check(words, word_count, &lim, entry, spec, &iface);
	if (ret)
		goto out;
	if (flags & MDGPU_HOST_KERNEL_DISPATCH_BASE) {
		ret = supply_num_workgroups(dev, words, word_count, iface.entry, push_size,
					    &rewritten, &rewritten_count, &nwg_offset, &nwg_fixed);
		if (ret) {
			free(iface.bindings);
			goto out;
		}
		if (rewritten) {
			words = rewritten;
			word_count = rewritten_count;
		}
	}
	k = calloc(1, sizeof(*k));
	if (k)
		k->slot_base = calloc(iface.binding_count ? iface.binding_count : 1,
				      sizeof(*k->slot_base));
	if (!k || !k->slot_base) {
		free(iface.bindings);
		if (k)
			free(k);
		ret = mdgpu_error(-ENOMEM, "kernel_create: out of memory");
		goto out;
	}
	k->refs = 1;
	k->push_size = push_size;
	k->flags = flags;
	k->nwg_fixed = nwg_fixed;
	if ((flags & MDGPU_HOST_KERNEL_DISPATCH_BASE) && !nwg_fixed)
		k->flags |= MDGPU_HOST_KERNEL_SPLITTABLE;
	memcpy(k->local_size, iface.local_size, sizeof(k->local_size));
	k->bindings = iface.bindings;
	k->binding_count = iface.binding_count;
	kernel_slots(k);
	if (k->slots > 2 * MDGPU_HOST_MAX_STAGE_DESCRIPTORS) { /* the limits above prevent it */
		ret = mdgpu_error(-E2BIG, "kernel_create: %u descriptors", k->slots);
		free(k->bindings);
		free(k->slot_base);
		free(k);
		goto out;
	}
	layout = (struct mdgpu_kernel_layout){
		.bindings = k->bindings,
		.binding_count = k->binding_count,
		.set_count = k->binding_count ? k->bindings[k->binding_count - 1].set + 1 : 0,
		.push_size = push_size,
		.flags = flags,
		.nwg_offset = nwg_offset,
		.entry = iface.entry,
		.spec = spec,
	};
	ret = dev->ops->kernel_create(dev->be, words, word_count, &layout, &k->be);
	if (ret) {
		free(k->bindings);
		free(k->slot_base);
		free(k);
		goto out;
	}
	pthread_mutex_lock(&dev->lock);
	ret = table_add(&dev->kernels, k, out_kernel);
	if (ret)
		kernel_put(dev, k);
	pthread_mutex_unlock(&dev->lock);
out:
	free(rewritten);
	device_put(dev);
	return ret;
}

MDGPU_HOST_API int32_t mdgpu_host_kernel_create(uint32_t device, const uint32_t *words,
						uint32_t word_count, uint32_t binding_count,
						uint32_t push_constant_size, uint32_t *out_kernel)
{
	ENTER();
	if (!out_kernel)
		return mdgpu_error(-EINVAL, "kernel_create: out_kernel is NULL");
	*out_kernel = 0;
	if (binding_count > MDGPU_HOST_MAX_BINDINGS)
		return mdgpu_error(-E2BIG, "kernel_create: %u bindings > %u", binding_count,
				   MDGPU_HOST_MAX_BINDINGS);
	return kernel_build(device, words, word_count, NULL, NULL, (int32_t)binding_count,
			    push_constant_size, 0, out_kernel);
}

MDGPU_HOST_API int32_t mdgpu_host_kernel_create_errbuf(uint32_t device, const uint32_t *words,
						       uint32_t word_count, uint32_t binding_count,
						       uint32_t push_constant_size,
						       uint32_t *out_kernel, char *error,
						       uint32_t error_size)
{
	int32_t ret = mdgpu_host_kernel_create(device, words, word_count, binding_count,
					       push_constant_size, out_kernel);

	if (error && error_size)
		snprintf(error, error_size, "%s", last_error);
	return ret;
}

static int kernel_create2(uint32_t device, const struct mdgpu_host_kernel_desc *d,
			  uint32_t *out_kernel)
{
	struct mdgpu_host_spec_entry sorted[MDGPU_HOST_MAX_SPEC_ENTRIES];
	struct mdgpu_spec spec;
	const char *entry = "main";
	int ret;

	if (!out_kernel)
		return mdgpu_error(-EINVAL, "kernel_create: out_kernel is NULL");
	*out_kernel = 0;
	if (!d)
		return mdgpu_error(-EINVAL, "kernel_create: desc is NULL");
	if (d->flags & ~MDGPU_HOST_KERNEL_DISPATCH_BASE)
		return mdgpu_error(-EINVAL, "kernel_create: unknown flags 0x%x", d->flags);
	for (uint32_t i = 0; i < sizeof(d->reserved) / sizeof(d->reserved[0]); i++)
		if (d->reserved[i])
			return mdgpu_error(-EINVAL, "kernel_create: reserved fields must be 0");
	if (d->legacy_bindings < -1)
		return mdgpu_error(-EINVAL, "kernel_create: legacy_bindings %d (-1 or a count)",
				   d->legacy_bindings);
	if (d->legacy_bindings > (int32_t)MDGPU_HOST_MAX_BINDINGS)
		return mdgpu_error(-E2BIG, "kernel_create: %d bindings > %u", d->legacy_bindings,
				   MDGPU_HOST_MAX_BINDINGS);
	if (d->entry) {
		if (strnlen(d->entry, MDGPU_HOST_MAX_ENTRY_NAME + 1) > MDGPU_HOST_MAX_ENTRY_NAME)
			return mdgpu_error(-EINVAL,
					   "kernel_create: entry point name longer than %u bytes",
					   MDGPU_HOST_MAX_ENTRY_NAME);
		entry = d->entry;
	}
	ret = spec_check(d, sorted, &spec);
	if (ret)
		return ret;
	return kernel_build(device, d->words, d->word_count, entry, &spec, d->legacy_bindings,
			    d->push_size, d->flags, out_kernel);
}

MDGPU_HOST_API int32_t mdgpu_host_kernel_create2(uint32_t device,
						 const struct mdgpu_host_kernel_desc *desc,
						 uint32_t *out_kernel, char *error,
						 uint32_t error_size)
{
	int32_t ret;

	ENTER();
	ret = kernel_create2(device, desc, out_kernel);
	if (error && error_size)
		snprintf(error, error_size, "%s", last_error);
	return ret;
}

MDGPU_HOST_API int32_t mdgpu_host_kernel_info(uint32_t device, uint32_t kernel,
					      struct mdgpu_host_kernel_info *info,
					      struct mdgpu_host_kernel_binding *bindings,
					      uint32_t capacity)
{
	struct device *dev;
	struct kernel *k;

	ENTER();
	if (!info || (capacity && !bindings))
		return mdgpu_error(-EINVAL, "kernel_info: info is NULL, or bindings with a"
					    " nonzero capacity");
	dev = device_get(device);
	if (!dev)
		return mdgpu_error(-ENOENT, "kernel_info: no device 0x%x", device);
	pthread_mutex_lock(&dev->lock);
	k = table_get(&dev->kernels, kernel);
	if (k) {
		memset(info, 0, sizeof(*info));
		info->binding_count = k->binding_count;
		memcpy(info->local_size, k->local_size, sizeof(info->local_size));
		info->push_size = k->push_size;
		info->flags = k->flags;
		if (capacity && k->binding_count)
			memcpy(bindings, k->bindings,
			       sizeof(*bindings) * min_u32(capacity, k->binding_count));
	}
	pthread_mutex_unlock(&dev->lock);
	device_put(dev);
	return k ? 0 : mdgpu_error(-ENOENT, "kernel_info: no kernel 0x%x", kernel);
}

MDGPU_HOST_API int32_t mdgpu_host_kernel_destroy(uint32_t device, uint32_t kernel)
{
	struct device *dev;
	struct kernel *k;

	ENTER();
	dev = device_get(device);
	if (!dev)
		return mdgpu_error(-ENOENT, "kernel_destroy: no device 0x%x", device);
	pthread_mutex_lock(&dev->lock);
	k = table_remove(&dev->kernels, kernel);
	if (k)
		kernel_put(dev, k);
	pthread_mutex_unlock(&dev->lock);
	device_put(dev);
	return k ? 0 : mdgpu_error(-ENOENT, "kernel_destroy: no kernel 0x%x", kernel);
}

/* ---- submission ---- */

/* offset + size inside a memory of mem_size bytes, without overflow; size > 0. */
static bool range_ok(uint64_t offset, uint64_t size, uint64_t mem_size)
{
	return size > 0 && offset <= mem_size && size <= mem_size - offset;
}

/*
 * One submission being checked (device lock held). Objects seen are stamped with the
 * submission's id so that each is referenced once; descriptors resolved go to @descs.
 */
struct submit_ctx {
	const char *fn;
	struct device *dev;
	struct submission *sub;
	uint64_t stamp;
	bool staged;
	struct mdgpu_job *job;
	struct mdgpu_job_cmd *cmds; /* job->cmd_count of them so far */
	struct mdgpu_job_desc *descs;
	uint32_t desc_count;
	/* A dispatch's slots already given: seen[slot] == seen_stamp (duplicates). */
	uint32_t seen[2 * MDGPU_HOST_MAX_STAGE_DESCRIPTORS];
	uint32_t seen_stamp;
};

static int ref_memory(struct submit_ctx *c, uint32_t handle, uint64_t offset, uint64_t size,
		      const char *what, uint32_t i, struct memory **out)
{
	struct memory *m = table_get(&c->dev->mems, handle);

	if (!m)
		return mdgpu_error(-ENOENT, "%s: command %u: %s: no memory 0x%x", c->fn, i, what,
				   handle);
	if (!range_ok(offset, size, m->size))
		return mdgpu_error(-EINVAL,
				   "%s: command %u: %s: range 0x%" PRIx64 "+0x%" PRIx64
				   " outside memory 0x%x of 0x%" PRIx64 " bytes",
				   c->fn, i, what, offset, size, handle, m->size);
	if (m->stamp != c->stamp) {
		m->stamp = c->stamp;
		c->sub->mems[c->sub->mem_count++] = m;
		if (m->flags & MDGPU_HOST_MEMORY_STAGED)
			c->staged = true;
	}
	*out = m;
	return 0;
}

static int check_copy(struct submit_ctx *c, uint32_t i, const struct mdgpu_host_cmd_copy *a)
{
	struct mdgpu_job_cmd *jc = &c->cmds[c->job->cmd_count];
	struct memory *m0, *m1;
	int ret;

	ret = ref_memory(c, a->src_mem, a->src_offset, a->size, "COPY source", i, &m0);
	if (!ret)
		ret = ref_memory(c, a->dst_mem, a->dst_offset, a->size, "COPY destination", i, &m1);
	if (ret)
		return ret;
	/* Both ranges are inside one memory here, so no sum overflows. */
	if (m0 == m1 && a->src_offset < a->dst_offset + a->size &&
	    a->dst_offset < a->src_offset + a->size)
		return mdgpu_error(-EINVAL, "%s: command %u: COPY ranges overlap", c->fn, i);
	*jc = (struct mdgpu_job_cmd){ .op = MDGPU_HOST_OP_COPY,
				      .mem = { m0->be, m1->be },
				      .offset = { a->src_offset, a->dst_offset },
				      .size = a->size };
	c->job->cmd_count++;
	return 0;
}

static int check_fill(struct submit_ctx *c, uint32_t i, const struct mdgpu_host_cmd_fill *a)
{
	struct mdgpu_job_cmd *jc = &c->cmds[c->job->cmd_count];
	struct memory *m;
	int ret;

	if (a->offset % 4 || a->size % 4)
		return mdgpu_error(-EINVAL,
				   "%s: command %u: FILL offset 0x%" PRIx64 " and size 0x%" PRIx64
				   " must be multiples of 4",
				   c->fn, i, a->offset, a->size);
	ret = ref_memory(c, a->mem, a->offset, a->size, "FILL", i, &m);
	if (ret)
		return ret;
	*jc = (struct mdgpu_job_cmd){ .op = MDGPU_HOST_OP_FILL,
				      .mem = { m->be },
				      .offset = { a->offset },
				      .size = a->size,
				      .value = a->value };
	c->job->cmd_count++;
	return 0;
}

static int check_timestamp(struct submit_ctx *c, uint32_t i,
			   const struct mdgpu_host_cmd_timestamp *a)
{
	struct mdgpu_job_cmd *jc = &c->cmds[c->job->cmd_count];
	struct memory *m;
	int ret;

	if (!(c->dev->info.flags & MDGPU_HOST_DEVICE_TIMESTAMPS))
		return mdgpu_error(-ENOTSUP,
				   "%s: command %u: TIMESTAMP: the device has no timestamps", c->fn,
				   i);
	if (a->pad || a->offset % 8)
		return mdgpu_error(-EINVAL,
				   "%s: command %u: TIMESTAMP offset 0x%" PRIx64
				   " must be a multiple of 8 (and pad 0)",
				   c->fn, i, a->offset);
	ret = ref_memory(c, a->mem, a->offset, 8, "TIMESTAMP", i, &m);
	if (ret)
		return ret;
	*jc = (struct mdgpu_job_cmd){ .op = MDGPU_HOST_OP_TIMESTAMP,
				      .mem = { m->be },
				      .offset = { a->offset } };
	c->job->cmd_count++;
	c->job->timestamp_count++;
	return 0;
}

static int check_update(struct submit_ctx *c, uint32_t i, const struct mdgpu_host_cmd_update *a,
			const uint8_t *data, uint32_t data_size)
{
	struct mdgpu_job_cmd *jc = &c->cmds[c->job->cmd_count];
	struct memory *m;
	int ret;

	if (a->pad)
		return mdgpu_error(-EINVAL, "%s: command %u: UPDATE pad must be 0", c->fn, i);
	if (a->offset % 4 || a->size % 4 || a->size == 0)
		return mdgpu_error(-EINVAL,
				   "%s: command %u: UPDATE offset 0x%" PRIx64
				   " and size %u must be multiples of 4, the size not 0",
				   c->fn, i, a->offset, a->size);
	if (a->size > MDGPU_HOST_MAX_UPDATE)
		return mdgpu_error(-E2BIG, "%s: command %u: UPDATE of %u bytes > %u", c->fn, i,
				   a->size, MDGPU_HOST_MAX_UPDATE);
	if ((uint64_t)a->data_offset + a->size > data_size)
		return mdgpu_error(-EINVAL,
				   "%s: command %u: UPDATE data at %u+%u past the %u bytes given",
				   c->fn, i, a->data_offset, a->size, data_size);
	ret = ref_memory(c, a->mem, a->offset, a->size, "UPDATE", i, &m);
	if (ret)
		return ret;
	*jc = (struct mdgpu_job_cmd){ .op = MDGPU_HOST_OP_UPDATE,
				      .mem = { m->be },
				      .offset = { a->offset },
				      .size = a->size,
				      .data = data + a->data_offset };
	c->job->cmd_count++;
	return 0;
}

/*
 * What DISPATCH and DISPATCH2 share: the kernel, its push constants, the grid. Fills the job
 * command (not yet counted: check_dispatch_end() does once the descriptors are checked).
 */
static int check_dispatch_start(struct submit_ctx *c, uint32_t i, uint32_t kernel,
				uint32_t push_offset, uint32_t push_size, const uint8_t *data,
				uint32_t data_size, const uint32_t base[3],
				const uint32_t groups[3], const uint32_t num_workgroups[3],
				struct kernel **out)
{
	bool whole = !num_workgroups[0] && !num_workgroups[1] && !num_workgroups[2];
	const struct mdgpu_host_device_info *info = &c->dev->info;
	struct mdgpu_job_cmd *jc = &c->cmds[c->job->cmd_count];
	struct kernel *k = table_get(&c->dev->kernels, kernel);

	if (!k)
		return mdgpu_error(-ENOENT, "%s: command %u: no kernel 0x%x", c->fn, i, kernel);
	if (push_size != k->push_size)
		return mdgpu_error(-EINVAL,
				   "%s: command %u: %u bytes of push constants for a kernel of %u",
				   c->fn, i, push_size, k->push_size);
	if ((uint64_t)push_offset + push_size > data_size)
		return mdgpu_error(
			-EINVAL, "%s: command %u: push constants at %u+%u past the %u bytes given",
			c->fn, i, push_offset, push_size, data_size);
	if ((base[0] || base[1] || base[2]) && !(k->flags & MDGPU_HOST_KERNEL_DISPATCH_BASE))
		return mdgpu_error(-EINVAL,
				   "%s: command %u: base %u,%u,%u for a kernel made without"
				   " MDGPU_HOST_KERNEL_DISPATCH_BASE",
				   c->fn, i, base[0], base[1], base[2]);
	for (int d = 0; d < 3; d++)
		if ((uint64_t)base[d] + groups[d] > info->max_workgroup_count[d] ||
		    base[d] >= info->max_workgroup_count[d])
			return mdgpu_error(
				-E2BIG,
				"%s: command %u: workgroups %u..%u+%u x %u..%u+%u x"
				" %u..%u+%u over the device's %ux%ux%u",
				c->fn, i, base[0], base[0], groups[0], base[1], base[1], groups[1],
				base[2], base[2], groups[2], info->max_workgroup_count[0],
				info->max_workgroup_count[1], info->max_workgroup_count[2]);
	for (int d = 0; d < 3 && !whole; d++)
		if (!num_workgroups[d] || num_workgroups[d] > info->max_workgroup_count[d])
			return mdgpu_error(
				-EINVAL,
				"%s: command %u: num_workgroups %u,%u,%u: 0,0,0 or 1..%u,"
				" 1..%u, 1..%u",
				c->fn, i, num_workgroups[0], num_workgroups[1], num_workgroups[2],
				info->max_workgroup_count[0], info->max_workgroup_count[1],
				info->max_workgroup_count[2]);
	if (!whole && k->nwg_fixed &&
	    (num_workgroups[0] != groups[0] || num_workgroups[1] != groups[1] ||
	     num_workgroups[2] != groups[2]))
		return mdgpu_error(-EINVAL,
				   "%s: command %u: num_workgroups for kernel 0x%x, which reads"
				   " NumWorkgroups and is not MDGPU_HOST_KERNEL_SPLITTABLE",
				   c->fn, i, kernel);
	if (k->stamp != c->stamp) {
		k->stamp = c->stamp;
		c->sub->kernels[c->sub->kernel_count++] = k;
	}
	*jc = (struct mdgpu_job_cmd){
		.op = MDGPU_HOST_OP_DISPATCH2,
		.data = data ? data + push_offset : NULL,
		.kernel = k->be,
		.descs = c->descs + c->desc_count,
		.base = { base[0], base[1], base[2] },
		.groups = { groups[0], groups[1], groups[2] },
		.num_workgroups = { whole ? groups[0] : num_workgroups[0],
				    whole ? groups[1] : num_workgroups[1],
				    whole ? groups[2] : num_workgroups[2] },
	};
	if (++c->seen_stamp == 0) { /* wrapped: forget every stamp */
		memset(c->seen, 0, sizeof(c->seen));
		c->seen_stamp = 1;
	}
	*out = k;
	return 0;
}

/* One descriptor of a dispatch, resolved into the next of c->descs. */
static int check_descriptor(struct submit_ctx *c, uint32_t i, const struct kernel *k, uint32_t d,
			    const struct mdgpu_host_descriptor *desc)
{
	const struct mdgpu_host_caps *caps = &c->dev->caps;
	const struct mdgpu_host_kernel_binding *b = NULL;
	uint32_t lo = 0, hi = k->binding_count, slot, at = 0;
	uint64_t align, max;
	struct memory *m;
	int ret;

	if (desc->pad)
		return mdgpu_error(-EINVAL, "%s: command %u: descriptor %u: pad must be 0", c->fn,
				   i, d);
	while (lo < hi) { /* bindings are sorted by (set, binding) */
		uint32_t mid = lo + (hi - lo) / 2;
		const struct mdgpu_host_kernel_binding *x = &k->bindings[mid];

		if (x->set == desc->set && x->binding == desc->binding) {
			b = x;
			at = mid;
			break;
		}
		if (x->set < desc->set || (x->set == desc->set && x->binding < desc->binding))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!b)
		return mdgpu_error(-EINVAL,
				   "%s: command %u: descriptor %u: set %u, binding %u is not one"
				   " the kernel declares",
				   c->fn, i, d, desc->set, desc->binding);
	if (desc->type != b->type)
		return mdgpu_error(-EINVAL,
				   "%s: command %u: descriptor %u: type %u for a binding of type %u"
				   " (0 storage, 1 uniform buffer)",
				   c->fn, i, d, desc->type, b->type);
	if (desc->index >= b->count)
		return mdgpu_error(-EINVAL,
				   "%s: command %u: descriptor %u: index %u of an array of %u",
				   c->fn, i, d, desc->index, b->count);
	slot = k->slot_base[at] + desc->index;
	if (c->seen[slot] == c->seen_stamp)
		return mdgpu_error(-EINVAL,
				   "%s: command %u: descriptor %u: set %u, binding %u[%u] given"
				   " twice",
				   c->fn, i, d, desc->set, desc->binding, desc->index);
	c->seen[slot] = c->seen_stamp;
	if (b->type == MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER) {
		align = c->dev->info.min_binding_alignment;
		max = c->dev->info.max_binding_size;
	} else {
		align = caps->min_uniform_offset_alignment ? caps->min_uniform_offset_alignment : 1;
		max = caps->max_uniform_buffer_range;
	}
	if (desc->offset % align)
		return mdgpu_error(-EINVAL,
				   "%s: command %u: descriptor %u: offset 0x%" PRIx64
				   " not a multiple of %" PRIu64,
				   c->fn, i, d, desc->offset, align);
	if (desc->range > max)
		return mdgpu_error(-E2BIG,
				   "%s: command %u: descriptor %u: range 0x%" PRIx64
				   " > device maximum 0x%" PRIx64,
				   c->fn, i, d, desc->range, max);
	ret = ref_memory(c, desc->mem, desc->offset, desc->range, "descriptor", i, &m);
	if (ret)
		return ret;
	c->descs[c->desc_count++] =
		(struct mdgpu_job_desc){ slot, b->type, m->be, desc->offset, desc->range };
	return 0;
}

/* A checked dispatch joins the job, unless a zero group count makes it run nothing. */
static void check_dispatch_end(struct submit_ctx *c, const struct kernel *k)
{
	struct mdgpu_job_cmd *jc = &c->cmds[c->job->cmd_count];
	struct mdgpu_job *job = c->job;

	jc->desc_count = (uint32_t)(c->descs + c->desc_count - jc->descs);
	if (!jc->groups[0] || !jc->groups[1] || !jc->groups[2])
		return;
	job->cmd_count++;
	job->set_total += k->set_count;
	job->storage_total += k->storage_slots;
	job->uniform_total += k->uniform_slots;
	if (k->slots > job->slot_max)
		job->slot_max = k->slots;
	if (jc->desc_count < k->slots)
		job->zero_buffer = true;
}

/* DISPATCH (mdgpu_host_submit): the kernel's n storage buffers from the binding array. */
static int check_dispatch(struct submit_ctx *c, uint32_t i, const struct mdgpu_host_cmd_dispatch *a,
			  const struct mdgpu_host_binding *bindings, uint32_t binding_count,
			  const uint8_t *push, uint32_t push_size)
{
	const struct mdgpu_host_device_info *info = &c->dev->info;
	const uint32_t base[3] = { 0, 0, 0 }, whole[3] = { 0, 0, 0 };
	const uint32_t groups[3] = { a->group_count_x, a->group_count_y, a->group_count_z };
	struct kernel *k = table_get(&c->dev->kernels, a->kernel);
	int ret;

	if (!k)
		return mdgpu_error(-ENOENT, "%s: command %u: no kernel 0x%x", c->fn, i, a->kernel);
	if (k->legacy_count < 0)
		return mdgpu_error(-EINVAL,
				   "%s: command %u: kernel 0x%x has descriptors DISPATCH cannot"
				   " bind (only storage buffers at set 0, bindings 0..n-1): use"
				   " DISPATCH2 (mdgpu_host_submit2)",
				   c->fn, i, a->kernel);
	if (a->binding_count != (uint32_t)k->legacy_count)
		return mdgpu_error(-EINVAL, "%s: command %u: %u bindings for a kernel of %d", c->fn,
				   i, a->binding_count, k->legacy_count);
	if ((uint64_t)a->first_binding + a->binding_count > binding_count)
		return mdgpu_error(-EINVAL, "%s: command %u: bindings %u..%u past the %u given",
				   c->fn, i, a->first_binding, a->first_binding + a->binding_count,
				   binding_count);
	ret = check_dispatch_start(c, i, a->kernel, a->push_offset, a->push_size, push, push_size,
				   base, groups, whole, &k);
	if (ret)
		return ret;
	for (uint32_t b = 0; b < a->binding_count; b++) {
		const struct mdgpu_host_binding *bd = &bindings[a->first_binding + b];
		struct memory *m;

		if (bd->pad)
			return mdgpu_error(-EINVAL, "%s: command %u: binding %u: pad must be 0",
					   c->fn, i, b);
		if (bd->offset % info->min_binding_alignment)
			return mdgpu_error(-EINVAL,
					   "%s: command %u: binding %u: offset 0x%" PRIx64
					   " not a multiple of %" PRIu64,
					   c->fn, i, b, bd->offset, info->min_binding_alignment);
		if (bd->size > info->max_binding_size)
			return mdgpu_error(-E2BIG,
					   "%s: command %u: binding %u: size 0x%" PRIx64
					   " > device maximum 0x%" PRIx64,
					   c->fn, i, b, bd->size, info->max_binding_size);
		ret = ref_memory(c, bd->mem, bd->offset, bd->size, "binding", i, &m);
		if (ret)
			return ret;
		c->descs[c->desc_count++] =
			(struct mdgpu_job_desc){ b, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, m->be,
						 bd->offset, bd->size };
	}
	check_dispatch_end(c, k);
	return 0;
}

static int check_dispatch2(struct submit_ctx *c, uint32_t i,
			   const struct mdgpu_host_cmd_dispatch2 *a,
			   const struct mdgpu_host_descriptor *descs, uint32_t desc_count,
			   const uint8_t *data, uint32_t data_size)
{
	struct kernel *k;
	int ret;

	if (!table_get(&c->dev->kernels, a->kernel))
		return mdgpu_error(-ENOENT, "%s: command %u: no kernel 0x%x", c->fn, i, a->kernel);
	if (a->descriptor_count > MDGPU_HOST_MAX_DISPATCH_DESCRIPTORS)
		return mdgpu_error(-E2BIG, "%s: command %u: %u descriptors > %u", c->fn, i,
				   a->descriptor_count, MDGPU_HOST_MAX_DISPATCH_DESCRIPTORS);
	if ((uint64_t)a->first_descriptor + a->descriptor_count > desc_count)
		return mdgpu_error(-EINVAL, "%s: command %u: descriptors %u..%u past the %u given",
				   c->fn, i, a->first_descriptor,
				   a->first_descriptor + a->descriptor_count, desc_count);
	ret = check_dispatch_start(c, i, a->kernel, a->push_offset, a->push_size, data, data_size,
				   a->base, a->groups, a->num_workgroups, &k);
	if (ret)
		return ret;
	for (uint32_t d = 0; d < a->descriptor_count; d++) {
		ret = check_descriptor(c, i, k, d, &descs[a->first_descriptor + d]);
		if (ret)
			return ret;
	}
	check_dispatch_end(c, k);
	return 0;
}

/* The checks of submit and submit2 around their command loops (ctx->fn names the call). */
struct submit_args {
	const char *fn;
	uint32_t device;
	uint32_t cmd_count;
	/* Descriptors the dispatches can resolve in all (ranges of the array may overlap). */
	uint32_t desc_total;
	int (*check)(struct submit_ctx *c, uint32_t i, const void *arg);
	const void *arg;
};

static int submit_common(const struct submit_args *a, uint64_t *out_submission)
{
	struct mdgpu_job_cmd *jcmds = NULL;
	struct mdgpu_job_desc *jdescs = NULL;
	struct mdgpu_job job = { 0 };
	struct submission *sub = NULL;
	struct submit_ctx *c = NULL;
	struct device *dev;
	uint32_t slot;
	int ret;

	dev = device_get(a->device);
	if (!dev)
		return mdgpu_error(-ENOENT, "%s: no device 0x%x", a->fn, a->device);

	c = calloc(1, sizeof(*c));
	jcmds = calloc(a->cmd_count, sizeof(*jcmds));
	jdescs = calloc(a->desc_total ? a->desc_total : 1, sizeof(*jdescs));
	sub = calloc(1, sizeof(*sub));
	if (sub) {
		/* At most every command's memories and kernel, each counted once. */
		sub->mems = calloc((size_t)a->cmd_count * 2 + a->desc_total, sizeof(*sub->mems));
		sub->kernels = calloc(a->cmd_count, sizeof(*sub->kernels));
	}
	if (!c || !jcmds || !jdescs || !sub || !sub->mems || !sub->kernels) {
		ret = mdgpu_error(-ENOMEM, "%s: out of memory", a->fn);
		goto err_free;
	}

	pthread_mutex_lock(&dev->lock);
	for (slot = 0; slot < MDGPU_HOST_MAX_INFLIGHT; slot++)
		if (!dev->subs[slot])
			break;
	if (slot == MDGPU_HOST_MAX_INFLIGHT) {
		ret = mdgpu_error(-EAGAIN, "%s: %u submissions are not collected yet", a->fn,
				  MDGPU_HOST_MAX_INFLIGHT);
		goto err_unlock;
	}
	c->fn = a->fn;
	c->dev = dev;
	c->sub = sub;
	c->stamp = dev->next_id;
	c->job = &job;
	c->cmds = jcmds;
	c->descs = jdescs;
	for (uint32_t i = 0; i < a->cmd_count; i++) {
		ret = a->check(c, i, a->arg);
		if (ret)
			goto err_unref;
	}
	/* Checked: now take the references the submission holds until it completes. */
	for (uint32_t i = 0; i < sub->mem_count; i++)
		sub->mems[i]->refs++;
	for (uint32_t i = 0; i < sub->kernel_count; i++)
		sub->kernels[i]->refs++;
	if (c->staged)
		drain(dev); /* staging buffers are shared: earlier batches finish first */
	job.cmds = jcmds;
	sub->id = dev->next_id;
	sub->staged = c->staged;
	sub->status.submit_ns = mdgpu_now_ns();
	ret = dev->ops->submit(dev->be, &job, &sub->be);
	if (ret) {
		sub->completed = true; /* nothing runs: drop the references now */
		for (uint32_t i = 0; i < sub->mem_count; i++)
			memory_put(dev, sub->mems[i]);
		for (uint32_t i = 0; i < sub->kernel_count; i++)
			kernel_put(dev, sub->kernels[i]);
		goto err_unref;
	}
	dev->next_id++;
	dev->subs[slot] = sub;
	*out_submission = sub->id;
	pthread_mutex_unlock(&dev->lock);
	free(jcmds);
	free(jdescs);
	free(c);
	device_put(dev);
	return 0;

err_unref:
	/* Stamps of objects seen by a failed check must not match the next submission's id. */
	for (uint32_t i = 0; i < sub->mem_count; i++)
		sub->mems[i]->stamp = 0;
	for (uint32_t i = 0; i < sub->kernel_count; i++)
		sub->kernels[i]->stamp = 0;
err_unlock:
	pthread_mutex_unlock(&dev->lock);
err_free:
	if (sub) {
		free(sub->mems);
		free(sub->kernels);
		free(sub);
	}
	free(jcmds);
	free(jdescs);
	free(c);
	device_put(dev);
	return ret;
}

struct submit1_arg {
	const struct mdgpu_host_cmd *cmds;
	const struct mdgpu_host_binding *bindings;
	uint32_t binding_count;
	const uint8_t *push;
	uint32_t push_size;
};

static int check_cmd1(struct submit_ctx *c, uint32_t i, const void *arg)
{
	const struct submit1_arg *a = arg;
	const struct mdgpu_host_cmd *cmd = &a->cmds[i];

	if (cmd->flags)
		return mdgpu_error(-EINVAL, "%s: command %u: flags 0x%x must be 0", c->fn, i,
				   cmd->flags);
	switch (cmd->op) {
	case MDGPU_HOST_OP_COPY:
		return check_copy(c, i, &cmd->u.copy);
	case MDGPU_HOST_OP_FILL:
		return check_fill(c, i, &cmd->u.fill);
	case MDGPU_HOST_OP_DISPATCH:
		return check_dispatch(c, i, &cmd->u.dispatch, a->bindings, a->binding_count,
				      a->push, a->push_size);
	case MDGPU_HOST_OP_BARRIER:
		c->cmds[c->job->cmd_count++] =
			(struct mdgpu_job_cmd){ .op = MDGPU_HOST_OP_BARRIER };
		return 0;
	case MDGPU_HOST_OP_TIMESTAMP:
		return check_timestamp(c, i, &cmd->u.timestamp);
	default:
		return mdgpu_error(-EINVAL, "%s: command %u: unknown op %u", c->fn, i, cmd->op);
	}
}

MDGPU_HOST_API int32_t mdgpu_host_submit(uint32_t device, const struct mdgpu_host_cmd *cmds,
					 uint32_t cmd_count,
					 const struct mdgpu_host_binding *bindings,
					 uint32_t binding_count, const void *push_data,
					 uint32_t push_data_size, uint64_t *out_submission)
{
	struct submit1_arg arg = { cmds, bindings, binding_count, push_data, push_data_size };
	struct submit_args a = { "submit", device, cmd_count, 0, check_cmd1, &arg };

	ENTER();
	if (!out_submission)
		return mdgpu_error(-EINVAL, "submit: out_submission is NULL");
	*out_submission = 0;
	if (!cmds || cmd_count == 0)
		return mdgpu_error(-EINVAL, "submit: no commands");
	if (cmd_count > MDGPU_HOST_MAX_COMMANDS)
		return mdgpu_error(-E2BIG, "submit: %u commands > %u", cmd_count,
				   MDGPU_HOST_MAX_COMMANDS);
	if ((binding_count && !bindings) || (push_data_size && !push_data))
		return mdgpu_error(-EINVAL,
				   "submit: NULL bindings or push data with a nonzero size");
	if (binding_count > MDGPU_HOST_MAX_COMMANDS * MDGPU_HOST_MAX_BINDINGS ||
	    push_data_size > MDGPU_HOST_MAX_COMMANDS * MDGPU_HOST_MAX_PUSH_CONSTANTS)
		return mdgpu_error(-E2BIG,
				   "submit: %u bindings or %u bytes of push data are too"
				   " many",
				   binding_count, push_data_size);
	/* A DISPATCH of more bindings than a kernel can have fails before it resolves any. */
	for (uint32_t i = 0; i < cmd_count; i++)
		if (cmds[i].op == MDGPU_HOST_OP_DISPATCH)
			a.desc_total +=
				min_u32(cmds[i].u.dispatch.binding_count, MDGPU_HOST_MAX_BINDINGS);
	return submit_common(&a, out_submission);
}

struct submit2_arg {
	const struct mdgpu_host_cmd2 *cmds;
	const struct mdgpu_host_descriptor *descs;
	uint32_t desc_count;
	const uint8_t *data;
	uint32_t data_size;
};

static int check_cmd2(struct submit_ctx *c, uint32_t i, const void *arg)
{
	const struct submit2_arg *a = arg;
	const struct mdgpu_host_cmd2 *cmd = &a->cmds[i];

	if (cmd->flags)
		return mdgpu_error(-EINVAL, "%s: command %u: flags 0x%x must be 0", c->fn, i,
				   cmd->flags);
	switch (cmd->op) {
	case MDGPU_HOST_OP_COPY:
		return check_copy(c, i, &cmd->u.copy);
	case MDGPU_HOST_OP_FILL:
		return check_fill(c, i, &cmd->u.fill);
	case MDGPU_HOST_OP_UPDATE:
		return check_update(c, i, &cmd->u.update, a->data, a->data_size);
	case MDGPU_HOST_OP_DISPATCH2:
		return check_dispatch2(c, i, &cmd->u.dispatch2, a->descs, a->desc_count, a->data,
				       a->data_size);
	case MDGPU_HOST_OP_BARRIER:
		c->cmds[c->job->cmd_count++] =
			(struct mdgpu_job_cmd){ .op = MDGPU_HOST_OP_BARRIER };
		return 0;
	case MDGPU_HOST_OP_TIMESTAMP:
		return check_timestamp(c, i, &cmd->u.timestamp);
	case MDGPU_HOST_OP_DISPATCH:
		return mdgpu_error(-EINVAL,
				   "%s: command %u: DISPATCH is a command of mdgpu_host_submit;"
				   " use DISPATCH2",
				   c->fn, i);
	default:
		return mdgpu_error(-EINVAL, "%s: command %u: unknown op %u", c->fn, i, cmd->op);
	}
}

MDGPU_HOST_API int32_t mdgpu_host_submit2(uint32_t device, const struct mdgpu_host_cmd2 *cmds,
					  uint32_t cmd_count,
					  const struct mdgpu_host_descriptor *descriptors,
					  uint32_t descriptor_count, const void *data,
					  uint32_t data_size, uint64_t *out_submission)
{
	struct submit2_arg arg = { cmds, descriptors, descriptor_count, data, data_size };
	struct submit_args a = { "submit2", device, cmd_count, 0, check_cmd2, &arg };

	ENTER();
	if (!out_submission)
		return mdgpu_error(-EINVAL, "submit2: out_submission is NULL");
	*out_submission = 0;
	if (!cmds || cmd_count == 0)
		return mdgpu_error(-EINVAL, "submit2: no commands");
	if (cmd_count > MDGPU_HOST_MAX_COMMANDS)
		return mdgpu_error(-E2BIG, "submit2: %u commands > %u", cmd_count,
				   MDGPU_HOST_MAX_COMMANDS);
	if ((descriptor_count && !descriptors) || (data_size && !data))
		return mdgpu_error(-EINVAL,
				   "submit2: NULL descriptors or data with a nonzero size");
	if (descriptor_count > MDGPU_HOST_MAX_COMMANDS * MDGPU_HOST_MAX_DISPATCH_DESCRIPTORS ||
	    data_size > MDGPU_HOST_MAX_SUBMIT_DATA)
		return mdgpu_error(-E2BIG,
				   "submit2: %u descriptors or %u bytes of data are too many"
				   " (at most %u and %u)",
				   descriptor_count, data_size,
				   MDGPU_HOST_MAX_COMMANDS * MDGPU_HOST_MAX_DISPATCH_DESCRIPTORS,
				   MDGPU_HOST_MAX_SUBMIT_DATA);
	for (uint32_t i = 0; i < cmd_count; i++)
		if (cmds[i].op == MDGPU_HOST_OP_DISPATCH2)
			a.desc_total += min_u32(cmds[i].u.dispatch2.descriptor_count,
						MDGPU_HOST_MAX_DISPATCH_DESCRIPTORS);
	return submit_common(&a, out_submission);
}

static struct submission *sub_find(struct device *dev, uint64_t id)
{
	for (uint32_t i = 0; i < MDGPU_HOST_MAX_INFLIGHT; i++)
		if (dev->subs[i] && dev->subs[i]->id == id)
			return dev->subs[i];
	return NULL;
}

static int wait_common(const char *fn, uint32_t device, uint64_t submission, uint64_t timeout_ns,
		       struct mdgpu_host_status *status, int pending)
{
	struct submission *s;
	struct device *dev;
	int ret = 0;

	if (!status)
		return mdgpu_error(-EINVAL, "%s: status is NULL", fn);
	dev = device_get(device);
	if (!dev)
		return mdgpu_error(-ENOENT, "%s: no device 0x%x", fn, device);
	pthread_mutex_lock(&dev->lock);
	s = sub_find(dev, submission);
	if (!s) {
		ret = mdgpu_error(-ENOENT, "%s: no submission %" PRIu64 " (unknown or collected)",
				  fn, submission);
		goto out;
	}
	if (!s->completed) {
		int r;

		/* Wait without the device lock; ->waiters keeps the record and its fence. */
		s->waiters++;
		pthread_mutex_unlock(&dev->lock);
		r = dev->ops->wait(dev->be, s->be, timeout_ns);
		pthread_mutex_lock(&dev->lock);
		s->waiters--;
		if (r == -ETIMEDOUT) {
			ret = timeout_ns ?
				      mdgpu_error(pending,
						  "%s: submission %" PRIu64
						  " not done after %" PRIu64 " ns",
						  fn, submission, timeout_ns) :
				      mdgpu_error(pending, "%s: submission %" PRIu64 " not done",
						  fn, submission);
			submission_maybe_free(dev, s); /* another thread may have collected it */
			goto out;
		}
		if (!s->completed)
			submission_complete(dev, s, r);
	}
	if (s->collected) {
		/* Another thread collected it while this one waited. */
		ret = mdgpu_error(-ENOENT, "%s: submission %" PRIu64 " already collected", fn,
				  submission);
	} else {
		*status = s->status;
		s->collected = true;
		subs_remove(dev, s);
	}
	submission_maybe_free(dev, s);
out:
	pthread_mutex_unlock(&dev->lock);
	device_put(dev);
	return ret;
}

MDGPU_HOST_API int32_t mdgpu_host_poll(uint32_t device, uint64_t submission,
				       struct mdgpu_host_status *status)
{
	ENTER();
	return wait_common("poll", device, submission, 0, status, -EAGAIN);
}

MDGPU_HOST_API int32_t mdgpu_host_wait(uint32_t device, uint64_t submission, uint64_t timeout_ns,
				       struct mdgpu_host_status *status)
{
	ENTER();
	return wait_common("wait", device, submission, timeout_ns, status, -ETIMEDOUT);
}
