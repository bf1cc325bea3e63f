/* SPDX-License-Identifier: MIT */
/*
 * vks-dispatch: where workgroups run. Each dispatch records, per invocation, the workgroup id it
 * ran as and the gl_NumWorkGroups it saw; the CPU knows exactly which invocations must exist.
 *
 *   dispatch.base: vkCmdDispatchBase with non-zero bases (pipeline created with DISPATCH_BASE).
 *   dispatch.indirect: vkCmdDispatchIndirect from host-written arguments, at several offsets.
 *   dispatch.indirect_zero: indirect (0,0,0) and (0,5,1), and vkCmdDispatch(0,1,1): no-ops.
 *   dispatch.indirect_gpu: arguments written by a shader, then dispatched indirectly.
 */
#include "vks.h"

#include "spv_dispatch.inc"
#include "spv_indirect_gen.inc"

#include <string.h>

#define TAGS 8
#define SLOTS 8192 /* 16 x 16 x 4 workgroups of 8 invocations per tag */

struct run {
	uint32_t tag;
	uint32_t base[3], count[3];
};

static void expect(uint32_t *o, uint32_t *count, const struct run *r)
{
	uint32_t packed = (r->count[0] | r->count[1] << 8 | r->count[2] << 16) + 1;
	for (uint32_t z = 0; z < r->count[2]; z++)
		for (uint32_t y = 0; y < r->count[1]; y++)
			for (uint32_t x = 0; x < r->count[0]; x++) {
				uint32_t wx = r->base[0] + x, wy = r->base[1] + y,
					 wz = r->base[2] + z;
				for (uint32_t l = 0; l < 8; l++)
					o[r->tag * SLOTS + ((wz * 16 + wy) * 16 + wx) * 8 + l] =
						packed;
			}
	count[r->tag] += r->count[0] * r->count[1] * r->count[2] * 8;
}

static void check(struct vks *v, const char *name, const uint32_t *o, const uint32_t *want_o,
		  const uint32_t *count, const uint32_t *want_count, const uint32_t *tags,
		  uint32_t ntags, double ms, bool ok)
{
	v->current = name;
	uint64_t digest = VKS_HASH_INIT;
	for (uint32_t i = 0; i < ntags; i++) {
		uint32_t t = tags[i];
		ok = vks_compare_u32(v, "workgroups", o + t * SLOTS, want_o + t * SLOTS, SLOTS) ==
			     0 &&
		     ok;
		ok = vks_compare_u32(v, "invocations", count + t, want_count + t, 1) == 0 && ok;
		digest = vks_hash(digest, o + t * SLOTS, SLOTS * 4);
		digest = vks_hash(digest, count + t, 4);
	}
	vks_report(v, name, ok, digest, ms, NULL);
}

int main(int argc, char **argv)
{
	struct vks v;
	vks_init(&v, "vks-dispatch", argc, argv, 0);
	v.current = "dispatch";
	struct vks_buf out, counts, args;
	vks_buf_create(&v, &out, TAGS * SLOTS * 4, VKS_USAGE_ALL);
	vks_buf_create(&v, &counts, TAGS * 4, VKS_USAGE_ALL);
	vks_buf_create(&v, &args, 64 * 4, VKS_USAGE_ALL);
	memset(out.map, 0, out.size);
	memset(counts.map, 0, counts.size);
	memset(args.map, 0xff, args.size);
	struct vks_pipe p, gen;
	vks_pipe_create_flags(&v, &p, spv_dispatch, sizeof(spv_dispatch), 2, 4, NULL,
			      VK_PIPELINE_CREATE_DISPATCH_BASE_BIT);
	vks_pipe_create(&v, &gen, spv_indirect_gen, sizeof(spv_indirect_gen), 1, 16, NULL);
	struct vks_buf *bufs[] = { &out, &counts };
	vks_pipe_bind(&v, &p, bufs);
	struct vks_buf *gbufs[] = { &args };
	vks_pipe_bind(&v, &gen, gbufs);

	static uint32_t want_o[TAGS * SLOTS];
	uint32_t want_count[TAGS] = { 0 };
	uint32_t *a = args.map;
	/* Host-written arguments: tag 1 at byte 0, tag 2 at 16, tag 3 at 32; tag 4's at 48 come
	 * from the device. */
	const uint32_t host_args[3][3] = { { 4, 2, 1 }, { 0, 0, 0 }, { 0, 5, 1 } };
	for (int i = 0; i < 3; i++)
		memcpy(a + 4 * i, host_args[i], 12);
	const struct run runs[] = {
		{ 0, { 3, 1, 0 }, { 2, 2, 1 } }, { 1, { 0, 0, 0 }, { 4, 2, 1 } },
		{ 2, { 0, 0, 0 }, { 0, 0, 0 } }, { 3, { 0, 0, 0 }, { 0, 5, 1 } },
		{ 4, { 0, 0, 0 }, { 3, 1, 2 } }, { 5, { 0, 0, 0 }, { 0, 1, 1 } },
		{ 6, { 1, 2, 3 }, { 1, 1, 1 } },
	};
	for (size_t i = 0; i < VKS_ARRAY_SIZE(runs); i++)
		expect(want_o, want_count, &runs[i]);

	/*
	 * Indirect dispatches first, vkCmdDispatchBase in a command buffer of its own: lavapipe
	 * (Mesa 22.3) keeps the base of a vkCmdDispatchBase for later vkCmdDispatchIndirect of the
	 * same command buffer (they must use base 0), and the suite checks each command alone.
	 */
	VkCommandBuffer cmd = vks_cmd_begin(&v);
	vks_timer_begin(&v, cmd);
	const uint32_t gen_push[4] = { 12, 3, 1, 2 };
	vks_pipe_use(&gen, cmd, gen_push, sizeof(gen_push));
	vkCmdDispatch(cmd, 1, 1, 1);
	vks_barrier(cmd);
	vks_pipe_use(&p, cmd, NULL, 0);
	for (uint32_t tag = 1; tag <= 5; tag++) {
		vkCmdPushConstants(cmd, p.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, 4, &tag);
		if (tag == 5)
			vkCmdDispatch(cmd, 0, 1, 1);
		else
			vkCmdDispatchIndirect(cmd, args.buf, 16 * (tag - 1));
		vks_barrier(cmd);
	}
	vks_timer_end(&v, cmd);
	vks_cmd_submit_wait(&v, cmd);
	double ms = vks_timer_ms(&v);

	cmd = vks_cmd_begin(&v);
	vks_timer_begin(&v, cmd);
	vks_pipe_use(&p, cmd, NULL, 0);
	for (uint32_t tag = 0; tag <= 6; tag += 6) {
		const struct run *r = &runs[tag];
		vkCmdPushConstants(cmd, p.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, 4, &tag);
		vkCmdDispatchBase(cmd, r->base[0], r->base[1], r->base[2], r->count[0], r->count[1],
				  r->count[2]);
		vks_barrier(cmd);
	}
	vks_timer_end(&v, cmd);
	vks_cmd_submit_wait(&v, cmd);
	double base_ms = vks_timer_ms(&v);

	const uint32_t *o = out.map, *c = counts.map;
	check(&v, "dispatch.base", o, want_o, c, want_count, (const uint32_t[]){ 0, 6 }, 2, base_ms,
	      true);
	check(&v, "dispatch.indirect", o, want_o, c, want_count, (const uint32_t[]){ 1 }, 1, ms,
	      true);
	check(&v, "dispatch.indirect_zero", o, want_o, c, want_count, (const uint32_t[]){ 2, 3, 5 },
	      3, ms, true);
	bool gen_ok = a[12] == 3 && a[13] == 1 && a[14] == 2;
	if (!gen_ok)
		vks_note(&v, "device-written arguments %u %u %u", a[12], a[13], a[14]);
	check(&v, "dispatch.indirect_gpu", o, want_o, c, want_count, (const uint32_t[]){ 4 }, 1, ms,
	      gen_ok);

	vks_pipe_destroy(&v, &p);
	vks_pipe_destroy(&v, &gen);
	vks_buf_destroy(&v, &out);
	vks_buf_destroy(&v, &counts);
	vks_buf_destroy(&v, &args);
	return vks_finish(&v);
}
