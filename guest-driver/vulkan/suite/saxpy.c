/* SPDX-License-Identifier: MIT */
/*
 * vks-saxpy: y = a*x + y over --size floats (default 256 Ki). Inputs are small integers and a is
 * 2.5, so every result is exact in float and the output's digest does not depend on the device
 * (fused or not, any order).
 */
#include "vks.h"

#include "spv_saxpy.inc"

#include <stdlib.h>
#include <string.h>

struct saxpy {
	struct vks_pipe pipe;
	struct vks_buf x, y;
	float *y0;
	uint64_t n;
	uint32_t gx, gy;
};

static void prepare(struct vks *v, void *ctx)
{
	struct saxpy *s = ctx;
	memcpy(s->y.map, s->y0, s->n * sizeof(float));
}

static void record(struct vks *v, VkCommandBuffer cmd, void *ctx)
{
	struct saxpy *s = ctx;
	const struct {
		float a;
		uint32_t n;
	} push = { 2.5f, (uint32_t)s->n };
	vks_pipe_use(&s->pipe, cmd, &push, sizeof(push));
	vkCmdDispatch(cmd, s->gx, s->gy, 1);
	vks_barrier(cmd);
}

int main(int argc, char **argv)
{
	struct vks v;
	struct saxpy s = { 0 };
	vks_init(&v, "vks-saxpy", argc, argv, 0);
	v.current = "saxpy";
	s.n = vks_size(&v, 256 << 10);
	if (s.n == 0 || s.n > (1ull << 30) / sizeof(float))
		vks_fatal(&v, "--size out of range", VK_ERROR_OUT_OF_DEVICE_MEMORY);
	vks_buf_create(&v, &s.x, s.n * sizeof(float), VKS_USAGE_ALL);
	vks_buf_create(&v, &s.y, s.n * sizeof(float), VKS_USAGE_ALL);
	float *x = s.x.map, *want = malloc(s.n * sizeof(float));
	s.y0 = malloc(s.n * sizeof(float));
	if (!want || !s.y0)
		vks_fatal(&v, "malloc", VK_ERROR_OUT_OF_HOST_MEMORY);
	for (uint64_t i = 0; i < s.n; i++) {
		x[i] = (float)((int)(i * 7 % 1001) - 500);
		s.y0[i] = (float)(i % 97);
		want[i] = 2.5f * x[i] + s.y0[i];
	}
	vks_pipe_create(&v, &s.pipe, spv_saxpy, sizeof(spv_saxpy), 2, 8, NULL);
	struct vks_buf *bufs[] = { &s.x, &s.y };
	vks_pipe_bind(&v, &s.pipe, bufs);
	vks_groups(&v, (s.n + 255) / 256, &s.gx, &s.gy);

	struct vks_timing t = vks_timed(&v, prepare, record, &s);
	bool ok = vks_compare_u32(&v, "y", s.y.map, (const uint32_t *)want, s.n) == 0;
	vks_report(&v, "saxpy", ok, vks_hash(VKS_HASH_INIT, s.y.map, s.n * sizeof(float)), t.ms,
		   "wall_ms=%.3f size=%llu iterations=%u", t.wall_ms, (unsigned long long)s.n,
		   t.iterations);

	vks_pipe_destroy(&v, &s.pipe);
	vks_buf_destroy(&v, &s.x);
	vks_buf_destroy(&v, &s.y);
	free(want);
	free(s.y0);
	return vks_finish(&v);
}
