// SPDX-License-Identifier: MIT
/*
 * test-host: libmdgpu-host on a real Vulkan device (Mesa lavapipe where there is no GPU).
 *
 *   build/test-host KERNEL_DIR [DEVICE]      (make -C host-driver test)
 *
 * Memory comes from a memfd mapped MAP_SHARED, exactly as mdgpu maps its aperture. Every
 * kernel runs on real data and is checked against a CPU reference; COPY, FILL, BARRIER and
 * TIMESTAMP are checked on zero-copy, staged and fd-imported memory; invalid SPIR-V and bad
 * handles must fail with the documented errno. Hostile SPIR-V (modules written to be slow to
 * validate, to exceed the device's limits, or with ids that point outside the module) is
 * assembled here from SPIR-V text with SPIRV-Tools and must be refused at once with the
 * documented errno and message. Prints one line per check that fails and ends with
 * "N passed, N failed"; exits 1 on any failure.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <spirv-tools/libspirv.h>

#include "check.h"
#include "mdgpu_host.h"

static const char *kernel_dir;

struct spirv {
	uint32_t *words;
	uint32_t count;
};

/* The words of the SPIR-V file at @path (@hint says how to make it when it is missing). */
static struct spirv read_spirv(const char *path, const char *hint)
{
	struct spirv s = { 0 };
	FILE *f;
	long size;

	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "test-host: cannot open %s (%s)\n", path, hint);
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

static struct spirv load_spirv(const char *name)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s.spv", kernel_dir, name);
	return read_spirv(path, "run make -C guest-driver/kernels");
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

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- SPIR-V text, assembled with SPIRV-Tools ---- */

/* A growing string for SPIR-V assembly text. */
struct text {
	char *s;
	size_t len;
	size_t cap;
};

static void __attribute__((format(printf, 2, 3))) tadd(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = t->cap - t->len;

		va_start(ap, fmt);
		n = vsnprintf(t->s ? t->s + t->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			fprintf(stderr, "test-host: vsnprintf failed\n");
			exit(2);
		}
		if ((size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		t->cap = (t->cap + (size_t)n + 1) * 2;
		t->s = realloc(t->s, t->cap);
		if (!t->s) {
			fprintf(stderr, "test-host: out of memory\n");
			exit(2);
		}
	}
}

/* Assemble SPIR-V text (version 1.3, the Vulkan 1.1 environment); frees @t. */
static struct spirv assemble(struct text *t)
{
	spv_context ctx = spvContextCreate(SPV_ENV_UNIVERSAL_1_3);
	spv_diagnostic diag = NULL;
	spv_binary bin = NULL;
	struct spirv s;

	if (spvTextToBinary(ctx, t->s, t->len, &bin, &diag) != SPV_SUCCESS) {
		fprintf(stderr, "test-host: cannot assemble a test module: line %zu: %s\n",
			diag ? diag->position.line + 1 : 0, diag ? diag->error : "?");
		exit(2);
	}
	s.count = (uint32_t)bin->wordCount;
	s.words = malloc(bin->wordCount * 4);
	memcpy(s.words, bin->code, bin->wordCount * 4);
	spvBinaryDestroy(bin);
	spvDiagnosticDestroy(diag);
	spvContextDestroy(ctx);
	free(t->s);
	*t = (struct text){ 0 };
	return s;
}

/*
 * A GLCompute kernel "main": @modes (default LocalSize 1 1 1), @annotations (decorations),
 * @types (after %void %fn %uint %int %float %bool, and the uint constants %c0 %c1 %c2), and
 * @body (the first block of main: Function variables first).
 */
static struct spirv kernel_text(const char *caps, const char *modes, const char *annotations,
				const char *types, const char *body)
{
	struct text t = { 0 };

	tadd(&t,
	     "OpCapability Shader\n%s"
	     "OpMemoryModel Logical GLSL450\n"
	     "OpEntryPoint GLCompute %%main \"main\"\n"
	     "%s\n%s\n"
	     "%%void = OpTypeVoid\n%%fn = OpTypeFunction %%void\n"
	     "%%uint = OpTypeInt 32 0\n%%int = OpTypeInt 32 1\n%%float = OpTypeFloat 32\n"
	     "%%bool = OpTypeBool\n%%c0 = OpConstant %%uint 0\n%%c1 = OpConstant %%uint 1\n"
	     "%%c2 = OpConstant %%uint 2\n"
	     "%s\n"
	     "%%main = OpFunction %%void None %%fn\n%%entry = OpLabel\n%s\nOpReturn\n"
	     "OpFunctionEnd\n",
	     caps ? caps : "", modes ? modes : "OpExecutionMode %main LocalSize 1 1 1",
	     annotations ? annotations : "", types ? types : "", body ? body : "");
	return assemble(&t);
}

/*
 * Structs nested @depth deep below a struct of one float (%S0), @width members of the one
 * below at each level, plus @extra floats at the top: width^depth + extra member paths, depth
 * + 1 levels. The top is a Block: @vars push-constant blocks, or storage buffers at binding 0,
 * the first of them loaded and stored whole @uses times.
 * nested_module(16, 3, 0, true, 1, 0) is the attack of issue 9 (F1): 3^16 paths, 1.5 KB.
 */
static struct spirv nested_module(uint32_t depth, uint32_t width, uint32_t extra, bool push,
				  uint32_t vars, uint32_t uses)
{
	const char *sc = push ? "PushConstant" : "StorageBuffer";
	struct text t = { 0 };
	uint64_t size = 4;

	tadd(&t,
	     "OpCapability Shader\nOpMemoryModel Logical GLSL450\n"
	     "OpEntryPoint GLCompute %%main \"main\"\n"
	     "OpExecutionMode %%main LocalSize 1 1 1\n"
	     "OpDecorate %%S%u Block\nOpMemberDecorate %%S0 0 Offset 0\n",
	     depth);
	for (uint32_t v = 0; v < vars && !push; v++)
		tadd(&t, "OpDecorate %%var%u DescriptorSet 0\nOpDecorate %%var%u Binding 0\n", v,
		     v);
	for (uint32_t k = 1; k <= depth; k++) {
		for (uint32_t m = 0; m < width; m++)
			tadd(&t, "OpMemberDecorate %%S%u %u Offset %llu\n", k, m,
			     (unsigned long long)(m * size));
		if (k == depth)
			for (uint32_t m = 0; m < extra; m++)
				tadd(&t, "OpMemberDecorate %%S%u %u Offset %llu\n", k, width + m,
				     (unsigned long long)(width * size + m * 4));
		size *= width;
	}
	tadd(&t, "%%void = OpTypeVoid\n%%fn = OpTypeFunction %%void\n"
		 "%%float = OpTypeFloat 32\n%%S0 = OpTypeStruct %%float\n");
	for (uint32_t k = 1; k <= depth; k++) {
		tadd(&t, "%%S%u = OpTypeStruct", k);
		for (uint32_t m = 0; m < width; m++)
			tadd(&t, " %%S%u", k - 1);
		if (k == depth)
			for (uint32_t m = 0; m < extra; m++)
				tadd(&t, " %%float");
		tadd(&t, "\n");
	}
	tadd(&t, "%%ptr = OpTypePointer %s %%S%u\n", sc, depth);
	for (uint32_t v = 0; v < vars; v++)
		tadd(&t, "%%var%u = OpVariable %%ptr %s\n", v, sc);
	tadd(&t, "%%main = OpFunction %%void None %%fn\n%%entry = OpLabel\n");
	for (uint32_t u = 0; u < uses; u++)
		tadd(&t, "%%x%u = OpLoad %%S%u %%var0\nOpStore %%var0 %%x%u\n", u, depth, u);
	tadd(&t, "OpReturn\nOpFunctionEnd\n");
	return assemble(&t);
}

static struct spirv nested_block(uint32_t depth, uint32_t width, uint32_t extra, bool push)
{
	return nested_module(depth, width, extra, push, 1, 0);
}

/*
 * A valid kernel that is slow for the driver to compile (and quick to run): out[i] goes
 * through a chain of @n dependent multiply-adds. ~1 s for lavapipe at n = 40000 (1.6 MB).
 */
static struct spirv slow_kernel(uint32_t n)
{
	struct text t = { 0 };

	tadd(&t,
	     "OpCapability Shader\nOpMemoryModel Logical GLSL450\n"
	     "OpEntryPoint GLCompute %%main \"main\" %%gid\n"
	     "OpExecutionMode %%main LocalSize 64 1 1\n"
	     "OpDecorate %%gid BuiltIn GlobalInvocationId\nOpDecorate %%rt ArrayStride 4\n"
	     "OpMemberDecorate %%B 0 Offset 0\nOpDecorate %%B Block\n"
	     "OpDecorate %%buf DescriptorSet 0\nOpDecorate %%buf Binding 0\n"
	     "%%void = OpTypeVoid\n%%fn = OpTypeFunction %%void\n%%uint = OpTypeInt 32 0\n"
	     "%%float = OpTypeFloat 32\n%%v3 = OpTypeVector %%uint 3\n"
	     "%%pin = OpTypePointer Input %%v3\n%%gid = OpVariable %%pin Input\n"
	     "%%rt = OpTypeRuntimeArray %%float\n%%B = OpTypeStruct %%rt\n"
	     "%%pB = OpTypePointer StorageBuffer %%B\n%%pf = OpTypePointer StorageBuffer %%float\n"
	     "%%buf = OpVariable %%pB StorageBuffer\n%%c0 = OpConstant %%uint 0\n"
	     "%%k1 = OpConstant %%float 1.0001\n%%k2 = OpConstant %%float 0.5\n"
	     "%%main = OpFunction %%void None %%fn\n%%entry = OpLabel\n"
	     "%%g = OpLoad %%v3 %%gid\n%%i = OpCompositeExtract %%uint %%g 0\n"
	     "%%p = OpAccessChain %%pf %%buf %%c0 %%i\n%%x0 = OpLoad %%float %%p\n");
	for (uint32_t k = 1; k <= n; k++)
		tadd(&t, "%%m%u = OpFMul %%float %%x%u %%k1\n%%x%u = OpFAdd %%float %%m%u %%k2\n",
		     k, k - 1, k, k);
	tadd(&t, "OpStore %%p %%x%u\nOpReturn\nOpFunctionEnd\n", n);
	return assemble(&t);
}

/*
 * dst[i + wshift] = src[i + rshift] for i < n (push constants n, rshift, wshift; 64 per
 * workgroup): reads and writes as far outside its bindings as a guest likes.
 */
static const char robust_kernel_text[] = "OpCapability Shader\n"
					 "OpMemoryModel Logical GLSL450\n"
					 "OpEntryPoint GLCompute %main \"main\" %gid\n"
					 "OpExecutionMode %main LocalSize 64 1 1\n"
					 "OpDecorate %gid BuiltIn GlobalInvocationId\n"
					 "OpDecorate %rt ArrayStride 4\n"
					 "OpMemberDecorate %Buf 0 Offset 0\n"
					 "OpDecorate %Buf Block\n"
					 "OpDecorate %src DescriptorSet 0\n"
					 "OpDecorate %src Binding 0\n"
					 "OpDecorate %dst DescriptorSet 0\n"
					 "OpDecorate %dst Binding 1\n"
					 "OpMemberDecorate %P 0 Offset 0\n"
					 "OpMemberDecorate %P 1 Offset 4\n"
					 "OpMemberDecorate %P 2 Offset 8\n"
					 "OpDecorate %P Block\n"
					 "%void = OpTypeVoid\n"
					 "%fn = OpTypeFunction %void\n"
					 "%uint = OpTypeInt 32 0\n"
					 "%bool = OpTypeBool\n"
					 "%v3uint = OpTypeVector %uint 3\n"
					 "%pin = OpTypePointer Input %v3uint\n"
					 "%gid = OpVariable %pin Input\n"
					 "%rt = OpTypeRuntimeArray %uint\n"
					 "%Buf = OpTypeStruct %rt\n"
					 "%pBuf = OpTypePointer StorageBuffer %Buf\n"
					 "%src = OpVariable %pBuf StorageBuffer\n"
					 "%dst = OpVariable %pBuf StorageBuffer\n"
					 "%pu = OpTypePointer StorageBuffer %uint\n"
					 "%P = OpTypeStruct %uint %uint %uint\n"
					 "%pP = OpTypePointer PushConstant %P\n"
					 "%p = OpVariable %pP PushConstant\n"
					 "%ppu = OpTypePointer PushConstant %uint\n"
					 "%c0 = OpConstant %uint 0\n"
					 "%c1 = OpConstant %uint 1\n"
					 "%c2 = OpConstant %uint 2\n"
					 "%main = OpFunction %void None %fn\n"
					 "%entry = OpLabel\n"
					 "%g = OpLoad %v3uint %gid\n"
					 "%i = OpCompositeExtract %uint %g 0\n"
					 "%pn = OpAccessChain %ppu %p %c0\n"
					 "%n = OpLoad %uint %pn\n"
					 "%inside = OpULessThan %bool %i %n\n"
					 "OpSelectionMerge %end None\n"
					 "OpBranchConditional %inside %body %end\n"
					 "%body = OpLabel\n"
					 "%pr = OpAccessChain %ppu %p %c1\n"
					 "%r = OpLoad %uint %pr\n"
					 "%pw = OpAccessChain %ppu %p %c2\n"
					 "%w = OpLoad %uint %pw\n"
					 "%ri = OpIAdd %uint %i %r\n"
					 "%wi = OpIAdd %uint %i %w\n"
					 "%ps = OpAccessChain %pu %src %c0 %ri\n"
					 "%x = OpLoad %uint %ps\n"
					 "%pd = OpAccessChain %pu %dst %c0 %wi\n"
					 "OpStore %pd %x\n"
					 "OpBranch %end\n"
					 "%end = OpLabel\n"
					 "OpReturn\n"
					 "OpFunctionEnd\n";

static struct spirv assemble_str(const char *src)
{
	struct text t = { 0 };

	tadd(&t, "%s", src);
	return assemble(&t);
}

/* The first instruction with @opcode at or after word @from (0 if none). */
static uint32_t find_op(const struct spirv *s, uint32_t opcode, uint32_t from)
{
	for (uint32_t at = from < 5 ? 5 : from; at < s->count && (s->words[at] >> 16);
	     at += s->words[at] >> 16)
		if ((s->words[at] & 0xffff) == opcode)
			return at;
	return 0;
}

/* Create a kernel from @s, expect @want (and @needle in the message when refused); free @s. */
static void try_kernel(uint32_t dev, struct spirv s, uint32_t bindings, uint32_t push, int want,
		       const char *needle, const char *what)
{
	uint32_t k = 99;
	int32_t r = mdgpu_host_kernel_create(dev, s.words, s.count, bindings, push, &k);

	CHECK(r == want, "%s: kernel_create returned %d, want %d", what, r, want);
	if (r == 0) {
		CHECK_RET(mdgpu_host_kernel_destroy(dev, k), 0);
	} else {
		CHECK(k == 0, "%s: handle zeroed", what);
		CHECK(!needle || strstr(mdgpu_host_last_error(), needle),
		      "%s: message lacks \"%s\"", what, needle ? needle : "");
	}
	free(s.words);
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
	CHECK(strstr(mdgpu_host_last_error(), "SPIR-V") != NULL, "refused: %s",
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

/* ---- hostile SPIR-V: limits checked in one linear pass before validation ---- */

/*
 * Issue 9 F1: structs nested 16 deep, 3 members per level (3^16 member paths in 1.5 KB), took
 * SPIRV-Tools 50-90 s to refuse. It is refused before the validator runs, at its seventh level
 * (3^6 = 729 paths); deeper chains are refused for their depth; the largest shapes within the
 * limits are accepted.
 */
static void test_type_limits(uint32_t dev)
{
	struct spirv s = nested_block(16, 3, 0, true);
	char why[1024];
	uint32_t k = 99;
	double t0, t1;
	int32_t r;

	t0 = now_ms();
	r = mdgpu_host_kernel_create(dev, s.words, s.count, 0, 128, &k);
	t1 = now_ms();
	snprintf(why, sizeof(why), "%s", mdgpu_host_last_error());
	CHECK(r == -E2BIG, "F1 attack: %d", r);
	CHECK(strstr(why, "expands to 729 member paths") != NULL, "F1 attack refused: %s", why);
	printf("F1 attack (%u bytes: structs nested 16 deep, 3 members each): refused in %.3f ms:"
	       " %s\n",
	       s.count * 4, t1 - t0, why);
	free(s.words);
	/* 3^6 = 729 paths, only 7 deep: refused for its paths. */
	try_kernel(dev, nested_block(6, 3, 0, true), 0, 128, -E2BIG, "729 member paths",
		   "729 paths");
	/* 4^4 = 256 paths: at the limit, accepted (a storage buffer: 1 KiB is too big to push). */
	try_kernel(dev, nested_block(4, 4, 0, false), 1, 0, 0, NULL, "256 paths");
	try_kernel(dev, nested_block(4, 4, 1, false), 1, 0, -E2BIG, "257 member paths",
		   "257 paths");
	/* A chain of one-member structs: 16 levels accepted, 17 refused. */
	try_kernel(dev, nested_block(15, 1, 0, false), 1, 0, 0, NULL, "depth 16");
	try_kernel(dev, nested_block(16, 1, 0, false), 1, 0, -E2BIG, "nested 17 deep", "depth 17");
	/*
	 * Within the limits per type, but used too often: the validator walks the 256 paths for
	 * every variable and every load and store (20,000 variables took it 11 s, 150,000 loads
	 * and stores 11 s). A few uses are fine.
	 */
	try_kernel(dev, nested_module(4, 4, 0, false, 20000, 0), 1, 0, -E2BIG,
		   "MDGPU_HOST_MAX_MODULE_PATHS", "20,000 variables of 256 paths");
	try_kernel(dev, nested_module(4, 4, 0, false, 1, 20000), 1, 0, -E2BIG,
		   "MDGPU_HOST_MAX_MODULE_PATHS", "20,000 loads and stores of 256 paths");
	try_kernel(dev, nested_module(4, 4, 0, false, 16, 16), 1, 0, 0, NULL,
		   "16 variables and uses of 256 paths");
	/* Arrays count as levels too, but not their length. */
	try_kernel(
		dev,
		kernel_text(NULL, NULL,
			    "OpDecorate %a1 ArrayStride 4\nOpDecorate %a2 ArrayStride 4096\n"
			    "OpDecorate %a3 ArrayStride 4194304\nOpMemberDecorate %B 0 Offset 0\n"
			    "OpDecorate %B Block\nOpDecorate %v DescriptorSet 0\n"
			    "OpDecorate %v Binding 0",
			    "%c1024 = OpConstant %uint 1024\n"
			    "%a1 = OpTypeArray %float %c1024\n%a2 = OpTypeArray %a1 %c1024\n"
			    "%a3 = OpTypeRuntimeArray %a2\n%B = OpTypeStruct %a3\n"
			    "%pB = OpTypePointer StorageBuffer %B\n"
			    "%v = OpVariable %pB StorageBuffer",
			    NULL),
		1, 0, 0, NULL, "arrays of arrays");
}

static struct spirv shared_array(uint64_t floats, const char *storage)
{
	char types[512];

	snprintf(types, sizeof(types),
		 "%%cn = OpConstant %%uint %llu\n%%arr = OpTypeArray %%float %%cn\n"
		 "%%pw = OpTypePointer %s %%arr\n%%var = OpVariable %%pw %s",
		 (unsigned long long)floats, storage, storage);
	return kernel_text(NULL, NULL, NULL, types, NULL);
}

static struct spirv local_size(uint32_t x, uint32_t y, uint32_t z)
{
	char modes[128];

	snprintf(modes, sizeof(modes), "OpExecutionMode %%main LocalSize %u %u %u", x, y, z);
	return kernel_text(NULL, modes, NULL, NULL, NULL);
}

/* Issue 9 F6: the device's limits on shared memory and local size, at kernel creation. */
static void test_device_limits(uint32_t dev)
{
	struct mdgpu_host_device_info info;
	uint32_t sh, x, y, z, inv;
	char text[1024];

	CHECK_RET(mdgpu_host_device_info(dev, &info), 0);
	sh = info.max_shared_memory_size;
	x = info.max_workgroup_size[0];
	y = info.max_workgroup_size[1];
	z = info.max_workgroup_size[2];
	inv = info.max_workgroup_invocations;
	CHECK(sh >= 16384 && x >= 128 && inv >= 128, "Vulkan's minimum limits: %u %u %u", sh, x,
	      inv);
	printf("kernel limits: shared memory %u bytes, local size %ux%ux%u, %u invocations,"
	       " private %u bytes, types %u deep and %u paths\n",
	       sh, x, y, z, inv, info.max_kernel_private_size, info.max_kernel_type_depth,
	       info.max_kernel_type_paths);
	CHECK(info.max_kernel_private_size == MDGPU_HOST_MAX_PRIVATE_SIZE &&
		      info.max_kernel_type_depth == MDGPU_HOST_MAX_TYPE_DEPTH &&
		      info.max_kernel_type_paths == MDGPU_HOST_MAX_TYPE_PATHS,
	      "library limits in the info");

	/* Workgroup memory: exactly the limit, one float over, and 2 GiB (segfaulted lavapipe). */
	try_kernel(dev, shared_array(sh / 4, "Workgroup"), 0, 0, 0, NULL, "shared at the limit");
	try_kernel(dev, shared_array(sh / 4 + 1, "Workgroup"), 0, 0, -E2BIG,
		   "maxComputeSharedMemorySize", "shared over");
	try_kernel(dev, shared_array(1u << 29, "Workgroup"), 0, 0, -E2BIG, "2147483648 bytes, over",
		   "2 GiB shared");
	try_kernel(dev,
		   kernel_text(NULL, NULL, NULL,
			       "%cn = OpConstant %uint 2048\n%arr = OpTypeArray %float %cn\n"
			       "%pw = OpTypePointer Workgroup %arr\n%a = OpVariable %pw Workgroup\n"
			       "%b = OpVariable %pw Workgroup\n%c = OpVariable %pw Workgroup\n"
			       "%d = OpVariable %pw Workgroup\n%e = OpVariable %pw Workgroup",
			       NULL),
		   0, 0, sh < 5 * 8192 ? -E2BIG : 0, "maxComputeSharedMemorySize",
		   "five 8 KiB shared arrays");
	/* A length that is an expression of specialization constants is evaluated. */
	try_kernel(dev,
		   kernel_text(NULL, NULL, NULL,
			       "%cs = OpSpecConstant %uint 4\n"
			       "%cn = OpSpecConstantOp %uint IMul %cs %cs\n"
			       "%arr = OpTypeArray %float %cn\n%pw = OpTypePointer Workgroup %arr\n"
			       "%var = OpVariable %pw Workgroup",
			       NULL),
		   0, 0, 0, NULL, "spec-op length");
	try_kernel(dev,
		   kernel_text(NULL, NULL, NULL,
			       "%cs = OpSpecConstant %uint 1024\n"
			       "%cn = OpSpecConstantOp %uint IMul %cs %cs\n"
			       "%arr = OpTypeArray %float %cn\n%pw = OpTypePointer Workgroup %arr\n"
			       "%var = OpVariable %pw Workgroup",
			       NULL),
		   0, 0, -E2BIG, "maxComputeSharedMemorySize", "spec-op length over");
	/* One the host does not evaluate (an undefined shuffle component) cannot be sized. */
	try_kernel(dev,
		   kernel_text(NULL, NULL, NULL,
			       "%v2 = OpTypeVector %uint 2\n%cs = OpSpecConstant %uint 4\n"
			       "%va = OpSpecConstantComposite %v2 %cs %cs\n"
			       "%vs = OpSpecConstantOp %v2 VectorShuffle %va %va 4294967295 0\n"
			       "%cn = OpSpecConstantOp %uint CompositeExtract %vs 0\n"
			       "%arr = OpTypeArray %float %cn\n%pw = OpTypePointer Workgroup %arr\n"
			       "%var = OpVariable %pw Workgroup",
			       NULL),
		   0, 0, -EINVAL, "cannot tell its size", "spec-op length not evaluated");
	/* A spec constant's default is its value (no specialization is ever given). */
	try_kernel(dev,
		   kernel_text(NULL, NULL, NULL,
			       "%cn = OpSpecConstant %uint 1073741824\n"
			       "%arr = OpTypeArray %float %cn\n%pw = OpTypePointer Workgroup %arr\n"
			       "%var = OpVariable %pw Workgroup",
			       NULL),
		   0, 0, -E2BIG, "maxComputeSharedMemorySize", "spec-constant length");

	/* LocalSize per dimension and in all. */
	try_kernel(dev, local_size(x, 1, 1), 0, 0, x <= inv ? 0 : -E2BIG, NULL, "LocalSize max x");
	try_kernel(dev, local_size(x + 1, 1, 1), 0, 0, -E2BIG, "maxComputeWorkGroupSize",
		   "LocalSize x over");
	try_kernel(dev, local_size(1, y + 1, 1), 0, 0, -E2BIG, "maxComputeWorkGroupSize",
		   "LocalSize y over");
	try_kernel(dev, local_size(1, 1, z + 1), 0, 0, -E2BIG, "maxComputeWorkGroupSize",
		   "LocalSize z over");
	try_kernel(dev, local_size(0xffffffffu, 0xffffffffu, 0xffffffffu), 0, 0, -E2BIG,
		   "maxComputeWorkGroupSize", "LocalSize all ones");
	CHECK((uint64_t)x * (y < 2 ? y : 2) > inv, "a local size within each dimension over"
						   " the invocations exists");
	try_kernel(dev, local_size(x, y < 2 ? y : 2, 1), 0, 0, -E2BIG,
		   "maxComputeWorkGroupInvocations", "LocalSize invocations");
	try_kernel(dev, local_size(0, 1, 1), 0, 0, -EINVAL, "zero dimension", "LocalSize 0");
	/* LocalSizeId: checked before validation (which refuses it in Vulkan 1.1 anyway). */
	snprintf(text, sizeof(text), "%%cx = OpConstant %%uint %u", x + 1);
	try_kernel(dev,
		   kernel_text(NULL, "OpExecutionModeId %main LocalSizeId %cx %c1 %c1", NULL, text,
			       NULL),
		   0, 0, -E2BIG, "LocalSizeId", "LocalSizeId over");
	/* A WorkgroupSize built-in constant overrides LocalSize: checked the same way. */
	snprintf(text, sizeof(text),
		 "%%v3 = OpTypeVector %%uint 3\n%%cx = OpConstant %%uint %u\n"
		 "%%wgs = OpConstantComposite %%v3 %%cx %%c1 %%c1",
		 x + 1);
	try_kernel(dev,
		   kernel_text(NULL, NULL, "OpDecorate %wgs BuiltIn WorkgroupSize", text, NULL), 0,
		   0, -E2BIG, "WorkgroupSize", "WorkgroupSize over");
	snprintf(text, sizeof(text),
		 "%%v3 = OpTypeVector %%uint 3\n%%cx = OpSpecConstant %%uint %u\n"
		 "%%wgs = OpSpecConstantComposite %%v3 %%cx %%cx %%c1",
		 x);
	try_kernel(dev,
		   kernel_text(NULL, NULL, "OpDecorate %wgs BuiltIn WorkgroupSize", text, NULL), 0,
		   0, -E2BIG, "maxComputeWorkGroupInvocations", "WorkgroupSize spec over");
	try_kernel(dev,
		   kernel_text(NULL, NULL, "OpDecorate %wgs BuiltIn WorkgroupSize",
			       "%v3 = OpTypeVector %uint 3\n%c64 = OpConstant %uint 64\n"
			       "%wgs = OpConstantComposite %v3 %c64 %c1 %c1",
			       NULL),
		   0, 0, 0, NULL, "WorkgroupSize 64");
}

/* Private and Function variables: at most MDGPU_HOST_MAX_PRIVATE_SIZE bytes per invocation. */
static void test_private_limits(uint32_t dev)
{
	char text[512];
	uint32_t n = MDGPU_HOST_MAX_PRIVATE_SIZE / 4;

	snprintf(text, sizeof(text),
		 "%%cn = OpConstant %%uint %u\n%%arr = OpTypeArray %%float %%cn\n"
		 "%%pf = OpTypePointer Function %%arr",
		 n);
	try_kernel(dev, kernel_text(NULL, NULL, NULL, text, "%a = OpVariable %pf Function"), 0, 0,
		   0, NULL, "Function array at the limit");
	snprintf(text, sizeof(text),
		 "%%cn = OpConstant %%uint %u\n%%arr = OpTypeArray %%float %%cn\n"
		 "%%pf = OpTypePointer Function %%arr",
		 n + 1);
	try_kernel(dev, kernel_text(NULL, NULL, NULL, text, "%a = OpVariable %pf Function"), 0, 0,
		   -E2BIG, "MDGPU_HOST_MAX_PRIVATE_SIZE", "Function array over");
	try_kernel(dev, shared_array(1u << 28, "Private"), 0, 0, -E2BIG,
		   "MDGPU_HOST_MAX_PRIVATE_SIZE", "1 GiB Private array");
	/* Summed over variables: half in Private, half plus one float in Function. */
	snprintf(text, sizeof(text),
		 "%%cn = OpConstant %%uint %u\n%%arr = OpTypeArray %%float %%cn\n"
		 "%%cm = OpConstant %%uint %u\n%%arr2 = OpTypeArray %%float %%cm\n"
		 "%%pp = OpTypePointer Private %%arr\n%%pf = OpTypePointer Function %%arr2\n"
		 "%%g = OpVariable %%pp Private",
		 n / 2, n / 2 + 4);
	try_kernel(dev, kernel_text(NULL, NULL, NULL, text, "%a = OpVariable %pf Function"), 0, 0,
		   -E2BIG, "MDGPU_HOST_MAX_PRIVATE_SIZE", "Private + Function over");
}

/*
 * Modules the validator would refuse, but which the walk in front of it reads first: ids at
 * or past the bound, types used before (or by) their definition, truncated instructions. The
 * walk must refuse them without reading outside its tables (run under ASan: make asan).
 */
static void test_malformed_ids(uint32_t dev, const struct spirv *saxpy)
{
	struct spirv s;
	uint32_t at;

#define PATCHED(what, want, needle, ...)                      \
	do {                                                  \
		s.count = saxpy->count;                       \
		s.words = malloc(s.count * 4);                \
		memcpy(s.words, saxpy->words, s.count * 4);   \
		__VA_ARGS__;                                  \
		try_kernel(dev, s, 2, 8, want, needle, what); \
	} while (0)

	PATCHED("bound 8", -EINVAL, "not below the bound", s.words[3] = 8);
	PATCHED("bound 0", -EINVAL, "not below the bound", s.words[3] = 0);
	PATCHED("bound 1", -EINVAL, "not below the bound", s.words[3] = 1);
	at = find_op(saxpy, 59 /* OpVariable */, 0);
	CHECK(at, "saxpy has a variable");
	PATCHED("variable type past the bound", -EINVAL, "not a pointer type",
		s.words[at + 1] = 0xfffffff0u);
	PATCHED("variable id past the bound", -EINVAL, "not below the bound",
		s.words[at + 2] = 0xfffffff0u);
	PATCHED("variable with a non-pointer type", -EINVAL, "not a pointer type",
		s.words[at + 1] = s.words[find_op(saxpy, 22 /* OpTypeFloat */, 0) + 1]);
	at = find_op(saxpy, 71 /* OpDecorate */, 0);
	PATCHED("decoration past the bound", -EINVAL, "not below the bound",
		s.words[at + 1] = 0xfffffff0u);
	at = find_op(saxpy, 72 /* OpMemberDecorate */, 0);
	PATCHED("member decoration past the bound", -EINVAL, "not below the bound",
		s.words[at + 1] = 0xfffffff0u);
	at = find_op(saxpy, 30 /* OpTypeStruct */, 0);
	PATCHED("struct member past the bound", -EINVAL, "not a type defined before it",
		s.words[at + 2] = 0xfffffff0u);
	PATCHED("struct member is itself", -EINVAL, "not a type defined before it",
		s.words[at + 2] = s.words[at + 1]);
	PATCHED("type id past the bound", -EINVAL, "not below the bound",
		s.words[at + 1] = 0xfffffff0u);
	{
		uint32_t i1 = find_op(saxpy, 21 /* OpTypeInt */, 0);
		uint32_t f1 = find_op(saxpy, 22 /* OpTypeFloat */, 0);

		PATCHED("a type id defined twice", -EINVAL, "defined twice",
			s.words[f1 + 1] = s.words[i1 + 1]);
	}
	at = find_op(saxpy, 43 /* OpConstant */, 0);
	PATCHED("constant id past the bound", -EINVAL, "not below the bound",
		s.words[at + 2] = 0xfffffff0u);
	PATCHED("zero-length instruction", -EINVAL, "bad length", s.words[at] &= 0xffff);
	PATCHED("instruction past the end", -EINVAL, "bad length",
		s.words[at] = (s.words[at] & 0xffff) | (0xffffu << 16));
	PATCHED("truncated at the end", -EINVAL, "bad length", s.count = at + 1);
#undef PATCHED

	/* By hand in SPIR-V text: forward and circular type references the assembler allows. */
	try_kernel(dev,
		   kernel_text(NULL, NULL, NULL,
			       "%S = OpTypeStruct %T\n%T = OpTypeFloat 64\n"
			       "%pS = OpTypePointer Private %S\n%v = OpVariable %pS Private",
			       NULL),
		   0, 0, -EINVAL, "not a type defined before it", "forward member type");
	try_kernel(dev,
		   kernel_text(NULL, NULL, NULL,
			       "%A = OpTypeArray %float %n\n%n = OpConstant %uint 4\n"
			       "%pA = OpTypePointer Private %A\n%v = OpVariable %pA Private",
			       NULL),
		   0, 0, -EINVAL, "not a type defined before it", "array length defined after");
	try_kernel(dev,
		   kernel_text(NULL, NULL, NULL,
			       "%S = OpTypeStruct %float\n%V = OpTypeVector %S 4\n"
			       "%pV = OpTypePointer Private %V\n%v = OpVariable %pV Private",
			       NULL),
		   0, 0, -EINVAL, "a vector of type", "vector of a struct");
	try_kernel(dev,
		   kernel_text(NULL, NULL, NULL,
			       "%pP = OpTypePointer Private %P\n%P = OpTypeStruct %float\n"
			       "%v = OpVariable %pP Private",
			       NULL),
		   0, 0, -EINVAL, "not a type defined before it", "pointer before its pointee");
	try_kernel(
		dev,
		kernel_text("OpCapability PhysicalStorageBufferAddresses\n", NULL, NULL,
			    "OpTypeForwardPointer %pS PhysicalStorageBuffer\n"
			    "%S = OpTypeStruct %pS\n%pS = OpTypePointer PhysicalStorageBuffer %S",
			    NULL),
		0, 0, -EINVAL, NULL, "forward pointer");
	try_kernel(dev,
		   kernel_text(NULL, "OpExecutionModeId %main LocalSizeId %nope %c1 %c1", NULL,
			       "%pf = OpTypePointer Private %float\n%nope = OpVariable %pf Private",
			       NULL),
		   0, 0, -EINVAL, "not an integer constant", "LocalSizeId of a variable");
	try_kernel(dev,
		   kernel_text(NULL, NULL, "OpDecorate %wgs BuiltIn WorkgroupSize",
			       "%v3 = OpTypeVector %uint 3\n%pv = OpTypePointer Private %v3\n"
			       "%wgs = OpVariable %pv Private",
			       NULL),
		   0, 0, -EINVAL, "WorkgroupSize must decorate", "WorkgroupSize on a variable");
}

/*
 * Every kernel with words replaced at random (a fixed seed): the walk and the validator must
 * answer each with a return code, never a crash or a read outside the module (under ASan).
 */
static void test_mutations(uint32_t dev, const struct spirv *kernels, uint32_t n, uint32_t rounds)
{
	uint32_t seed = 12345, refused = 0, accepted = 0, bad = 0;

	for (uint32_t r = 0; r < rounds; r++) {
		const struct spirv *base = &kernels[r % n];
		uint32_t *w = malloc(base->count * 4), k = 0;
		int32_t ret;

		memcpy(w, base->words, base->count * 4);
		for (int m = 0; m < 3; m++) {
			uint32_t at;

			seed = seed * 1664525u + 1013904223u;
			at = 5 + (seed >> 8) % (base->count - 5);
			seed = seed * 1664525u + 1013904223u;
			switch (seed >> 30) {
			case 0:
				w[at] = seed; /* anything */
				break;
			case 1:
				w[at] = (seed >> 8) & 0x3f; /* a small id */
				break;
			case 2:
				w[at] ^= 1u << ((seed >> 8) & 31); /* one bit */
				break;
			default:
				w[at] = w[at] & 0xffff; /* an opcode with length 0 */
				break;
			}
		}
		ret = mdgpu_host_kernel_create(dev, w, base->count, 4, 16, &k);
		if (ret == 0) {
			accepted++;
			mdgpu_host_kernel_destroy(dev, k);
		} else if (ret == -EINVAL || ret == -E2BIG) {
			refused++;
		} else {
			bad++;
		}
		free(w);
	}
	CHECK(bad == 0, "%u mutated modules answered with an unexpected errno", bad);
	CHECK(refused > rounds / 2, "most mutations refused (%u of %u)", refused, rounds);
	printf("%u mutated kernels: %u refused, %u still valid and built\n", rounds, refused,
	       accepted);
}

/*
 * Issue 9 F7: a kernel reading and writing outside its bindings. With robustBufferAccess2
 * (VK_EXT_robustness2; lavapipe has it) nothing outside the destination binding changes and
 * reads outside the source binding return 0. With robustBufferAccess alone, only the first
 * half of that holds (on lavapipe; the spec allows writes anywhere in the imported memory).
 */
static void test_robustness(uint32_t dev)
{
	struct mdgpu_host_device_info info;
	struct aperture ap = aperture_new(1 << 20);
	struct spirv s = assemble_str(robust_kernel_text);
	const uint64_t src_off = 0x10000, dst_off = 0x20000, words = 256;
	uint32_t *src = (uint32_t *)(ap.base + src_off), *dst = (uint32_t *)(ap.base + dst_off);
	uint8_t *before = malloc(ap.size);
	struct mdgpu_host_binding b[2];
	uint32_t mem, k;
	struct {
		uint32_t n, rshift, wshift;
	} cases[] = {
		{ 256, 0, 0 }, /* in bounds: a copy */
		{ 256, 256, 0 }, /* reads the 256 words after the source binding */
		{ 256, (uint32_t)-512, 0 }, /* reads before it */
		{ 512, 0, 0 }, /* reads and writes 256 words past both */
		{ 256, 0, 256 }, /* writes the 256 words after the destination binding */
		{ 256, 0, (uint32_t)-1024 }, /* writes before it */
		{ 256, 0x3fff0000, 0x3fff0000 }, /* far outside the whole memory */
	};

	CHECK_RET(mdgpu_host_device_info(dev, &info), 0);
	if (!strcmp(info.driver_name, "llvmpipe"))
		CHECK(info.robustness == MDGPU_HOST_ROBUSTNESS_BUFFER_ACCESS_2 &&
			      info.robust_access_alignment >= 1,
		      "lavapipe has robustBufferAccess2 (robustness %u, alignment %u)",
		      info.robustness, info.robust_access_alignment);
	CHECK(info.robustness != MDGPU_HOST_ROBUSTNESS_NONE, "robust buffer access enabled");
	CHECK_RET(mdgpu_host_kernel_create(dev, s.words, s.count, 2, 12, &k), 0);
	free(s.words);
	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, ap.size, 0, &mem), 0);
	b[0] = bind(mem, src_off, words * 4);
	b[1] = bind(mem, dst_off, words * 4);
	for (uint32_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct mdgpu_host_cmd cmd = dispatch(k, (cases[c].n + 63) / 64, 1, 1, 0, 2, 0, 12);
		uint32_t outside = 0, wrong = 0;

		for (uint32_t i = 0; i < ap.size / 4; i++)
			((uint32_t *)ap.base)[i] = 0xa5000000u | i; /* every word tells its place */
		for (uint32_t i = 0; i < words; i++)
			dst[i] = 0xdddddddd;
		memcpy(before, ap.base, ap.size);
		CHECK_RET(run(dev, &cmd, 1, b, 2, &cases[c], 12, NULL), 0);
		for (uint64_t i = 0; i < ap.size; i++)
			outside += (i < dst_off || i >= dst_off + words * 4) &&
				   ap.base[i] != before[i];
		CHECK(outside == 0, "case %u: %u bytes outside the destination binding changed", c,
		      outside);
		for (uint32_t i = 0; i < words; i++) {
			uint32_t w = i - cases[c].wshift; /* the invocation that writes dst[i] */
			uint32_t r = w + cases[c].rshift; /* and the source word it reads */
			uint32_t want;

			if (w >= cases[c].n)
				want = 0xdddddddd; /* nobody writes it */
			else if (r < words)
				want = src[r];
			else if (info.robustness == MDGPU_HOST_ROBUSTNESS_BUFFER_ACCESS_2)
				want = 0; /* read outside the binding */
			else
				continue; /* robustBufferAccess: any value of the buffer, or 0 */
			wrong += dst[i] != want;
		}
		CHECK(wrong == 0, "case %u: %u destination words wrong", c, wrong);
	}
	CHECK_RET(mdgpu_host_kernel_destroy(dev, k), 0);
	CHECK_RET(mdgpu_host_memory_destroy(dev, mem), 0);
	free(before);
	aperture_free(&ap);
}

/* ---- kernels created on several threads, while submissions run ---- */

struct creator {
	uint32_t dev;
	struct spirv s;
	uint32_t bindings, push;
	int ret;
	uint32_t kernel;
	atomic_bool done;
};

static void *create_thread(void *arg)
{
	struct creator *c = arg;

	c->ret = mdgpu_host_kernel_create(c->dev, c->s.words, c->s.count, c->bindings, c->push,
					  &c->kernel);
	atomic_store(&c->done, true);
	return NULL;
}

/*
 * A slow kernel compiles on one thread and the test kernels on three more while this thread
 * keeps submitting FILLs: they complete during the slow compile (the device lock is not held
 * while compiling), and every kernel is built.
 */
static void test_concurrent_create(uint32_t dev)
{
	struct aperture ap = aperture_new(1 << 20);
	const char *names[] = { "saxpy", "memcpy", "gemm" };
	const uint32_t bindings[] = { 2, 2, 3 }, push[] = { 8, 4, 12 };
	struct creator c[4] = { 0 };
	pthread_t t[4];
	struct mdgpu_host_cmd fill;
	struct mdgpu_host_status st;
	uint32_t mem, fills = 0, fills_during = 0;
	double t0, t1;

	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, ap.size, 0, &mem), 0);
	fill = (struct mdgpu_host_cmd){ .op = MDGPU_HOST_OP_FILL, .u.fill = { mem, 3, 0, 4096 } };
	c[0] = (struct creator){ .dev = dev, .s = slow_kernel(40000), .bindings = 1 };
	for (int i = 0; i < 3; i++)
		c[i + 1] = (struct creator){ .dev = dev,
					     .s = load_spirv(names[i]),
					     .bindings = bindings[i],
					     .push = push[i] };
	t0 = now_ms();
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, create_thread, &c[i]);
	while (!atomic_load(&c[0].done)) {
		CHECK_RET(run(dev, &fill, 1, NULL, 0, NULL, 0, &st), 0);
		fills++;
		fills_during += !atomic_load(&c[0].done);
	}
	t1 = now_ms();
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK(c[i].ret == 0, "kernel %d created on its own thread: %d", i, c[i].ret);
		if (!c[i].ret)
			CHECK_RET(mdgpu_host_kernel_destroy(dev, c[i].kernel), 0);
		free(c[i].s.words);
	}
	CHECK(fills_during > 0, "%u FILLs completed while a kernel compiled", fills_during);
	printf("slow kernel (%u words) compiled in %.0f ms on one thread, 3 more on others,"
	       " while this one ran %u FILLs\n",
	       c[0].s.count, t1 - t0, fills);
	CHECK_RET(mdgpu_host_memory_destroy(dev, mem), 0);
	aperture_free(&ap);
}

/* ---- ABI 2.1: capabilities, kernel_create2, kernel_info, submit2 ---- */

/* Compile GLSL compute source with glslangValidator (Vulkan 1.1: SPIR-V 1.3); @args extra. */
static struct spirv glsl(const char *src, const char *args)
{
	char dir[] = "/tmp/mdgpu-test-XXXXXX", path[256], cmd[1024];
	struct spirv s;
	FILE *f;

	if (!mkdtemp(dir)) {
		perror("test-host: mkdtemp");
		exit(2);
	}
	snprintf(path, sizeof(path), "%s/k.comp", dir);
	f = fopen(path, "w");
	if (!f || fputs(src, f) < 0 || fclose(f)) {
		perror("test-host: writing GLSL");
		exit(2);
	}
	snprintf(cmd, sizeof(cmd),
		 "glslangValidator -V --target-env vulkan1.1 %s -o %s/k.spv %s >%s/log 2>&1", args,
		 dir, path, dir);
	if (system(cmd) != 0) {
		snprintf(cmd, sizeof(cmd), "cat %s/log", dir);
		if (system(cmd)) {
		}
		fprintf(stderr, "test-host: glslangValidator failed (install glslang-tools)\n");
		exit(2);
	}
	snprintf(path, sizeof(path), "%s/k.spv", dir);
	s = read_spirv(path, "glslangValidator wrote none");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd)) {
	}
	return s;
}

/* uniform Params {n, scale} at (0,0); 3 storage inputs at (0,2); the output at (2,1). */
static const char sets_glsl[] =
	"#version 450\n"
	"layout(local_size_x = 64) in;\n"
	"layout(set = 0, binding = 0) uniform Params { uint n; uint scale; } params;\n"
	"layout(set = 0, binding = 2) readonly buffer In { uint v[]; } inputs[3];\n"
	"layout(set = 2, binding = 1) buffer Out { uint v[]; } outp;\n"
	"void main() {\n"
	"	uint i = gl_GlobalInvocationID.x;\n"
	"	if (i >= params.n) return;\n"
	"	outp.v[i] = (inputs[0].v[i] + inputs[1].v[i] * 2u + inputs[2].v[i] * 3u) *"
	" params.scale;\n"
	"}\n";

/* Local size x, a multiplier, an addend and a shared array length: specialization ids 0..3. */
static const char spec_glsl[] =
	"#version 450\n"
	"layout(local_size_x_id = 0) in;\n"
	"layout(constant_id = 1) const uint MUL = 1;\n"
	"layout(constant_id = 2) const int ADD = 0;\n"
	"layout(constant_id = 3) const uint SHARED_N = 16;\n"
	"shared uint tmp[SHARED_N];\n"
	"layout(set = 0, binding = 0) buffer Out { uint v[]; } o;\n"
	"void main() {\n"
	"	uint i = gl_GlobalInvocationID.x;\n"
	"	tmp[gl_LocalInvocationID.x % SHARED_N] = i;\n"
	"	barrier();\n"
	"	o.v[i] = tmp[gl_LocalInvocationID.x % SHARED_N] * MUL + uint(ADD) +"
	" gl_WorkGroupSize.x * 1000000u;\n"
	"}\n";

/* Each workgroup writes (its id, the x count) at y * width + x. */
static const char base_glsl[] = "#version 450\n"
				"layout(local_size_x = 1) in;\n"
				"layout(set = 0, binding = 0) buffer Out { uvec4 v[]; } o;\n"
				"layout(push_constant) uniform P { uint width; } p;\n"
				"void main() {\n"
				"	uvec3 g = gl_WorkGroupID;\n"
				"	o.v[g.y * p.width + g.x] = uvec4(g, gl_NumWorkGroups.x);\n"
				"}\n";

/* 8-bit and 16-bit storage, Int64 and Float64 types, subgroup arithmetic. */
static const char narrow_glsl[] =
	"#version 450\n"
	"#extension GL_EXT_shader_16bit_storage : require\n"
	"#extension GL_EXT_shader_8bit_storage : require\n"
	"#extension GL_EXT_shader_explicit_arithmetic_types : require\n"
	"#extension GL_KHR_shader_subgroup_arithmetic : require\n"
	"layout(local_size_x = 64) in;\n"
	"layout(set = 0, binding = 0) readonly buffer A { uint8_t a[]; };\n"
	"layout(set = 0, binding = 1) readonly buffer B { float16_t b[]; };\n"
	"layout(set = 0, binding = 2) buffer C { uint c[]; };\n"
	"layout(set = 0, binding = 3) buffer S { uvec2 s[]; };\n"
	"layout(set = 0, binding = 4) buffer L { int64_t l[]; };\n"
	"void main() {\n"
	"	uint i = gl_GlobalInvocationID.x;\n"
	"	uint y = uint(a[i]);\n"
	"	c[i] = uint(float(b[i])) + y;\n"
	"	s[i] = uvec2(subgroupAdd(y), gl_SubgroupID + gl_WorkGroupID.x * gl_NumSubgroups);\n"
	"	l[i] = int64_t(y) * -4294967296l;\n"
	"}\n";

/* Reads binding 0's first word into binding 1's, then writes binding 0's. */
static const char leak_glsl[] = "#version 450\n"
				"layout(local_size_x = 1) in;\n"
				"layout(set = 0, binding = 0) buffer S { uint v[]; } s;\n"
				"layout(set = 0, binding = 1) buffer O { uint v[]; } o;\n"
				"void main() {\n"
				"	o.v[0] = s.v[0];\n"
				"	s.v[0] = 0xdeadbeefu;\n"
				"}\n";

/* A submit2 batch being built (static: it is large). */
static struct batch {
	struct mdgpu_host_cmd2 cmds[64];
	uint32_t n;
	struct mdgpu_host_descriptor descs[MDGPU_HOST_MAX_DISPATCH_DESCRIPTORS + 8];
	uint32_t nd;
	uint8_t data[4 * MDGPU_HOST_MAX_UPDATE];
	uint32_t size;
} B;

static void b_reset(void)
{
	memset(&B, 0, sizeof(B));
}

/* Append @n bytes to the data area (4-aligned); returns their offset. */
static uint32_t b_data(const void *p, uint32_t n)
{
	uint32_t at = B.size;

	memcpy(B.data + at, p, n);
	B.size += (n + 3) & ~3u;
	return at;
}

static void b_desc(uint32_t mem, uint32_t set, uint32_t binding, uint32_t index, uint32_t type,
		   uint64_t offset, uint64_t range)
{
	B.descs[B.nd++] = (struct mdgpu_host_descriptor){ .mem = mem,
							  .set = set,
							  .binding = binding,
							  .index = index,
							  .type = type,
							  .offset = offset,
							  .range = range };
}

/* A DISPATCH2 of the descriptors from @first on; @push (@push_size bytes) into the data. */
static struct mdgpu_host_cmd2 *b_dispatch(uint32_t kernel, uint32_t first, const void *push,
					  uint32_t push_size, uint32_t bx, uint32_t by, uint32_t bz,
					  uint32_t gx, uint32_t gy, uint32_t gz)
{
	struct mdgpu_host_cmd2 *c = &B.cmds[B.n++];

	c->op = MDGPU_HOST_OP_DISPATCH2;
	c->u.dispatch2 = (struct mdgpu_host_cmd_dispatch2){
		.kernel = kernel,
		.first_descriptor = first,
		.descriptor_count = B.nd - first,
		.push_offset = push_size ? b_data(push, push_size) : 0,
		.push_size = push_size,
		.base = { bx, by, bz },
		.groups = { gx, gy, gz },
	};
	return c;
}

static struct mdgpu_host_cmd2 *b_cmd(uint32_t op)
{
	struct mdgpu_host_cmd2 *c = &B.cmds[B.n++];

	c->op = op;
	return c;
}

static void b_update(uint32_t mem, uint64_t offset, const void *p, uint32_t n)
{
	b_cmd(MDGPU_HOST_OP_UPDATE)->u.update = (struct mdgpu_host_cmd_update){
		.mem = mem, .size = n, .offset = offset, .data_offset = b_data(p, n)
	};
}

static int b_submit(uint32_t dev, uint64_t *id)
{
	return mdgpu_host_submit2(dev, B.cmds, B.n, B.nd ? B.descs : NULL, B.nd,
				  B.size ? B.data : NULL, B.size, id);
}

/* Submit B and wait; the submit error or the status result. */
static int b_run(uint32_t dev)
{
	struct mdgpu_host_status st;
	uint64_t id;
	int r = b_submit(dev, &id);

	if (r)
		return r;
	r = mdgpu_host_wait(dev, id, UINT64_MAX, &st);
	return r ? r : st.result;
}

/* kernel_create2 with the common fields; returns its result and the handle in @k. */
static int create2(uint32_t dev, const struct spirv *s, const char *entry,
		   const struct mdgpu_host_spec_entry *spec, uint32_t nspec, const void *data,
		   uint32_t data_size, uint32_t push, int32_t legacy, uint32_t flags, uint32_t *k)
{
	struct mdgpu_host_kernel_desc d = {
		.words = s->words,
		.word_count = s->count,
		.flags = flags,
		.entry = entry,
		.spec_entries = spec,
		.spec_entry_count = nspec,
		.spec_data_size = data_size,
		.spec_data = data,
		.push_size = push,
		.legacy_bindings = legacy,
	};
	char error[256] = "x";
	int32_t r = mdgpu_host_kernel_create2(dev, &d, k, error, sizeof(error));

	CHECK(strncmp(error, mdgpu_host_last_error(), sizeof(error) - 1) == 0,
	      "error buffer holds the last error");
	CHECK(r != 0 || error[0] == '\0', "no error text on success: %s", error);
	return r;
}

/* create2 expecting a refusal with @needle in the message. */
static void refuse2(uint32_t dev, const struct spirv *s, const char *entry,
		    const struct mdgpu_host_spec_entry *spec, uint32_t nspec, const void *data,
		    uint32_t data_size, uint32_t push, int32_t legacy, int want, const char *needle,
		    const char *what)
{
	uint32_t k = 77;
	int32_t r = create2(dev, s, entry, spec, nspec, data, data_size, push, legacy, 0, &k);

	CHECK(r == want, "%s: kernel_create2 returned %d, want %d", what, r, want);
	CHECK(k == 0, "%s: handle zeroed", what);
	if (r == 0)
		mdgpu_host_kernel_destroy(dev, k);
	else
		CHECK(!needle || strstr(mdgpu_host_last_error(), needle),
		      "%s: message lacks \"%s\"", what, needle ? needle : "");
}

static void test_caps(uint32_t dev, struct mdgpu_host_caps *caps)
{
	struct mdgpu_host_device_info info;
	struct mdgpu_host_caps big[2];

	CHECK_RET(mdgpu_host_device_info(dev, &info), 0);
	memset(caps, 0xff, sizeof(*caps));
	caps->size = sizeof(*caps);
	CHECK_RET(mdgpu_host_enumerate_caps(info.index, caps), 0);
	CHECK(caps->size == sizeof(*caps), "size %u", caps->size);
	printf("caps: features 0x%x, subgroup size %u, operations 0x%x, sets %u, storage %u/%u,"
	       " uniform %u/%u per stage/set, ranges %u/%u, alignments %u/%u, max allocation"
	       " %llu\n",
	       caps->features, caps->subgroup_size, caps->subgroup_operations,
	       caps->max_bound_descriptor_sets, caps->max_per_stage_storage_buffers,
	       caps->max_set_storage_buffers, caps->max_per_stage_uniform_buffers,
	       caps->max_set_uniform_buffers, caps->max_storage_buffer_range,
	       caps->max_uniform_buffer_range, caps->min_storage_offset_alignment,
	       caps->min_uniform_offset_alignment,
	       (unsigned long long)caps->max_memory_allocation_size);
	CHECK(caps->max_bound_descriptor_sets >= 4 &&
		      caps->max_bound_descriptor_sets <= MDGPU_HOST_MAX_SETS,
	      "sets %u", caps->max_bound_descriptor_sets);
	CHECK(caps->max_per_stage_storage_buffers >= 4 &&
		      caps->max_per_stage_storage_buffers <= MDGPU_HOST_MAX_STAGE_DESCRIPTORS,
	      "storage %u", caps->max_per_stage_storage_buffers);
	CHECK(caps->max_per_stage_uniform_buffers >= 12 &&
		      caps->max_per_stage_uniform_buffers <= MDGPU_HOST_MAX_STAGE_DESCRIPTORS,
	      "uniform %u", caps->max_per_stage_uniform_buffers);
	CHECK(caps->max_storage_buffer_range == info.max_binding_size, "storage range");
	CHECK(caps->min_storage_offset_alignment == info.min_binding_alignment,
	      "storage alignment");
	CHECK(caps->max_uniform_buffer_range >= 16384, "uniform range %u",
	      caps->max_uniform_buffer_range);
	CHECK(caps->max_memory_allocation_size == info.max_memory_size, "max allocation");
	CHECK(caps->driver_version == info.driver_version, "driver version");
	CHECK(caps->reserved[0] == 0 && caps->reserved[15] == 0, "reserved zeroed");
	if (!strcmp(info.driver_name, "llvmpipe")) {
		const uint32_t want =
			MDGPU_HOST_FEATURE_SHADER_INT64 | MDGPU_HOST_FEATURE_SHADER_FLOAT64 |
			MDGPU_HOST_FEATURE_SHADER_INT16 | MDGPU_HOST_FEATURE_SHADER_INT8 |
			MDGPU_HOST_FEATURE_SHADER_FLOAT16 |
			MDGPU_HOST_FEATURE_STORAGE_BUFFER_16BIT |
			MDGPU_HOST_FEATURE_STORAGE_BUFFER_8BIT |
			MDGPU_HOST_FEATURE_VARIABLE_POINTERS;

		CHECK((caps->features & want) == want, "lavapipe features 0x%x", caps->features);
		CHECK(caps->subgroup_size >= 4 && (caps->subgroup_operations & 0x0f) == 0x0f,
		      "lavapipe subgroups: size %u, operations 0x%x", caps->subgroup_size,
		      caps->subgroup_operations);
	}
	/* A bigger struct of a later minor version: filled as far as this one knows. */
	memset(big, 0xee, sizeof(big));
	big[0].size = sizeof(big);
	CHECK_RET(mdgpu_host_enumerate_caps(info.index, &big[0]), 0);
	CHECK(big[0].size == sizeof(*caps) && big[0].features == caps->features,
	      "larger struct: size %u", big[0].size);
	CHECK(((uint8_t *)&big[1])[0] == 0xee, "nothing written past the library's struct");
	caps->size = 8;
	CHECK_RET(mdgpu_host_enumerate_caps(info.index, caps), -EINVAL);
	caps->size = sizeof(*caps);
	CHECK_RET(mdgpu_host_enumerate_caps(info.index, NULL), -EINVAL);
	CHECK_RET(mdgpu_host_enumerate_caps(1000, caps), -ENOENT);
	caps->size = sizeof(*caps);
	CHECK_RET(mdgpu_host_enumerate_caps(info.index, caps), 0);
}

/* The reflected layout and local size of a kernel, against @want. */
static void check_info(uint32_t dev, uint32_t k, const struct mdgpu_host_kernel_binding *want,
		       uint32_t n, uint32_t lx, uint32_t ly, uint32_t lz, const char *what)
{
	struct mdgpu_host_kernel_binding got[16];
	struct mdgpu_host_kernel_info info;
	uint32_t bad = 0;

	CHECK_RET(mdgpu_host_kernel_info(dev, k, &info, got, 16), 0);
	CHECK(info.binding_count == n, "%s: %u bindings, want %u", what, info.binding_count, n);
	for (uint32_t i = 0; i < n && i < info.binding_count; i++)
		bad += memcmp(&got[i], &want[i], sizeof(got[i])) != 0;
	CHECK(bad == 0, "%s: %u bindings differ", what, bad);
	CHECK(info.local_size[0] == lx && info.local_size[1] == ly && info.local_size[2] == lz,
	      "%s: local size %ux%ux%u", what, info.local_size[0], info.local_size[1],
	      info.local_size[2]);
}

/* Several sets (set 1 empty), a descriptor array, a uniform buffer; descriptors left out. */
static void test_sets(uint32_t dev, uint32_t mem, uint32_t staged, uint8_t *base,
		      uint8_t *staged_base)
{
	const struct mdgpu_host_kernel_binding want[3] = {
		{ 0, 0, MDGPU_HOST_DESCRIPTOR_UNIFORM_BUFFER, 1 },
		{ 0, 2, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 3 },
		{ 2, 1, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 1 },
	};
	struct spirv s = glsl(sets_glsl, "");
	struct mdgpu_host_kernel_binding got[2];
	struct mdgpu_host_kernel_info info;
	const uint32_t n = 1000, params[2] = { n, 7 };
	uint32_t k, bad;

	CHECK_RET(create2(dev, &s, NULL, NULL, 0, NULL, 0, 0, -1, 0, &k), 0);
	check_info(dev, k, want, 3, 64, 1, 1, "sets");
	/* Fewer bindings than there are: the first ones, and the count of all. */
	CHECK_RET(mdgpu_host_kernel_info(dev, k, &info, got, 2), 0);
	CHECK(info.binding_count == 3 && got[1].count == 3, "capacity 2");
	CHECK_RET(mdgpu_host_kernel_info(dev, k, &info, NULL, 0), 0);
	CHECK_RET(mdgpu_host_kernel_info(dev, k, NULL, NULL, 0), -EINVAL);
	CHECK_RET(mdgpu_host_kernel_info(dev, k, &info, NULL, 1), -EINVAL);
	CHECK_RET(mdgpu_host_kernel_info(dev, 0, &info, NULL, 0), -ENOENT);
	CHECK_RET(mdgpu_host_kernel_info(0, k, &info, NULL, 0), -ENOENT);

	for (int pass = 0; pass < 2; pass++) {
		uint32_t m = pass ? staged : mem;
		uint8_t *at = pass ? staged_base : base;
		uint32_t *in[3], *out = (uint32_t *)(at + 0x10000);
		const char *what = pass ? "staged" : "zero copy";

		memcpy(at, params, sizeof(params));
		for (int j = 0; j < 3; j++) {
			in[j] = (uint32_t *)(at + 0x1000 + 0x1000 * j);
			for (uint32_t i = 0; i < n; i++)
				in[j][i] = i + 1000u * (uint32_t)j;
		}
		memset(out, 0xcc, (n + 16) * 4);
		/* Every descriptor, in no particular order. */
		b_reset();
		b_desc(m, 2, 1, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x10000, n * 4);
		for (uint32_t j = 0; j < 3; j++)
			b_desc(m, 0, 2, 2 - j, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER,
			       0x1000 + 0x1000 * (2 - j), n * 4);
		b_desc(m, 0, 0, 0, MDGPU_HOST_DESCRIPTOR_UNIFORM_BUFFER, 0, 16);
		b_dispatch(k, 0, NULL, 0, 0, 0, 0, (n + 63) / 64, 1, 1);
		CHECK_RET(b_run(dev), 0);
		bad = 0;
		for (uint32_t i = 0; i < n; i++)
			bad += out[i] != (in[0][i] + in[1][i] * 2 + in[2][i] * 3) * 7;
		CHECK(bad == 0 && out[n] == 0xcccccccc, "%s: sets, arrays, uniform: %u wrong", what,
		      bad);
		CHECK(memcmp(at, params, sizeof(params)) == 0, "%s: the uniform buffer unchanged",
		      what);

		/* inputs[1] left out: it reads zeros. */
		b_reset();
		b_desc(m, 0, 0, 0, MDGPU_HOST_DESCRIPTOR_UNIFORM_BUFFER, 0, 16);
		b_desc(m, 0, 2, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x1000, n * 4);
		b_desc(m, 0, 2, 2, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x3000, n * 4);
		b_desc(m, 2, 1, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x10000, n * 4);
		b_dispatch(k, 0, NULL, 0, 0, 0, 0, (n + 63) / 64, 1, 1);
		CHECK_RET(b_run(dev), 0);
		bad = 0;
		for (uint32_t i = 0; i < n; i++)
			bad += out[i] != (in[0][i] + in[2][i] * 3) * 7;
		CHECK(bad == 0, "%s: a missing array element reads zeros: %u wrong", what, bad);

		/* The uniform buffer left out: n reads 0, nothing is written. */
		memset(out, 0xcc, n * 4);
		b_reset();
		b_desc(m, 2, 1, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x10000, n * 4);
		b_dispatch(k, 0, NULL, 0, 0, 0, 0, (n + 63) / 64, 1, 1);
		CHECK_RET(b_run(dev), 0);
		bad = 0;
		for (uint32_t i = 0; i < n; i++)
			bad += out[i] != 0xcccccccc;
		CHECK(bad == 0, "%s: a missing uniform buffer reads zeros: %u written", what, bad);
	}
	CHECK_RET(mdgpu_host_kernel_destroy(dev, k), 0);
	free(s.words);
}

/*
 * A kernel writing through a storage descriptor it was not given writes the zero buffer of
 * its own batch: the next batch (another VM's, say) reads zeros again.
 */
static void test_zero_buffer_reset(uint32_t dev, uint32_t mem, uint8_t *base)
{
	struct spirv s = glsl(leak_glsl, "");
	uint32_t k, *out = (uint32_t *)(base + 0x20000);

	CHECK_RET(create2(dev, &s, NULL, NULL, 0, NULL, 0, 0, -1, 0, &k), 0);
	for (int round = 0; round < 3; round++) {
		out[0] = out[4] = 0x12345678;
		b_reset();
		b_desc(mem, 0, 1, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x20000, 16);
		b_dispatch(k, 0, NULL, 0, 0, 0, 0, 1, 1, 1);
		b_cmd(MDGPU_HOST_OP_BARRIER);
		b_desc(mem, 0, 1, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x20010, 16);
		b_dispatch(k, 1, NULL, 0, 0, 0, 0, 1, 1, 1);
		CHECK_RET(b_run(dev), 0);
		CHECK(out[0] == 0, "round %d: the left-out binding read 0x%x, want 0", round,
		      out[0]);
		/* The second dispatch of the same batch may see the first one's write. */
		CHECK(out[4] == 0 || out[4] == 0xdeadbeef, "round %d: 0x%x", round, out[4]);
	}
	CHECK_RET(mdgpu_host_kernel_destroy(dev, k), 0);
	free(s.words);
}

/* Specialization: values applied, the workgroup size among them, and every refusal. */
static void test_specialization(uint32_t dev, uint32_t mem, uint8_t *base,
				const struct mdgpu_host_device_info *info)
{
	struct spirv s = glsl(spec_glsl, "");
	const struct mdgpu_host_kernel_binding want[1] = {
		{ 0, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 1 },
	};
	struct mdgpu_host_spec_entry e[5] = {
		{ 0, 0, 4, 0 }, /* local size x */
		{ 1, 4, 4, 0 }, /* MUL */
		{ 2, 8, 4, 0 }, /* ADD */
		{ 3, 12, 4, 0 }, /* SHARED_N */
		{ 99, 16, 2, 0 }, /* no such constant: ignored */
	};
	uint32_t data[5] = { 128, 3, (uint32_t)-5, 128, 0 }, k, bad = 0;
	uint32_t *out = (uint32_t *)(base + 0x30000);
	const uint32_t n = 512;

	/* Defaults: local size 1. */
	CHECK_RET(create2(dev, &s, "main", NULL, 0, NULL, 0, 0, -1, 0, &k), 0);
	check_info(dev, k, want, 1, 1, 1, 1, "spec defaults");
	CHECK_RET(mdgpu_host_kernel_destroy(dev, k), 0);
	CHECK_RET(create2(dev, &s, NULL, e, 5, data, 20, 0, -1, 0, &k), 0);
	check_info(dev, k, want, 1, 128, 1, 1, "specialized");
	b_reset();
	b_desc(mem, 0, 0, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x30000, n * 4);
	b_dispatch(k, 0, NULL, 0, 0, 0, 0, n / 128, 1, 1);
	CHECK_RET(b_run(dev), 0);
	for (uint32_t i = 0; i < n; i++)
		bad += out[i] != i * 3 - 5 + 128 * 1000000u;
	CHECK(bad == 0, "specialized results: %u wrong (out[1] = %u)", bad, out[1]);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, k), 0);

	/* Limits after specialization. */
	data[0] = info->max_workgroup_invocations + 1;
	refuse2(dev, &s, NULL, e, 4, data, 16, 0, -1, -E2BIG, "WorkgroupSize",
		"specialized local size over the device's");
	data[0] = 0;
	refuse2(dev, &s, NULL, e, 4, data, 16, 0, -1, -EINVAL, "zero dimension",
		"specialized local size 0");
	data[0] = 64;
	data[3] = info->max_shared_memory_size / 4 + 1;
	refuse2(dev, &s, NULL, e, 4, data, 16, 0, -1, -E2BIG, "maxComputeSharedMemorySize",
		"specialized shared array over the device's");
	data[3] = 0;
	refuse2(dev, &s, NULL, e, 4, data, 16, 0, -1, -EINVAL, "length 0",
		"specialized shared array of length 0");
	data[3] = 128;
	/* The entries themselves. */
	e[1].size = 2;
	refuse2(dev, &s, NULL, e, 4, data, 16, 0, -1, -EINVAL,
		"specialization constant 1 is given 2 bytes", "wrong size for the constant");
	e[1].size = 3;
	refuse2(dev, &s, NULL, e, 4, data, 16, 0, -1, -EINVAL, "size 3", "size 3");
	e[1].size = 4;
	e[1].offset = 14;
	refuse2(dev, &s, NULL, e, 4, data, 16, 0, -1, -EINVAL, "outside the 16 bytes",
		"entry past the data");
	e[1].offset = UINT32_MAX - 1;
	refuse2(dev, &s, NULL, e, 4, data, 16, 0, -1, -EINVAL, "outside", "offset near 2^32");
	e[1].offset = 4;
	e[1].pad = 1;
	refuse2(dev, &s, NULL, e, 4, data, 16, 0, -1, -EINVAL, "pad", "entry pad");
	e[1].pad = 0;
	e[2].constant_id = 1;
	refuse2(dev, &s, NULL, e, 4, data, 16, 0, -1, -EINVAL, "given twice", "duplicate id");
	e[2].constant_id = 2;
	refuse2(dev, &s, NULL, e, MDGPU_HOST_MAX_SPEC_ENTRIES + 1, data, 16, 0, -1, -E2BIG,
		"specialization constants", "too many entries");
	refuse2(dev, &s, NULL, e, 4, data, MDGPU_HOST_MAX_SPEC_DATA + 1, 0, -1, -E2BIG,
		"bytes of data", "too much data");
	refuse2(dev, &s, NULL, NULL, 4, data, 16, 0, -1, -EINVAL, "NULL", "NULL entries");
	refuse2(dev, &s, NULL, e, 4, NULL, 16, 0, -1, -EINVAL, "NULL", "NULL data");
	free(s.words);
}

/*
 * OpSpecConstantOp evaluation (see const_value() in spirv.c): the module's @decls end in a
 * uint %e; a Workgroup array of %e + (limit - @want) floats is exactly the device's limit when
 * the host evaluates %e to @want, so it is accepted, and one float more is refused. Both
 * together pin the value: too small would accept the second, too large refuse the first.
 */
static void check_spec_expr_version(uint32_t dev, uint32_t shared, const char *caps,
				    const char *decls, uint32_t want, const char *what,
				    uint32_t version)
{
	char text[8192], name[256];
	struct spirv s;

	for (uint32_t over = 0; over <= 1; over++) {
		snprintf(text, sizeof(text),
			 "%s\n%%fill = OpConstant %%uint %u\n"
			 "%%len = OpSpecConstantOp %%uint IAdd %%e %%fill\n"
			 "%%arr = OpTypeArray %%float %%len\n%%pw = OpTypePointer Workgroup %%arr\n"
			 "%%var = OpVariable %%pw Workgroup",
			 decls, shared / 4 - want + over);
		snprintf(name, sizeof(name), "%s = %u%s", what, want, over ? " (one over)" : "");
		s = kernel_text(caps, NULL, NULL, text, NULL);
		if (version)
			s.words[1] = version;
		try_kernel(dev, s, 0, 0, over ? -E2BIG : 0,
			   over ? "maxComputeSharedMemorySize" : NULL, name);
	}
}

static void check_spec_expr(uint32_t dev, uint32_t shared, const char *caps, const char *decls,
			    uint32_t want, const char *what)
{
	check_spec_expr_version(dev, shared, caps, decls, want, what, 0);
}

/* A module whose @decls (ending in a uint %e) must be refused with @needle. */
static void refuse_spec_expr(uint32_t dev, const char *caps, const char *decls, const char *needle,
			     const char *what)
{
	char text[8192];

	snprintf(text, sizeof(text),
		 "%s\n%%arr = OpTypeArray %%float %%e\n%%pw = OpTypePointer Workgroup %%arr\n"
		 "%%var = OpVariable %%pw Workgroup",
		 decls);
	try_kernel(dev, kernel_text(caps, NULL, NULL, text, NULL), 0, 0, -EINVAL, needle, what);
}

/*
 * Shared arrays sized by expressions of specialization constants, as glslang emits them for
 * `shared float s[gl_WorkGroupSize.x * K + ...]` with local_size_x_id: the host sees the
 * module unfolded (the ICD folds them itself, other producers do not), evaluates it after
 * specialization, checks the limit on the value the driver compiles with, and the driver's
 * own view of the array's length (s.length() written out) agrees.
 */
static const char spec_ops_glsl[] =
	"#version 450\n"
	"layout(local_size_x_id = 0, local_size_y = 2) in;\n"
	"layout(constant_id = 1) const uint K = 3;\n"
	"layout(constant_id = 2) const bool B = true;\n"
	"layout(constant_id = 3) const uint D = 1;\n"
	"shared float s[gl_WorkGroupSize.x * K + (B ? 1u : 2u) - gl_WorkGroupSize.y / 2u];\n"
	"const uint Q = 64u / D;\n"
	"layout(set = 0, binding = 0) buffer Out { uint v[]; } o;\n"
	"void main() {\n"
	"	uint i = gl_LocalInvocationIndex;\n"
	"	s[i] = float(i);\n"
	"	barrier();\n"
	"	if (gl_WorkGroupID.x == 0u && i == 0u) { o.v[0] = uint(s.length()); o.v[1] = Q; }\n"
	"}\n";

static void test_spec_const_ops(uint32_t dev, uint32_t mem, uint8_t *base,
				const struct mdgpu_host_device_info *info,
				const struct mdgpu_host_caps *caps)
{
	const uint32_t sh = info->max_shared_memory_size;
	struct spirv s = glsl(spec_ops_glsl, "");
	const struct mdgpu_host_spec_entry e[4] = {
		{ 0, 0, 4, 0 }, /* local size x */
		{ 1, 4, 4, 0 }, /* K */
		{ 2, 8, 4, 0 }, /* B */
		{ 3, 12, 4, 0 }, /* D */
	};
	uint32_t data[4] = { 64, sh / 4 / 64, 1, 2 }, k;
	uint32_t *out = (uint32_t *)(base + 0x60000);

	/* 64 * K + 1 - 2/2 floats: exactly the limit. */
	CHECK_RET(create2(dev, &s, NULL, e, 4, data, 16, 0, -1, 0, &k), 0);
	memset(out, 0xff, 8);
	b_reset();
	b_desc(mem, 0, 0, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x60000, 8);
	b_dispatch(k, 0, NULL, 0, 0, 0, 0, 1, 1, 1);
	CHECK_RET(b_run(dev), 0);
	CHECK(out[0] == sh / 4 && out[1] == 32, "the driver's length %u (want %u), Q %u (want 32)",
	      out[0], sh / 4, out[1]);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, k), 0);
	data[2] = 0; /* B false: 2u, one float over */
	refuse2(dev, &s, NULL, e, 4, data, 16, 0, -1, -E2BIG, "maxComputeSharedMemorySize",
		"specialized expression one over the limit");
	data[2] = 1;
	data[3] = 0; /* D 0: 64u / 0, in a constant that sizes nothing */
	refuse2(dev, &s, NULL, e, 4, data, 16, 0, -1, -EINVAL,
		"divides by zero after specialization", "specialized division by zero");
	free(s.words);

	/* Each operation, on defaults (SPIR-V text). */
	check_spec_expr(dev, sh, NULL,
			"%a = OpSpecConstant %uint 12\n%b = OpSpecConstant %uint 5\n"
			"%e = OpSpecConstantOp %uint IMul %a %b",
			60, "IMul");
	check_spec_expr(
		dev, sh, NULL,
		"%a = OpSpecConstant %uint 4294967295\n%e = OpSpecConstantOp %uint IAdd %a %c2", 1,
		"IAdd wraps");
	check_spec_expr(dev, sh, NULL,
			"%a = OpSpecConstant %uint 3\n%b = OpSpecConstantOp %uint ISub %a %c2\n"
			"%z = OpSpecConstantOp %uint ISub %c0 %c1\n"
			"%e = OpSpecConstantOp %uint ISub %b %z",
			2, "ISub wraps");
	check_spec_expr(
		dev, sh, NULL,
		"%a = OpSpecConstant %int -17\n%b = OpSpecConstant %int 5\n"
		"%q = OpSpecConstantOp %int SDiv %a %b\n%e = OpSpecConstantOp %int SNegate %q",
		3, "SDiv rounds toward zero");
	check_spec_expr(
		dev, sh, NULL,
		"%a = OpSpecConstant %int -17\n%b = OpSpecConstant %int 5\n"
		"%q = OpSpecConstantOp %int SRem %a %b\n%e = OpSpecConstantOp %int SNegate %q",
		2, "SRem takes the dividend's sign");
	check_spec_expr(dev, sh, NULL,
			"%a = OpSpecConstant %int -17\n%b = OpSpecConstant %int 5\n"
			"%e = OpSpecConstantOp %int SMod %a %b",
			3, "SMod takes the divisor's sign");
	check_spec_expr(
		dev, sh, NULL,
		"%a = OpSpecConstant %int 17\n%b = OpSpecConstant %int -5\n"
		"%q = OpSpecConstantOp %int SMod %a %b\n%e = OpSpecConstantOp %int SNegate %q",
		3, "SMod by a negative");
	check_spec_expr(
		dev, sh, NULL,
		"%a = OpSpecConstant %uint 17\n%b = OpSpecConstant %uint 5\n"
		"%q = OpSpecConstantOp %uint UDiv %a %b\n%r = OpSpecConstantOp %uint UMod %a %b\n"
		"%e = OpSpecConstantOp %uint IMul %q %r",
		6, "UDiv, UMod");
	check_spec_expr(dev, sh, NULL,
			"%a = OpSpecConstant %uint 3\n%b = OpSpecConstant %uint 4\n"
			"%e = OpSpecConstantOp %uint ShiftLeftLogical %a %b",
			48, "ShiftLeftLogical");
	check_spec_expr(dev, sh, NULL,
			"%a = OpSpecConstant %uint 2147483648\n%b = OpSpecConstant %uint 28\n"
			"%e = OpSpecConstantOp %uint ShiftRightLogical %a %b",
			8, "ShiftRightLogical");
	check_spec_expr(dev, sh, NULL,
			"%a = OpSpecConstant %int -64\n%b = OpSpecConstant %uint 3\n"
			"%q = OpSpecConstantOp %int ShiftRightArithmetic %a %b\n"
			"%e = OpSpecConstantOp %int SNegate %q",
			8, "ShiftRightArithmetic");
	check_spec_expr(dev, sh, NULL,
			"%a = OpSpecConstant %uint 12\n%b = OpSpecConstant %uint 3\n"
			"%o = OpSpecConstantOp %uint BitwiseOr %a %b\n"
			"%x = OpSpecConstantOp %uint BitwiseXor %o %c2\n"
			"%n = OpSpecConstant %uint 4294967280\n%m = OpSpecConstantOp %uint Not %n\n"
			"%e = OpSpecConstantOp %uint BitwiseAnd %x %m",
			13, "Or, Xor, Not, And");
	check_spec_expr(
		dev, sh, NULL,
		"%big = OpSpecConstant %uint 4294967295\n%neg = OpSpecConstant %int -1\n"
		"%u = OpSpecConstantOp %bool ULessThan %big %c1\n"
		"%s = OpSpecConstantOp %bool SLessThan %neg %c1\n"
		"%ge = OpSpecConstantOp %bool UGreaterThanEqual %big %c1\n"
		"%sg = OpSpecConstantOp %bool SGreaterThan %neg %c0\n"
		"%eq = OpSpecConstantOp %bool IEqual %c2 %c2\n"
		"%ne = OpSpecConstantOp %bool INotEqual %c2 %c2\n"
		"%le = OpSpecConstantOp %bool SLessThanEqual %neg %neg\n"
		"%ule = OpSpecConstantOp %bool ULessThanEqual %big %c0\n"
		"%ugt = OpSpecConstantOp %bool UGreaterThan %big %c0\n"
		"%sge = OpSpecConstantOp %bool SGreaterThanEqual %c0 %neg\n"
		"%c4 = OpConstant %uint 4\n%c8 = OpConstant %uint 8\n%c16 = OpConstant %uint 16\n"
		"%c32 = OpConstant %uint 32\n%c64 = OpConstant %uint 64\n"
		"%c128 = OpConstant %uint 128\n%c256 = OpConstant %uint 256\n"
		"%c512 = OpConstant %uint 512\n"
		"%b0 = OpSpecConstantOp %uint Select %u %c1 %c0\n"
		"%b1 = OpSpecConstantOp %uint Select %s %c2 %c0\n"
		"%b2 = OpSpecConstantOp %uint Select %ge %c4 %c0\n"
		"%b3 = OpSpecConstantOp %uint Select %sg %c8 %c0\n"
		"%b4 = OpSpecConstantOp %uint Select %eq %c16 %c0\n"
		"%b5 = OpSpecConstantOp %uint Select %ne %c32 %c0\n"
		"%b6 = OpSpecConstantOp %uint Select %le %c64 %c0\n"
		"%b7 = OpSpecConstantOp %uint Select %ule %c128 %c0\n"
		"%b8 = OpSpecConstantOp %uint Select %ugt %c256 %c0\n"
		"%b9 = OpSpecConstantOp %uint Select %sge %c512 %c0\n"
		"%s1 = OpSpecConstantOp %uint BitwiseOr %b0 %b1\n"
		"%s2 = OpSpecConstantOp %uint BitwiseOr %s1 %b2\n"
		"%s3 = OpSpecConstantOp %uint BitwiseOr %s2 %b3\n"
		"%s4 = OpSpecConstantOp %uint BitwiseOr %s3 %b4\n"
		"%s5 = OpSpecConstantOp %uint BitwiseOr %s4 %b5\n"
		"%s6 = OpSpecConstantOp %uint BitwiseOr %s5 %b6\n"
		"%s7 = OpSpecConstantOp %uint BitwiseOr %s6 %b7\n"
		"%s8 = OpSpecConstantOp %uint BitwiseOr %s7 %b8\n"
		"%e = OpSpecConstantOp %uint BitwiseOr %s8 %b9",
		2 + 4 + 16 + 64 + 256 + 512, "comparisons and Select");
	check_spec_expr(dev, sh, NULL,
			"%t = OpSpecConstantTrue %bool\n%f = OpSpecConstantFalse %bool\n"
			"%and = OpSpecConstantOp %bool LogicalAnd %t %f\n"
			"%or = OpSpecConstantOp %bool LogicalOr %t %f\n"
			"%not = OpSpecConstantOp %bool LogicalNot %and\n"
			"%eq = OpSpecConstantOp %bool LogicalEqual %or %not\n"
			"%ne = OpSpecConstantOp %bool LogicalNotEqual %eq %t\n"
			"%x = OpSpecConstantOp %uint Select %eq %c2 %c0\n"
			"%y = OpSpecConstantOp %uint Select %ne %c1 %c0\n"
			"%e = OpSpecConstantOp %uint IAdd %x %y",
			2, "logical operations");
	check_spec_expr(dev, sh, NULL,
			"%v2 = OpTypeVector %uint 2\n%bv2 = OpTypeVector %bool 2\n"
			"%a = OpSpecConstant %uint 3\n%b = OpSpecConstant %uint 7\n"
			"%va = OpSpecConstantComposite %v2 %a %b\n"
			"%vb = OpSpecConstantOp %v2 IAdd %va %va\n"
			"%vs = OpSpecConstantOp %v2 VectorShuffle %va %vb 3 0\n"
			"%vi = OpSpecConstantOp %v2 CompositeInsert %c2 %vs 1\n"
			"%lt = OpSpecConstantOp %bv2 ULessThan %va %vi\n"
			"%vz = OpConstantNull %v2\n"
			"%vm = OpSpecConstantOp %v2 Select %lt %vi %vz\n"
			"%e0 = OpSpecConstantOp %uint CompositeExtract %vm 0\n"
			"%e1 = OpSpecConstantOp %uint CompositeExtract %vi 1\n"
			"%e = OpSpecConstantOp %uint IMul %e0 %e1",
			28,
			"vectors: IAdd, VectorShuffle, CompositeInsert, Select, CompositeExtract");
	check_spec_expr(dev, sh, NULL,
			"%v3 = OpTypeVector %uint 3\n%a = OpSpecConstant %uint 5\n"
			"%st = OpTypeStruct %uint %v3\n%cv = OpConstantComposite %v3 %c1 %c2 %a\n"
			"%cs = OpSpecConstantComposite %st %c0 %cv\n"
			"%e = OpSpecConstantOp %uint CompositeExtract %cs 1 2",
			5, "CompositeExtract through a struct");
	if (caps->features & MDGPU_HOST_FEATURE_SHADER_INT64) {
		check_spec_expr(dev, sh, "OpCapability Int64\n",
				"%long = OpTypeInt 64 1\n%a = OpSpecConstant %int -5\n"
				"%l = OpSpecConstantOp %long SConvert %a\n"
				"%n = OpSpecConstantOp %long SNegate %l\n"
				"%big = OpSpecConstant %long 4294967296\n"
				"%s = OpSpecConstantOp %long IAdd %n %big\n"
				"%e = OpSpecConstantOp %int SConvert %s",
				5, "SConvert, 64-bit");
		/* UConvert in OpSpecConstantOp is a shader's from SPIR-V 1.4 on. */
		if (info->api_version >= ((1u << 22) | (2u << 12)))
			check_spec_expr_version(
				dev, sh, "OpCapability Int64\n",
				"%ulong = OpTypeInt 64 0\n%a = OpSpecConstant %int -5\n"
				"%c28 = OpConstant %uint 28\n"
				"%u = OpSpecConstantOp %ulong UConvert %a\n"
				"%h = OpSpecConstantOp %ulong ShiftRightLogical %u %c28\n"
				"%e = OpSpecConstantOp %uint UConvert %h\n",
				15, "UConvert zero-extends, 64-bit (SPIR-V 1.4)", 0x00010400);
	} else {
		printf("note: the device lacks Int64: SConvert/UConvert to 64 bits not checked\n");
	}

	/* What the spec leaves undefined is refused, sizing something or not. */
	refuse_spec_expr(dev, NULL,
			 "%z = OpSpecConstant %uint 0\n%e = OpSpecConstantOp %uint UDiv %c2 %z",
			 "divides by zero", "UDiv by 0");
	refuse_spec_expr(dev, NULL,
			 "%z = OpSpecConstant %uint 0\n%e = OpSpecConstantOp %uint UMod %c2 %z",
			 "divides by zero", "UMod by 0");
	refuse_spec_expr(dev, NULL,
			 "%m = OpSpecConstant %int -2147483648\n%n1 = OpSpecConstant %int -1\n"
			 "%e = OpSpecConstantOp %int SDiv %m %n1",
			 "signed overflow", "SDiv INT_MIN by -1");
	refuse_spec_expr(dev, NULL,
			 "%m = OpSpecConstant %int -2147483648\n%n1 = OpSpecConstant %int -1\n"
			 "%e = OpSpecConstantOp %int SRem %m %n1",
			 "signed overflow", "SRem INT_MIN by -1");
	refuse_spec_expr(dev, NULL,
			 "%z = OpSpecConstant %int 0\n%e = OpSpecConstantOp %int SMod %c2 %z",
			 "divides by zero", "SMod by 0");
	refuse_spec_expr(dev, NULL,
			 "%b = OpSpecConstant %uint 32\n"
			 "%e = OpSpecConstantOp %uint ShiftLeftLogical %c1 %b",
			 "shifts by the width", "a shift by 32");
	refuse_spec_expr(dev, NULL,
			 "%z = OpSpecConstant %uint 0\n%q = OpSpecConstantOp %uint UDiv %c2 %z\n"
			 "%e = OpSpecConstant %uint 4",
			 "divides by zero", "a division by zero that sizes nothing");

	/*
	 * Hostile: 10,000 operations, each using the one before twice (2^10000 paths through
	 * the DAG), then a length from the last: evaluated once each, no recursion.
	 */
	{
		struct text t = { 0 };

		tadd(&t, "%%x0 = OpSpecConstant %%uint 7\n");
		for (uint32_t i = 1; i <= 10000; i++)
			tadd(&t, "%%x%u = OpSpecConstantOp %%uint BitwiseAnd %%x%u %%x%u\n", i,
			     i - 1, i - 1);
		tadd(&t,
		     "%%arr = OpTypeArray %%float %%x10000\n%%pw = OpTypePointer Workgroup %%arr\n"
		     "%%var = OpVariable %%pw Workgroup");
		try_kernel(dev, kernel_text(NULL, NULL, NULL, t.s, NULL), 0, 0, 0, NULL,
			   "10,000 chained operations");
		free(t.s);
	}
}

/* DISPATCH2 with a base: workgroup ids base..base+groups-1, the counts are the groups. */
static void test_dispatch_base(uint32_t dev, uint32_t mem, uint8_t *base)
{
	struct spirv s = glsl(base_glsl, "");
	uint32_t k, plain, width = 8, bad = 0, *v = (uint32_t *)(base + 0x40000);
	uint64_t id;

	CHECK_RET(create2(dev, &s, NULL, NULL, 0, NULL, 0, 4, -1, MDGPU_HOST_KERNEL_DISPATCH_BASE,
			  &k),
		  0);
	CHECK_RET(create2(dev, &s, NULL, NULL, 0, NULL, 0, 4, -1, 0, &plain), 0);
	memset(v, 0xff, 8 * 4 * 16);
	b_reset();
	b_desc(mem, 0, 0, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x40000, 8 * 4 * 16);
	b_dispatch(k, 0, &width, 4, 2, 1, 0, 3, 2, 1);
	CHECK_RET(b_run(dev), 0);
	for (uint32_t y = 0; y < 4; y++)
		for (uint32_t x = 0; x < 8; x++) {
			const uint32_t *e = &v[(y * 8 + x) * 4];
			bool inside = x >= 2 && x < 5 && y >= 1 && y < 3;

			if (inside)
				bad += e[0] != x || e[1] != y || e[2] != 0 || e[3] != 3;
			else
				bad += e[0] != 0xffffffff;
		}
	CHECK(bad == 0, "dispatch base: %u workgroup records wrong", bad);
	/* A base needs the flag; base + groups within the device's counts. */
	B.cmds[0].u.dispatch2.kernel = plain;
	CHECK_RET(b_submit(dev, &id), -EINVAL);
	CHECK(strstr(mdgpu_host_last_error(), "MDGPU_HOST_KERNEL_DISPATCH_BASE") != NULL, "%s",
	      mdgpu_host_last_error());
	B.cmds[0].u.dispatch2.kernel = k;
	B.cmds[0].u.dispatch2.base[0] = 65535;
	CHECK_RET(b_submit(dev, &id), -E2BIG);
	B.cmds[0].u.dispatch2.base[0] = UINT32_MAX;
	B.cmds[0].u.dispatch2.groups[0] = 1;
	CHECK_RET(b_submit(dev, &id), -E2BIG);
	/* No base: the plain kernel runs with vkCmdDispatch. */
	memset(v, 0xff, 8 * 4 * 16);
	b_reset();
	b_desc(mem, 0, 0, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x40000, 8 * 4 * 16);
	b_dispatch(plain, 0, &width, 4, 0, 0, 0, 1, 1, 1);
	CHECK_RET(b_run(dev), 0);
	CHECK(v[0] == 0 && v[3] == 1 && v[4] == 0xffffffff, "no base: group 0 only");
	/* A zero count runs nothing (and is checked all the same). */
	memset(v, 0xff, 8 * 4 * 16);
	b_reset();
	b_desc(mem, 0, 0, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x40000, 8 * 4 * 16);
	b_dispatch(k, 0, &width, 4, 1, 1, 1, 4, 0, 2);
	b_desc(mem, 0, 0, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x40000, 8 * 4 * 16);
	b_dispatch(plain, 1, &width, 4, 0, 0, 0, 0, 0, 0);
	CHECK_RET(b_run(dev), 0);
	CHECK(v[0] == 0xffffffff && v[8 * 4 * 4 - 1] == 0xffffffff, "zero groups: nothing ran");
	B.cmds[1].u.dispatch2.push_size = 8;
	CHECK_RET(b_submit(dev, &id), -EINVAL);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, k), 0);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, plain), 0);
	free(s.words);
}

/*
 * Every invocation writes what it sees: NumWorkgroups, WorkgroupId, its GlobalInvocationId
 * flattened over the whole grid (from NumWorkgroups), and a push constant. Split into ranges
 * with the whole count in num_workgroups, it must write exactly what the whole dispatch does.
 */
#define GRID_GLSL(PUSH, TAG)                                                  \
	"#version 450\n"                                                      \
	"layout(local_size_x = 4, local_size_y = 2) in;\n"                    \
	"layout(set = 0, binding = 0) buffer Out { uvec4 v[]; } o;\n" PUSH    \
	"uint pack(uvec3 u) { return u.x | (u.y << 10) | (u.z << 20); }\n"    \
	"void main() {\n"                                                     \
	"	uvec3 n = gl_NumWorkGroups;\n"                                      \
	"	uvec3 g = gl_GlobalInvocationID;\n"                                 \
	"	uint w = n.x * gl_WorkGroupSize.x, h = n.y * gl_WorkGroupSize.y;\n" \
	"	uint i = (g.z * h + g.y) * w + g.x;\n"                              \
	"	o.v[i] = uvec4(pack(n), pack(gl_WorkGroupID), i, " TAG ");\n" \
	"}\n"
static const char grid_glsl[] =
	GRID_GLSL("layout(push_constant) uniform P { uint pad[5]; uint tag; } p;\n", "p.tag");
static const char grid_nopush_glsl[] = GRID_GLSL("", "gl_NumWorkGroups.z");

/* NumWorkgroups through a copy of its pointer: not rewritten, not splittable. */
static const char nwg_by_pointer[] =
	"OpCapability Shader\n"
	"OpMemoryModel Logical GLSL450\n"
	"OpEntryPoint GLCompute %main \"main\" %nwg\n"
	"OpExecutionMode %main LocalSize 1 1 1\n"
	"OpDecorate %nwg BuiltIn NumWorkgroups\n"
	"OpDecorate %rt ArrayStride 4\n"
	"OpMemberDecorate %B 0 Offset 0\n"
	"OpDecorate %B Block\n"
	"OpDecorate %buf DescriptorSet 0\n"
	"OpDecorate %buf Binding 0\n"
	"%void = OpTypeVoid\n%fn = OpTypeFunction %void\n%uint = OpTypeInt 32 0\n"
	"%v3 = OpTypeVector %uint 3\n%pv3 = OpTypePointer Input %v3\n"
	"%rt = OpTypeRuntimeArray %uint\n%B = OpTypeStruct %rt\n"
	"%pB = OpTypePointer StorageBuffer %B\n%pu = OpTypePointer StorageBuffer %uint\n"
	"%buf = OpVariable %pB StorageBuffer\n%nwg = OpVariable %pv3 Input\n"
	"%c0 = OpConstant %uint 0\n"
	"%main = OpFunction %void None %fn\n%l = OpLabel\n"
	"%copy = OpCopyObject %pv3 %nwg\n%v = OpLoad %v3 %copy\n"
	"%n = OpCompositeExtract %uint %v 0\n"
	"%p = OpAccessChain %pu %buf %c0 %c0\nOpStore %p %n\nOpReturn\nOpFunctionEnd\n";

static uint32_t kernel_flags(uint32_t dev, uint32_t k)
{
	struct mdgpu_host_kernel_info info;

	CHECK_RET(mdgpu_host_kernel_info(dev, k, &info, NULL, 0), 0);
	return info.flags;
}

/*
 * Run @k over 5x3x2 workgroups once whole, and once as six ranges (whole slabs, rows, parts of
 * a row, in another order) each told the whole count: the two outputs must be identical.
 * @push: 24 bytes of push constants or NULL.
 */
static void split_matches_whole(uint32_t dev, uint32_t mem, uint8_t *base, uint32_t k,
				const uint32_t *push, const char *what)
{
	static const uint32_t parts[][6] = {
		/* base, groups */
		{ 0, 2, 1, 3, 1, 1 }, { 0, 0, 0, 5, 3, 1 }, { 2, 1, 1, 3, 1, 1 },
		{ 0, 0, 1, 5, 1, 1 }, { 0, 1, 1, 2, 1, 1 }, { 3, 2, 1, 0, 1, 1 },
	};
	const uint64_t whole = 0x80000, split = 0xa0000, size = 5 * 4 * 3 * 2 * 2 * 16;
	uint32_t push_size = push ? 24 : 0, n = 0;

	memset(base + whole, 0xee, size);
	memset(base + split, 0xee, size);
	b_reset();
	b_desc(mem, 0, 0, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, whole, size);
	b_dispatch(k, 0, push, push_size, 0, 0, 0, 5, 3, 2);
	CHECK_RET(b_run(dev), 0);
	b_reset();
	b_desc(mem, 0, 0, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, split, size);
	for (uint32_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		struct mdgpu_host_cmd2 *c =
			b_dispatch(k, 0, push, push_size, parts[i][0], parts[i][1], parts[i][2],
				   parts[i][3], parts[i][4], parts[i][5]);

		memcpy(c->u.dispatch2.num_workgroups, (uint32_t[3]){ 5, 3, 2 }, 12);
		n += parts[i][3] * parts[i][4] * parts[i][5];
	}
	CHECK(n == 5 * 3 * 2 - 2, "%s: the parts but the last cover all but two workgroups", what);
	/* The two workgroups left: x 3..4 of row 2, slab 1. */
	memcpy(b_dispatch(k, 0, push, push_size, 3, 2, 1, 2, 1, 1)->u.dispatch2.num_workgroups,
	       (uint32_t[3]){ 5, 3, 2 }, 12);
	CHECK_RET(b_run(dev), 0);
	CHECK(memcmp(base + whole, base + split, size) == 0,
	      "%s: a dispatch run in ranges writes what the whole one does", what);
	CHECK(((uint32_t *)(base + whole))[0] == (5u | 3u << 10 | 2u << 20),
	      "%s: NumWorkgroups is the whole grid's (0x%x)", what,
	      ((uint32_t *)(base + whole))[0]);
}

static void test_split_dispatch(uint32_t dev, uint32_t mem, uint8_t *base)
{
	struct spirv grid = glsl(grid_glsl, ""), nopush = glsl(grid_nopush_glsl, "");
	struct spirv grid15 = glsl(grid_glsl, "--target-env vulkan1.2");
	struct spirv bypointer = assemble_str(nwg_by_pointer), saxpy = load_spirv("saxpy");
	struct spirv gemm = load_spirv("gemm");
	const uint32_t push[6] = { 1, 2, 3, 4, 5, 0xc0ffee };
	uint32_t k, k15, kn, plain, full, ptr, sx, *v = (uint32_t *)(base + 0x80000);
	struct mdgpu_host_device_info info;
	uint64_t id;

	CHECK_RET(mdgpu_host_device_info(dev, &info), 0);
	CHECK_RET(create2(dev, &grid, NULL, NULL, 0, NULL, 0, 24, -1,
			  MDGPU_HOST_KERNEL_DISPATCH_BASE, &k),
		  0);
	CHECK(kernel_flags(dev, k) ==
		      (MDGPU_HOST_KERNEL_DISPATCH_BASE | MDGPU_HOST_KERNEL_SPLITTABLE),
	      "a kernel reading NumWorkgroups is rewritten: splittable (0x%x)",
	      kernel_flags(dev, k));
	split_matches_whole(dev, mem, base, k, push, "push block + NumWorkgroups");
	CHECK(v[3] == 0xc0ffee, "its own push constants are intact (0x%x)", v[3]);
	if ((info.api_version >> 12 & 0x3ff) >= 2) {
		/* SPIR-V 1.5: the push block joins the entry point's interface. */
		CHECK_RET(create2(dev, &grid15, NULL, NULL, 0, NULL, 0, 24, -1,
				  MDGPU_HOST_KERNEL_DISPATCH_BASE, &k15),
			  0);
		CHECK(kernel_flags(dev, k15) & MDGPU_HOST_KERNEL_SPLITTABLE,
		      "SPIR-V 1.5: splittable");
		split_matches_whole(dev, mem, base, k15, push, "SPIR-V 1.5");
		CHECK_RET(mdgpu_host_kernel_destroy(dev, k15), 0);
	}
	/* Without a push block of its own, one is made for it. */
	CHECK_RET(create2(dev, &nopush, NULL, NULL, 0, NULL, 0, 0, -1,
			  MDGPU_HOST_KERNEL_DISPATCH_BASE, &kn),
		  0);
	CHECK(kernel_flags(dev, kn) & MDGPU_HOST_KERNEL_SPLITTABLE, "no push block: splittable");
	split_matches_whole(dev, mem, base, kn, NULL, "no push block");
	CHECK(v[3] == 2, "NumWorkgroups.z read whole: %u", v[3]);

	/* saxpy reads NumWorkgroups (rewritten); gemm does not (splittable as it is). */
	CHECK_RET(create2(dev, &saxpy, NULL, NULL, 0, NULL, 0, 8, -1,
			  MDGPU_HOST_KERNEL_DISPATCH_BASE, &sx),
		  0);
	CHECK(kernel_flags(dev, sx) & MDGPU_HOST_KERNEL_SPLITTABLE, "saxpy: splittable");
	CHECK_RET(mdgpu_host_kernel_destroy(dev, sx), 0);
	CHECK_RET(create2(dev, &gemm, NULL, NULL, 0, NULL, 0, 12, -1,
			  MDGPU_HOST_KERNEL_DISPATCH_BASE, &sx),
		  0);
	CHECK(kernel_flags(dev, sx) & MDGPU_HOST_KERNEL_SPLITTABLE, "gemm: splittable");

	/* Not made for a base: nothing rewritten, not splittable, no count but its own. */
	CHECK_RET(create2(dev, &grid, NULL, NULL, 0, NULL, 0, 24, -1, 0, &plain), 0);
	CHECK(kernel_flags(dev, plain) == 0, "without DISPATCH_BASE: flags 0x%x",
	      kernel_flags(dev, plain));
	/* No room past 116 bytes of push constants for the count: built as it is. */
	CHECK_RET(create2(dev, &grid, NULL, NULL, 0, NULL, 0, info.max_push_constant_size, -1,
			  MDGPU_HOST_KERNEL_DISPATCH_BASE, &full),
		  0);
	CHECK(kernel_flags(dev, full) == MDGPU_HOST_KERNEL_DISPATCH_BASE,
	      "no room for the count: not splittable (0x%x)", kernel_flags(dev, full));
	/* A use it does not rewrite: built as it is. */
	CHECK_RET(create2(dev, &bypointer, NULL, NULL, 0, NULL, 0, 0, -1,
			  MDGPU_HOST_KERNEL_DISPATCH_BASE, &ptr),
		  0);
	CHECK(kernel_flags(dev, ptr) == MDGPU_HOST_KERNEL_DISPATCH_BASE,
	      "NumWorkgroups through a copied pointer: not splittable (0x%x)",
	      kernel_flags(dev, ptr));
	b_reset();
	b_desc(mem, 0, 0, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x80000, 16);
	b_dispatch(ptr, 0, NULL, 0, 1, 0, 0, 2, 1, 1);
	CHECK_RET(b_run(dev), 0);
	CHECK(v[0] == 2, "it reads its own count, as Vulkan says: %u", v[0]);
	/* ... and a count other than its groups is refused for it, but not its own. */
	memcpy(B.cmds[0].u.dispatch2.num_workgroups, (uint32_t[3]){ 3, 1, 1 }, 12);
	CHECK_RET(b_submit(dev, &id), -EINVAL);
	CHECK(strstr(mdgpu_host_last_error(), "SPLITTABLE") != NULL, "%s", mdgpu_host_last_error());
	memcpy(B.cmds[0].u.dispatch2.num_workgroups, (uint32_t[3]){ 2, 1, 1 }, 12);
	CHECK_RET(b_run(dev), 0);
	/* A kernel that does not read NumWorkgroups takes any count (it changes nothing). */
	b_reset();
	for (uint32_t i = 0; i < 3; i++)
		b_desc(mem, 0, i, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x80000 + 1024 * i,
		       1024);
	memcpy(b_dispatch(sx, 0, (uint32_t[3]){ 16, 16, 16 }, 12, 0, 0, 0, 1, 1, 1)
		       ->u.dispatch2.num_workgroups,
	       (uint32_t[3]){ 9, 9, 9 }, 12);
	CHECK_RET(b_run(dev), 0);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, sx), 0);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, ptr), 0);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, full), 0);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, plain), 0);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, kn), 0);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, k), 0);
	free(grid.words);
	free(grid15.words);
	free(nopush.words);
	free(bypointer.words);
	free(saxpy.words);
	free(gemm.words);
}

/* 8- and 16-bit storage, Int64, subgroup arithmetic, on a device that has them. */
static void test_narrow_types(uint32_t dev, uint32_t mem, uint8_t *base,
			      const struct mdgpu_host_caps *caps)
{
	const uint32_t need = MDGPU_HOST_FEATURE_STORAGE_BUFFER_8BIT |
			      MDGPU_HOST_FEATURE_STORAGE_BUFFER_16BIT |
			      MDGPU_HOST_FEATURE_SHADER_INT64 | MDGPU_HOST_FEATURE_SHADER_FLOAT64;
	const uint32_t n = 256;
	uint8_t *a = base + 0x50000;
	uint16_t *b = (uint16_t *)(base + 0x51000);
	uint32_t *c = (uint32_t *)(base + 0x52000), *sg = (uint32_t *)(base + 0x53000);
	int64_t *l = (int64_t *)(base + 0x54000);
	struct spirv s;
	uint32_t k, bad = 0, groups_bad = 0;

	if ((caps->features & need) != need || (caps->subgroup_operations & 0x05) != 0x05) {
		printf("note: the device lacks 8/16-bit storage, Int64 or subgroup arithmetic\n");
		return;
	}
	s = glsl(narrow_glsl, "");
	CHECK_RET(create2(dev, &s, NULL, NULL, 0, NULL, 0, 0, -1, 0, &k), 0);
	for (uint32_t i = 0; i < n; i++) {
		a[i] = (uint8_t)(i * 7);
		b[i] = (uint16_t)(0x4000 + (i % 4) * 0x100); /* 2.0, 2.5, 3.0, 3.5 as float16 */
	}
	b_reset();
	b_desc(mem, 0, 0, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x50000, n);
	b_desc(mem, 0, 1, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x51000, n * 2);
	b_desc(mem, 0, 2, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x52000, n * 4);
	b_desc(mem, 0, 3, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x53000, n * 8);
	b_desc(mem, 0, 4, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x54000, n * 8);
	b_dispatch(k, 0, NULL, 0, 0, 0, 0, n / 64, 1, 1);
	CHECK_RET(b_run(dev), 0);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t half = 2 + (i % 4) / 2; /* uint(2.0, 2.5, 3.0, 3.5) */

		bad += c[i] != half + a[i] || l[i] != (int64_t)a[i] * -4294967296ll;
	}
	CHECK(bad == 0, "8/16-bit storage and Int64: %u wrong", bad);
	/* Each subgroup's sum, by (subgroup id): every member has the same. */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t sum = 0;

		for (uint32_t j = 0; j < n; j++)
			if (sg[2 * j + 1] == sg[2 * i + 1])
				sum += a[j];
		groups_bad += sg[2 * i] != sum;
	}
	CHECK(groups_bad == 0, "subgroupAdd: %u sums wrong (subgroup size %u)", groups_bad,
	      caps->subgroup_size);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, k), 0);
	free(s.words);
}

/*
 * COPY at any alignment, UPDATE, FILL, TIMESTAMP through submit2 (zero copy and staged);
 * @base is where @mem starts.
 */
static void test_transfer2(uint32_t dev, uint32_t mem, uint8_t *base, const char *what)
{
	struct mdgpu_host_status st;
	uint8_t update[256], *big = malloc(MDGPU_HOST_MAX_UPDATE);
	uint32_t bad = 0;
	uint64_t id, t0;

	for (uint32_t i = 0; i < sizeof(update); i++)
		update[i] = (uint8_t)(i * 3 + 1);
	for (uint32_t i = 0; i < MDGPU_HOST_MAX_UPDATE; i++)
		big[i] = (uint8_t)(i ^ 0x5a);
	for (uint32_t i = 0; i < 0x8000; i++)
		base[i] = (uint8_t)i;
	memset(base + 0x10000, 0x11, 0x12000);
	b_reset();
	/* Byte-granular copies: odd offsets and sizes. */
	b_cmd(MDGPU_HOST_OP_COPY)->u.copy = (struct mdgpu_host_cmd_copy){ mem, mem, 1, 0x4003, 5 };
	b_cmd(MDGPU_HOST_OP_COPY)->u.copy =
		(struct mdgpu_host_cmd_copy){ mem, mem, 0x101, 0x5002, 0x333 };
	b_update(mem, 0x6000, update, sizeof(update));
	b_update(mem, 0x10000, big, MDGPU_HOST_MAX_UPDATE);
	b_cmd(MDGPU_HOST_OP_FILL)->u.fill =
		(struct mdgpu_host_cmd_fill){ mem, 0x01020304, 0x7000, 8 };
	b_cmd(MDGPU_HOST_OP_BARRIER);
	/* After the barrier: a copy of what UPDATE wrote. */
	b_cmd(MDGPU_HOST_OP_COPY)->u.copy =
		(struct mdgpu_host_cmd_copy){ mem, mem, 0x6001, 0x7011, 7 };
	b_cmd(MDGPU_HOST_OP_TIMESTAMP)->u.timestamp =
		(struct mdgpu_host_cmd_timestamp){ .mem = mem, .offset = 0x7100 };
	CHECK_RET(b_submit(dev, &id), 0);
	CHECK_RET(mdgpu_host_wait(dev, id, UINT64_MAX, &st), 0);
	CHECK(st.result == 0, "%s: result %d", what, st.result);
	for (uint32_t i = 0; i < 5; i++)
		bad += base[0x4003 + i] != (uint8_t)(1 + i);
	for (uint32_t i = 0; i < 0x333; i++)
		bad += base[0x5002 + i] != (uint8_t)(0x101 + i);
	CHECK(bad == 0 && base[0x4002] == 0x02 && base[0x4008] == 0x08 && base[0x5001] == 0x01 &&
		      base[0x5335] == 0x35,
	      "%s: unaligned COPY (%u wrong, neighbours kept)", what, bad);
	CHECK(memcmp(base + 0x6000, update, sizeof(update)) == 0 && base[0x6100] == 0x00,
	      "%s: UPDATE", what);
	CHECK(memcmp(base + 0x10000, big, MDGPU_HOST_MAX_UPDATE) == 0 &&
		      base[0x10000 + MDGPU_HOST_MAX_UPDATE] == 0x11,
	      "%s: UPDATE of 64 KiB", what);
	CHECK(base[0x7000] == 0x04 && base[0x7007] == 0x01, "%s: FILL", what);
	CHECK(memcmp(base + 0x7011, update + 1, 7) == 0, "%s: COPY after UPDATE and BARRIER", what);
	memcpy(&t0, base + 0x7100, 8);
	CHECK(t0 >= st.device_begin_ns && t0 <= st.device_end_ns, "%s: TIMESTAMP", what);
	free(big);
}

/* Entry points by name, and legacy layouts through both submit calls. */
static void test_entry_points(uint32_t dev, uint32_t mem, uint8_t *base)
{
	static const char two_entries[] =
		"OpCapability Shader\n"
		"OpMemoryModel Logical GLSL450\n"
		"OpEntryPoint GLCompute %one \"one\"\n"
		"OpEntryPoint GLCompute %two \"two\"\n"
		"OpEntryPoint Vertex %vs \"vs\"\n"
		"OpExecutionMode %one LocalSize 4 1 1\n"
		"OpExecutionMode %two LocalSize 2 3 1\n"
		"OpDecorate %rt ArrayStride 4\n"
		"OpMemberDecorate %B 0 Offset 0\n"
		"OpDecorate %B Block\n"
		"OpDecorate %buf DescriptorSet 0\n"
		"OpDecorate %buf Binding 0\n"
		"%void = OpTypeVoid\n%fn = OpTypeFunction %void\n%uint = OpTypeInt 32 0\n"
		"%rt = OpTypeRuntimeArray %uint\n%B = OpTypeStruct %rt\n"
		"%pB = OpTypePointer StorageBuffer %B\n%pu = OpTypePointer StorageBuffer %uint\n"
		"%buf = OpVariable %pB StorageBuffer\n"
		"%c0 = OpConstant %uint 0\n%c1 = OpConstant %uint 1\n%c2 = OpConstant %uint 2\n"
		"%one = OpFunction %void None %fn\n%l1 = OpLabel\n"
		"%p1 = OpAccessChain %pu %buf %c0 %c0\nOpStore %p1 %c1\nOpReturn\nOpFunctionEnd\n"
		"%two = OpFunction %void None %fn\n%l2 = OpLabel\n"
		"%p2 = OpAccessChain %pu %buf %c0 %c0\nOpStore %p2 %c2\nOpReturn\nOpFunctionEnd\n"
		"%vs = OpFunction %void None %fn\n%l3 = OpLabel\nOpReturn\nOpFunctionEnd\n";
	const struct mdgpu_host_kernel_binding one_buffer = { 0, 0,
							      MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER,
							      1 };
	struct spirv s = assemble_str(two_entries), m = load_spirv("memcpy");
	char long_name[MDGPU_HOST_MAX_ENTRY_NAME + 2];
	uint32_t k1, k2, legacy, *w = (uint32_t *)(base + 0x60000), n = 64;
	struct mdgpu_host_binding b[2];
	struct mdgpu_host_cmd c;
	uint64_t id;

	CHECK_RET(create2(dev, &s, "one", NULL, 0, NULL, 0, 0, -1, 0, &k1), 0);
	CHECK_RET(create2(dev, &s, "two", NULL, 0, NULL, 0, 0, -1, 0, &k2), 0);
	check_info(dev, k1, &one_buffer, 1, 4, 1, 1, "entry one");
	check_info(dev, k2, &one_buffer, 1, 2, 3, 1, "entry two");
	b_reset();
	b_desc(mem, 0, 0, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x60000, 16);
	b_dispatch(k1, 0, NULL, 0, 0, 0, 0, 1, 1, 1);
	b_cmd(MDGPU_HOST_OP_BARRIER);
	b_desc(mem, 0, 0, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x60010, 16);
	b_dispatch(k2, 1, NULL, 0, 0, 0, 0, 1, 1, 1);
	CHECK_RET(b_run(dev), 0);
	CHECK(w[0] == 1 && w[4] == 2, "each entry point ran its own function (%u, %u)", w[0], w[4]);
	refuse2(dev, &s, NULL, NULL, 0, NULL, 0, 0, -1, -EINVAL, "no entry point \"main\"",
		"default main missing");
	refuse2(dev, &s, "vs", NULL, 0, NULL, 0, 0, -1, -EINVAL, "not a GLCompute",
		"a vertex entry point");
	refuse2(dev, &s, "three", NULL, 0, NULL, 0, 0, -1, -EINVAL, "no entry point \"three\"",
		"unknown entry point");
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	refuse2(dev, &s, long_name, NULL, 0, NULL, 0, 0, -1, -EINVAL, "longer than",
		"entry name too long");
	/* The old call needs exactly one GLCompute entry point. */
	try_kernel(dev, assemble_str(two_entries), 1, 0, -EINVAL, "needs exactly 1",
		   "kernel_create with two entry points");

	/* A legacy kernel through kernel_create2, dispatched by both calls. */
	CHECK_RET(create2(dev, &m, NULL, NULL, 0, NULL, 0, 4, 2, 0, &legacy), 0);
	{
		const struct mdgpu_host_kernel_binding want[2] = {
			{ 0, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 1 },
			{ 0, 1, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 1 },
		};

		check_info(dev, legacy, want, 2, 64, 1, 1, "legacy memcpy");
	}
	for (uint32_t i = 0; i < n; i++) {
		w[i] = i * 11;
		w[64 + i] = 0;
	}
	b_reset();
	b_desc(mem, 0, 1, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x60100, n * 4);
	b_desc(mem, 0, 0, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x60000, n * 4);
	b_dispatch(legacy, 0, &n, 4, 0, 0, 0, 1, 1, 1);
	CHECK_RET(b_run(dev), 0);
	CHECK(w[64 + n - 1] == (n - 1) * 11, "legacy kernel through DISPATCH2");
	b[0] = bind(mem, 0x60000, n * 4);
	b[1] = bind(mem, 0x60100, n * 4);
	c = dispatch(legacy, 1, 1, 1, 0, 2, 0, 4);
	CHECK_RET(run(dev, &c, 1, b, 2, &n, 4, NULL), 0);
	/* A reflected kernel of one storage buffer at set 0, binding 0 is DISPATCH-able too. */
	c = dispatch(k1, 1, 1, 1, 0, 1, 0, 0);
	CHECK_RET(run(dev, &c, 1, b, 1, NULL, 0, NULL), 0);
	CHECK(w[0] == 1, "reflected kernel through DISPATCH");
	/* Not one with other descriptors. */
	{
		struct spirv sets = glsl(sets_glsl, "");
		uint32_t ks;

		CHECK_RET(create2(dev, &sets, NULL, NULL, 0, NULL, 0, 0, -1, 0, &ks), 0);
		c = dispatch(ks, 1, 1, 1, 0, 0, 0, 0);
		CHECK_RET(mdgpu_host_submit(dev, &c, 1, NULL, 0, NULL, 0, &id), -EINVAL);
		CHECK(strstr(mdgpu_host_last_error(), "use DISPATCH2") != NULL, "%s",
		      mdgpu_host_last_error());
		/* A legacy layout refuses what it cannot hold. */
		refuse2(dev, &sets, NULL, NULL, 0, NULL, 0, 0, 4, -EINVAL,
			"uniform buffers are not supported", "legacy layout, uniform buffer");
		CHECK_RET(mdgpu_host_kernel_destroy(dev, ks), 0);
		free(sets.words);
	}
	CHECK_RET(mdgpu_host_kernel_destroy(dev, k1), 0);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, k2), 0);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, legacy), 0);
	free(s.words);
	free(m.words);
}

/* Layouts the reflection refuses, capabilities the device lacks, bad descriptors. */
static void test_reflection_refusals(uint32_t dev, const struct mdgpu_host_caps *caps)
{
	char src[1024], decl[256];
	struct spirv s = glsl(sets_glsl, "");
	struct mdgpu_host_kernel_desc d = { .words = s.words, .word_count = s.count };
	uint32_t k = 5;

	/* The descriptor struct. */
	CHECK_RET(mdgpu_host_kernel_create2(dev, NULL, &k, NULL, 0), -EINVAL);
	CHECK_RET(mdgpu_host_kernel_create2(dev, &d, NULL, NULL, 0), -EINVAL);
	d.legacy_bindings = -1;
	d.flags = 2;
	CHECK_RET(mdgpu_host_kernel_create2(dev, &d, &k, NULL, 0), -EINVAL);
	d.flags = 0;
	d.reserved[3] = 1;
	CHECK_RET(mdgpu_host_kernel_create2(dev, &d, &k, NULL, 0), -EINVAL);
	d.reserved[3] = 0;
	d.legacy_bindings = -2;
	CHECK_RET(mdgpu_host_kernel_create2(dev, &d, &k, NULL, 0), -EINVAL);
	d.legacy_bindings = 17;
	CHECK_RET(mdgpu_host_kernel_create2(dev, &d, &k, NULL, 0), -E2BIG);
	d.legacy_bindings = -1;
	d.push_size = 6;
	CHECK_RET(mdgpu_host_kernel_create2(dev, &d, &k, NULL, 0), -EINVAL);
	d.push_size = 0;
	CHECK_RET(mdgpu_host_kernel_create2(0, &d, &k, NULL, 0), -ENOENT);
	d.word_count = 0;
	CHECK_RET(mdgpu_host_kernel_create2(dev, &d, &k, NULL, 0), -EINVAL);
	CHECK(k == 0, "handle zeroed");
	free(s.words);

#define LAYOUT(d, want, needle, what)                                                            \
	do {                                                                                     \
		snprintf(src, sizeof(src),                                                       \
			 "#version 450\nlayout(local_size_x = 1) in;\n%s\nvoid main() {}\n", d); \
		s = glsl(src, "");                                                               \
		refuse2(dev, &s, NULL, NULL, 0, NULL, 0, 0, -1, want, needle, what);             \
		free(s.words);                                                                   \
	} while (0)

	LAYOUT("layout(set = 0, binding = 0) uniform sampler2D t;\n"
	       "void f() { texture(t, vec2(0)); }",
	       -EINVAL, "is not supported (storage and uniform buffers", "a sampler");
	LAYOUT("layout(set = 0, binding = 0, r32f) uniform image2D img;", -EINVAL,
	       "is not supported", "an image");
	snprintf(decl, sizeof(decl), "layout(set = %u, binding = 0) buffer B { uint v; } b;",
		 caps->max_bound_descriptor_sets);
	LAYOUT(decl, -E2BIG, "maxBoundDescriptorSets", "a set past the device's");
	LAYOUT("layout(set = 0, binding = 1024) buffer B { uint v; } b;", -E2BIG,
	       "MDGPU_HOST_MAX_BINDING_NUMBER", "a binding number too large");
	snprintf(decl, sizeof(decl), "layout(set = 0, binding = 0) buffer B { uint v; } b[%u];",
		 caps->max_per_stage_storage_buffers + 1);
	LAYOUT(decl, -E2BIG, "maxPerStageDescriptorStorageBuffers", "too many storage buffers");
	snprintf(decl, sizeof(decl), "layout(set = 0, binding = 0) uniform B { uint v; } b[%u];",
		 caps->max_per_stage_uniform_buffers + 1);
	LAYOUT(decl, -E2BIG, "maxPerStageDescriptorUniformBuffers", "too many uniform buffers");
	LAYOUT("layout(set = 0, binding = 0) buffer B { uint v; } b[200];", -E2BIG, "buffers",
	       "an array over the library's limit");

	/* Runtime-sized arrays, arrays of arrays, two variables of one binding. */
	s = assemble_str("OpCapability Shader\nOpCapability RuntimeDescriptorArray\n"
			 "OpExtension \"SPV_EXT_descriptor_indexing\"\n"
			 "OpMemoryModel Logical GLSL450\n"
			 "OpEntryPoint GLCompute %main \"main\"\n"
			 "OpExecutionMode %main LocalSize 1 1 1\n"
			 "OpMemberDecorate %B 0 Offset 0\nOpDecorate %B Block\n"
			 "OpDecorate %v DescriptorSet 0\nOpDecorate %v Binding 0\n"
			 "%void = OpTypeVoid\n%fn = OpTypeFunction %void\n"
			 "%uint = OpTypeInt 32 0\n%B = OpTypeStruct %uint\n"
			 "%ra = OpTypeRuntimeArray %B\n%p = OpTypePointer StorageBuffer %ra\n"
			 "%v = OpVariable %p StorageBuffer\n"
			 "%main = OpFunction %void None %fn\n%e = OpLabel\nOpReturn\n"
			 "OpFunctionEnd\n");
	refuse2(dev, &s, NULL, NULL, 0, NULL, 0, 0, -1, -EINVAL, "capability",
		"runtime descriptor array capability");
	free(s.words);
	s = kernel_text(NULL, NULL,
			"OpMemberDecorate %B 0 Offset 0\nOpDecorate %B Block\n"
			"OpDecorate %v DescriptorSet 0\nOpDecorate %v Binding 0",
			"%B = OpTypeStruct %uint\n%a1 = OpTypeArray %B %c2\n"
			"%a2 = OpTypeArray %a1 %c2\n%p = OpTypePointer StorageBuffer %a2\n"
			"%v = OpVariable %p StorageBuffer",
			NULL);
	refuse2(dev, &s, NULL, NULL, 0, NULL, 0, 0, -1, -EINVAL, "SPIR-V invalid",
		"arrays of arrays of buffers");
	free(s.words);
	s = kernel_text(
		NULL, NULL,
		"OpMemberDecorate %B 0 Offset 0\nOpDecorate %B Block\n"
		"OpDecorate %v DescriptorSet 0\nOpDecorate %v Binding 0\n"
		"OpDecorate %w DescriptorSet 0\nOpDecorate %w Binding 0",
		"%B = OpTypeStruct %uint\n%a = OpTypeArray %B %c2\n"
		"%p = OpTypePointer StorageBuffer %B\n%pa = OpTypePointer StorageBuffer %a\n"
		"%v = OpVariable %p StorageBuffer\n%w = OpVariable %pa StorageBuffer",
		NULL);
	refuse2(dev, &s, NULL, NULL, 0, NULL, 0, 0, -1, -EINVAL, "different types or array sizes",
		"two variables of one binding, different sizes");
	free(s.words);
	/* Two variables of one binding that agree: one descriptor (aliases). */
	s = kernel_text(
		NULL, NULL,
		"OpMemberDecorate %B 0 Offset 0\nOpDecorate %B Block\n"
		"OpMemberDecorate %F 0 Offset 0\nOpDecorate %F Block\n"
		"OpDecorate %v DescriptorSet 1\nOpDecorate %v Binding 3\n"
		"OpDecorate %w DescriptorSet 1\nOpDecorate %w Binding 3",
		"%B = OpTypeStruct %uint\n%F = OpTypeStruct %float\n"
		"%p = OpTypePointer StorageBuffer %B\n%pf = OpTypePointer StorageBuffer %F\n"
		"%v = OpVariable %p StorageBuffer\n%w = OpVariable %pf StorageBuffer",
		NULL);
	{
		const struct mdgpu_host_kernel_binding want = {
			1, 3, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 1
		};

		CHECK_RET(create2(dev, &s, NULL, NULL, 0, NULL, 0, 0, -1, 0, &k), 0);
		check_info(dev, k, &want, 1, 1, 1, 1, "aliased binding");
		CHECK_RET(mdgpu_host_kernel_destroy(dev, k), 0);
	}
	free(s.words);
	/* A descriptor array whose length is a specialization constant: specialized. */
	s = kernel_text(NULL, NULL,
			"OpMemberDecorate %B 0 Offset 0\nOpDecorate %B Block\n"
			"OpDecorate %v DescriptorSet 0\nOpDecorate %v Binding 0\n"
			"OpDecorate %len SpecId 7",
			"%B = OpTypeStruct %uint\n%len = OpSpecConstant %uint 2\n"
			"%a = OpTypeArray %B %len\n%p = OpTypePointer StorageBuffer %a\n"
			"%v = OpVariable %p StorageBuffer",
			NULL);
	{
		const struct mdgpu_host_kernel_binding want = {
			0, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 5
		};
		const struct mdgpu_host_spec_entry e = { 7, 0, 4, 0 };
		const uint32_t five = 5;

		CHECK_RET(create2(dev, &s, NULL, &e, 1, &five, 4, 0, -1, 0, &k), 0);
		check_info(dev, k, &want, 1, 1, 1, 1, "specialized descriptor array");
		CHECK_RET(mdgpu_host_kernel_destroy(dev, k), 0);
	}
	free(s.words);

	/* Capabilities: the device's features allow some, never what it lacks. */
	s = kernel_text("OpCapability VariablePointersStorageBuffer\n"
			"OpExtension \"SPV_KHR_variable_pointers\"\n",
			NULL, NULL, NULL, NULL);
	CHECK_RET(create2(dev, &s, NULL, NULL, 0, NULL, 0, 0, -1, 0, &k),
		  (caps->features & MDGPU_HOST_FEATURE_VARIABLE_POINTERS) ? 0 : -EINVAL);
	if (caps->features & MDGPU_HOST_FEATURE_VARIABLE_POINTERS)
		mdgpu_host_kernel_destroy(dev, k);
	free(s.words);
	for (int i = 0; i < 3; i++) {
		static const char *const never[] = {
			"OpCapability VariablePointers\nOpExtension \"SPV_KHR_variable_pointers\"\n",
			"OpCapability Int64Atomics\nOpCapability Int64\n",
			"OpCapability StorageInputOutput16\n"
			"OpExtension \"SPV_KHR_16bit_storage\"\n",
		};

		s = kernel_text(never[i], NULL, NULL, NULL, NULL);
		refuse2(dev, &s, NULL, NULL, 0, NULL, 0, 0, -1, -EINVAL, "capability",
			"a capability mdgpu does not enable");
		free(s.words);
	}
	/* A push block larger than push_size. */
	s = glsl("#version 450\nlayout(local_size_x = 1) in;\n"
		 "layout(push_constant) uniform P { uint a[8]; } p;\n"
		 "layout(set = 0, binding = 0) buffer O { uint v; } o;\n"
		 "void main() { o.v = p.a[7]; }\n",
		 "");
	refuse2(dev, &s, NULL, NULL, 0, NULL, 0, 16, -1, -EINVAL, "push-constant block is 32",
		"push block over push_size");
	CHECK_RET(create2(dev, &s, NULL, NULL, 0, NULL, 0, 32, -1, 0, &k), 0);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, k), 0);
	free(s.words);
#undef LAYOUT
}

/* A good DISPATCH2 of the sets kernel @k (its 5 descriptors), to spoil. */
static void sets_dispatch(uint32_t mem, uint32_t k)
{
	b_desc(mem, 0, 0, 0, MDGPU_HOST_DESCRIPTOR_UNIFORM_BUFFER, 0, 16);
	for (uint32_t j = 0; j < 3; j++)
		b_desc(mem, 0, 2, j, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x1000, 64);
	b_desc(mem, 2, 1, 0, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 0x2000, 64);
	b_dispatch(k, 0, NULL, 0, 0, 0, 0, 1, 1, 1);
}

/* Every submit2 refusal: nothing of a refused batch runs. */
static void test_bad_submit2(uint32_t dev, const struct mdgpu_host_caps *caps)
{
	struct aperture ap = aperture_new(1 << 20);
	struct spirv s = glsl(sets_glsl, ""), b = glsl(base_glsl, "");
	uint32_t mem, gone, k, kb, *canary = (uint32_t *)(ap.base + 0x8000), width = 1;
	uint64_t id = 7;

	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, ap.size, 0, &mem), 0);
	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, 4096, 0, &gone), 0);
	CHECK_RET(mdgpu_host_memory_destroy(dev, gone), 0);
	CHECK_RET(create2(dev, &s, NULL, NULL, 0, NULL, 0, 0, -1, 0, &k), 0);
	CHECK_RET(create2(dev, &b, NULL, NULL, 0, NULL, 0, 4, -1, 0, &kb), 0);
	*canary = 0x600d;

/* A batch that FILLs the canary, then the command @setup adds: refused with @want. */
#define BAD2(want, setup)                                                                     \
	do {                                                                                  \
		b_reset();                                                                    \
		b_cmd(MDGPU_HOST_OP_FILL)->u.fill =                                           \
			(struct mdgpu_host_cmd_fill){ mem, 0xbad, 0x8000, 4 };                \
		setup;                                                                        \
		id = 7;                                                                       \
		CHECK_RET(b_submit(dev, &id), want);                                          \
		CHECK(id == 0 && *canary == 0x600d, "refused batch ran (line %d)", __LINE__); \
	} while (0)
	BAD2(-EINVAL, b_cmd(99));
	BAD2(-EINVAL, b_cmd(0));
	BAD2(-EINVAL, b_cmd(MDGPU_HOST_OP_DISPATCH));
	BAD2(-EINVAL, b_cmd(MDGPU_HOST_OP_BARRIER)->flags = 1);
	/* COPY */
	BAD2(-EINVAL, b_cmd(MDGPU_HOST_OP_COPY)->u.copy =
			      ((struct mdgpu_host_cmd_copy){ mem, mem, 1, 3, 5 }));
	BAD2(-EINVAL, b_cmd(MDGPU_HOST_OP_COPY)->u.copy =
			      ((struct mdgpu_host_cmd_copy){ mem, mem, ap.size - 3, 0, 5 }));
	BAD2(-EINVAL, b_cmd(MDGPU_HOST_OP_COPY)->u.copy =
			      ((struct mdgpu_host_cmd_copy){ mem, mem, 0, 9, 0 }));
	BAD2(-ENOENT, b_cmd(MDGPU_HOST_OP_COPY)->u.copy =
			      ((struct mdgpu_host_cmd_copy){ gone, mem, 0, 9, 1 }));
	/* FILL, TIMESTAMP */
	BAD2(-EINVAL,
	     b_cmd(MDGPU_HOST_OP_FILL)->u.fill = ((struct mdgpu_host_cmd_fill){ mem, 0, 1, 4 }));
	BAD2(-EINVAL, b_cmd(MDGPU_HOST_OP_TIMESTAMP)->u.timestamp =
			      ((struct mdgpu_host_cmd_timestamp){ mem, 0, 12 }));
	/* UPDATE */
	{
		uint32_t zero[4] = { 0 };

		BAD2(-EINVAL, b_update(mem, 2, zero, 16));
		BAD2(-EINVAL, b_update(mem, 0, zero, 6));
		BAD2(-EINVAL, b_update(mem, 0, zero, 0));
		BAD2(-EINVAL, b_update(mem, ap.size - 8, zero, 16));
		BAD2(-ENOENT, b_update(gone, 0, zero, 16));
		BAD2(-EINVAL, (b_update(mem, 0, zero, 16), B.cmds[1].u.update.pad = 1));
		BAD2(-EINVAL, (b_update(mem, 0, zero, 16), B.cmds[1].u.update.data_offset = 4));
		BAD2(-EINVAL,
		     (b_update(mem, 0, zero, 16), B.cmds[1].u.update.data_offset = UINT32_MAX - 4));
		BAD2(-E2BIG, (b_update(mem, 0, zero, 16),
			      B.cmds[1].u.update.size = MDGPU_HOST_MAX_UPDATE + 4));
	}
	/* DISPATCH2 */
	BAD2(-ENOENT, (sets_dispatch(mem, k), B.cmds[1].u.dispatch2.kernel = 0));
	BAD2(-ENOENT, (sets_dispatch(mem, k), B.cmds[1].u.dispatch2.kernel = k ^ (1u << 25)));
	BAD2(-EINVAL, (sets_dispatch(mem, k), B.cmds[1].u.dispatch2.num_workgroups[0] = 1));
	BAD2(-EINVAL, (sets_dispatch(mem, k), memcpy(B.cmds[1].u.dispatch2.num_workgroups,
						     (uint32_t[3]){ 1u << 20, 1, 1 }, 12)));
	BAD2(-E2BIG, (sets_dispatch(mem, k), B.cmds[1].u.dispatch2.descriptor_count =
						     MDGPU_HOST_MAX_DISPATCH_DESCRIPTORS + 1));
	BAD2(-EINVAL, (sets_dispatch(mem, k), B.cmds[1].u.dispatch2.first_descriptor = 1));
	BAD2(-EINVAL, (sets_dispatch(mem, k), B.cmds[1].u.dispatch2.first_descriptor = UINT32_MAX));
	BAD2(-EINVAL, (sets_dispatch(mem, k), B.cmds[1].u.dispatch2.push_size = 4));
	BAD2(-E2BIG, (sets_dispatch(mem, k), B.cmds[1].u.dispatch2.groups[1] = 1u << 20));
	BAD2(-EINVAL, (sets_dispatch(mem, k), B.descs[2].pad = 1));
	BAD2(-EINVAL, (sets_dispatch(mem, k), B.descs[2].type = 2));
	BAD2(-EINVAL,
	     (sets_dispatch(mem, k), B.descs[0].type = MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER));
	BAD2(-EINVAL,
	     (sets_dispatch(mem, k), B.descs[1].type = MDGPU_HOST_DESCRIPTOR_UNIFORM_BUFFER));
	BAD2(-EINVAL, (sets_dispatch(mem, k), B.descs[1].set = 1)); /* the empty set */
	BAD2(-EINVAL, (sets_dispatch(mem, k), B.descs[1].binding = 1));
	BAD2(-EINVAL, (sets_dispatch(mem, k), B.descs[1].set = 40));
	BAD2(-EINVAL, (sets_dispatch(mem, k), B.descs[3].index = 3));
	BAD2(-EINVAL, (sets_dispatch(mem, k), B.descs[3].index = 0)); /* twice */
	BAD2(-EINVAL, (sets_dispatch(mem, k), B.descs[1].offset = 0x1004));
	BAD2(-EINVAL, (sets_dispatch(mem, k), B.descs[0].offset = 4));
	BAD2(-EINVAL, (sets_dispatch(mem, k), B.descs[1].range = 0));
	BAD2(-E2BIG,
	     (sets_dispatch(mem, k), B.descs[0].range = caps->max_uniform_buffer_range + 16ull));
	BAD2(-E2BIG,
	     (sets_dispatch(mem, k), B.descs[1].range = caps->max_storage_buffer_range + 16ull));
	BAD2(-EINVAL, (sets_dispatch(mem, k), B.descs[1].offset = ap.size));
	BAD2(-EINVAL, (sets_dispatch(mem, k), B.descs[1].offset = UINT64_MAX - 15));
	BAD2(-ENOENT, (sets_dispatch(mem, k), B.descs[4].mem = gone));
	BAD2(-ENOENT, (sets_dispatch(mem, k), B.descs[4].mem = 0));
	/* Push constants of the base kernel, and its grid. */
	BAD2(-EINVAL, (b_dispatch(kb, 0, &width, 4, 0, 0, 0, 1, 1, 1),
		       B.cmds[1].u.dispatch2.push_offset = B.size - 2));
	BAD2(-EINVAL, (b_dispatch(kb, 0, &width, 4, 0, 0, 0, 1, 1, 1),
		       B.cmds[1].u.dispatch2.push_offset = UINT32_MAX - 2));
	BAD2(-EINVAL, b_dispatch(kb, 0, &width, 4, 0, 1, 0, 1, 1, 1)); /* no DISPATCH_BASE */
	BAD2(-E2BIG, b_dispatch(kb, 0, &width, 4, 0, 0, 0, 1, 1, 1u << 31));
	/* A zero-group dispatch is checked like any other. */
	BAD2(-EINVAL,
	     (sets_dispatch(mem, k), B.cmds[1].u.dispatch2.groups[0] = 0, B.descs[2].pad = 1));

	/* Call-level errors. */
	b_reset();
	b_cmd(MDGPU_HOST_OP_BARRIER);
	CHECK_RET(mdgpu_host_submit2(dev, B.cmds, 0, NULL, 0, NULL, 0, &id), -EINVAL);
	CHECK_RET(mdgpu_host_submit2(dev, NULL, 1, NULL, 0, NULL, 0, &id), -EINVAL);
	CHECK_RET(mdgpu_host_submit2(dev, B.cmds, 1, NULL, 1, NULL, 0, &id), -EINVAL);
	CHECK_RET(mdgpu_host_submit2(dev, B.cmds, 1, NULL, 0, NULL, 4, &id), -EINVAL);
	CHECK_RET(mdgpu_host_submit2(dev, B.cmds, 1, NULL, 0, NULL, 0, NULL), -EINVAL);
	CHECK_RET(
		mdgpu_host_submit2(dev, B.cmds, MDGPU_HOST_MAX_COMMANDS + 1, NULL, 0, NULL, 0, &id),
		-E2BIG);
	CHECK_RET(mdgpu_host_submit2(dev, B.cmds, 1, B.descs,
				     MDGPU_HOST_MAX_COMMANDS * MDGPU_HOST_MAX_DISPATCH_DESCRIPTORS +
					     1,
				     NULL, 0, &id),
		  -E2BIG);
	CHECK_RET(mdgpu_host_submit2(dev, B.cmds, 1, NULL, 0, B.data,
				     MDGPU_HOST_MAX_SUBMIT_DATA + 4, &id),
		  -E2BIG);
	CHECK_RET(mdgpu_host_submit2(0, B.cmds, 1, NULL, 0, NULL, 0, &id), -ENOENT);

	/* After all that, a good batch runs; several dispatches may share descriptors. */
	b_reset();
	sets_dispatch(mem, k);
	b_dispatch(k, 0, NULL, 0, 0, 0, 0, 1, 1, 1);
	B.cmds[1].u.dispatch2.descriptor_count = 5;
	b_cmd(MDGPU_HOST_OP_FILL)->u.fill = (struct mdgpu_host_cmd_fill){ mem, 0x1234, 0x8000, 4 };
	CHECK_RET(b_run(dev), 0);
	CHECK(*canary == 0x1234, "a good batch after the refused ones");
#undef BAD2
	CHECK_RET(mdgpu_host_kernel_destroy(dev, k), 0);
	CHECK_RET(mdgpu_host_kernel_destroy(dev, kb), 0);
	CHECK_RET(mdgpu_host_memory_destroy(dev, mem), 0);
	free(s.words);
	free(b.words);
	aperture_free(&ap);
}

static void test_abi21(uint32_t dev)
{
	struct mdgpu_host_device_info info;
	struct mdgpu_host_caps caps;
	struct aperture ap = aperture_new(16 << 20);
	uint32_t mem, staged;

	CHECK_RET(mdgpu_host_device_info(dev, &info), 0);
	test_caps(dev, &caps);
	CHECK_RET(mdgpu_host_memory_import(dev, ap.base, 8 << 20, 0, &mem), 0);
	CHECK_RET(mdgpu_host_memory_import(dev, ap.base + (8 << 20), 8 << 20,
					   MDGPU_HOST_MEMORY_STAGED, &staged),
		  0);
	test_sets(dev, mem, staged, ap.base, ap.base + (8 << 20));
	test_zero_buffer_reset(dev, mem, ap.base);
	test_specialization(dev, mem, ap.base, &info);
	test_spec_const_ops(dev, mem, ap.base, &info, &caps);
	test_dispatch_base(dev, mem, ap.base);
	test_split_dispatch(dev, mem, ap.base);
	test_narrow_types(dev, mem, ap.base, &caps);
	test_transfer2(dev, mem, ap.base, "zero copy");
	test_transfer2(dev, staged, ap.base + (8 << 20), "staged");
	test_entry_points(dev, mem, ap.base);
	test_reflection_refusals(dev, &caps);
	test_bad_submit2(dev, &caps);
	CHECK_RET(mdgpu_host_memory_destroy(dev, mem), 0);
	CHECK_RET(mdgpu_host_memory_destroy(dev, staged), 0);
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
	test_type_limits(dev);
	test_device_limits(dev);
	test_private_limits(dev);
	{
		struct spirv k[5] = { load_spirv("saxpy"), load_spirv("memcpy"), load_spirv("gemm"),
				      load_spirv("reduce"), assemble_str(robust_kernel_text) };

		test_malformed_ids(dev, &k[0]);
		test_mutations(dev, k, 5, 2000);
		for (int i = 0; i < 5; i++)
			free(k[i].words);
	}
	test_robustness(dev);
	test_concurrent_create(dev);
	test_bad_submissions(dev);
	test_lifetimes(dev);
	test_threads(dev);
	test_destroy_in_flight();
	test_abi21(dev);

	CHECK_RET(mdgpu_host_device_destroy(dev), 0);
	CHECK_RET(mdgpu_host_device_destroy(dev), -ENOENT);
	return check_summary();
}
