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

struct kernel {
	uint32_t refs;
	uint32_t binding_count;
	uint32_t push_size;
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
	uint32_t features;
	const struct mdgpu_backend_ops *ops;
	struct mdgpu_be *be;
	struct mdgpu_host_device_info info;
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
	ret = dev->ops->open(selector, flags, &dev->be, &dev->info, &dev->features);
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

MDGPU_HOST_API int32_t mdgpu_host_kernel_create(uint32_t device, const uint32_t *words,
						uint32_t word_count, uint32_t binding_count,
						uint32_t push_constant_size, uint32_t *out_kernel)
{
	struct mdgpu_kernel_limits lim;
	char entry[64];
	struct device *dev;
	struct kernel *k = NULL;
	int ret;

	ENTER();
	if (!out_kernel)
		return mdgpu_error(-EINVAL, "kernel_create: out_kernel is NULL");
	*out_kernel = 0;
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
	if (binding_count > dev->info.max_bindings) {
		ret = mdgpu_error(-E2BIG, "kernel_create: %u bindings > %u", binding_count,
				  dev->info.max_bindings);
		goto out;
	}
	if (push_constant_size % 4 || push_constant_size > dev->info.max_push_constant_size) {
		ret = mdgpu_error(-EINVAL,
				  "kernel_create: push-constant size %u is not a multiple"
				  " of 4 up to %u",
				  push_constant_size, dev->info.max_push_constant_size);
		goto out;
	}
	/*
	 * Checking and compiling run without the device lock: they are the slow part (up to
	 * seconds for a large module), touch no shared state (dev->info and dev->features are
	 * immutable after open, and the backend builds a new object), and the device reference
	 * taken above keeps the device alive. The lock is taken only to publish the handle.
	 */
	lim = (struct mdgpu_kernel_limits){
		.binding_count = binding_count,
		.push_constant_size = push_constant_size,
		.api_version = dev->info.api_version,
		.features = dev->features,
		.max_shared_memory_size = dev->info.max_shared_memory_size,
		.max_workgroup_size = { dev->info.max_workgroup_size[0],
					dev->info.max_workgroup_size[1],
					dev->info.max_workgroup_size[2] },
		.max_workgroup_invocations = dev->info.max_workgroup_invocations,
	};
	ret = mdgpu_spirv_check(words, word_count, &lim, entry, sizeof(entry));
	if (ret)
		goto out;
	k = calloc(1, sizeof(*k));
	if (!k) {
		ret = mdgpu_error(-ENOMEM, "kernel_create: out of memory");
		goto out;
	}
	k->refs = 1;
	k->binding_count = binding_count;
	k->push_size = push_constant_size;
	ret = dev->ops->kernel_create(dev->be, words, word_count, entry, binding_count,
				      push_constant_size, &k->be);
	if (ret) {
		free(k);
		goto out;
	}
	pthread_mutex_lock(&dev->lock);
	ret = table_add(&dev->kernels, k, out_kernel);
	if (ret)
		kernel_put(dev, k);
	pthread_mutex_unlock(&dev->lock);
out:
	device_put(dev);
	return ret;
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

struct submit_ctx {
	struct device *dev;
	struct submission *sub;
	uint64_t stamp;
	bool staged;
};

static int ref_memory(struct submit_ctx *c, uint32_t handle, uint64_t offset, uint64_t size,
		      const char *what, uint32_t i, struct memory **out)
{
	struct memory *m = table_get(&c->dev->mems, handle);

	if (!m)
		return mdgpu_error(-ENOENT, "submit: command %u: %s: no memory 0x%x", i, what,
				   handle);
	if (!range_ok(offset, size, m->size))
		return mdgpu_error(-EINVAL,
				   "submit: command %u: %s: range 0x%" PRIx64 "+0x%" PRIx64
				   " outside memory 0x%x of 0x%" PRIx64 " bytes",
				   i, what, offset, size, handle, m->size);
	if (m->stamp != c->stamp) {
		m->stamp = c->stamp;
		c->sub->mems[c->sub->mem_count++] = m;
		if (m->flags & MDGPU_HOST_MEMORY_STAGED)
			c->staged = true;
	}
	*out = m;
	return 0;
}

static int check_cmd(struct submit_ctx *c, uint32_t i, const struct mdgpu_host_cmd *cmd,
		     struct mdgpu_job_cmd *jc, const struct mdgpu_host_binding *bindings,
		     uint32_t binding_count, struct mdgpu_be_memory **binding_mem,
		     const uint8_t *push, uint32_t push_size, struct mdgpu_job *job)
{
	const struct mdgpu_host_device_info *info = &c->dev->info;
	struct memory *m0, *m1;
	int ret;

	jc->cmd = cmd;
	if (cmd->flags)
		return mdgpu_error(-EINVAL, "submit: command %u: flags 0x%x must be 0", i,
				   cmd->flags);
	switch (cmd->op) {
	case MDGPU_HOST_OP_COPY: {
		const struct mdgpu_host_cmd_copy *a = &cmd->u.copy;

		ret = ref_memory(c, a->src_mem, a->src_offset, a->size, "COPY source", i, &m0);
		if (!ret)
			ret = ref_memory(c, a->dst_mem, a->dst_offset, a->size, "COPY destination",
					 i, &m1);
		if (ret)
			return ret;
		/* Both ranges are inside one memory here, so no sum overflows. */
		if (m0 == m1 && a->src_offset < a->dst_offset + a->size &&
		    a->dst_offset < a->src_offset + a->size)
			return mdgpu_error(-EINVAL, "submit: command %u: COPY ranges overlap", i);
		jc->mem[0] = m0->be;
		jc->mem[1] = m1->be;
		return 0;
	}
	case MDGPU_HOST_OP_FILL: {
		const struct mdgpu_host_cmd_fill *a = &cmd->u.fill;

		if (a->offset % 4 || a->size % 4)
			return mdgpu_error(-EINVAL,
					   "submit: command %u: FILL offset 0x%" PRIx64
					   " and size 0x%" PRIx64 " must be multiples of 4",
					   i, a->offset, a->size);
		ret = ref_memory(c, a->mem, a->offset, a->size, "FILL", i, &m0);
		if (ret)
			return ret;
		jc->mem[0] = m0->be;
		return 0;
	}
	case MDGPU_HOST_OP_DISPATCH: {
		const struct mdgpu_host_cmd_dispatch *a = &cmd->u.dispatch;
		struct kernel *k = table_get(&c->dev->kernels, a->kernel);

		if (!k)
			return mdgpu_error(-ENOENT, "submit: command %u: no kernel 0x%x", i,
					   a->kernel);
		if (a->binding_count != k->binding_count)
			return mdgpu_error(-EINVAL,
					   "submit: command %u: %u bindings for a kernel"
					   " of %u",
					   i, a->binding_count, k->binding_count);
		if ((uint64_t)a->first_binding + a->binding_count > binding_count)
			return mdgpu_error(-EINVAL,
					   "submit: command %u: bindings %u..%u past the"
					   " %u given",
					   i, a->first_binding, a->first_binding + a->binding_count,
					   binding_count);
		if (a->push_size != k->push_size)
			return mdgpu_error(-EINVAL,
					   "submit: command %u: %u bytes of push constants"
					   " for a kernel of %u",
					   i, a->push_size, k->push_size);
		if ((uint64_t)a->push_offset + a->push_size > push_size)
			return mdgpu_error(-EINVAL,
					   "submit: command %u: push constants at %u+%u"
					   " past the %u bytes given",
					   i, a->push_offset, a->push_size, push_size);
		if (a->group_count_x > info->max_workgroup_count[0] ||
		    a->group_count_y > info->max_workgroup_count[1] ||
		    a->group_count_z > info->max_workgroup_count[2])
			return mdgpu_error(-E2BIG,
					   "submit: command %u: %ux%ux%u workgroups over the"
					   " device's %ux%ux%u",
					   i, a->group_count_x, a->group_count_y, a->group_count_z,
					   info->max_workgroup_count[0],
					   info->max_workgroup_count[1],
					   info->max_workgroup_count[2]);
		for (uint32_t b = 0; b < a->binding_count; b++) {
			const struct mdgpu_host_binding *bd = &bindings[a->first_binding + b];

			if (bd->pad)
				return mdgpu_error(-EINVAL,
						   "submit: command %u: binding %u: pad"
						   " must be 0",
						   i, b);
			if (bd->offset % info->min_binding_alignment)
				return mdgpu_error(-EINVAL,
						   "submit: command %u: binding %u: offset"
						   " 0x%" PRIx64 " not a multiple of %" PRIu64,
						   i, b, bd->offset, info->min_binding_alignment);
			if (bd->size > info->max_binding_size)
				return mdgpu_error(-E2BIG,
						   "submit: command %u: binding %u: size"
						   " 0x%" PRIx64 " > device maximum 0x%" PRIx64,
						   i, b, bd->size, info->max_binding_size);
			ret = ref_memory(c, bd->mem, bd->offset, bd->size, "binding", i, &m0);
			if (ret)
				return ret;
			binding_mem[a->first_binding + b] = m0->be;
		}
		if (k->stamp != c->stamp) {
			k->stamp = c->stamp;
			c->sub->kernels[c->sub->kernel_count++] = k;
		}
		jc->kernel = k->be;
		jc->bindings = bindings + a->first_binding;
		jc->binding_mem = binding_mem + a->first_binding;
		jc->push = push ? push + a->push_offset : NULL;
		job->dispatch_count++;
		job->binding_total += a->binding_count;
		return 0;
	}
	case MDGPU_HOST_OP_BARRIER:
		return 0;
	case MDGPU_HOST_OP_TIMESTAMP: {
		const struct mdgpu_host_cmd_timestamp *a = &cmd->u.timestamp;

		if (!(info->flags & MDGPU_HOST_DEVICE_TIMESTAMPS))
			return mdgpu_error(-ENOTSUP,
					   "submit: command %u: TIMESTAMP: the device has"
					   " no timestamps",
					   i);
		if (a->pad || a->offset % 8)
			return mdgpu_error(-EINVAL,
					   "submit: command %u: TIMESTAMP offset 0x%" PRIx64
					   " must be a multiple of 8 (and pad 0)",
					   i, a->offset);
		ret = ref_memory(c, a->mem, a->offset, 8, "TIMESTAMP", i, &m0);
		if (ret)
			return ret;
		jc->mem[0] = m0->be;
		job->timestamp_count++;
		return 0;
	}
	default:
		return mdgpu_error(-EINVAL, "submit: command %u: unknown op %u", i, cmd->op);
	}
}

MDGPU_HOST_API int32_t mdgpu_host_submit(uint32_t device, const struct mdgpu_host_cmd *cmds,
					 uint32_t cmd_count,
					 const struct mdgpu_host_binding *bindings,
					 uint32_t binding_count, const void *push_data,
					 uint32_t push_data_size, uint64_t *out_submission)
{
	struct mdgpu_be_memory **binding_mem = NULL;
	struct mdgpu_job_cmd *jcmds = NULL;
	struct mdgpu_job job = { 0 };
	struct submission *sub = NULL;
	struct submit_ctx c = { 0 };
	struct device *dev;
	uint32_t slot;
	int ret;

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
	dev = device_get(device);
	if (!dev)
		return mdgpu_error(-ENOENT, "submit: no device 0x%x", device);

	jcmds = calloc(cmd_count, sizeof(*jcmds));
	binding_mem = calloc(binding_count ? binding_count : 1, sizeof(*binding_mem));
	sub = calloc(1, sizeof(*sub));
	if (sub) {
		/* At most every command's memories and kernel, each counted once. */
		sub->mems = calloc((size_t)cmd_count * 2 + binding_count, sizeof(*sub->mems));
		sub->kernels = calloc(cmd_count, sizeof(*sub->kernels));
	}
	if (!jcmds || !binding_mem || !sub || !sub->mems || !sub->kernels) {
		ret = mdgpu_error(-ENOMEM, "submit: out of memory");
		goto err_free;
	}

	pthread_mutex_lock(&dev->lock);
	for (slot = 0; slot < MDGPU_HOST_MAX_INFLIGHT; slot++)
		if (!dev->subs[slot])
			break;
	if (slot == MDGPU_HOST_MAX_INFLIGHT) {
		ret = mdgpu_error(-EAGAIN, "submit: %u submissions are not collected yet",
				  MDGPU_HOST_MAX_INFLIGHT);
		goto err_unlock;
	}
	c.dev = dev;
	c.sub = sub;
	c.stamp = dev->next_id;
	for (uint32_t i = 0; i < cmd_count; i++) {
		ret = check_cmd(&c, i, &cmds[i], &jcmds[i], bindings, binding_count, binding_mem,
				push_data, push_data_size, &job);
		if (ret)
			goto err_unref;
	}
	/* Checked: now take the references the submission holds until it completes. */
	for (uint32_t i = 0; i < sub->mem_count; i++)
		sub->mems[i]->refs++;
	for (uint32_t i = 0; i < sub->kernel_count; i++)
		sub->kernels[i]->refs++;
	if (c.staged)
		drain(dev); /* staging buffers are shared: earlier batches finish first */
	job.cmds = jcmds;
	job.cmd_count = cmd_count;
	sub->id = dev->next_id;
	sub->staged = c.staged;
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
	free(binding_mem);
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
	free(binding_mem);
	device_put(dev);
	return ret;
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
