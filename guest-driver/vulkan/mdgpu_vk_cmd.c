// SPDX-License-Identifier: MIT
/*
 * libvulkan_mdgpu: command pools and command buffers. A command buffer records straight into
 * mdgpu's queue format, in process memory (libmdgpu's encoder): DISPATCH2 and DISPATCH_INDIRECT
 * for dispatches, COPY (any alignment), FILL, UPDATE, BARRIER for pipeline barriers, FENCE and
 * WAIT for events, TIMESTAMP for timestamp queries. vkQueueSubmit then only copies the bytes into
 * the ring. The recording is kept in chunks of at most 512 KiB and 2048 commands, so that a
 * command buffer of any size is split into submissions the device takes.
 *
 * Descriptors are resolved when a dispatch is recorded: for each buffer the bound pipeline's
 * kernel uses (set, binding, array element), the bound set's descriptor, its dynamic offset
 * applied, becomes one DISPATCH2 descriptor. (Changing a bound set before the command buffer is
 * submitted is invalid in Vulkan without update-after-bind, which is not offered, so this is the
 * same as resolving it at submission.) Secondary command buffers are copied in at
 * vkCmdExecuteCommands.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mdgpu_vk.h"
#include "mdgpu_vk_entry.h"

/* ---- recording ---- */

static void cb_fail(struct mdgpu_vk_command_buffer *cb, VkResult result, const char *what)
{
	if (cb->record_result == VK_SUCCESS) {
		cb->record_result = result;
		mdgpu_vk_debug("command buffer: %s", what);
	}
}

void mdgpu_vk_cmd_unsupported(VkCommandBuffer commandBuffer, const char *what)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);

	cb_fail(cb, VK_ERROR_FEATURE_NOT_PRESENT, what);
}

/* The chunk the next @commands of @bytes go into (a new one when the current is full). */
static struct mdgpu_submission *cb_chunk_n(struct mdgpu_vk_command_buffer *cb, size_t bytes,
					   uint32_t commands)
{
	struct mdgpu_submission *cur = cb->chunk_count ? &cb->chunks[cb->chunk_count - 1] : NULL;

	if (cb->record_result != VK_SUCCESS)
		return NULL;
	if (cur && cur->len + bytes <= MDGPU_VK_CHUNK_BYTES &&
	    cur->commands + commands <= MDGPU_VK_CHUNK_COMMANDS)
		return cur;
	if (cb->chunk_count == cb->chunk_cap) {
		uint32_t cap = cb->chunk_cap ? cb->chunk_cap * 2 : 4;
		struct mdgpu_submission *p = realloc(cb->chunks, cap * sizeof(*p));

		if (!p) {
			cb_fail(cb, VK_ERROR_OUT_OF_HOST_MEMORY, "out of memory");
			return NULL;
		}
		for (uint32_t i = cb->chunk_cap; i < cap; i++)
			mdgpu_sub_init(&p[i]);
		cb->chunks = p;
		cb->chunk_cap = cap;
	}
	cur = &cb->chunks[cb->chunk_count++];
	/* A placeholder header: the queue takes only the commands (mdgpu_sub_append). */
	if (mdgpu_sub_begin(cur, 0, 0, 0, 0)) {
		cb_fail(cb, VK_ERROR_OUT_OF_HOST_MEMORY, "out of memory");
		return NULL;
	}
	return cur;
}

static struct mdgpu_submission *cb_chunk(struct mdgpu_vk_command_buffer *cb, size_t bytes)
{
	return cb_chunk_n(cb, bytes, 2);
}

/* Check what an encoder returned. */
static void cb_check(struct mdgpu_vk_command_buffer *cb, int ret, const char *what)
{
	if (ret)
		cb_fail(cb, ret == -ENOMEM ? VK_ERROR_OUT_OF_HOST_MEMORY : VK_ERROR_UNKNOWN, what);
	cb->last_was_barrier = false;
}

static void cb_barrier(struct mdgpu_vk_command_buffer *cb)
{
	struct mdgpu_submission *s;

	/* One is as good as several. */
	if (cb->last_was_barrier)
		return;
	s = cb_chunk(cb, MDGPU_CMD_BARRIER_SIZE);
	if (!s)
		return;
	cb_check(cb, mdgpu_sub_barrier(s), "barrier");
	cb->last_was_barrier = true;
}

static void cb_reset(struct mdgpu_vk_command_buffer *cb)
{
	cb->chunk_count = 0;
	cb->record_result = VK_SUCCESS;
	cb->pipeline = NULL;
	memset(cb->sets, 0, sizeof(cb->sets));
	memset(cb->push, 0, sizeof(cb->push));
	cb->last_was_barrier = false;
	cb->state = MDGPU_VK_CMD_INITIAL;
}

static void cb_free(struct mdgpu_vk_command_buffer *cb)
{
	struct mdgpu_vk_command_pool *pool = cb->pool;

	if (cb->prev)
		cb->prev->next = cb->next;
	else
		pool->head = cb->next;
	if (cb->next)
		cb->next->prev = cb->prev;
	for (uint32_t i = 0; i < cb->chunk_cap; i++)
		mdgpu_sub_fini(&cb->chunks[i]);
	free(cb->chunks);
	free(cb);
}

/* ---- pools ---- */

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateCommandPool(VkDevice device,
						       const VkCommandPoolCreateInfo *pCreateInfo,
						       const VkAllocationCallbacks *pAllocator,
						       VkCommandPool *pCommandPool)
{
	struct mdgpu_vk_command_pool *pool;

	if (pCreateInfo->queueFamilyIndex != 0 ||
	    (pCreateInfo->flags & VK_COMMAND_POOL_CREATE_PROTECTED_BIT))
		return VK_ERROR_INITIALIZATION_FAILED;
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	pool->flags = pCreateInfo->flags;
	pool->family = pCreateInfo->queueFamilyIndex;
	*pCommandPool = MDGPU_VK_TO_HANDLE(VkCommandPool, pool);
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyCommandPool(VkDevice device, VkCommandPool commandPool,
						    const VkAllocationCallbacks *pAllocator)
{
	MDGPU_VK_FROM_HANDLE(command_pool, pool, commandPool);

	if (!pool)
		return;
	while (pool->head)
		cb_free(pool->head);
	free(pool);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_ResetCommandPool(VkDevice device, VkCommandPool commandPool,
						      VkCommandPoolResetFlags flags)
{
	MDGPU_VK_FROM_HANDLE(command_pool, pool, commandPool);

	for (struct mdgpu_vk_command_buffer *cb = pool->head; cb; cb = cb->next) {
		cb_reset(cb);
		if (flags & VK_COMMAND_POOL_RESET_RELEASE_RESOURCES_BIT) {
			for (uint32_t i = 0; i < cb->chunk_cap; i++)
				mdgpu_sub_fini(&cb->chunks[i]);
			free(cb->chunks);
			cb->chunks = NULL;
			cb->chunk_cap = 0;
		}
	}
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_TrimCommandPool(VkDevice device, VkCommandPool commandPool,
						 VkCommandPoolTrimFlags flags)
{
	MDGPU_VK_FROM_HANDLE(command_pool, pool, commandPool);

	/* Memory of chunks no recording uses now goes back. */
	for (struct mdgpu_vk_command_buffer *cb = pool->head; cb; cb = cb->next)
		for (uint32_t i = cb->chunk_count; i < cb->chunk_cap; i++)
			mdgpu_sub_fini(&cb->chunks[i]);
}

VKAPI_ATTR VkResult VKAPI_CALL
mdgpu_AllocateCommandBuffers(VkDevice device, const VkCommandBufferAllocateInfo *pAllocateInfo,
			     VkCommandBuffer *pCommandBuffers)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(command_pool, pool, pAllocateInfo->commandPool);
	uint32_t i;

	for (i = 0; i < pAllocateInfo->commandBufferCount; i++) {
		struct mdgpu_vk_command_buffer *cb = calloc(1, sizeof(*cb));

		if (!cb)
			goto err;
		set_loader_magic_value(cb);
		cb->device = dev;
		cb->pool = pool;
		cb->level = pAllocateInfo->level;
		cb->state = MDGPU_VK_CMD_INITIAL;
		cb->next = pool->head;
		if (pool->head)
			pool->head->prev = cb;
		pool->head = cb;
		pCommandBuffers[i] = (VkCommandBuffer)cb;
	}
	return VK_SUCCESS;

err:
	while (i--)
		cb_free((struct mdgpu_vk_command_buffer *)pCommandBuffers[i]);
	for (i = 0; i < pAllocateInfo->commandBufferCount; i++)
		pCommandBuffers[i] = VK_NULL_HANDLE;
	return VK_ERROR_OUT_OF_HOST_MEMORY;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_FreeCommandBuffers(VkDevice device, VkCommandPool commandPool,
						    uint32_t commandBufferCount,
						    const VkCommandBuffer *pCommandBuffers)
{
	for (uint32_t i = 0; i < commandBufferCount; i++)
		if (pCommandBuffers[i])
			cb_free((struct mdgpu_vk_command_buffer *)pCommandBuffers[i]);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_BeginCommandBuffer(VkCommandBuffer commandBuffer,
							const VkCommandBufferBeginInfo *pBeginInfo)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);

	/* Beginning again resets (implicitly, for pools that allow resetting single buffers). */
	cb_reset(cb);
	cb->state = MDGPU_VK_CMD_RECORDING;
	return VK_SUCCESS;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_EndCommandBuffer(VkCommandBuffer commandBuffer)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);

	cb->state =
		cb->record_result == VK_SUCCESS ? MDGPU_VK_CMD_EXECUTABLE : MDGPU_VK_CMD_INVALID;
	return cb->record_result;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_ResetCommandBuffer(VkCommandBuffer commandBuffer,
							VkCommandBufferResetFlags flags)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);

	cb_reset(cb);
	return VK_SUCCESS;
}

/* ---- state ---- */

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdBindPipeline(VkCommandBuffer commandBuffer,
						 VkPipelineBindPoint pipelineBindPoint,
						 VkPipeline pipeline)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);

	if (pipelineBindPoint != VK_PIPELINE_BIND_POINT_COMPUTE) {
		cb_fail(cb, VK_ERROR_FEATURE_NOT_PRESENT, "only compute pipelines");
		return;
	}
	cb->pipeline = (void *)(uintptr_t)pipeline;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdBindDescriptorSets(VkCommandBuffer commandBuffer,
						       VkPipelineBindPoint pipelineBindPoint,
						       VkPipelineLayout layout, uint32_t firstSet,
						       uint32_t descriptorSetCount,
						       const VkDescriptorSet *pDescriptorSets,
						       uint32_t dynamicOffsetCount,
						       const uint32_t *pDynamicOffsets)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);
	uint32_t next = 0;

	if (pipelineBindPoint != VK_PIPELINE_BIND_POINT_COMPUTE)
		return;
	for (uint32_t i = 0; i < descriptorSetCount; i++) {
		struct mdgpu_vk_descriptor_set *set = (void *)(uintptr_t)pDescriptorSets[i];
		struct mdgpu_vk_bound_set *b;

		if (firstSet + i >= MDGPU_VK_MAX_SETS)
			break;
		b = &cb->sets[firstSet + i];
		b->set = set;
		memset(b->dynamic, 0, sizeof(b->dynamic));
		/* Dynamic offsets are taken in order of set, binding and array element. */
		for (uint32_t d = 0; set && d < set->layout->dynamic_count; d++)
			b->dynamic[d] = next < dynamicOffsetCount ? pDynamicOffsets[next++] : 0;
	}
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdPushConstants(VkCommandBuffer commandBuffer,
						  VkPipelineLayout layout,
						  VkShaderStageFlags stageFlags, uint32_t offset,
						  uint32_t size, const void *pValues)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);

	if (offset > MDGPU_VK_MAX_PUSH || size > MDGPU_VK_MAX_PUSH - offset) {
		cb_fail(cb, VK_ERROR_UNKNOWN, "push constants out of range");
		return;
	}
	memcpy(cb->push + offset, pValues, size);
}

/* ---- dispatches ---- */

/* The bound sets, as the DISPATCH2 descriptors the bound pipeline's kernel uses. */
static uint32_t resolve(struct mdgpu_vk_command_buffer *cb, struct mdgpu_descriptor *out)
{
	const struct mdgpu_caps *caps = &cb->device->physical->caps;
	const struct mdgpu_vk_reflection *r = &cb->pipeline->reflection;
	uint32_t n = 0;

	for (uint32_t k = 0; k < r->binding_count; k++) {
		const struct mdgpu_vk_kernel_binding *kb = &r->bindings[k];
		const struct mdgpu_vk_set_binding *lb;
		const struct mdgpu_vk_bound_set *bs;
		uint64_t max;
		uint32_t count;

		if (kb->set >= MDGPU_VK_MAX_SETS)
			continue;
		bs = &cb->sets[kb->set];
		/* Nothing bound there: the device binds a zeroed buffer of its own. */
		if (!bs->set)
			continue;
		lb = mdgpu_vk_set_layout_find(bs->set->layout, kb->binding);
		if (!lb)
			continue;
		count = kb->count && kb->count < lb->count ? kb->count : lb->count;
		max = kb->type == MDGPU_DESCRIPTOR_UNIFORM_BUFFER ? caps->max_uniform_buffer_range :
								    caps->max_storage_buffer_range;
		for (uint32_t i = 0; i < count; i++) {
			const struct mdgpu_vk_descriptor *d = &bs->set->descriptors[lb->first + i];
			uint64_t offset = d->offset;

			if (!d->valid)
				continue;
			if (mdgpu_vk_descriptor_dynamic(lb->type) &&
			    lb->dynamic_first + i < MDGPU_VK_MAX_DYNAMIC)
				offset += bs->dynamic[lb->dynamic_first + i];
			if (n == MDGPU_DISPATCH_MAX_DESCRIPTORS) {
				cb_fail(cb, VK_ERROR_UNKNOWN,
					"more descriptors than a dispatch takes");
				return n;
			}
			out[n++] = (struct mdgpu_descriptor){
				.set = kb->set,
				.binding = kb->binding,
				.index = i,
				.type = kb->type,
				.handle = d->handle,
				.offset = offset,
				/* A whole-size binding of a huge buffer: the part a kernel may see. */
				.range = d->range < max ? d->range : max,
			};
		}
	}
	return n;
}

static void dispatch(struct mdgpu_vk_command_buffer *cb, const struct mdgpu_grid *grid,
		     const struct mdgpu_vk_buffer *args, VkDeviceSize args_offset)
{
	struct mdgpu_descriptor descs[MDGPU_DISPATCH_MAX_DESCRIPTORS];
	struct mdgpu_vk_pipeline *p = cb->pipeline;
	struct mdgpu_submission *s;
	uint32_t n;
	size_t bytes;

	if (!p) {
		cb_fail(cb, VK_ERROR_UNKNOWN, "dispatch without a compute pipeline");
		return;
	}
	n = resolve(cb, descs);
	bytes = (args ? MDGPU_CMD_DISPATCH_INDIRECT_SIZE : MDGPU_CMD_DISPATCH2_SIZE) +
		(size_t)n * MDGPU_CMD_DESCRIPTOR_SIZE +
		mdgpu_vk_align(p->push_size, MDGPU_CMD_ALIGN);
	s = cb_chunk(cb, bytes);
	if (!s)
		return;
	if (args)
		cb_check(cb,
			 mdgpu_sub_dispatch_indirect(s, p->kernel->id, args->memory->bo.handle,
						     args->offset + args_offset, descs, n,
						     p->push_size ? cb->push : NULL, p->push_size),
			 "dispatch indirect");
	else
		cb_check(cb,
			 mdgpu_sub_dispatch2(s, p->kernel->id, grid, descs, n,
					     p->push_size ? cb->push : NULL, p->push_size),
			 "dispatch");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdDispatchBase(VkCommandBuffer commandBuffer, uint32_t baseGroupX,
						 uint32_t baseGroupY, uint32_t baseGroupZ,
						 uint32_t groupCountX, uint32_t groupCountY,
						 uint32_t groupCountZ)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);
	const struct mdgpu_grid grid = { baseGroupX,  baseGroupY,  baseGroupZ,
					 groupCountX, groupCountY, groupCountZ };

	/* Zero workgroups in any dimension: nothing to run. */
	if (!groupCountX || !groupCountY || !groupCountZ)
		return;
	dispatch(cb, &grid, NULL, 0);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdDispatch(VkCommandBuffer commandBuffer, uint32_t groupCountX,
					     uint32_t groupCountY, uint32_t groupCountZ)
{
	mdgpu_CmdDispatchBase(commandBuffer, 0, 0, 0, groupCountX, groupCountY, groupCountZ);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdDispatchIndirect(VkCommandBuffer commandBuffer, VkBuffer buffer,
						     VkDeviceSize offset)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);
	MDGPU_VK_FROM_HANDLE(buffer, buf, buffer);

	if (!buf || !buf->memory) {
		cb_fail(cb, VK_ERROR_UNKNOWN, "indirect dispatch from a buffer without memory");
		return;
	}
	/* The device reads and checks the counts when the dispatch is due (DISPATCH_INDIRECT). */
	dispatch(cb, NULL, buf, offset);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetDeviceMask(VkCommandBuffer commandBuffer,
						  uint32_t deviceMask)
{
	/* One device per group. */
}

/* ---- transfers ---- */

static void copy(struct mdgpu_vk_command_buffer *cb, const struct mdgpu_vk_buffer *src,
		 const struct mdgpu_vk_buffer *dst, VkDeviceSize src_offset,
		 VkDeviceSize dst_offset, VkDeviceSize size)
{
	struct mdgpu_submission *s;

	if (!src || !dst || !src->memory || !dst->memory) {
		cb_fail(cb, VK_ERROR_UNKNOWN, "copy between buffers without memory");
		return;
	}
	if (!size)
		return;
	s = cb_chunk(cb, MDGPU_CMD_COPY_SIZE);
	if (s)
		cb_check(cb,
			 mdgpu_sub_copy(s, src->memory->bo.handle, src->offset + src_offset,
					dst->memory->bo.handle, dst->offset + dst_offset, size),
			 "copy");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdCopyBuffer(VkCommandBuffer commandBuffer, VkBuffer srcBuffer,
					       VkBuffer dstBuffer, uint32_t regionCount,
					       const VkBufferCopy *pRegions)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);

	for (uint32_t i = 0; i < regionCount; i++)
		copy(cb, (void *)(uintptr_t)srcBuffer, (void *)(uintptr_t)dstBuffer,
		     pRegions[i].srcOffset, pRegions[i].dstOffset, pRegions[i].size);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdCopyBuffer2(VkCommandBuffer commandBuffer,
						const VkCopyBufferInfo2 *pCopyBufferInfo)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);
	const VkCopyBufferInfo2 *c = pCopyBufferInfo;

	for (uint32_t i = 0; i < c->regionCount; i++)
		copy(cb, (void *)(uintptr_t)c->srcBuffer, (void *)(uintptr_t)c->dstBuffer,
		     c->pRegions[i].srcOffset, c->pRegions[i].dstOffset, c->pRegions[i].size);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdFillBuffer(VkCommandBuffer commandBuffer, VkBuffer dstBuffer,
					       VkDeviceSize dstOffset, VkDeviceSize size,
					       uint32_t data)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);
	MDGPU_VK_FROM_HANDLE(buffer, buf, dstBuffer);
	struct mdgpu_submission *s;

	if (!buf || !buf->memory) {
		cb_fail(cb, VK_ERROR_UNKNOWN, "fill of a buffer without memory");
		return;
	}
	if (size == VK_WHOLE_SIZE)
		size = dstOffset < buf->size ? (buf->size - dstOffset) & ~(VkDeviceSize)3 : 0;
	if (!size)
		return;
	s = cb_chunk(cb, MDGPU_CMD_FILL_SIZE);
	if (s)
		cb_check(cb,
			 mdgpu_sub_fill(s, buf->memory->bo.handle, buf->offset + dstOffset, size,
					data),
			 "fill");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdUpdateBuffer(VkCommandBuffer commandBuffer, VkBuffer dstBuffer,
						 VkDeviceSize dstOffset, VkDeviceSize dataSize,
						 const void *pData)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);
	MDGPU_VK_FROM_HANDLE(buffer, buf, dstBuffer);
	struct mdgpu_submission *s;

	if (!buf || !buf->memory || dataSize > MDGPU_UPDATE_MAX_BYTES) {
		cb_fail(cb, VK_ERROR_UNKNOWN, "update of a buffer without memory, or over 64 KiB");
		return;
	}
	if (!dataSize)
		return;
	s = cb_chunk(cb, MDGPU_CMD_UPDATE_SIZE + mdgpu_vk_align(dataSize, MDGPU_CMD_ALIGN));
	if (s)
		cb_check(cb,
			 mdgpu_sub_update(s, buf->memory->bo.handle, buf->offset + dstOffset, pData,
					  (uint32_t)dataSize),
			 "update");
}

/* ---- synchronisation ---- */

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdPipelineBarrier(
	VkCommandBuffer commandBuffer, VkPipelineStageFlags srcStageMask,
	VkPipelineStageFlags dstStageMask, VkDependencyFlags dependencyFlags,
	uint32_t memoryBarrierCount, const VkMemoryBarrier *pMemoryBarriers,
	uint32_t bufferMemoryBarrierCount, const VkBufferMemoryBarrier *pBufferMemoryBarriers,
	uint32_t imageMemoryBarrierCount, const VkImageMemoryBarrier *pImageMemoryBarriers)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);

	cb_barrier(cb);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdPipelineBarrier2(VkCommandBuffer commandBuffer,
						     const VkDependencyInfo *pDependencyInfo)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);

	cb_barrier(cb);
}

/* An event's word: FENCE writes it after everything before it completed. */
static void set_event(struct mdgpu_vk_command_buffer *cb, VkEvent event, uint64_t value)
{
	MDGPU_VK_FROM_HANDLE(event, ev, event);
	struct mdgpu_submission *s = cb_chunk(cb, MDGPU_CMD_FENCE_SIZE);

	if (s)
		cb_check(cb, mdgpu_sub_fence(s, ev->slot.handle, ev->slot.offset, value, 0),
			 "event");
}

static void wait_events(struct mdgpu_vk_command_buffer *cb, uint32_t count, const VkEvent *events)
{
	for (uint32_t i = 0; i < count; i++) {
		MDGPU_VK_FROM_HANDLE(event, ev, events[i]);
		struct mdgpu_submission *s = cb_chunk(cb, MDGPU_CMD_WAIT_SIZE);

		/* The device bounds the wait (10 s): an event nobody sets fails the batch. */
		if (s)
			cb_check(cb, mdgpu_sub_wait(s, ev->slot.handle, ev->slot.offset, 1, 0),
				 "wait event");
	}
	cb_barrier(cb);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetEvent(VkCommandBuffer commandBuffer, VkEvent event,
					     VkPipelineStageFlags stageMask)
{
	set_event((void *)commandBuffer, event, 1);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetEvent2(VkCommandBuffer commandBuffer, VkEvent event,
					      const VkDependencyInfo *pDependencyInfo)
{
	set_event((void *)commandBuffer, event, 1);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdResetEvent(VkCommandBuffer commandBuffer, VkEvent event,
					       VkPipelineStageFlags stageMask)
{
	set_event((void *)commandBuffer, event, 0);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdResetEvent2(VkCommandBuffer commandBuffer, VkEvent event,
						VkPipelineStageFlags2 stageMask)
{
	set_event((void *)commandBuffer, event, 0);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdWaitEvents(
	VkCommandBuffer commandBuffer, uint32_t eventCount, const VkEvent *pEvents,
	VkPipelineStageFlags srcStageMask, VkPipelineStageFlags dstStageMask,
	uint32_t memoryBarrierCount, const VkMemoryBarrier *pMemoryBarriers,
	uint32_t bufferMemoryBarrierCount, const VkBufferMemoryBarrier *pBufferMemoryBarriers,
	uint32_t imageMemoryBarrierCount, const VkImageMemoryBarrier *pImageMemoryBarriers)
{
	wait_events((void *)commandBuffer, eventCount, pEvents);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdWaitEvents2(VkCommandBuffer commandBuffer, uint32_t eventCount,
						const VkEvent *pEvents,
						const VkDependencyInfo *pDependencyInfos)
{
	wait_events((void *)commandBuffer, eventCount, pEvents);
}

/* ---- queries ---- */

static void write_timestamp(struct mdgpu_vk_command_buffer *cb, bool top,
			    struct mdgpu_vk_query_pool *pool, uint32_t query)
{
	uint64_t at = (uint64_t)query * MDGPU_VK_QUERY_STRIDE;
	struct mdgpu_submission *s;

	if (query >= pool->count) {
		cb_fail(cb, VK_ERROR_UNKNOWN, "timestamp past the pool");
		return;
	}
	/* Anything but the top of the pipe: once the work before it has finished. */
	if (!top)
		cb_barrier(cb);
	s = cb_chunk(cb, MDGPU_CMD_TIMESTAMP_SIZE + MDGPU_CMD_FENCE_SIZE);
	if (!s)
		return;
	cb_check(cb, mdgpu_sub_timestamp(s, pool->bo.handle, at), "timestamp");
	cb_check(cb, mdgpu_sub_fence(s, pool->bo.handle, at + 8, 1, 0), "timestamp availability");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdWriteTimestamp(VkCommandBuffer commandBuffer,
						   VkPipelineStageFlagBits pipelineStage,
						   VkQueryPool queryPool, uint32_t query)
{
	write_timestamp((void *)commandBuffer, pipelineStage == VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT,
			(void *)(uintptr_t)queryPool, query);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdWriteTimestamp2(VkCommandBuffer commandBuffer,
						    VkPipelineStageFlags2 stage,
						    VkQueryPool queryPool, uint32_t query)
{
	write_timestamp((void *)commandBuffer,
			stage == VK_PIPELINE_STAGE_2_TOP_OF_PIPE_BIT ||
				stage == VK_PIPELINE_STAGE_2_NONE,
			(void *)(uintptr_t)queryPool, query);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdResetQueryPool(VkCommandBuffer commandBuffer,
						   VkQueryPool queryPool, uint32_t firstQuery,
						   uint32_t queryCount)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);
	MDGPU_VK_FROM_HANDLE(query_pool, pool, queryPool);
	struct mdgpu_submission *s;

	if (!queryCount)
		return;
	if (firstQuery >= pool->count || queryCount > pool->count - firstQuery) {
		cb_fail(cb, VK_ERROR_UNKNOWN, "query reset past the pool");
		return;
	}
	s = cb_chunk(cb, MDGPU_CMD_FILL_SIZE);
	if (s)
		cb_check(cb,
			 mdgpu_sub_fill(s, pool->bo.handle,
					(uint64_t)firstQuery * MDGPU_VK_QUERY_STRIDE,
					(uint64_t)queryCount * MDGPU_VK_QUERY_STRIDE, 0),
			 "query reset");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdCopyQueryPoolResults(VkCommandBuffer commandBuffer,
							 VkQueryPool queryPool, uint32_t firstQuery,
							 uint32_t queryCount, VkBuffer dstBuffer,
							 VkDeviceSize dstOffset,
							 VkDeviceSize stride,
							 VkQueryResultFlags flags)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);
	MDGPU_VK_FROM_HANDLE(query_pool, pool, queryPool);
	MDGPU_VK_FROM_HANDLE(buffer, dst, dstBuffer);
	uint64_t size = flags & VK_QUERY_RESULT_64_BIT ? 8 : 4;

	if (!dst || !dst->memory || firstQuery >= pool->count ||
	    queryCount > pool->count - firstQuery) {
		cb_fail(cb, VK_ERROR_UNKNOWN,
			"query copy past the pool or to a buffer without memory");
		return;
	}
	if (flags & VK_QUERY_RESULT_WAIT_BIT)
		for (uint32_t i = 0; i < queryCount; i++) {
			uint64_t at = (uint64_t)(firstQuery + i) * MDGPU_VK_QUERY_STRIDE;
			struct mdgpu_submission *s = cb_chunk(cb, MDGPU_CMD_WAIT_SIZE);

			if (s)
				cb_check(cb, mdgpu_sub_wait(s, pool->bo.handle, at + 8, 1, 0),
					 "query wait");
		}
	cb_barrier(cb);
	for (uint32_t i = 0; i < queryCount; i++) {
		uint64_t at = (uint64_t)(firstQuery + i) * MDGPU_VK_QUERY_STRIDE;
		uint64_t to = dst->offset + dstOffset + i * stride;
		struct mdgpu_submission *s = cb_chunk(cb, 2 * MDGPU_CMD_COPY_SIZE);

		if (!s)
			return;
		/* Little-endian: a 32-bit result is the value's low half. */
		cb_check(cb,
			 mdgpu_sub_copy(s, pool->bo.handle, at, dst->memory->bo.handle, to, size),
			 "query copy");
		if (flags & VK_QUERY_RESULT_WITH_AVAILABILITY_BIT)
			cb_check(cb,
				 mdgpu_sub_copy(s, pool->bo.handle, at + 8, dst->memory->bo.handle,
						to + size, size),
				 "query availability copy");
	}
}

/* ---- secondary command buffers ---- */

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdExecuteCommands(VkCommandBuffer commandBuffer,
						    uint32_t commandBufferCount,
						    const VkCommandBuffer *pCommandBuffers)
{
	MDGPU_VK_FROM_HANDLE(command_buffer, cb, commandBuffer);

	for (uint32_t i = 0; i < commandBufferCount; i++) {
		struct mdgpu_vk_command_buffer *sec = (void *)pCommandBuffers[i];

		if (sec->record_result != VK_SUCCESS) {
			cb_fail(cb, sec->record_result, "a secondary command buffer failed");
			return;
		}
		for (uint32_t c = 0; c < sec->chunk_count; c++) {
			const struct mdgpu_submission *chunk = &sec->chunks[c];
			struct mdgpu_submission *s =
				cb_chunk_n(cb, chunk->len - MDGPU_CMD_SUBMIT_SIZE, chunk->commands);

			if (!s)
				return;
			cb_check(cb, mdgpu_sub_append(s, chunk), "secondary command buffer");
		}
	}
	cb->last_was_barrier = false;
}
