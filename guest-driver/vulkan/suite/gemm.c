/* SPDX-License-Identifier: MIT */
/*
 * vks-gemm: C = A*B for --size x --size float matrices (default 128; 512 takes tens of ms on
 * lavapipe). Entries are integers in [-4, 4], so every dot product (|sum| <= 16 K) is exact in
 * float whatever the order of summation: the digest is the same on any device.
 */
#include "vks.h"

#include "spv_gemm.inc"

#include <stdlib.h>

struct gemm {
	struct vks_pipe pipe;
	uint32_t n;
};

static void record(struct vks *v, VkCommandBuffer cmd, void *ctx)
{
	struct gemm *g = ctx;
	const uint32_t push[3] = { g->n, g->n, g->n };
	vks_pipe_use(&g->pipe, cmd, push, sizeof(push));
	vkCmdDispatch(cmd, (g->n + 15) / 16, (g->n + 15) / 16, 1);
	vks_barrier(cmd);
}

int main(int argc, char **argv)
{
	struct vks v;
	struct gemm g = { 0 };
	vks_init(&v, "vks-gemm", argc, argv, 0);
	v.current = "gemm";
	uint64_t n = vks_size(&v, 128);
	if (n == 0 || n > 4096)
		vks_fatal(&v, "--size out of range (1..4096)", VK_ERROR_OUT_OF_DEVICE_MEMORY);
	g.n = (uint32_t)n;
	struct vks_buf a, b, c;
	vks_buf_create(&v, &a, n * n * sizeof(float), VKS_USAGE_ALL);
	vks_buf_create(&v, &b, n * n * sizeof(float), VKS_USAGE_ALL);
	vks_buf_create(&v, &c, n * n * sizeof(float), VKS_USAGE_ALL);
	float *pa = a.map, *pb = b.map, *want = malloc(n * n * sizeof(float));
	if (!want)
		vks_fatal(&v, "malloc", VK_ERROR_OUT_OF_HOST_MEMORY);
	uint64_t seed = 42;
	for (uint64_t i = 0; i < n * n; i++) {
		pa[i] = (float)((int)(vks_rand(&seed) % 9) - 4);
		pb[i] = (float)((int)(vks_rand(&seed) % 9) - 4);
	}
	/* i-k-j order: the reference is exact too, so any order gives these values. */
	for (uint64_t i = 0; i < n; i++) {
		float *row = want + i * n;
		for (uint64_t j = 0; j < n; j++)
			row[j] = 0;
		for (uint64_t k = 0; k < n; k++) {
			float aik = pa[i * n + k];
			const float *brow = pb + k * n;
			for (uint64_t j = 0; j < n; j++)
				row[j] += aik * brow[j];
		}
	}
	vks_pipe_create(&v, &g.pipe, spv_gemm, sizeof(spv_gemm), 3, 12, NULL);
	struct vks_buf *bufs[] = { &a, &b, &c };
	vks_pipe_bind(&v, &g.pipe, bufs);

	struct vks_timing t = vks_timed(&v, NULL, record, &g);
	bool ok = vks_compare_u32(&v, "c", c.map, (const uint32_t *)want, n * n) == 0;
	vks_report(&v, "gemm", ok, vks_hash(VKS_HASH_INIT, c.map, n * n * sizeof(float)), t.ms,
		   "wall_ms=%.3f size=%u iterations=%u", t.wall_ms, g.n, t.iterations);

	vks_pipe_destroy(&v, &g.pipe);
	vks_buf_destroy(&v, &a);
	vks_buf_destroy(&v, &b);
	vks_buf_destroy(&v, &c);
	free(want);
	return vks_finish(&v);
}
