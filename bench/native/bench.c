// SPDX-License-Identifier: MIT
/*
 * mdgpu-native-bench: the "native" column of the guest-vs-native comparison.
 *
 * Runs the guest kernels (guest-driver/kernels) through libmdgpu-host directly — no VM, no
 * mdgpu — on memory imported the way mdgpu imports its aperture (a memfd mapped shared,
 * zero copy where the device allows), at sizes where the kernel dominates. Each kernel runs
 * once to warm up and be checked against a CPU reference, then N timed iterations, one
 * submission each. Prints a table and one machine line per kernel:
 *
 *   MDGPU-NATIVE kernel=<k> size=<s> ns=<median ns> ok=<0|1> device_ns=<median> iters=<n>
 *
 * ns is the median wall time from submit to the wait returning (what a guest can measure
 * too); device_ns the median of the device's own begin/end timestamps for the batch.
 * size: saxpy, reduce: elements; gemm: M = N = K; memcpy: bytes.
 *
 *   mdgpu-native-bench [-d DEVICE] [-n ITERS] [-k saxpy,gemm,reduce,memcpy] [--small]
 *                      [--kernels DIR]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "mdgpu_host.h"

#ifndef KERNEL_DIR
#define KERNEL_DIR "guest-driver/kernels/build"
#endif

static uint32_t dev, mem;
static uint8_t *base;
static size_t aperture_size;
static const char *kernel_dir = KERNEL_DIR;

static void die(const char *what)
{
	fprintf(stderr, "mdgpu-native-bench: %s: %s\n", what, mdgpu_host_last_error());
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t load_kernel(const char *name, uint32_t bindings, uint32_t push)
{
	struct mdgpu_host_kernel_desc desc;
	char path[1024];
	uint32_t *words, k;
	FILE *f;
	long size;

	snprintf(path, sizeof(path), "%s/%s.spv", kernel_dir, name);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr,
			"mdgpu-native-bench: cannot open %s (make -C guest-driver/kernels)\n",
			path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	words = malloc((size_t)size);
	if (!words || fread(words, 1, (size_t)size, f) != (size_t)size)
		exit(1);
	fclose(f);
	/* As mdgpu builds a contract 1.1 kernel: kernel_create2 with its bindings declared. */
	desc = (struct mdgpu_host_kernel_desc){
		.words = words,
		.word_count = (uint32_t)(size / 4),
		.push_size = push,
		.legacy_bindings = (int32_t)bindings,
	};
	if (mdgpu_host_kernel_create2(dev, &desc, &k, NULL, 0))
		die(name);
	free(words);
	return k;
}

static struct mdgpu_host_binding bind(uint64_t offset, uint64_t size)
{
	return (struct mdgpu_host_binding){ .mem = mem, .offset = offset, .size = size };
}

static struct mdgpu_host_cmd dispatch(uint32_t kernel, uint32_t gx, uint32_t gy, uint32_t first,
				      uint32_t count, uint32_t push_offset, uint32_t push_size)
{
	return (struct mdgpu_host_cmd){
		.op = MDGPU_HOST_OP_DISPATCH,
		.u.dispatch = { kernel, gx, gy, 1, first, count, push_offset, push_size },
	};
}

/* 1D dispatch of n / 64 groups as an x-y grid (the kernels flatten it). */
static void grid(uint32_t n, uint32_t *gx, uint32_t *gy)
{
	uint32_t groups = (n + 63) / 64;

	*gx = groups > 65535 ? 65535 : groups;
	*gy = (groups + *gx - 1) / *gx;
}

struct batch {
	struct mdgpu_host_cmd cmds[4];
	uint32_t cmd_count;
	struct mdgpu_host_binding binds[4];
	uint32_t bind_count;
	uint32_t push[4];
	uint32_t push_size;
};

/*
 * Submit and wait: wall ns, device ns. The batch goes through mdgpu_host_submit2, as mdgpu's
 * do: each DISPATCH becomes a DISPATCH2 whose bindings are descriptors of set 0 (outside the
 * timed part).
 */
static void run(const struct batch *b, uint64_t *wall, uint64_t *device)
{
	struct mdgpu_host_cmd2 cmds[4] = { 0 };
	struct mdgpu_host_descriptor descs[4] = { 0 };
	struct mdgpu_host_status st;
	uint64_t id, t0;

	for (uint32_t i = 0; i < b->cmd_count; i++) {
		const struct mdgpu_host_cmd_dispatch *a = &b->cmds[i].u.dispatch;

		cmds[i].op = b->cmds[i].op;
		if (b->cmds[i].op != MDGPU_HOST_OP_DISPATCH)
			continue;
		cmds[i].op = MDGPU_HOST_OP_DISPATCH2;
		cmds[i].u.dispatch2 = (struct mdgpu_host_cmd_dispatch2){
			.kernel = a->kernel,
			.first_descriptor = a->first_binding,
			.descriptor_count = a->binding_count,
			.push_offset = a->push_offset,
			.push_size = a->push_size,
			.groups = { a->group_count_x, a->group_count_y, a->group_count_z },
		};
		for (uint32_t j = 0; j < a->binding_count; j++) {
			const struct mdgpu_host_binding *bd = &b->binds[a->first_binding + j];

			descs[a->first_binding + j] = (struct mdgpu_host_descriptor){
				.mem = bd->mem,
				.binding = j,
				.type = MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER,
				.offset = bd->offset,
				.range = bd->size,
			};
		}
	}
	t0 = now_ns();
	if (mdgpu_host_submit2(dev, cmds, b->cmd_count, descs, b->bind_count, b->push, b->push_size,
			       &id))
		die("submit");
	if (mdgpu_host_wait(dev, id, UINT64_MAX, &st) || st.result)
		die("wait");
	*wall = now_ns() - t0;
	*device = st.device_ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, uint32_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static float frand(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return (float)(*s >> 8) / 8388608.0f - 1.0f;
}

struct result {
	const char *kernel;
	uint64_t size;
	uint64_t wall_ns;
	uint64_t device_ns;
	uint64_t min_device_ns;
	double work; /* bytes moved or flops, per iteration */
	const char *unit; /* "GB/s" or "GFLOP/s" */
	bool ok;
};

static void timed(const struct batch *b, uint32_t iters, struct result *r)
{
	uint64_t *wall = calloc(iters, sizeof(*wall)), *device = calloc(iters, sizeof(*device));

	for (uint32_t i = 0; i < iters; i++)
		run(b, &wall[i], &device[i]);
	r->wall_ns = median(wall, iters);
	r->device_ns = median(device, iters);
	r->min_device_ns = device[0];
	free(wall);
	free(device);
}

static void bench_saxpy(uint32_t n, uint32_t iters, struct result *r)
{
	uint32_t k = load_kernel("saxpy", 2, 8), gx, gy, seed = 1, bad = 0;
	uint64_t bytes = (uint64_t)n * 4;
	float *x = (float *)base, *y = (float *)(base + bytes), a = 0.5f;
	struct batch b = { .cmd_count = 1, .bind_count = 2, .push_size = 8 };
	uint64_t w, d;

	grid(n, &gx, &gy);
	b.cmds[0] = dispatch(k, gx, gy, 0, 2, 0, 8);
	b.binds[0] = bind(0, bytes);
	b.binds[1] = bind(bytes, bytes);
	b.push[0] = n;
	memcpy(&b.push[1], &a, 4);
	for (uint32_t i = 0; i < n; i++) {
		x[i] = frand(&seed);
		y[i] = frand(&seed);
	}
	/* Warm-up run, checked: y1 = a*x + y0 (y0 regenerated from the same seed). */
	run(&b, &w, &d);
	seed = 1;
	for (uint32_t i = 0; i < n; i++) {
		float xi = frand(&seed), y0 = frand(&seed), want = a * xi + y0;

		bad += fabsf(y[i] - want) > 1e-6f * (1 + fabsf(want));
	}
	timed(&b, iters, r);
	*r = (struct result){ "saxpy",		n,
			      r->wall_ns,	r->device_ns,
			      r->min_device_ns, 3.0 * (double)bytes,
			      "GB/s",		bad == 0 };
	mdgpu_host_kernel_destroy(dev, k);
}

static void bench_memcpy(uint64_t bytes, uint32_t iters, struct result *r)
{
	uint32_t k = load_kernel("memcpy", 2, 4), n = (uint32_t)(bytes / 4), gx, gy, bad = 0;
	uint32_t *src = (uint32_t *)base, *dst = (uint32_t *)(base + bytes);
	struct batch b = { .cmd_count = 1, .bind_count = 2, .push_size = 4 };
	uint64_t w, d;

	grid(n, &gx, &gy);
	b.cmds[0] = dispatch(k, gx, gy, 0, 2, 0, 4);
	b.binds[0] = bind(0, bytes);
	b.binds[1] = bind(bytes, bytes);
	b.push[0] = n;
	for (uint32_t i = 0; i < n; i++) {
		src[i] = i * 2654435761u;
		dst[i] = 0;
	}
	run(&b, &w, &d);
	for (uint32_t i = 0; i < n; i++)
		bad += dst[i] != src[i];
	timed(&b, iters, r);
	*r = (struct result){ "memcpy",		bytes,
			      r->wall_ns,	r->device_ns,
			      r->min_device_ns, 2.0 * (double)bytes,
			      "GB/s",		bad == 0 };
	mdgpu_host_kernel_destroy(dev, k);
}

static void bench_gemm(uint32_t m, uint32_t iters, struct result *r)
{
	uint32_t k = load_kernel("gemm", 3, 12), seed = 3, bad = 0;
	uint64_t sz = (uint64_t)m * m * 4, boff = (sz + 4095) & ~4095ull, coff = 2 * boff;
	float *A = (float *)base, *B = (float *)(base + boff), *C = (float *)(base + coff);
	struct batch b = { .cmd_count = 1, .bind_count = 3, .push_size = 12 };
	uint64_t w, d;

	b.cmds[0] = dispatch(k, (m + 15) / 16, (m + 15) / 16, 0, 3, 0, 12);
	b.binds[0] = bind(0, sz);
	b.binds[1] = bind(boff, sz);
	b.binds[2] = bind(coff, sz);
	b.push[0] = b.push[1] = b.push[2] = m;
	for (uint64_t i = 0; i < (uint64_t)m * m; i++) {
		A[i] = frand(&seed);
		B[i] = frand(&seed);
	}
	run(&b, &w, &d);
	/* Spot check 1024 elements against a double-precision CPU dot product. */
	for (uint32_t t = 0; t < 1024; t++) {
		uint32_t i = (t * 7919u) % m, j = (t * 104729u) % m;
		double acc = 0;

		for (uint32_t kk = 0; kk < m; kk++)
			acc += (double)A[(uint64_t)i * m + kk] * B[(uint64_t)kk * m + j];
		bad += fabs(C[(uint64_t)i * m + j] - acc) > 1e-3 * (1 + fabs(acc));
	}
	timed(&b, iters, r);
	*r = (struct result){ "gemm",		m,
			      r->wall_ns,	r->device_ns,
			      r->min_device_ns, 2.0 * (double)m * m * m,
			      "GFLOP/s",	bad == 0 };
	mdgpu_host_kernel_destroy(dev, k);
}

static void bench_reduce(uint32_t n, uint32_t iters, struct result *r)
{
	uint32_t k = load_kernel("reduce", 2, 4), groups = 1024;
	uint64_t bytes = (uint64_t)n * 4, poff = (bytes + 4095) & ~4095ull, roff = poff + 4096;
	float *in = (float *)base, *result = (float *)(base + roff);
	struct batch b = { .cmd_count = 3, .bind_count = 4, .push_size = 8 };
	double want = 0;
	uint64_t w, d;

	b.cmds[0] = dispatch(k, groups, 1, 0, 2, 0, 4);
	b.cmds[1] = (struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_BARRIER };
	b.cmds[2] = dispatch(k, 1, 1, 2, 2, 4, 4);
	b.binds[0] = bind(0, bytes);
	b.binds[1] = bind(poff, groups * 4);
	b.binds[2] = bind(poff, groups * 4);
	b.binds[3] = bind(roff, 4);
	b.push[0] = n;
	b.push[1] = groups;
	for (uint32_t i = 0; i < n; i++) {
		in[i] = (float)((int)(i % 5) - 2 + (i % 3 == 0)); /* small integers: exact sums */
		want += in[i];
	}
	run(&b, &w, &d);
	timed(&b, iters, r);
	*r = (struct result){ "reduce",		n,
			      r->wall_ns,	r->device_ns,
			      r->min_device_ns, (double)bytes,
			      "GB/s",		*result == (float)want };
	mdgpu_host_kernel_destroy(dev, k);
}

static bool wanted(const char *list, const char *k)
{
	size_t n = strlen(k);

	for (const char *p = list; (p = strstr(p, k)); p += n)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	const char *selector = NULL, *kernels = "saxpy,gemm,reduce,memcpy";
	struct mdgpu_host_device_info info;
	struct mdgpu_host_memory_info mi;
	struct result res[8];
	uint32_t iters = 10, count = 0;
	bool small = false;
	int fd;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-d") && i + 1 < argc)
			selector = argv[++i];
		else if (!strcmp(argv[i], "-n") && i + 1 < argc)
			iters = (uint32_t)atoi(argv[++i]);
		else if (!strcmp(argv[i], "-k") && i + 1 < argc)
			kernels = argv[++i];
		else if (!strcmp(argv[i], "--kernels") && i + 1 < argc)
			kernel_dir = argv[++i];
		else if (!strcmp(argv[i], "--small"))
			small = true;
		else {
			fprintf(stderr,
				"usage: %s [-d DEVICE] [-n ITERS] [-k saxpy,gemm,reduce,memcpy]"
				" [--small] [--kernels DIR]\n",
				argv[0]);
			return 2;
		}
	}
	if (iters < 1)
		iters = 1;
	if (mdgpu_host_device_open(selector, 0, &dev))
		die("device_open");
	mdgpu_host_device_info(dev, &info);

	/* The aperture: a memfd mapped shared, imported once, as mdgpu does. */
	aperture_size = 256u << 20;
	fd = memfd_create("mdgpu-native-bench", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)aperture_size) < 0)
		return perror("memfd"), 1;
	base = mmap(NULL, aperture_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return perror("mmap"), 1;
	if (mdgpu_host_memory_import(dev, base, aperture_size, 0, &mem))
		die("memory_import");
	mdgpu_host_memory_info(dev, mem, &mi);
	printf("device: %s (%s), aperture %zu MiB %s, %u iterations per kernel\n\n", info.name,
	       info.driver_info, aperture_size >> 20,
	       (mi.flags & MDGPU_HOST_MEMORY_ZERO_COPY) ? "zero copy" : "staged", iters);

	if (wanted(kernels, "saxpy"))
		bench_saxpy(small ? 1u << 20 : 16u << 20, iters, &res[count++]);
	if (wanted(kernels, "gemm")) {
		bench_gemm(small ? 128 : 512, iters, &res[count++]);
		if (!small)
			bench_gemm(1024, iters, &res[count++]);
	}
	if (wanted(kernels, "reduce"))
		bench_reduce(small ? 1u << 20 : 16u << 20, iters, &res[count++]);
	if (wanted(kernels, "memcpy"))
		bench_memcpy(small ? 4u << 20 : 64u << 20, iters, &res[count++]);

	printf("%-8s %12s %12s %12s %12s %14s  %s\n", "kernel", "size", "median ms", "device ms",
	       "min dev ms", "throughput", "check");
	for (uint32_t i = 0; i < count; i++) {
		const struct result *r = &res[i];
		double rate = r->device_ns ? r->work / (double)r->device_ns : 0; /* per ns = G/s */

		printf("%-8s %12llu %12.3f %12.3f %12.3f %8.2f %-7s %s\n", r->kernel,
		       (unsigned long long)r->size, (double)r->wall_ns / 1e6,
		       (double)r->device_ns / 1e6, (double)r->min_device_ns / 1e6, rate, r->unit,
		       r->ok ? "ok" : "WRONG");
	}
	printf("\n");
	for (uint32_t i = 0; i < count; i++)
		printf("MDGPU-NATIVE kernel=%s size=%llu ns=%llu ok=%d device_ns=%llu iters=%u\n",
		       res[i].kernel, (unsigned long long)res[i].size,
		       (unsigned long long)res[i].wall_ns, res[i].ok ? 1 : 0,
		       (unsigned long long)res[i].device_ns, iters);

	mdgpu_host_memory_destroy(dev, mem);
	mdgpu_host_device_destroy(dev);
	munmap(base, aperture_size);
	close(fd);
	for (uint32_t i = 0; i < count; i++)
		if (!res[i].ok)
			return 1;
	return 0;
}
