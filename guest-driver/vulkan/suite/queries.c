/* SPDX-License-Identifier: MIT */
/*
 * vks-queries: timestamp queries. vkCmdResetQueryPool, vkCmdWriteTimestamp at several stages
 * around dispatches, vkGetQueryPoolResults (WAIT, 64 and 32 bits, availability),
 * vkCmdCopyQueryPoolResults into a buffer (with and without WAIT), queries never written
 * (unavailable, VK_NOT_READY), and vkResetQueryPool from the host (hostQueryReset).
 *
 *   query.timestamps: the values are ordered as written and the work between them took time.
 *   query.copy_results: what the device copied equals what the host read.
 *   query.host_reset: after vkResetQueryPool a query is unavailable again.
 *
 * Times are not part of the digests (they differ on every run); availability and order are.
 */
#include "vks.h"

#include "spv_saxpy.inc"

#include <string.h>

#define QUERIES 8
#define WRITTEN 6

int main(int argc, char **argv)
{
	struct vks v;
	vks_init(&v, "vks-queries", argc, argv, 0);
	v.current = "query.timestamps";
	if (!v.queue_props.timestampValidBits) {
		vks_skip(&v, "query.timestamps", "timestampValidBits");
		vks_skip(&v, "query.copy_results", "timestampValidBits");
		vks_skip(&v, "query.host_reset", "timestampValidBits");
		return vks_finish(&v);
	}
	const VkQueryPoolCreateInfo qi = {
		.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
		.queryType = VK_QUERY_TYPE_TIMESTAMP,
		.queryCount = QUERIES,
	};
	VkQueryPool pool;
	VKS_CHECK(&v, vkCreateQueryPool(v.dev, &qi, NULL, &pool));
	const uint32_t n = 1 << 16;
	struct vks_buf x, y, copied;
	vks_buf_create(&v, &x, n * 4, VKS_USAGE_ALL);
	vks_buf_create(&v, &y, n * 4, VKS_USAGE_ALL);
	vks_buf_create(&v, &copied, QUERIES * 16, VKS_USAGE_ALL);
	memset(x.map, 0, x.size);
	memset(y.map, 0, y.size);
	memset(copied.map, 0xff, copied.size);
	struct vks_pipe p;
	vks_pipe_create(&v, &p, spv_saxpy, sizeof(spv_saxpy), 2, 8, NULL);
	vks_pipe_bind(&v, &p, (struct vks_buf *[]){ &x, &y });
	const struct {
		float a;
		uint32_t n;
	} push = { 1.0f, n };

	VkCommandBuffer cmd = vks_cmd_begin(&v);
	vkCmdResetQueryPool(cmd, pool, 0, QUERIES);
	vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, pool, 0);
	vks_pipe_use(&p, cmd, &push, sizeof(push));
	vkCmdDispatch(cmd, n / 256, 1, 1);
	vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, pool, 1);
	vks_barrier(cmd);
	vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, pool, 2);
	for (int i = 0; i < 8; i++) {
		vkCmdDispatch(cmd, n / 256, 1, 1);
		vks_barrier(cmd);
	}
	vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pool, 3);
	vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, pool, 4);
	vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pool, 5);
	vkCmdCopyQueryPoolResults(cmd, pool, 0, WRITTEN, copied.buf, 0, 16,
				  VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT |
					  VK_QUERY_RESULT_WITH_AVAILABILITY_BIT);
	vkCmdCopyQueryPoolResults(cmd, pool, WRITTEN, QUERIES - WRITTEN, copied.buf, WRITTEN * 16,
				  16,
				  VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WITH_AVAILABILITY_BIT);
	vks_barrier(cmd);
	vks_cmd_submit_wait(&v, cmd);

	uint64_t ts[WRITTEN], avail[QUERIES - WRITTEN][2];
	uint32_t ts32[WRITTEN];
	VkResult r_wait = vkGetQueryPoolResults(v.dev, pool, 0, WRITTEN, sizeof(ts), ts, 8,
						VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
	VkResult r_32 = vkGetQueryPoolResults(v.dev, pool, 0, WRITTEN, sizeof(ts32), ts32, 4,
					      VK_QUERY_RESULT_WAIT_BIT);
	VkResult r_unwritten = vkGetQueryPoolResults(
		v.dev, pool, WRITTEN, QUERIES - WRITTEN, sizeof(avail), avail, 16,
		VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WITH_AVAILABILITY_BIT);
	uint64_t mask = v.queue_props.timestampValidBits >= 64 ?
				UINT64_MAX :
				(1ull << v.queue_props.timestampValidBits) - 1;
	/* Order: 0 <= 1 <= 3 and 2 <= 3 <= 5 (4 is a transfer-stage write of no work); and time
	 * passed over the eight dispatches. */
	bool ordered = ts[0] <= ts[1] && ts[1] <= ts[3] && ts[2] <= ts[3] && ts[3] <= ts[5];
	double span_ms = (double)((ts[5] - ts[0]) & mask) * v.props.limits.timestampPeriod / 1e6;
	bool ok = r_wait == VK_SUCCESS && r_32 == VK_SUCCESS && r_unwritten == VK_NOT_READY &&
		  ordered && span_ms > 0 && avail[0][1] == 0 && avail[1][1] == 0;
	/* 32-bit results of values that do not fit may wrap or saturate (both are allowed). */
	for (int i = 0; i < WRITTEN; i++)
		ok = ok &&
		     (ts32[i] == (uint32_t)ts[i] || (ts[i] > UINT32_MAX && ts32[i] == UINT32_MAX));
	if (!ok)
		vks_note(&v, "results %s/%s/%s, ordered %d, span %.3f ms, availability %llu %llu",
			 vks_result_name(r_wait), vks_result_name(r_32),
			 vks_result_name(r_unwritten), ordered, span_ms,
			 (unsigned long long)avail[0][1], (unsigned long long)avail[1][1]);
	const int32_t facts[] = {
		r_wait, r_32, r_unwritten, ordered, (int32_t)avail[0][1], (int32_t)avail[1][1]
	};
	vks_report(&v, "query.timestamps", ok, vks_hash(VKS_HASH_INIT, facts, sizeof(facts)),
		   span_ms, "bits=%u period=%g", v.queue_props.timestampValidBits,
		   v.props.limits.timestampPeriod);

	v.current = "query.copy_results";
	const uint64_t *c = copied.map;
	ok = true;
	for (int i = 0; i < WRITTEN; i++)
		ok = ok && c[2 * i] == ts[i] && c[2 * i + 1] != 0;
	for (int i = WRITTEN; i < QUERIES; i++)
		ok = ok && c[2 * i + 1] == 0;
	if (!ok)
		vks_note(&v, "copied %llu/%llu, read %llu", (unsigned long long)c[0],
			 (unsigned long long)c[1], (unsigned long long)ts[0]);
	uint64_t avail_bits = 0;
	for (int i = 0; i < QUERIES; i++)
		avail_bits |= (uint64_t)(c[2 * i + 1] != 0) << i;
	vks_report(&v, "query.copy_results", ok, vks_hash(VKS_HASH_INIT, &avail_bits, 8), 0,
		   "available=0x%llx", (unsigned long long)avail_bits);

	v.current = "query.host_reset";
	if (v.on12.hostQueryReset) {
		vkResetQueryPool(v.dev, pool, 0, QUERIES);
		uint64_t one[2] = { 1, 1 };
		VkResult r = vkGetQueryPoolResults(v.dev, pool, 0, 1, sizeof(one), one, 16,
						   VK_QUERY_RESULT_64_BIT |
							   VK_QUERY_RESULT_WITH_AVAILABILITY_BIT);
		ok = r == VK_NOT_READY && one[1] == 0;
		if (!ok)
			vks_note(&v, "after vkResetQueryPool: %s, availability %llu",
				 vks_result_name(r), (unsigned long long)one[1]);
		const int32_t f[] = { r, (int32_t)one[1] };
		vks_report(&v, "query.host_reset", ok, vks_hash(VKS_HASH_INIT, f, sizeof(f)), 0,
			   NULL);
	} else {
		vks_skip(&v, "query.host_reset", "hostQueryReset");
	}

	vks_pipe_destroy(&v, &p);
	vkDestroyQueryPool(v.dev, pool, NULL);
	vks_buf_destroy(&v, &x);
	vks_buf_destroy(&v, &y);
	vks_buf_destroy(&v, &copied);
	return vks_finish(&v);
}
