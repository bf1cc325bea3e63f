/* SPDX-License-Identifier: MIT */
/*
 * vks-reduce: sum (mod 2^32), minimum and maximum of --size uints (default 1 Mi) in one pass:
 * per-workgroup trees in shared memory, then atomicAdd/Min/Max on the result. Integer results
 * are exact in any order.
 */
#include "vks.h"

#include "spv_reduce.inc"

#include <stdlib.h>
#include <string.h>

struct reduce {
	struct vks_pipe pipe;
	struct vks_buf r;
	uint32_t n, groups;
};

static void prepare(struct vks *v, void *ctx)
{
	struct reduce *s = ctx;
	const uint32_t init[3] = { 0, UINT32_MAX, 0 };
	memcpy(s->r.map, init, sizeof(init));
}

static void record(struct vks *v, VkCommandBuffer cmd, void *ctx)
{
	struct reduce *s = ctx;
	vks_pipe_use(&s->pipe, cmd, &s->n, sizeof(s->n));
	vkCmdDispatch(cmd, s->groups, 1, 1);
	vks_barrier(cmd);
}

int main(int argc, char **argv)
{
	struct vks v;
	struct reduce s = { 0 };
	vks_init(&v, "vks-reduce", argc, argv, 0);
	v.current = "reduce";
	uint64_t n = vks_size(&v, 1 << 20);
	if (n == 0 || n > (1ull << 28))
		vks_fatal(&v, "--size out of range (1..256M)", VK_ERROR_OUT_OF_DEVICE_MEMORY);
	s.n = (uint32_t)n;
	/* Enough workgroups to fill the device, each looping over a share of the input. */
	s.groups = (uint32_t)((n + 255) / 256 < 1024 ? (n + 255) / 256 : 1024);
	struct vks_buf in;
	vks_buf_create(&v, &in, n * sizeof(uint32_t), VKS_USAGE_ALL);
	vks_buf_create(&v, &s.r, 3 * sizeof(uint32_t), VKS_USAGE_ALL);
	uint32_t *p = in.map, want[3] = { 0, UINT32_MAX, 0 };
	uint64_t seed = 7;
	for (uint64_t i = 0; i < n; i++) {
		p[i] = (uint32_t)(vks_rand(&seed) >> 40) + 1000;
		want[0] += p[i];
		want[1] = p[i] < want[1] ? p[i] : want[1];
		want[2] = p[i] > want[2] ? p[i] : want[2];
	}
	vks_pipe_create(&v, &s.pipe, spv_reduce, sizeof(spv_reduce), 2, 4, NULL);
	struct vks_buf *bufs[] = { &in, &s.r };
	vks_pipe_bind(&v, &s.pipe, bufs);

	struct vks_timing t = vks_timed(&v, prepare, record, &s);
	bool ok = vks_compare_u32(&v, "sum/min/max", s.r.map, want, 3) == 0;
	vks_report(&v, "reduce", ok, vks_hash(VKS_HASH_INIT, s.r.map, sizeof(want)), t.ms,
		   "wall_ms=%.3f size=%u iterations=%u sum=%u min=%u max=%u", t.wall_ms, s.n,
		   t.iterations, want[0], want[1], want[2]);

	vks_pipe_destroy(&v, &s.pipe);
	vks_buf_destroy(&v, &in);
	vks_buf_destroy(&v, &s.r);
	return vks_finish(&v);
}
