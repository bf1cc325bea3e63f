/* SPDX-License-Identifier: MIT */
/*
 * vks-types: small and large scalar types, each only when the device reports its feature (the
 * check prints skipped=feature otherwise). Every result is exact, and compared bit for bit
 * with the CPU's.
 *
 *   types.storage16  16-bit storage (uint16 and float16 loads and stores, 32-bit arithmetic)
 *   types.storage8   8-bit storage
 *   types.int8 / types.int16 / types.int64   integer arithmetic that wraps at its width
 *   types.float16 / types.float64            floating-point arithmetic on exact values
 */
#include "vks.h"

#include "spv_types_float16.inc"
#include "spv_types_float64.inc"
#include "spv_types_int16.inc"
#include "spv_types_int64.inc"
#include "spv_types_int8.inc"
#include "spv_types_storage16.inc"
#include "spv_types_storage8.inc"

#include <string.h>

#define N 4096

/* Binary16 of a float that is exactly representable as a normal half or zero. */
static uint16_t half_of(float f)
{
	uint32_t b;
	memcpy(&b, &f, 4);
	uint16_t sign = (uint16_t)((b >> 16) & 0x8000);
	if ((b & 0x7fffffff) == 0)
		return sign;
	int32_t exp = (int32_t)((b >> 23) & 0xff) - 127 + 15;
	return (uint16_t)(sign | (uint16_t)(exp << 10) | (uint16_t)((b >> 13) & 0x3ff));
}

/* Run `code` over bindings 0..nbuf-1 with push {n}, one invocation per element. */
static double run(struct vks *v, const uint32_t *code, size_t size, struct vks_buf **bufs,
		  uint32_t nbuf)
{
	struct vks_pipe p;
	vks_pipe_create(v, &p, code, size, nbuf, 4, NULL);
	vks_pipe_bind(v, &p, bufs);
	const uint32_t n = N;
	VkCommandBuffer cmd = vks_cmd_begin(v);
	vks_timer_begin(v, cmd);
	vks_pipe_use(&p, cmd, &n, 4);
	vkCmdDispatch(cmd, N / 64, 1, 1);
	vks_barrier(cmd);
	vks_timer_end(v, cmd);
	vks_cmd_submit_wait(v, cmd);
	vks_pipe_destroy(v, &p);
	return vks_timer_ms(v);
}

static void report(struct vks *v, const char *name, const void *got, const void *want, size_t bytes,
		   double ms)
{
	bool ok = memcmp(got, want, bytes) == 0;
	if (!ok)
		vks_compare_u32(v, "out", got, want, bytes / 4);
	vks_report(v, name, ok, vks_hash(VKS_HASH_INIT, got, bytes), ms, NULL);
}

static void storage16(struct vks *v)
{
	struct vks_buf in_u, in_h, out_u, out_h;
	vks_buf_create(v, &in_u, N * 2, VKS_USAGE_ALL);
	vks_buf_create(v, &in_h, N * 2, VKS_USAGE_ALL);
	vks_buf_create(v, &out_u, N * 2, VKS_USAGE_ALL);
	vks_buf_create(v, &out_h, N * 2, VKS_USAGE_ALL);
	uint16_t *u = in_u.map, *h = in_h.map, want[2 * N];
	for (uint32_t i = 0; i < N; i++) {
		u[i] = (uint16_t)(i * 7919);
		float f = (float)((int)(i % 1001) - 500);
		h[i] = half_of(f);
		want[i] = (uint16_t)(u[i] * 3u + 1u);
		want[N + i] = half_of(f * 0.5f + 1.0f);
	}
	double ms = run(v, spv_types_storage16, sizeof(spv_types_storage16),
			(struct vks_buf *[]){ &in_u, &in_h, &out_u, &out_h }, 4);
	uint16_t got[2 * N];
	memcpy(got, out_u.map, N * 2);
	memcpy(got + N, out_h.map, N * 2);
	report(v, "types.storage16", got, want, sizeof(got), ms);
	vks_buf_destroy(v, &in_u);
	vks_buf_destroy(v, &in_h);
	vks_buf_destroy(v, &out_u);
	vks_buf_destroy(v, &out_h);
}

static void storage8(struct vks *v)
{
	struct vks_buf in, out;
	vks_buf_create(v, &in, N, VKS_USAGE_ALL);
	vks_buf_create(v, &out, N, VKS_USAGE_ALL);
	uint8_t *b = in.map, want[N];
	for (uint32_t i = 0; i < N; i++) {
		b[i] = (uint8_t)(i * 13 + (i >> 8));
		want[i] = (uint8_t)(b[i] * 5u + 3u);
	}
	double ms = run(v, spv_types_storage8, sizeof(spv_types_storage8),
			(struct vks_buf *[]){ &in, &out }, 2);
	report(v, "types.storage8", out.map, want, N, ms);
	vks_buf_destroy(v, &in);
	vks_buf_destroy(v, &out);
}

/* The 32-bit-in, 32/64-bit-out arithmetic checks. */
enum arith { INT8, INT16, FLOAT16, INT64, FLOAT64 };

static void arithmetic(struct vks *v, enum arith kind, const char *name, const uint32_t *code,
		       size_t size)
{
	size_t out_bytes = (kind == INT64 || kind == FLOAT64) ? 8 : 4;
	struct vks_buf in, out;
	vks_buf_create(v, &in, N * 4, VKS_USAGE_ALL);
	vks_buf_create(v, &out, N * out_bytes, VKS_USAGE_ALL);
	int32_t *s = in.map;
	float *sf = in.map;
	static uint8_t want[N * 8];
	uint64_t seed = 99;
	for (uint32_t i = 0; i < N; i++) {
		uint64_t r = vks_rand(&seed);
		switch (kind) {
		case INT8:
		case INT16:
			s[i] = (int32_t)(uint32_t)r;
			break;
		case FLOAT16:
			sf[i] = (float)((int)(r % 1001) - 500);
			break;
		case INT64:
			s[i] = (int32_t)(uint32_t)r;
			break;
		case FLOAT64:
			s[i] = (int32_t)(r & ((1u << 25) - 1));
			break;
		}
	}
	for (uint32_t i = 0; i < N; i++) {
		switch (kind) {
		case INT8: {
			int8_t x = (int8_t)(uint8_t)s[i];
			int8_t y = (int8_t)(uint8_t)(x * 3 + 7);
			int32_t o = (int32_t)y + (x >> 2);
			memcpy(want + 4 * i, &o, 4);
			break;
		}
		case INT16: {
			int16_t x = (int16_t)(uint16_t)s[i];
			int16_t y = (int16_t)(uint16_t)(x * 1234 - 77);
			int32_t o = (int32_t)y + (int32_t)((uint16_t)x >> 3);
			memcpy(want + 4 * i, &o, 4);
			break;
		}
		case FLOAT16: {
			float o = sf[i] * 0.5f + 1.0f;
			memcpy(want + 4 * i, &o, 4);
			break;
		}
		case INT64: {
			uint64_t x = (uint64_t)(uint32_t)s[i] * 0x9E3779B97F4A7C15ull +
				     ((uint64_t)i << 40);
			uint64_t o = x ^ (x >> 29);
			memcpy(want + 8 * i, &o, 8);
			break;
		}
		case FLOAT64: {
			double o = (double)(uint32_t)s[i] * (double)(uint32_t)s[(i + 1) % N] + 0.5 -
				   (double)i / 4.0;
			memcpy(want + 8 * i, &o, 8);
			break;
		}
		}
	}
	double ms = run(v, code, size, (struct vks_buf *[]){ &in, &out }, 2);
	report(v, name, out.map, want, N * out_bytes, ms);
	vks_buf_destroy(v, &in);
	vks_buf_destroy(v, &out);
}

int main(int argc, char **argv)
{
	struct vks v;
	vks_init(&v, "vks-types", argc, argv, VKS_WANT_TYPES);
	v.current = "types.storage16";
	if (v.on11.storageBuffer16BitAccess)
		storage16(&v);
	else
		vks_skip(&v, "types.storage16", "storageBuffer16BitAccess");
	v.current = "types.storage8";
	if (v.on12.storageBuffer8BitAccess)
		storage8(&v);
	else
		vks_skip(&v, "types.storage8", "storageBuffer8BitAccess");
	v.current = "types.int8";
	if (v.on12.shaderInt8)
		arithmetic(&v, INT8, "types.int8", spv_types_int8, sizeof(spv_types_int8));
	else
		vks_skip(&v, "types.int8", "shaderInt8");
	v.current = "types.int16";
	if (v.on.features.shaderInt16)
		arithmetic(&v, INT16, "types.int16", spv_types_int16, sizeof(spv_types_int16));
	else
		vks_skip(&v, "types.int16", "shaderInt16");
	v.current = "types.float16";
	if (v.on12.shaderFloat16)
		arithmetic(&v, FLOAT16, "types.float16", spv_types_float16,
			   sizeof(spv_types_float16));
	else
		vks_skip(&v, "types.float16", "shaderFloat16");
	v.current = "types.int64";
	if (v.on.features.shaderInt64)
		arithmetic(&v, INT64, "types.int64", spv_types_int64, sizeof(spv_types_int64));
	else
		vks_skip(&v, "types.int64", "shaderInt64");
	v.current = "types.float64";
	if (v.on.features.shaderFloat64)
		arithmetic(&v, FLOAT64, "types.float64", spv_types_float64,
			   sizeof(spv_types_float64));
	else
		vks_skip(&v, "types.float64", "shaderFloat64");
	return vks_finish(&v);
}
