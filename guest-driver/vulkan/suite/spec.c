/* SPDX-License-Identifier: MIT */
/*
 * vks-spec: specialization constants. One module, several pipelines: int, float, bool and uint
 * constants set, partly set or left at their defaults, and the workgroup size chosen by
 * specialization (it also sizes a shared array, and the shader mirrors values across the
 * workgroup, so a wrong size gives wrong results). spec.values uses SPIR-V 1.3's WorkgroupSize
 * built-in; spec.local_size_id the SPIR-V 1.6 LocalSizeId execution mode (Vulkan 1.3 with
 * maintenance4, else skipped).
 */
#include "vks.h"

#include "spv_spec.inc"
#include "spv_spec_v13.inc"

#include <string.h>

#define TOTAL 1024

struct variant {
	uint32_t map_count; /* how many of the entries below are passed */
	uint32_t wg;
	int32_t i;
	float f;
	VkBool32 b;
	uint32_t u;
};

/* Each variant's entries, in this order: 0 size, 1 int, 2 float, 3 bool, 4 uint. */
static const struct variant variants[] = {
	{ 5, 32, 3, 2.5f, VK_TRUE, 9 },	    { 5, 64, -2, 0.25f, VK_FALSE, 1 },
	{ 2, 128, 5, 1.0f, VK_FALSE, 7 }, /* float, bool and uint at their defaults */
	{ 5, 256, 1, -3.0f, VK_TRUE, 100 }, /* the largest size every device has */
	{ 1, 16, 1, 1.0f, VK_FALSE, 7 }, /* only the size */
};

static bool run(struct vks *v, const char *name, const uint32_t *code, size_t size)
{
	struct vks_buf out, meta;
	vks_buf_create(v, &out, TOTAL * sizeof(uint32_t), VKS_USAGE_ALL);
	vks_buf_create(v, &meta, 8 * sizeof(uint32_t), VKS_USAGE_ALL);
	uint64_t digest = VKS_HASH_INIT;
	bool ok = true;
	double ms = 0;
	for (size_t k = 0; k < VKS_ARRAY_SIZE(variants); k++) {
		const struct variant *x = &variants[k];
		const VkSpecializationMapEntry entries[5] = {
			{ 0, offsetof(struct variant, wg), 4 },
			{ 1, offsetof(struct variant, i), 4 },
			{ 2, offsetof(struct variant, f), 4 },
			{ 3, offsetof(struct variant, b), 4 },
			{ 4, offsetof(struct variant, u), 4 },
		};
		const VkSpecializationInfo spec = { x->map_count, entries, sizeof(*x), x };
		struct vks_pipe p;
		vks_pipe_create(v, &p, code, size, 2, 0, &spec);
		struct vks_buf *bufs[] = { &out, &meta };
		vks_pipe_bind(v, &p, bufs);
		memset(out.map, 0, out.size);
		memset(meta.map, 0, meta.size);
		VkCommandBuffer cmd = vks_cmd_begin(v);
		vks_timer_begin(v, cmd);
		vks_pipe_use(&p, cmd, NULL, 0);
		vkCmdDispatch(cmd, TOTAL / x->wg, 1, 1);
		vks_barrier(cmd);
		vks_timer_end(v, cmd);
		vks_cmd_submit_wait(v, cmd);
		ms += vks_timer_ms(v);

		uint32_t want[TOTAL], want_meta[8] = { 0 };
		for (uint32_t g = 0; g < TOTAL; g++) {
			uint32_t l = g % x->wg, mirror = x->wg - 1 - l;
			want[g] = mirror * (uint32_t)x->i + x->u + (x->b ? 0x10000u : 0);
		}
		want_meta[0] = x->wg;
		want_meta[1] = (uint32_t)x->i;
		memcpy(&want_meta[2], &x->f, 4);
		want_meta[3] = x->b ? 1 : 0;
		want_meta[4] = x->u;
		want_meta[5] = TOTAL / x->wg;
		if (vks_compare_u32(v, "out", out.map, want, TOTAL) ||
		    vks_compare_u32(v, "meta", meta.map, want_meta, 8)) {
			vks_note(v, "variant %zu (workgroup size %u) is wrong", k, x->wg);
			ok = false;
		}
		digest = vks_hash(digest, out.map, out.size);
		digest = vks_hash(digest, meta.map, meta.size);
		vks_pipe_destroy(v, &p);
	}
	vks_report(v, name, ok, digest, ms, "variants=%zu", VKS_ARRAY_SIZE(variants));
	vks_buf_destroy(v, &out);
	vks_buf_destroy(v, &meta);
	return ok;
}

int main(int argc, char **argv)
{
	struct vks v;
	vks_init(&v, "vks-spec", argc, argv, VKS_WANT_MAINTENANCE4);
	if (v.props.limits.maxComputeWorkGroupSize[0] < 256 ||
	    v.props.limits.maxComputeWorkGroupInvocations < 256)
		vks_fatal(&v, "workgroup limits below the minimum", VK_ERROR_FEATURE_NOT_PRESENT);
	v.current = "spec.values";
	run(&v, "spec.values", spv_spec, sizeof(spv_spec));
	v.current = "spec.local_size_id";
	if (v.api >= VK_API_VERSION_1_3 && v.on13.maintenance4)
		run(&v, "spec.local_size_id", spv_spec_v13, sizeof(spv_spec_v13));
	else
		vks_skip(&v, "spec.local_size_id", "maintenance4");
	return vks_finish(&v);
}
