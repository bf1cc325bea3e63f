/* SPDX-License-Identifier: MIT */
/*
 * vks-subgroup: subgroup operations at the device's subgroup size. Each invocation reports its
 * subgroup id and lane with its results, and the CPU recomputes every subgroup's results from
 * that layout (the mapping of invocations to subgroups is the implementation's), after checking
 * it is one: gl_SubgroupSize equals subgroupSize, every lane of every subgroup appears once.
 *
 *   subgroup.arithmetic: subgroupAdd, Inclusive/ExclusiveAdd, Min, Max (uint).
 *   subgroup.ballot: subgroupBallot + BitCount, Elect, BroadcastFirst, All, Any.
 *
 * Each needs the operation class in subgroupSupportedOperations for the compute stage, else it
 * is skipped. The digests depend on the subgroup size (printed).
 */
#include "vks.h"

#include "spv_subgroup_arith.inc"
#include "spv_subgroup_ballot.inc"

#include <stdlib.h>
#include <string.h>

#define WG 64
#define GROUPS 32
#define N (WG * GROUPS)
#define MAX_SG 128

/* Invocation index per (workgroup, subgroup, lane), or -1: filled from the reported layout. */
static int layout_of(struct vks *v, const uint32_t *ids, uint32_t stride, uint32_t size,
		     int32_t *map)
{
	uint32_t per_wg = (WG + size - 1) / size;
	for (uint32_t i = 0; i < GROUPS * per_wg * size; i++)
		map[i] = -1;
	for (uint32_t i = 0; i < N; i++) {
		uint32_t sg = ids[i * stride] >> 16, lane = ids[i * stride] & 0xffff;
		if (sg >= per_wg || lane >= size) {
			vks_note(v, "invocation %u: subgroup %u lane %u out of range", i, sg, lane);
			return -1;
		}
		int32_t *slot = &map[((i / WG) * per_wg + sg) * size + lane];
		if (*slot != -1) {
			vks_note(v, "invocation %u: subgroup %u lane %u taken twice", i, sg, lane);
			return -1;
		}
		*slot = (int32_t)i;
	}
	return (int)per_wg;
}

static void arithmetic(struct vks *v, const uint32_t *in, uint32_t size, int32_t *map)
{
	v->current = "subgroup.arithmetic";
	struct vks_buf bin, out, out2, meta;
	vks_buf_create(v, &bin, N * 4, VKS_USAGE_ALL);
	vks_buf_create(v, &out, N * 16, VKS_USAGE_ALL);
	vks_buf_create(v, &out2, N * 8, VKS_USAGE_ALL);
	vks_buf_create(v, &meta, 16, VKS_USAGE_ALL);
	memcpy(bin.map, in, N * 4);
	struct vks_pipe p;
	vks_pipe_create(v, &p, spv_subgroup_arith, sizeof(spv_subgroup_arith), 4, 0, NULL);
	vks_pipe_bind(v, &p, (struct vks_buf *[]){ &bin, &out, &out2, &meta });
	VkCommandBuffer cmd = vks_cmd_begin(v);
	vks_timer_begin(v, cmd);
	vks_pipe_use(&p, cmd, NULL, 0);
	vkCmdDispatch(cmd, GROUPS, 1, 1);
	vks_barrier(cmd);
	vks_timer_end(v, cmd);
	vks_cmd_submit_wait(v, cmd);

	const uint32_t *o = out.map, *o2 = out2.map, *m = meta.map;
	bool ok = m[0] == size && m[1] == (WG + size - 1) / size;
	if (!ok)
		vks_note(v, "gl_SubgroupSize %u, gl_NumSubgroups %u; subgroupSize %u", m[0], m[1],
			 size);
	int per_wg = ok ? layout_of(v, o, 4, size, map) : -1;
	ok = per_wg > 0;
	for (int s = 0; ok && s < GROUPS * per_wg; s++) {
		uint32_t sum = 0, incl = 0, lo = UINT32_MAX, hi = 0;
		for (uint32_t l = 0; l < size; l++) {
			int32_t i = map[s * size + l];
			if (i >= 0) {
				sum += in[i];
				lo = in[i] < lo ? in[i] : lo;
				hi = in[i] > hi ? in[i] : hi;
			}
		}
		for (uint32_t l = 0; ok && l < size; l++) {
			int32_t i = map[s * size + l];
			if (i < 0)
				continue;
			uint32_t excl = incl;
			incl += in[i];
			const uint32_t want[6] = { sum, incl, excl, lo, hi };
			const uint32_t got[6] = { o[4 * i + 1], o[4 * i + 2], o[4 * i + 3],
						  o2[2 * i], o2[2 * i + 1] };
			if (memcmp(want, got, 5 * 4)) {
				vks_note(
					v,
					"invocation %d (subgroup %d lane %u): add %u incl %u excl %u "
					"min %u max %u, want %u %u %u %u %u",
					i, s, l, got[0], got[1], got[2], got[3], got[4], want[0],
					want[1], want[2], want[3], want[4]);
				ok = false;
			}
		}
	}
	uint64_t digest = vks_hash(vks_hash(VKS_HASH_INIT, o, N * 16), o2, N * 8);
	vks_report(v, "subgroup.arithmetic", ok, digest, vks_timer_ms(v), "subgroup_size=%u", size);
	vks_pipe_destroy(v, &p);
	vks_buf_destroy(v, &bin);
	vks_buf_destroy(v, &out);
	vks_buf_destroy(v, &out2);
	vks_buf_destroy(v, &meta);
}

static void ballot(struct vks *v, const uint32_t *in, uint32_t size, int32_t *map)
{
	v->current = "subgroup.ballot";
	struct vks_buf bin, out;
	vks_buf_create(v, &bin, N * 4, VKS_USAGE_ALL);
	vks_buf_create(v, &out, N * 16, VKS_USAGE_ALL);
	memcpy(bin.map, in, N * 4);
	struct vks_pipe p;
	vks_pipe_create(v, &p, spv_subgroup_ballot, sizeof(spv_subgroup_ballot), 2, 0, NULL);
	vks_pipe_bind(v, &p, (struct vks_buf *[]){ &bin, &out });
	VkCommandBuffer cmd = vks_cmd_begin(v);
	vks_timer_begin(v, cmd);
	vks_pipe_use(&p, cmd, NULL, 0);
	vkCmdDispatch(cmd, GROUPS, 1, 1);
	vks_barrier(cmd);
	vks_timer_end(v, cmd);
	vks_cmd_submit_wait(v, cmd);

	const uint32_t *o = out.map;
	int per_wg = layout_of(v, o, 4, size, map);
	bool ok = per_wg > 0;
	for (int s = 0; ok && s < GROUPS * per_wg; s++) {
		uint32_t odd = 0, all = 1, any = 0, first = UINT32_MAX;
		int32_t first_lane = -1;
		for (uint32_t l = 0; l < size; l++) {
			int32_t i = map[s * size + l];
			if (i < 0)
				continue;
			odd += in[i] & 1;
			all &= in[i] > 0;
			any |= (in[i] & 7) == 0;
			if (first_lane < 0) {
				first_lane = (int32_t)l;
				first = in[i];
			}
		}
		for (uint32_t l = 0; ok && l < size; l++) {
			int32_t i = map[s * size + l];
			if (i < 0)
				continue;
			uint32_t votes = all | any << 1 | ((int32_t)l == first_lane) << 2;
			if (o[4 * i + 1] != odd || o[4 * i + 2] != first || o[4 * i + 3] != votes) {
				vks_note(
					v,
					"invocation %d: ballot count %u first %u votes %u, want %u "
					"%u %u",
					i, o[4 * i + 1], o[4 * i + 2], o[4 * i + 3], odd, first,
					votes);
				ok = false;
			}
		}
	}
	vks_report(v, "subgroup.ballot", ok, vks_hash(VKS_HASH_INIT, o, N * 16), vks_timer_ms(v),
		   "subgroup_size=%u", size);
	vks_pipe_destroy(v, &p);
	vks_buf_destroy(v, &bin);
	vks_buf_destroy(v, &out);
}

int main(int argc, char **argv)
{
	struct vks v;
	vks_init(&v, "vks-subgroup", argc, argv, 0);
	v.current = "subgroup";
	const VkPhysicalDeviceSubgroupProperties *sg = &v.subgroup;
	uint32_t size = sg->subgroupSize;
	bool compute = v.api >= VK_API_VERSION_1_1 &&
		       (sg->supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) && size >= 1 &&
		       size <= MAX_SG;
	uint32_t in[N];
	uint64_t seed = 1234;
	for (uint32_t i = 0; i < N; i++)
		in[i] = (uint32_t)(vks_rand(&seed) >> 48) + (i % 5 == 0 ? 0 : 1);
	int32_t *map = malloc(sizeof(int32_t) * GROUPS * (WG + MAX_SG) * 2);
	if (!map)
		vks_fatal(&v, "malloc", VK_ERROR_OUT_OF_HOST_MEMORY);
	if (compute && (sg->supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT))
		arithmetic(&v, in, size, map);
	else
		vks_skip(&v, "subgroup.arithmetic", "subgroupArithmetic");
	if (compute && (sg->supportedOperations & VK_SUBGROUP_FEATURE_BALLOT_BIT) &&
	    (sg->supportedOperations & VK_SUBGROUP_FEATURE_VOTE_BIT))
		ballot(&v, in, size, map);
	else
		vks_skip(&v, "subgroup.ballot", "subgroupBallotVote");
	free(map);
	return vks_finish(&v);
}
