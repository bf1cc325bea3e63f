/* SPDX-License-Identifier: MIT */
/*
 * vks-transfer: the transfer commands, checked byte for byte against the same operations done
 * by the CPU.
 *
 *   xfer.copy_unaligned: vkCmdCopyBuffer with odd offsets and sizes (1 byte up), several
 *     regions in one command, a copy within one buffer, the last byte of a buffer.
 *   xfer.update: vkCmdUpdateBuffer of 65536 bytes (the maximum), of 4 bytes at the end, and an
 *     update overlapping an earlier one after a barrier (the later wins).
 *   xfer.fill: vkCmdFillBuffer at an offset, and with VK_WHOLE_SIZE on a buffer whose size is
 *     not a multiple of 4 (the last two bytes stay), then read by a shader.
 */
#include "vks.h"

#include "spv_twice_plus.inc"

#include <stdlib.h>
#include <string.h>

#define COPY_SIZE 65536
#define UPDATE_SIZE (65536 + 4096)
#define FILL_SIZE 12290

static void transfer_barrier(VkCommandBuffer cmd)
{
	const VkMemoryBarrier mb = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
		.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
		.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
	};
	vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0,
			     1, &mb, 0, NULL, 0, NULL);
}

static void copy_unaligned(struct vks *v)
{
	v->current = "xfer.copy_unaligned";
	struct vks_buf src, dst;
	vks_buf_create(v, &src, COPY_SIZE, VKS_USAGE_ALL);
	vks_buf_create(v, &dst, COPY_SIZE, VKS_USAGE_ALL);
	uint8_t *s = src.map, *want = calloc(1, COPY_SIZE);
	if (!want)
		vks_fatal(v, "calloc", VK_ERROR_OUT_OF_HOST_MEMORY);
	uint64_t seed = 5;
	for (uint32_t i = 0; i < COPY_SIZE; i++)
		s[i] = (uint8_t)vks_rand(&seed);
	memset(dst.map, 0, COPY_SIZE);
	const VkBufferCopy regions[] = {
		{ 3, 5, 1001 },
		{ 4099, 8191, 1 },
		{ 10000, 20001, 7777 },
		{ 0, 40000, 4 },
		{ COPY_SIZE - 1, COPY_SIZE - 1, 1 },
		{ 12345, 50001, 3333 },
	};
	for (size_t r = 0; r < VKS_ARRAY_SIZE(regions); r++)
		memcpy(want + regions[r].dstOffset, s + regions[r].srcOffset, regions[r].size);
	/* Then within dst: [5, 1006) to [30001, 31006), not overlapping. */
	const VkBufferCopy inner = { 5, 30001, 1001 };
	memcpy(want + inner.dstOffset, want + inner.srcOffset, inner.size);

	VkCommandBuffer cmd = vks_cmd_begin(v);
	vks_timer_begin(v, cmd);
	vkCmdCopyBuffer(cmd, src.buf, dst.buf, VKS_ARRAY_SIZE(regions), regions);
	transfer_barrier(cmd);
	vkCmdCopyBuffer(cmd, dst.buf, dst.buf, 1, &inner);
	vks_barrier(cmd);
	vks_timer_end(v, cmd);
	vks_cmd_submit_wait(v, cmd);
	bool ok = memcmp(dst.map, want, COPY_SIZE) == 0;
	if (!ok)
		vks_compare_u32(v, "dst", dst.map, (uint32_t *)want, COPY_SIZE / 4);
	vks_report(v, "xfer.copy_unaligned", ok, vks_hash(VKS_HASH_INIT, dst.map, COPY_SIZE),
		   vks_timer_ms(v), "regions=%zu", VKS_ARRAY_SIZE(regions) + 1);
	free(want);
	vks_buf_destroy(v, &src);
	vks_buf_destroy(v, &dst);
}

static void update(struct vks *v)
{
	v->current = "xfer.update";
	struct vks_buf dst;
	vks_buf_create(v, &dst, UPDATE_SIZE, VKS_USAGE_ALL);
	memset(dst.map, 0xee, UPDATE_SIZE);
	uint8_t *want = malloc(UPDATE_SIZE), *big = malloc(65536);
	if (!want || !big)
		vks_fatal(v, "malloc", VK_ERROR_OUT_OF_HOST_MEMORY);
	memset(want, 0xee, UPDATE_SIZE);
	for (uint32_t i = 0; i < 65536; i++)
		big[i] = (uint8_t)(i * 31 + (i >> 8));
	const uint32_t small[2] = { 0x01234567, 0x89abcdef };
	const uint32_t last = 0xfeedf00d;

	VkCommandBuffer cmd = vks_cmd_begin(v);
	vks_timer_begin(v, cmd);
	vkCmdUpdateBuffer(cmd, dst.buf, 1024, 65536, big);
	memcpy(want + 1024, big, 65536);
	vkCmdUpdateBuffer(cmd, dst.buf, UPDATE_SIZE - 4, 4, &last);
	memcpy(want + UPDATE_SIZE - 4, &last, 4);
	transfer_barrier(cmd);
	vkCmdUpdateBuffer(cmd, dst.buf, 1020, 8, small);
	memcpy(want + 1020, small, 8);
	vks_barrier(cmd);
	vks_timer_end(v, cmd);
	vks_cmd_submit_wait(v, cmd);
	bool ok = memcmp(dst.map, want, UPDATE_SIZE) == 0;
	if (!ok)
		vks_compare_u32(v, "dst", dst.map, (uint32_t *)want, UPDATE_SIZE / 4);
	vks_report(v, "xfer.update", ok, vks_hash(VKS_HASH_INIT, dst.map, UPDATE_SIZE),
		   vks_timer_ms(v), NULL);
	free(want);
	free(big);
	vks_buf_destroy(v, &dst);
}

static void fill(struct vks *v)
{
	v->current = "xfer.fill";
	struct vks_buf buf, out;
	vks_buf_create(v, &buf, FILL_SIZE, VKS_USAGE_ALL);
	vks_buf_create(v, &out, FILL_SIZE / 4 * 4, VKS_USAGE_ALL);
	memset(buf.map, 0x11, FILL_SIZE);
	uint8_t want[FILL_SIZE];
	memset(want, 0x11, FILL_SIZE);
	struct vks_pipe p;
	vks_pipe_create(v, &p, spv_twice_plus, sizeof(spv_twice_plus), 2, 8, NULL);
	struct vks_buf *bufs[] = { &buf, &out };
	vks_pipe_bind(v, &p, bufs);

	VkCommandBuffer cmd = vks_cmd_begin(v);
	vks_timer_begin(v, cmd);
	vkCmdFillBuffer(cmd, buf.buf, 4, 4092, 0xa5a5a5a5);
	memset(want + 4, 0xa5, 4092);
	vkCmdFillBuffer(cmd, buf.buf, 8192, VK_WHOLE_SIZE, 0x3c3c3c3c);
	memset(want + 8192, 0x3c, (FILL_SIZE - 8192) / 4 * 4);
	vks_barrier(cmd);
	const uint32_t push[2] = { FILL_SIZE / 4, 1 };
	vks_pipe_use(&p, cmd, push, sizeof(push));
	vkCmdDispatch(cmd, (FILL_SIZE / 4 + 63) / 64, 1, 1);
	vks_barrier(cmd);
	vks_timer_end(v, cmd);
	vks_cmd_submit_wait(v, cmd);

	uint32_t words[FILL_SIZE / 4], twice[FILL_SIZE / 4];
	memcpy(words, want, sizeof(words));
	for (uint32_t i = 0; i < FILL_SIZE / 4; i++)
		twice[i] = 2 * words[i] + 1;
	bool ok = memcmp(buf.map, want, FILL_SIZE) == 0;
	if (!ok)
		vks_compare_u32(v, "filled", buf.map, words, FILL_SIZE / 4);
	ok = vks_compare_u32(v, "read by a shader", out.map, twice, FILL_SIZE / 4) == 0 && ok;
	uint64_t digest = vks_hash(vks_hash(VKS_HASH_INIT, buf.map, FILL_SIZE), out.map, out.size);
	vks_report(v, "xfer.fill", ok, digest, vks_timer_ms(v), NULL);
	vks_pipe_destroy(v, &p);
	vks_buf_destroy(v, &buf);
	vks_buf_destroy(v, &out);
}

int main(int argc, char **argv)
{
	struct vks v;
	vks_init(&v, "vks-transfer", argc, argv, 0);
	copy_unaligned(&v);
	update(&v);
	fill(&v);
	return vks_finish(&v);
}
