// SPDX-License-Identifier: MIT
/*
 * test-host: libmdgpu-host on a real Vulkan device (Mesa lavapipe where there is no GPU).
 *
 *   build/test-host KERNEL_DIR [DEVICE]      (make -C host-driver test)
 *
 * Memory comes from a memfd mapped MAP_SHARED, exactly as mdgpu maps its aperture. Every
 * kernel runs on real data and is checked against a CPU reference; COPY, FILL, BARRIER and
 * TIMESTAMP are checked on zero-copy, staged and fd-imported memory; invalid SPIR-V and bad
 * handles must fail with the documented errno. Prints one line per check that fails and
 * ends with "N passed, N failed"; exits 1 on any failure.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mdgpu_host.h"

static int passed, failed;

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (cond) {                                                     \
			passed++;                                               \
		} else {                                                        \
			failed++;                                               \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
			printf(__VA_ARGS__);                                    \
			printf(" (last error: %s)\n", mdgpu_host_last_error()); \
		}                                                               \
	} while (0)

#define CHECK_RET(expr, want)                                                      \
	do {                                                                       \
		int32_t r_ = (expr);                                               \
		CHECK(r_ == (want), "%s returned %d, want %d", #expr, r_, (want)); \
	} while (0)

static const char *kernel_dir;

struct spirv {
	uint32_t *words;
	uint32_t count;
};

static struct spirv load_spirv(const char *name)
{
	struct spirv s = { 0 };
	char path[1024];
	FILE *f;
	long size;

	snprintf(path, sizeof(path), "%s/%s.spv", kernel_dir, name);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "test-host: cannot open %s (run make -C guest-driver/kernels)\n",
			path);
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	s.words = malloc((size_t)size);
	if (!s.words || fread(s.words, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "test-host: cannot read %s\n", path);
		exit(2);
	}
	fclose(f);
	s.count = (uint32_t)(size / 4);
	return s;
}

/* An "aperture": a memfd of @size bytes mapped shared, as mdgpu maps its BAR0 memfd. */
struct aperture {
	int fd;
	uint8_t *base;
	size_t size;
};

static struct aperture aperture_new(size_t size)
{
	struct aperture a = { .size = size };

	a.fd = memfd_create("test-aperture", MFD_CLOEXEC);
	if (a.fd < 0 || ftruncate(a.fd, (off_t)size) < 0) {
		perror("test-host: memfd");
		exit(2);
	}
	a.base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, a.fd, 0);
	if (a.base == MAP_FAILED) {
		perror("test-host: mmap");
		exit(2);
	}
	return a;
}

static void aperture_free(struct aperture *a)
{
	munmap(a->base, a->size);
	close(a->fd);
}

/* Submit and wait; returns the submit error or the status result. */
static int run(uint32_t dev, const struct mdgpu_host_cmd *cmds, uint32_t n,
	       const struct mdgpu_host_binding *b, uint32_t nb, const void *push, uint32_t np,
	       struct mdgpu_host_status *st)
{
	struct mdgpu_host_status local;
	uint64_t id;
	int r;

	if (!st)
		st = &local;
	r = mdgpu_host_submit(dev, cmds, n, b, nb, push, np, &id);
	if (r)
		return r;
	r = mdgpu_host_wait(dev, id, UINT64_MAX, st);
	if (r)
		return r;
	return st->result;
}

static struct mdgpu_host_cmd dispatch(uint32_t kernel, uint32_t gx, uint32_t gy, uint32_t gz,
				      uint32_t first_binding, uint32_t nb, uint32_t push_offset,
				      uint32_t push_size)
{
	return (struct mdgpu_host_cmd){
		.op = MDGPU_HOST_OP_DISPATCH,
		.u.dispatch = { kernel, gx, gy, gz, first_binding, nb, push_offset, push_size },
	};
}

static struct mdgpu_host_cmd barrier(void)
{
	return (struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_BARRIER };
}

static struct mdgpu_host_binding bind(uint32_t mem, uint64_t offset, uint64_t size)
{
	return (struct mdgpu_host_binding){ .mem = mem, .offset = offset, .size = size };
}

/* Deterministic pseudo-random floats in [-1, 1). */
static float frand(uint32_t *state)
{
	*state = *state * 1664525u + 1013904223u;
	return (float)(*state >> 8) / 8388608.0f - 1.0f;
}

static bool near(float got, float want, float rel)
{
	return fabsf(got - want) <= rel * (1.0f + fabsf(want));
}

/* ---- the tests ---- */

static uint32_t k_saxpy, k_memcpy, k_gemm, k_reduce;

static void test_info(uint32_t dev)
{
	struct mdgpu_host_device_info info, e;

	CHECK_RET(mdgpu_host_device_info(dev, &info), 0);
	printf("device: %s | driver %s (%s) | Vulkan %u.%u.%u | type %u\n", info.name,
	       info.driver_name, info.driver_info, info.api_version >> 22,
	       (info.api_version >> 12) & 0x3ff, info.api_version & 0xfff, info.device_type);
	printf("        VK_EXT_external_memory_host %s, minImportedHostPointerAlignment %llu,"
	       " robust %s, timestamps %u bits x %.3f ns, binding alignment %llu, max binding %llu\n",
	       (info.flags & MDGPU_HOST_DEVICE_HOST_IMPORT) ? "yes" : "no",
	       (unsigned long long)info.min_import_alignment,
	       (info.flags & MDGPU_HOST_DEVICE_ROBUST_ACCESS) ? "yes" : "no",
	       info.timestamp_valid_bits, info.timestamp_period_ns,
	       (unsigned long long)info.min_binding_alignment,
	       (unsigned long long)info.max_binding_size);
	CHECK(strcmp(info.backend, "vulkan") == 0, "backend %s", info.backend);
	CHECK(info.max_bindings >= 3 && info.max_push_constant_size >= 12, "limits");
	CHECK(info.flags & MDGPU_HOST_DEVICE_TIMESTAMPS, "timestamps");
	CHECK_RET(mdgpu_host_enumerate(info.index, &e), 0);
	CHECK(strcmp(e.name, info.name) == 0, "enumerate names the same device: %s", e.name);
	CHECK_RET(mdgpu_host_enumerate(1000, &e), -ENOENT);
	CHECK_RET(mdgpu_host_enumerate(0, NULL), -EINVAL);
	CHECK(mdgpu_host_abi_version() == MDGPU_HOST_ABI_VERSION, "abi version");
}

static void test_open_errors(void)
{
	uint32_t d = 123;

	CHECK_RET(mdgpu_host_device_open("no-such-gpu-anywhere", 0, &d), -ENODEV);
	CHECK(d == 0, "handle zeroed on failure");
	CHECK(strstr(mdgpu_host_last_error(), "no-such-gpu-anywhere") != NULL, "message names it");
	CHECK_RET(mdgpu_host_device_open("999", 0, &d), -ENODEV);
	CHECK_RET(mdgpu_host_device_open(NULL, 0x80, &d), -EINVAL);
	CHECK_RET(mdgpu_host_device_open(NULL, 0, NULL), -EINVAL);
	/* By name substring (case-insensitive) and by index. */
	CHECK_RET(mdgpu_host_device_open("LLVMPIPE", 0, &d), 0);
	CHECK_RET(mdgpu_host_device_destroy(d), 0);
	CHECK_RET(mdgpu_host_device_destroy(d), -ENOENT);
	CHECK_RET(mdgpu_host_device_open("0", 0, &d), 0);
	CHECK_RET(mdgpu_host_device_destroy(d), 0);
	CHECK_RET(mdgpu_host_device_destroy(0), -ENOENT);
	CHECK_RET(mdgpu_host_device_info(d, &(struct mdgpu_host_device_info){ 0 }), -ENOENT);
}

static void create_kernels(uint32_t dev)
{
	struct spirv s;

	s = load_spirv("saxpy");
	CHECK_RET(mdgpu_host_kernel_create(dev, s.words, s.count, 2, 8, &k_saxpy), 0);
	free(s.words);
	s = load_spirv("memcpy");
	CHECK_RET(mdgpu_host_kernel_create(dev, s.words, s.count, 2, 4, &k_memcpy), 0);
	free(s.words);
	s = load_spirv("gemm");
	CHECK_RET(mdgpu_host_kernel_create(dev, s.words, s.count, 3, 12, &k_gemm), 0);
	free(s.words);
	s = load_spirv("reduce");
	CHECK_RET(mdgpu_host_kernel_create(dev, s.words, s.count, 2, 4, &k_reduce), 0);
	free(s.words);
}

static void test_saxpy(uint32_t dev, uint32_t mem, uint8_t *base, uint32_t n)
{
	float *x = (float *)base, *y = (float *)(base + (((size_t)n * 4 + 255) & ~(size_t)255));
	uint64_t yoff = (uint64_t)((uint8_t *)y - base);
	float *want = malloc((size_t)n * 4);
	struct {
		uint32_t n;
		float a;
	} push = { n, 2.5f };
	struct mdgpu_host_binding b[2] = { bind(mem, 0, (uint64_t)n * 4),
					   bind(mem, yoff, (uint64_t)n * 4) };
	uint32_t groups = (n + 63) / 64, gx = groups > 65535 ? 65535 : groups;
	uint32_t gy = (groups + gx - 1) / gx;
	struct mdgpu_host_cmd c = dispatch(k_saxpy, gx, gy, 1, 0, 2, 0, 8);
	struct mdgpu_host_status st;
	uint32_t seed = 1, bad = 0;

	for (uint32_t i = 0; i < n; i++) {
		x[i] = frand(&seed);
		y[i] = frand(&seed);
		want[i] = push.a * x[i] + y[i];
	}
	CHECK_RET(run(dev, &c, 1, b, 2, &push, sizeof(push), &st), 0);
	for (uint32_t i = 0; i < n; i++)
		bad += !near(y[i], want[i], 1e-6f);
	CHECK(bad == 0, "saxpy n=%u: %u elements differ from the CPU", n, bad);
	CHECK(st.flags & MDGPU_HOST_STATUS_DEVICE_TIME, "device time measured");
	CHECK(st.device_ns > 0 && st.device_end_ns >= st.device_begin_ns, "device_ns %llu",
	      (unsigned long long)st.device_ns);
	CHECK(st.complete_ns >= st.submit_ns, "cpu times ordered");
	free(want);
}

static void test_memcpy(uint32_t dev, uint32_t mem, uint8_t *base, uint32_t n, uint64_t dst_off)
{
	uint32_t *src = (uint32_t *)base, *dst = (uint32_t *)(base + dst_off);
	struct mdgpu_host_binding b[2] = { bind(mem, 0, (uint64_t)n * 4),
					   bind(mem, dst_off, (uint64_t)n * 4) };
	uint32_t push = n;
	struct mdgpu_host_cmd c = dispatch(k_memcpy, (n + 63) / 64, 1, 1, 0, 2, 0, 4);
	uint32_t bad = 0;

	for (uint32_t i = 0; i < n; i++) {
		src[i] = i * 2654435761u;
		dst[i] = 0xdeadbeef;
	}
	dst[n] = 0x600dcafe; /* just past the end: must survive */
	CHECK_RET(run(dev, &c, 1, b, 2, &push, 4, NULL), 0);
	for (uint32_t i = 0; i < n; i++)
		bad += dst[i] != src[i];
	CHECK(bad == 0, "memcpy n=%u: %u words differ", n, bad);
	CHECK(dst[n] == 0x600dcafe, "memcpy wrote past n");
}

static void test_gemm(uint32_t dev, uint32_t mem, uint8_t *base, uint32_t M, uint32_t N, uint32_t K)
{
	size_t asz = (size_t)M * K * 4, bsz = (size_t)K * N * 4, csz = (size_t)M * N * 4;
	uint64_t aoff = 0, boff = (asz + 255) & ~(size_t)255,
		 coff = (boff + bsz + 255) & ~(size_t)255;
	float *A = (float *)(base + aoff), *B = (float *)(base + boff), *C = (float *)(base + coff);
	struct mdgpu_host_binding b[3] = { bind(mem, aoff, asz), bind(mem, boff, bsz),
					   bind(mem, coff, csz) };
	uint32_t push[3] = { M, N, K };
	struct mdgpu_host_cmd c = dispatch(k_gemm, (N + 15) / 16, (M + 15) / 16, 1, 0, 3, 0, 12);
	uint32_t seed = 7, bad = 0;

	for (size_t i = 0; i < (size_t)M * K; i++)
		A[i] = frand(&seed);
	for (size_t i = 0; i < (size_t)K * N; i++)
		B[i] = frand(&seed);
	memset(C, 0xff, csz);
	CHECK_RET(run(dev, &c, 1, b, 3, push, 12, NULL), 0);
	for (uint32_t i = 0; i < M; i++)
		for (uint32_t j = 0; j < N; j++) {
			double acc = 0;

			for (uint32_t k = 0; k < K; k++)
				acc += (double)A[(size_t)i * K + k] * B[(size_t)k * N + j];
			bad += !near(C[(size_t)i * N + j], (float)acc, 1e-4f);
		}
	CHECK(bad == 0, "gemm %ux%ux%u: %u elements differ from the CPU", M, N, K, bad);
}

static void test_reduce(uint32_t dev, uint32_t mem, uint8_t *base, uint32_t n, uint32_t groups)
{
	uint64_t poff = ((uint64_t)n * 4 + 255) & ~(uint64_t)255;
	uint64_t roff = poff + (((uint64_t)groups * 4 + 255) & ~(uint64_t)255);
	float *in = (float *)base, *partial = (float *)(base + poff),
	      *result = (float *)(base + roff);
	struct mdgpu_host_binding b[4] = {
		bind(mem, 0, (uint64_t)n * 4),
		bind(mem, poff, (uint64_t)groups * 4),
		bind(mem, poff, (uint64_t)groups * 4),
		bind(mem, roff, 4),
	};
	uint32_t push[2] = { n, groups };
	struct mdgpu_host_cmd c[3] = {
		dispatch(k_reduce, groups, 1, 1, 0, 2, 0, 4),
		barrier(),
		dispatch(k_reduce, 1, 1, 1, 2, 2, 4, 4),
	};
	double want = 0, pwant;
	uint32_t bad = 0;

	/* Small integers: every partial sum is exact in f32, so the result must be exact. */
	for (uint32_t i = 0; i < n; i++) {
		in[i] = (float)((int)(i % 7) - 3);
		want += in[i];
	}
	*result = -1;
	CHECK_RET(run(dev, c, 3, b, 4, push, 8, NULL), 0);
	CHECK(*result == (float)want, "reduce n=%u: got %f, want %f", n, *result, want);
	/* Each partial is the sum of its grid-stride slice. */
	for (uint32_t g = 0; g < groups; g++) {
		pwant = 0;
		for (uint64_t i = (uint64_t)g * 64; i < n; i += (uint64_t)groups * 64)
			for (uint32_t l = 0; l < 64 && i + l < n; l++)
				pwant += in[i + l];
		bad += partial[g] != (float)pwant;
	}
	CHECK(bad == 0, "reduce: %u partial sums differ", bad);
}

/*
 * robustBufferAccess: a kernel told to copy more words than its bindings hold (a lying or
 * buggy guest) must not touch memory outside them.
 */
static void test_out_of_bounds(uint32_t dev, uint32_t mem, uint8_t *base)
{
	uint32_t *src = (uint32_t *)base, *dst = (uint32_t *)(base + 0x10000), n = 1024;
	struct mdgpu_host_binding b[2] = { bind(mem, 0, 256 * 4), bind(mem, 0x10000, 256 * 4) };
	struct mdgpu_host_cmd c = dispatch(k_memcpy, n / 64, 1, 1, 0, 2, 0, 4);
	struct mdgpu_host_device_info info;
	uint32_t bad = 0;

	mdgpu_host_device_info(dev, &info);
	if (!(info.flags & MDGPU_HOST_DEVICE_ROBUST_ACCESS)) {
		printf("note: no robustBufferAccess on this device, out-of-bounds test not run\n");
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		src[i] = i + 1;
		dst[i] = 0xdeadbeef;
	}
	CHECK_RET(run(dev, &c, 1, b, 2, &n, 4, NULL), 0);
	for (uint32_t i = 0; i < 256; i++)
		bad += dst[i] != i + 1;
	CHECK(bad == 0, "in-bounds words copied (%u wrong)", bad);
	bad = 0;
	for (uint32_t i = 256; i < n; i++)
		bad += dst[i] != 0xdeadbeef;
	CHECK(bad == 0, "%u words written outside the binding", bad);
}

/* FILL, BARRIER, COPY, BARRIER, TIMESTAMP x2 on one memory; checks the bytes and the times. */
static void test_transfer(uint32_t dev, uint32_t mem, uint8_t *base, const char *what)
{
	struct mdgpu_host_cmd c[] = {
		{ .op = MDGPU_HOST_OP_TIMESTAMP, .u.timestamp = { .mem = mem, .offset = 0x3000 } },
		{ .op = MDGPU_HOST_OP_FILL, .u.fill = { mem, 0xa5a5a5a5u, 0x1000, 0x800 } },
		barrier(),
		{ .op = MDGPU_HOST_OP_COPY, .u.copy = { mem, mem, 0x1000, 0x2004, 0x400 } },
		barrier(),
		{ .op = MDGPU_HOST_OP_TIMESTAMP, .u.timestamp = { .mem = mem, .offset = 0x3008 } },
	};
	struct mdgpu_host_status st;
	uint64_t t0, t1;
	uint32_t bad = 0;

	memset(base, 0x11, 0x4000);
	CHECK_RET(run(dev, c, 6, NULL, 0, NULL, 0, &st), 0);
	for (uint32_t i = 0x1000; i < 0x1800; i++)
		bad += base[i] != 0xa5;
	CHECK(bad == 0 && base[0xfff] == 0x11 && base[0x1800] == 0x11, "%s: FILL range", what);
	bad = 0;
	for (uint32_t i = 0x2004; i < 0x2404; i++)
		bad += base[i] != 0xa5;
	CHECK(bad == 0 && base[0x2003] == 0x11 && base[0x2404] == 0x11, "%s: COPY range", what);
	memcpy(&t0, base + 0x3000, 8);
	memcpy(&t1, base + 0x3008, 8);
	CHECK(t0 != 0x1111111111111111ull && t1 != 0x1111111111111111ull && t0 > 0,
	      "%s: timestamps written (%llu, %llu)", what, (unsigned long long)t0,
	      (unsigned long long)t1);
	CHECK(t1 >= t0, "%s: timestamps ordered (%llu, %llu)", what, (unsigned long long)t0,
	      (unsigned long long)t1);
	CHECK(t0 >= st.device_begin_ns && t1 <= st.device_end_ns,
	      "%s: timestamps inside the batch (%llu..%llu vs %llu..%llu)", what,
	      (unsigned long long)t0, (unsigned long long)t1,
	      (unsigned long long)st.device_begin_ns, (unsigned long long)st.device_end_ns);
}

static void test_memory(uint32_t dev)
{
	struct mdgpu_host_device_info info;
	struct aperture ap = aperture_new(16 << 20);
	struct mdgpu_host_memory_info mi;
	uint32_t zc, staged, fdm, unaligned, m;

	mdgpu_host_device_info(dev, &info);
	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, ap.size, 0, &zc), 0);
	CHECK_RET(mdgpu_host_memory_info(dev, zc, &mi), 0);
	CHECK(mi.size == ap.size && mi.host_address == (uint64_t)(uintptr_t)ap.base, "info");
	if (info.flags & MDGPU_HOST_DEVICE_HOST_IMPORT)
		CHECK(mi.flags == MDGPU_HOST_MEMORY_ZERO_COPY, "zero copy, flags 0x%x", mi.flags);
	else
		CHECK(mi.flags == MDGPU_HOST_MEMORY_STAGED, "staged, flags 0x%x", mi.flags);

	/* The same memfd through the fd path: the library's own mapping aliases ours. */
	CHECK_RET(mdgpu_host_memory_import_fd(dev, ap.fd, 4 << 20, 4 << 20, 0, &fdm), 0);
	CHECK_RET(mdgpu_host_memory_info(dev, fdm, &mi), 0);
	CHECK(mi.flags & MDGPU_HOST_MEMORY_FD_MAPPED, "fd mapped, flags 0x%x", mi.flags);
	CHECK(mi.host_address != (uint64_t)(uintptr_t)(ap.base + (4 << 20)), "its own mapping");

	/* Forced staging, and an unaligned pointer (falls back to staging, with a log line). */
	CHECK_RET(mdgpu_host_memory_import(dev, ap.base + (8 << 20), 4 << 20,
					   MDGPU_HOST_MEMORY_STAGED, &staged),
		  0);
	CHECK_RET(mdgpu_host_memory_info(dev, staged, &mi), 0);
	CHECK(mi.flags == MDGPU_HOST_MEMORY_STAGED, "forced staged, flags 0x%x", mi.flags);
	CHECK_RET(mdgpu_host_memory_import(dev, ap.base + (12 << 20) + 64, 1 << 20, 0, &unaligned),
		  0);
	CHECK_RET(mdgpu_host_memory_info(dev, unaligned, &mi), 0);
	CHECK(mi.flags == MDGPU_HOST_MEMORY_STAGED, "unaligned falls back, flags 0x%x", mi.flags);

	test_transfer(dev, zc, ap.base, "zero-copy");
	test_transfer(dev, fdm, ap.base + (4 << 20), "fd import");
	test_transfer(dev, staged, ap.base + (8 << 20), "staged");
	test_transfer(dev, unaligned, ap.base + (12 << 20) + 64, "unaligned staged");
	test_memcpy(dev, staged, ap.base + (8 << 20), 100000, 2 << 20);
	test_saxpy(dev, fdm, ap.base + (4 << 20), 300000);

	/* Import errors. */
	CHECK_RET(mdgpu_host_memory_import(dev, NULL, 4096, 0, &m), -EINVAL);
	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, 0, 0, &m), -EINVAL);
	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, 4096, 0x100, &m), -EINVAL);
	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, 4096, 0, NULL), -EINVAL);
	CHECK_RET(mdgpu_host_memory_import(0, ap.base, 4096, 0, &m), -ENOENT);
	CHECK_RET(mdgpu_host_memory_import_fd(dev, -1, 0, 4096, 0, &m), -EBADF);
	CHECK_RET(mdgpu_host_memory_import_fd(dev, ap.fd, 100, 4096, 0, &m), -EINVAL);
	CHECK_RET(mdgpu_host_memory_import_fd(dev, ap.fd, 0, ap.size + 4096, 0, &m), -EINVAL);
	CHECK_RET(mdgpu_host_memory_import_fd(dev, 9999, 0, 4096, 0, &m), -EBADF);

	CHECK_RET(mdgpu_host_memory_destroy(dev, zc), 0);
	CHECK_RET(mdgpu_host_memory_destroy(dev, zc), -ENOENT);
	CHECK_RET(mdgpu_host_memory_info(dev, zc, &mi), -ENOENT);
	CHECK_RET(mdgpu_host_memory_destroy(dev, fdm), 0);
	CHECK_RET(mdgpu_host_memory_destroy(dev, staged), 0);
	CHECK_RET(mdgpu_host_memory_destroy(dev, unaligned), 0);
	aperture_free(&ap);
}

static void test_cpu_timestamps(void)
{
	struct mdgpu_host_device_info info;
	struct aperture ap = aperture_new(1 << 20);
	uint32_t dev, mem;

	CHECK_RET(mdgpu_host_device_open(NULL, MDGPU_HOST_OPEN_CPU_TIMESTAMPS, &dev), 0);
	mdgpu_host_device_info(dev, &info);
	CHECK(info.flags & MDGPU_HOST_DEVICE_CPU_TIMESTAMPS, "cpu timestamps on");
	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, ap.size, 0, &mem), 0);
	test_transfer(dev, mem, ap.base, "cpu timestamps");
	CHECK_RET(mdgpu_host_device_destroy(dev), 0); /* destroys the memory with it */
	aperture_free(&ap);
}

static void test_bad_spirv(uint32_t dev)
{
	struct spirv s = load_spirv("saxpy");
	uint32_t garbage[64], k = 77;

	for (uint32_t i = 0; i < 64; i++)
		garbage[i] = i * 0x9e3779b9u;
	CHECK_RET(mdgpu_host_kernel_create(dev, garbage, 64, 2, 8, &k), -EINVAL);
	CHECK(k == 0, "handle zeroed");
	CHECK(strstr(mdgpu_host_last_error(), "SPIR-V") != NULL, "message: %s",
	      mdgpu_host_last_error());
	garbage[0] = 0x07230203; /* right magic, garbage body: the validator must refuse */
	garbage[1] = 0x00010300;
	CHECK_RET(mdgpu_host_kernel_create(dev, garbage, 64, 2, 8, &k), -EINVAL);
	CHECK(strstr(mdgpu_host_last_error(), "invalid") != NULL, "validator says: %s",
	      mdgpu_host_last_error());
	CHECK_RET(mdgpu_host_kernel_create(dev, s.words, s.count / 2, 2, 8, &k), -EINVAL);
	CHECK_RET(mdgpu_host_kernel_create(dev, s.words, 3, 2, 8, &k), -EINVAL);
	CHECK_RET(mdgpu_host_kernel_create(dev, NULL, 0, 2, 8, &k), -EINVAL);
	/* Valid SPIR-V whose interface does not match what the caller declares. */
	CHECK_RET(mdgpu_host_kernel_create(dev, s.words, s.count, 1, 8, &k), -EINVAL);
	CHECK(strstr(mdgpu_host_last_error(), "binding 1") != NULL, "%s", mdgpu_host_last_error());
	CHECK_RET(mdgpu_host_kernel_create(dev, s.words, s.count, 2, 4, &k), -EINVAL);
	CHECK(strstr(mdgpu_host_last_error(), "push-constant block is 8") != NULL, "%s",
	      mdgpu_host_last_error());
	CHECK_RET(mdgpu_host_kernel_create(dev, s.words, s.count, 2, 6, &k), -EINVAL);
	CHECK_RET(mdgpu_host_kernel_create(dev, s.words, s.count, 2, 132, &k), -EINVAL);
	CHECK_RET(mdgpu_host_kernel_create(dev, s.words, s.count, 99, 8, &k), -E2BIG);
	CHECK_RET(mdgpu_host_kernel_create(dev, s.words, MDGPU_HOST_MAX_SPIRV_WORDS + 1, 2, 8, &k),
		  -E2BIG);
	CHECK_RET(mdgpu_host_kernel_create(0, s.words, s.count, 2, 8, &k), -ENOENT);
	/* More bindings and push constants than the kernel uses are fine. */
	CHECK_RET(mdgpu_host_kernel_create(dev, s.words, s.count, 4, 16, &k), 0);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, k), 0);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, k), -ENOENT);
	free(s.words);
}

static void test_bad_submissions(uint32_t dev)
{
	struct aperture ap = aperture_new(1 << 20);
	struct mdgpu_host_binding b[2];
	struct mdgpu_host_status st;
	struct mdgpu_host_cmd c;
	uint32_t mem, gone, push[2] = { 16, 0 };
	uint64_t id = 5;

	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, ap.size, 0, &mem), 0);
	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, 4096, 0, &gone), 0);
	CHECK_RET(mdgpu_host_memory_destroy(dev, gone), 0);
	b[0] = bind(mem, 0, 64);
	b[1] = bind(mem, 4096, 64);

#define SUBMIT(cmd, want)                                                           \
	do {                                                                        \
		c = (cmd);                                                          \
		CHECK_RET(mdgpu_host_submit(dev, &c, 1, b, 2, push, 8, &id), want); \
	} while (0)

	SUBMIT(((struct mdgpu_host_cmd){ .op = 99 }), -EINVAL);
	SUBMIT(((struct mdgpu_host_cmd){ .op = 0 }), -EINVAL);
	SUBMIT(((struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_BARRIER, .flags = 1 }), -EINVAL);
	CHECK(id == 0, "id zeroed on failure");
	/* COPY */
	SUBMIT(((struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_COPY, .u.copy = { 0, mem, 0, 0, 4 } }),
	       -ENOENT);
	SUBMIT(((struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_COPY,
					 .u.copy = { mem, gone, 0, 0, 4 } }),
	       -ENOENT);
	SUBMIT(((struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_COPY,
					 .u.copy = { mem, 0xfff00001u, 0, 0, 4 } }),
	       -ENOENT);
	SUBMIT(((struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_COPY,
					 .u.copy = { mem, mem, 0, 8, 0 } }),
	       -EINVAL);
	SUBMIT(((struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_COPY,
					 .u.copy = { mem, mem, 0, 8, 16 } }),
	       -EINVAL);
	SUBMIT(((struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_COPY,
					 .u.copy = { mem, mem, ap.size - 4, 0, 8 } }),
	       -EINVAL);
	SUBMIT(((struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_COPY,
					 .u.copy = { mem, mem, 8, UINT64_MAX - 2, 8 } }),
	       -EINVAL);
	/* FILL */
	SUBMIT(((struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_FILL, .u.fill = { mem, 0, 2, 4 } }),
	       -EINVAL);
	SUBMIT(((struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_FILL, .u.fill = { mem, 0, 0, 6 } }),
	       -EINVAL);
	SUBMIT(((struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_FILL,
					 .u.fill = { mem, 0, ap.size, 4 } }),
	       -EINVAL);
	SUBMIT(((struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_FILL, .u.fill = { gone, 0, 0, 4 } }),
	       -ENOENT);
	/* TIMESTAMP */
	SUBMIT(((struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_TIMESTAMP,
					 .u.timestamp = { mem, 0, 4 } }),
	       -EINVAL);
	SUBMIT(((struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_TIMESTAMP,
					 .u.timestamp = { mem, 0, ap.size } }),
	       -EINVAL);
	SUBMIT(((struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_TIMESTAMP,
					 .u.timestamp = { mem, 1, 0 } }),
	       -EINVAL);
	/* DISPATCH */
	SUBMIT(dispatch(0, 1, 1, 1, 0, 2, 0, 4), -ENOENT);
	SUBMIT(dispatch((k_memcpy & 0xfffffu) | (0xabcu << 20), 1, 1, 1, 0, 2, 0, 4),
	       -ENOENT); /* stale generation */
	SUBMIT(dispatch(k_memcpy, 1, 1, 1, 0, 1, 0, 4), -EINVAL); /* binding count */
	SUBMIT(dispatch(k_memcpy, 1, 1, 1, 1, 2, 0, 4), -EINVAL); /* past the bindings */
	SUBMIT(dispatch(k_memcpy, 1, 1, 1, 0, 2, 0, 8), -EINVAL); /* push size */
	SUBMIT(dispatch(k_memcpy, 1, 1, 1, 0, 2, 6, 4), -EINVAL); /* push past the data */
	SUBMIT(dispatch(k_memcpy, 1u << 31, 1, 1, 0, 2, 0, 4), -E2BIG); /* groups */
	b[1] = bind(mem, 4100, 64); /* misaligned offset */
	SUBMIT(dispatch(k_memcpy, 1, 1, 1, 0, 2, 0, 4), -EINVAL);
	b[1] = bind(mem, ap.size - 32, 64); /* past the end */
	SUBMIT(dispatch(k_memcpy, 1, 1, 1, 0, 2, 0, 4), -EINVAL);
	b[1] = bind(gone, 0, 64);
	SUBMIT(dispatch(k_memcpy, 1, 1, 1, 0, 2, 0, 4), -ENOENT);
	b[1] = bind(mem, 4096, 64);
	b[1].pad = 1;
	SUBMIT(dispatch(k_memcpy, 1, 1, 1, 0, 2, 0, 4), -EINVAL);
	b[1].pad = 0;
	/* Call-level errors. */
	c = barrier();
	CHECK_RET(mdgpu_host_submit(dev, &c, 0, NULL, 0, NULL, 0, &id), -EINVAL);
	CHECK_RET(mdgpu_host_submit(dev, NULL, 1, NULL, 0, NULL, 0, &id), -EINVAL);
	CHECK_RET(mdgpu_host_submit(dev, &c, 1, NULL, 3, NULL, 0, &id), -EINVAL);
	CHECK_RET(mdgpu_host_submit(dev, &c, 1, NULL, 0, NULL, 4, &id), -EINVAL);
	CHECK_RET(mdgpu_host_submit(dev, &c, 1, NULL, 0, NULL, 0, NULL), -EINVAL);
	CHECK_RET(mdgpu_host_submit(dev, &c, MDGPU_HOST_MAX_COMMANDS + 1, NULL, 0, NULL, 0, &id),
		  -E2BIG);
	CHECK_RET(mdgpu_host_submit(0, &c, 1, NULL, 0, NULL, 0, &id), -ENOENT);
	CHECK_RET(mdgpu_host_submit(0xdeadbeef, &c, 1, NULL, 0, NULL, 0, &id), -ENOENT);
	CHECK_RET(mdgpu_host_wait(dev, 123456, 0, &st), -ENOENT);
	CHECK_RET(mdgpu_host_poll(0, 1, &st), -ENOENT);
	CHECK_RET(mdgpu_host_poll(dev, 1, NULL), -EINVAL);

	/* After all those failures, a good dispatch still runs (no leaked stamps or refs). */
	SUBMIT(dispatch(k_memcpy, 1, 1, 1, 0, 2, 0, 4), 0);
	CHECK_RET(mdgpu_host_wait(dev, id, UINT64_MAX, &st), 0);
	CHECK(st.submission == id && st.result == 0, "good submission after bad ones");
	CHECK_RET(mdgpu_host_wait(dev, id, UINT64_MAX, &st), -ENOENT); /* collected once */
	CHECK_RET(mdgpu_host_memory_destroy(dev, mem), 0);
	aperture_free(&ap);
#undef SUBMIT
}

/* Handles destroyed while their submission runs; poll; the in-flight limit. */
static void test_lifetimes(uint32_t dev)
{
	struct aperture ap = aperture_new(16 << 20);
	struct mdgpu_host_status st;
	uint32_t mem, k, n = 1 << 20;
	struct spirv s = load_spirv("memcpy");
	struct mdgpu_host_binding b[2];
	struct mdgpu_host_cmd c = dispatch(0, (n + 63) / 64, 1, 1, 0, 2, 0, 4);
	uint64_t ids[MDGPU_HOST_MAX_INFLIGHT + 1], id;
	int r, pending = 0;

	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, ap.size, 0, &mem), 0);
	CHECK_RET(mdgpu_host_kernel_create(dev, s.words, s.count, 2, 4, &k), 0);
	free(s.words);
	c.u.dispatch.kernel = k;
	b[0] = bind(mem, 0, (uint64_t)n * 4);
	b[1] = bind(mem, 8 << 20, (uint64_t)n * 4);
	for (uint32_t i = 0; i < n; i++)
		((uint32_t *)ap.base)[i] = i ^ 0x5a5a5a5a;
	CHECK_RET(mdgpu_host_submit(dev, &c, 1, b, 2, &n, 4, &id), 0);
	r = mdgpu_host_poll(dev, id, &st);
	CHECK(r == -EAGAIN || r == 0, "poll: %d", r);
	pending = r == -EAGAIN;
	/* Both handles die while the device may still use them: the objects live on. */
	CHECK_RET(mdgpu_host_kernel_destroy(dev, k), 0);
	CHECK_RET(mdgpu_host_memory_destroy(dev, mem), 0);
	if (pending) {
		CHECK_RET(mdgpu_host_wait(dev, id, UINT64_MAX, &st), 0);
		CHECK(st.result == 0, "result %d", st.result);
	}
	CHECK(((uint32_t *)(ap.base + (8 << 20)))[n - 1] == ((n - 1) ^ 0x5a5a5a5a), "copied");

	/* MDGPU_HOST_MAX_INFLIGHT uncollected submissions, then -EAGAIN. */
	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, ap.size, 0, &mem), 0);
	c = (struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_FILL, .u.fill = { mem, 1, 0, 4096 } };
	for (uint32_t i = 0; i < MDGPU_HOST_MAX_INFLIGHT; i++)
		CHECK_RET(mdgpu_host_submit(dev, &c, 1, NULL, 0, NULL, 0, &ids[i]), 0);
	CHECK_RET(mdgpu_host_submit(dev, &c, 1, NULL, 0, NULL, 0, &id), -EAGAIN);
	for (uint32_t i = 0; i < MDGPU_HOST_MAX_INFLIGHT; i++)
		CHECK_RET(mdgpu_host_wait(dev, ids[i], UINT64_MAX, &st), 0);
	CHECK(ids[MDGPU_HOST_MAX_INFLIGHT - 1] == ids[0] + MDGPU_HOST_MAX_INFLIGHT - 1,
	      "ids count up");
	CHECK_RET(mdgpu_host_submit(dev, &c, 1, NULL, 0, NULL, 0, &id), 0);
	CHECK_RET(mdgpu_host_wait(dev, id, UINT64_MAX, &st), 0);
	CHECK_RET(mdgpu_host_memory_destroy(dev, mem), 0);
	aperture_free(&ap);
}

struct waiter {
	uint32_t dev;
	uint64_t id;
	int ret;
	struct mdgpu_host_status st;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;

	w->ret = mdgpu_host_wait(w->dev, w->id, UINT64_MAX, &w->st);
	return NULL;
}

/* A thread waits on a long gemm while this one keeps submitting and collecting. */
static void test_threads(uint32_t dev)
{
	struct aperture ap = aperture_new(16 << 20);
	uint32_t mem, M = 384, push[3] = { M, M, M };
	uint64_t sz = (uint64_t)M * M * 4;
	struct mdgpu_host_binding b[3];
	struct mdgpu_host_cmd g = dispatch(k_gemm, M / 16, M / 16, 1, 0, 3, 0, 12);
	struct mdgpu_host_cmd f;
	struct mdgpu_host_status st;
	struct waiter w = { .dev = dev };
	pthread_t t;
	uint64_t id;
	int r;

	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, ap.size, 0, &mem), 0);
	b[0] = bind(mem, 0, sz);
	b[1] = bind(mem, 1 << 20, sz);
	b[2] = bind(mem, 2 << 20, sz);
	f = (struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_FILL,
				     .u.fill = { mem, 7, 4 << 20, 4096 } };
	CHECK_RET(mdgpu_host_submit(dev, &g, 1, b, 3, push, 12, &w.id), 0);
	pthread_create(&t, NULL, wait_thread, &w);
	CHECK_RET(mdgpu_host_submit(dev, &f, 1, NULL, 0, NULL, 0, &id), 0);
	do {
		r = mdgpu_host_poll(dev, id, &st);
	} while (r == -EAGAIN);
	CHECK(r == 0, "poll from the main thread while another waits: %d", r);
	pthread_join(t, NULL);
	CHECK(w.ret == 0 && w.st.result == 0 && w.st.submission == w.id, "thread wait: %d", w.ret);
	printf("gemm %u on one thread while another submitted: device %.2f ms\n", M,
	       (double)w.st.device_ns / 1e6);
	CHECK_RET(mdgpu_host_memory_destroy(dev, mem), 0);
	aperture_free(&ap);
}

/* Destroying a device with work in flight waits for the work before it returns the memory. */
static void test_destroy_in_flight(void)
{
	struct aperture ap = aperture_new(8 << 20);
	struct spirv s = load_spirv("gemm");
	uint32_t dev, mem, k, M = 256, push[3] = { M, M, M };
	uint64_t sz = (uint64_t)M * M * 4, id;
	struct mdgpu_host_binding b[3];
	struct mdgpu_host_cmd g;

	CHECK_RET(mdgpu_host_device_open(NULL, 0, &dev), 0);
	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, ap.size, 0, &mem), 0);
	CHECK_RET(mdgpu_host_kernel_create(dev, s.words, s.count, 3, 12, &k), 0);
	free(s.words);
	b[0] = bind(mem, 0, sz);
	b[1] = bind(mem, 1 << 20, sz);
	b[2] = bind(mem, 2 << 20, sz);
	for (uint32_t i = 0; i < M * M; i++) {
		((float *)ap.base)[i] = 1.0f;
		((float *)(ap.base + (1 << 20)))[i] = 2.0f;
	}
	g = dispatch(k, M / 16, M / 16, 1, 0, 3, 0, 12);
	CHECK_RET(mdgpu_host_submit(dev, &g, 1, b, 3, push, 12, &id), 0);
	CHECK_RET(mdgpu_host_submit(dev, &g, 1, b, 3, push, 12, &id), 0);
	CHECK_RET(mdgpu_host_device_destroy(dev), 0);
	CHECK(((float *)(ap.base + (2 << 20)))[M * M - 1] == 2.0f * (float)M, "work finished");
	CHECK_RET(mdgpu_host_wait(dev, id, 0, &(struct mdgpu_host_status){ 0 }), -ENOENT);
	aperture_free(&ap);
}

int main(int argc, char **argv)
{
	const char *selector = argc > 2 ? argv[2] : NULL;
	struct aperture ap;
	uint32_t dev, mem;

	if (argc < 2) {
		fprintf(stderr, "usage: test-host KERNEL_DIR [DEVICE]\n");
		return 2;
	}
	kernel_dir = argv[1];
	if (mdgpu_host_device_open(selector, 0, &dev)) {
		printf("FAIL: no device: %s\n0 passed, 1 failed\n", mdgpu_host_last_error());
		return 1;
	}
	test_info(dev);
	test_open_errors();
	create_kernels(dev);

	ap = aperture_new(64 << 20);
	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, ap.size, 0, &mem), 0);
	test_saxpy(dev, mem, ap.base, 1000003);
	test_memcpy(dev, mem, ap.base, 1 << 20, 32 << 20);
	test_memcpy(dev, mem, ap.base, 1000, 4096);
	test_gemm(dev, mem, ap.base, 67, 45, 33);
	test_gemm(dev, mem, ap.base, 128, 128, 128);
	test_reduce(dev, mem, ap.base, 1 << 22, 1024);
	test_reduce(dev, mem, ap.base, 1001, 7);
	test_out_of_bounds(dev, mem, ap.base);
	CHECK_RET(mdgpu_host_memory_destroy(dev, mem), 0);
	aperture_free(&ap);

	test_memory(dev);
	test_cpu_timestamps();
	test_bad_spirv(dev);
	test_bad_submissions(dev);
	test_lifetimes(dev);
	test_threads(dev);
	test_destroy_in_flight();

	CHECK_RET(mdgpu_host_device_destroy(dev), 0);
	CHECK_RET(mdgpu_host_device_destroy(dev), -ENOENT);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
