/* SPDX-License-Identifier: MIT */
/*
 * vks-histogram: 256-bin histogram of the bytes of --size uints (default 1 Mi) with atomics,
 * twice: through shared-memory bins per workgroup (histogram.shared) and with every increment
 * an atomicAdd on the global bins (histogram.global, heavily contended).
 */
#include "vks.h"

#include "spv_histogram.inc"

#include <stdlib.h>
#include <string.h>

struct hist {
	struct vks_pipe pipe;
	struct vks_buf bins;
	uint32_t push[2];
	uint32_t groups;
};

static void prepare(struct vks *v, void *ctx)
{
	struct hist *h = ctx;
	memset(h->bins.map, 0, 256 * sizeof(uint32_t));
}

static void record(struct vks *v, VkCommandBuffer cmd, void *ctx)
{
	struct hist *h = ctx;
	vks_pipe_use(&h->pipe, cmd, h->push, sizeof(h->push));
	vkCmdDispatch(cmd, h->groups, 1, 1);
	vks_barrier(cmd);
}

int main(int argc, char **argv)
{
	struct vks v;
	struct hist h = { 0 };
	vks_init(&v, "vks-histogram", argc, argv, 0);
	v.current = "histogram";
	uint64_t n = vks_size(&v, 1 << 20);
	if (n == 0 || n > (1ull << 28))
		vks_fatal(&v, "--size out of range (1..256M)", VK_ERROR_OUT_OF_DEVICE_MEMORY);
	h.groups = (uint32_t)((n + 255) / 256 < 512 ? (n + 255) / 256 : 512);
	struct vks_buf in;
	vks_buf_create(&v, &in, n * sizeof(uint32_t), VKS_USAGE_ALL);
	vks_buf_create(&v, &h.bins, 256 * sizeof(uint32_t), VKS_USAGE_ALL);
	uint32_t *p = in.map, want[256] = { 0 };
	uint64_t seed = 3;
	for (uint64_t i = 0; i < n; i++) {
		/* Skewed: low byte values are far more common (contention on a few bins). */
		uint64_t r = vks_rand(&seed);
		p[i] = (uint32_t)r & (r >> 32 & 1 ? 0x0f0f0f0fu : 0xffffffffu);
		for (int k = 0; k < 4; k++)
			want[(p[i] >> (8 * k)) & 0xff]++;
	}
	vks_pipe_create(&v, &h.pipe, spv_histogram, sizeof(spv_histogram), 2, 8, NULL);
	struct vks_buf *bufs[] = { &in, &h.bins };
	vks_pipe_bind(&v, &h.pipe, bufs);

	static const char *const names[] = { "histogram.shared", "histogram.global" };
	for (uint32_t global = 0; global < 2; global++) {
		v.current = names[global];
		h.push[0] = (uint32_t)n;
		h.push[1] = global;
		struct vks_timing t = vks_timed(&v, prepare, record, &h);
		bool ok = vks_compare_u32(&v, "bins", h.bins.map, want, 256) == 0;
		vks_report(&v, names[global], ok, vks_hash(VKS_HASH_INIT, h.bins.map, sizeof(want)),
			   t.ms, "wall_ms=%.3f size=%llu iterations=%u", t.wall_ms,
			   (unsigned long long)n, t.iterations);
	}

	vks_pipe_destroy(&v, &h.pipe);
	vks_buf_destroy(&v, &in);
	vks_buf_destroy(&v, &h.bins);
	return vks_finish(&v);
}
