// SPDX-License-Identifier: MIT
/*
 * libvulkan_mdgpu: devices and the queue. A VkDevice is one open file of /dev/mdgpuN (a device
 * context); its one queue is an mdgpu queue whose ring lives in a buffer mapped into the
 * process. vkQueueSubmit writes each batch as mdgpu submissions into that ring and publishes them
 * with the notification protocol (libmdgpu's mdgpu_queue_write: no VM exit while the device is
 * busy): semaphore waits become WAIT commands at the front (left out when an earlier submission
 * of this queue signals the value: the queue runs in order), the command buffers' recorded
 * commands follow, semaphore signals become FENCE commands at the end, and SUBMIT's completion
 * fence writes the queue's timeline value, which fences and vkQueueWaitIdle wait for. A batch
 * larger than one submission (1 MiB, 4096 commands) is split; the device runs the parts in order.
 *
 * The device reports failed submissions in the queue's control block; the first one makes the
 * VkDevice lost (VK_ERROR_DEVICE_LOST from then on), as Vulkan wants of a device that stopped
 * executing correctly.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mdgpu_vk.h"
#include "mdgpu_vk_entry.h"

void mdgpu_vk_device_set_lost(struct mdgpu_vk_device *dev, const char *why)
{
	if (!atomic_exchange(&dev->lost, true))
		mdgpu_vk_debug("device lost: %s", why);
}

bool mdgpu_vk_device_check_lost(struct mdgpu_vk_device *dev)
{
	const volatile struct mdgpu_queue_control *ctl;

	if (atomic_load(&dev->lost))
		return true;
	if (!dev->queue.q)
		return false;
	ctl = mdgpu_queue_control(dev->queue.q);
	if (__atomic_load_n(&ctl->errors, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&ctl->state, __ATOMIC_ACQUIRE) == MDGPU_SUBMIT_BAD_RING) {
		uint32_t code = __atomic_load_n(&ctl->error_code, __ATOMIC_ACQUIRE);

		mdgpu_vk_debug("submission failed: %s at byte %u", mdgpu_submit_error_name(code),
			       __atomic_load_n(&ctl->error_at, __ATOMIC_ACQUIRE));
		mdgpu_vk_device_set_lost(dev, mdgpu_submit_error_name(code));
		return true;
	}
	return false;
}

uint64_t mdgpu_vk_queue_completed(struct mdgpu_vk_queue *queue)
{
	return mdgpu_vk_slot_read(&queue->timeline) & ~MDGPU_FENCE_ERROR;
}

uint64_t mdgpu_vk_queue_progress(struct mdgpu_vk_queue *queue)
{
	const volatile struct mdgpu_queue_control *ctl = mdgpu_queue_control(queue->q);

	return __atomic_load_n(&ctl->head, __ATOMIC_ACQUIRE) +
	       __atomic_load_n(&ctl->completed, __ATOMIC_ACQUIRE);
}

/* ---- private data (core 1.3): a small table per device ---- */

struct mdgpu_vk_private_entry {
	struct mdgpu_vk_private_entry *next;
	VkObjectType type;
	uint64_t object;
	VkPrivateDataSlot slot;
	uint64_t data;
};

struct mdgpu_vk_private_slot {
	int unused;
};

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreatePrivateDataSlot(
	VkDevice device, const VkPrivateDataSlotCreateInfo *pCreateInfo,
	const VkAllocationCallbacks *pAllocator, VkPrivateDataSlot *pPrivateDataSlot)
{
	struct mdgpu_vk_private_slot *slot = calloc(1, sizeof(*slot));

	if (!slot)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	*pPrivateDataSlot = MDGPU_VK_TO_HANDLE(VkPrivateDataSlot, slot);
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyPrivateDataSlot(VkDevice device,
							VkPrivateDataSlot privateDataSlot,
							const VkAllocationCallbacks *pAllocator)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	struct mdgpu_vk_private_entry **e, *gone;

	if (!privateDataSlot)
		return;
	pthread_mutex_lock(&dev->private_lock);
	for (e = &dev->private_data; *e;) {
		if ((*e)->slot == privateDataSlot) {
			gone = *e;
			*e = gone->next;
			free(gone);
		} else {
			e = &(*e)->next;
		}
	}
	pthread_mutex_unlock(&dev->private_lock);
	free((void *)(uintptr_t)privateDataSlot);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_SetPrivateData(VkDevice device, VkObjectType objectType,
						    uint64_t objectHandle,
						    VkPrivateDataSlot privateDataSlot,
						    uint64_t data)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	struct mdgpu_vk_private_entry *e;
	VkResult result = VK_SUCCESS;

	pthread_mutex_lock(&dev->private_lock);
	for (e = dev->private_data; e; e = e->next)
		if (e->slot == privateDataSlot && e->type == objectType &&
		    e->object == objectHandle)
			break;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (e) {
			e->type = objectType;
			e->object = objectHandle;
			e->slot = privateDataSlot;
			e->next = dev->private_data;
			dev->private_data = e;
		}
	}
	if (e)
		e->data = data;
	else
		result = VK_ERROR_OUT_OF_HOST_MEMORY;
	pthread_mutex_unlock(&dev->private_lock);
	return result;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetPrivateData(VkDevice device, VkObjectType objectType,
						uint64_t objectHandle,
						VkPrivateDataSlot privateDataSlot, uint64_t *pData)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	struct mdgpu_vk_private_entry *e;

	*pData = 0;
	pthread_mutex_lock(&dev->private_lock);
	for (e = dev->private_data; e; e = e->next)
		if (e->slot == privateDataSlot && e->type == objectType &&
		    e->object == objectHandle) {
			*pData = e->data;
			break;
		}
	pthread_mutex_unlock(&dev->private_lock);
}

/* ---- devices ---- */

static VkResult queue_init(struct mdgpu_vk_device *dev, const VkDeviceQueueCreateInfo *qci)
{
	struct mdgpu_vk_queue *queue = &dev->queue;
	float priority = qci && qci->pQueuePriorities ? qci->pQueuePriorities[0] : 1.0f;
	VkResult result;
	int ret;

	set_loader_magic_value(queue);
	queue->device = dev;
	queue->family = 0;
	queue->index = 0;
	queue->flags = qci ? qci->flags : 0;
	pthread_mutex_init(&queue->lock, NULL);
	mdgpu_sub_init(&queue->sub);
	result = mdgpu_vk_slot_alloc(dev, &queue->timeline);
	if (result != VK_SUCCESS)
		return result;
	mdgpu_vk_slot_write(&queue->timeline, 0);
	atomic_store(&queue->submitted, 0);
	atomic_store(&queue->irq_value, 0);
	/* Vulkan's priorities (0..1) on mdgpu's queue priorities 1 and 2 of 0..3. */
	ret = mdgpu_queue_create(dev->mdgpu, MDGPU_VK_RING_BYTES, priority >= 0.5f ? 2 : 1,
				 &queue->q);
	if (ret) {
		mdgpu_vk_debug("queue: %s", mdgpu_strerror(ret));
		return ret == -EMFILE ? VK_ERROR_INITIALIZATION_FAILED : mdgpu_vk_result(ret);
	}
	return VK_SUCCESS;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateDevice(VkPhysicalDevice physicalDevice,
						  const VkDeviceCreateInfo *pCreateInfo,
						  const VkAllocationCallbacks *pAllocator,
						  VkDevice *pDevice)
{
	MDGPU_VK_FROM_HANDLE(physical_device, pd, physicalDevice);
	const VkDeviceQueueCreateInfo *qci = NULL;
	const VkPhysicalDeviceFeatures2 *f2;
	struct mdgpu_vk_device *dev;
	VkResult result;
	int ret;

	for (uint32_t i = 0; i < pCreateInfo->queueCreateInfoCount; i++) {
		const VkDeviceQueueCreateInfo *q = &pCreateInfo->pQueueCreateInfos[i];

		if (q->queueFamilyIndex != 0 || q->queueCount > 1 || q->queueCount == 0 ||
		    (q->flags & VK_DEVICE_QUEUE_CREATE_PROTECTED_BIT))
			return VK_ERROR_INITIALIZATION_FAILED;
		qci = q;
	}
	for (uint32_t i = 0; i < pCreateInfo->enabledExtensionCount; i++)
		if (!mdgpu_vk_device_extension_supported(pd,
							 pCreateInfo->ppEnabledExtensionNames[i])) {
			mdgpu_vk_debug("vkCreateDevice: extension %s not offered",
				       pCreateInfo->ppEnabledExtensionNames[i]);
			return VK_ERROR_EXTENSION_NOT_PRESENT;
		}
	result = mdgpu_vk_check_features(pd, pCreateInfo);
	if (result != VK_SUCCESS)
		return result;

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	set_loader_magic_value(dev);
	dev->physical = pd;
	pthread_mutex_init(&dev->slot_lock, NULL);
	pthread_mutex_init(&dev->private_lock, NULL);
	for (uint32_t i = 0; i < pCreateInfo->enabledExtensionCount; i++)
		if (!strcmp(pCreateInfo->ppEnabledExtensionNames[i],
			    VK_EXT_MEMORY_BUDGET_EXTENSION_NAME))
			dev->budget_enabled = true;
	f2 = mdgpu_vk_find_struct(pCreateInfo->pNext, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2);
	if (pCreateInfo->pEnabledFeatures)
		dev->enabled = *pCreateInfo->pEnabledFeatures;
	else if (f2)
		dev->enabled = f2->features;

	/* One open file is one device context: everything this VkDevice makes belongs to it. */
	ret = mdgpu_open(pd->path, &dev->mdgpu);
	if (ret) {
		mdgpu_vk_debug("%s: %s", pd->path, mdgpu_strerror(ret));
		result =
			ret == -EMFILE ? VK_ERROR_TOO_MANY_OBJECTS : VK_ERROR_INITIALIZATION_FAILED;
		goto err_free;
	}
	result = queue_init(dev, qci);
	if (result != VK_SUCCESS)
		goto err_close;
	*pDevice = (VkDevice)dev;
	return VK_SUCCESS;

err_close:
	mdgpu_queue_destroy(dev->queue.q);
	mdgpu_vk_slot_pools_destroy(dev);
	mdgpu_close(dev->mdgpu);
err_free:
	mdgpu_sub_fini(&dev->queue.sub);
	free(dev);
	return result;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyDevice(VkDevice device,
					       const VkAllocationCallbacks *pAllocator)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	struct mdgpu_vk_private_entry *e, *next;

	if (!dev)
		return;
	/*
	 * Vulkan requires the device idle; a program that did not wait loses its work, which the
	 * device withdraws with the context (the file's close destroys the queue and its buffers).
	 */
	mdgpu_queue_destroy(dev->queue.q);
	mdgpu_sub_fini(&dev->queue.sub);
	pthread_mutex_destroy(&dev->queue.lock);
	mdgpu_vk_slot_pools_destroy(dev);
	mdgpu_close(dev->mdgpu);
	for (e = dev->private_data; e; e = next) {
		next = e->next;
		free(e);
	}
	pthread_mutex_destroy(&dev->private_lock);
	pthread_mutex_destroy(&dev->slot_lock);
	free(dev);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetDeviceQueue(VkDevice device, uint32_t queueFamilyIndex,
						uint32_t queueIndex, VkQueue *pQueue)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);

	*pQueue = queueFamilyIndex == 0 && queueIndex == 0 ? (VkQueue)&dev->queue : VK_NULL_HANDLE;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetDeviceQueue2(VkDevice device,
						 const VkDeviceQueueInfo2 *pQueueInfo,
						 VkQueue *pQueue)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);

	*pQueue = pQueueInfo->queueFamilyIndex == 0 && pQueueInfo->queueIndex == 0 &&
				  pQueueInfo->flags == dev->queue.flags ?
			  (VkQueue)&dev->queue :
			  VK_NULL_HANDLE;
}

/* ---- submission ---- */

struct submit_sem {
	struct mdgpu_vk_semaphore *sem;
	uint64_t value;
};

struct submit_batch {
	uint32_t wait_count, cmd_count, signal_count;
	struct submit_sem *waits, *signals;
	struct mdgpu_vk_command_buffer **cmds;
};

/*
 * Publish the submission being built; the next one gets the next timeline value. @irq asks for
 * the FENCE interrupt at its completion: only where someone may sleep on it (see
 * mdgpu_vk_queue_want_irq), because the guest driver's interrupt handler costs two trapped
 * register accesses (VM exits) per interrupt.
 */
static VkResult flush(struct mdgpu_vk_queue *queue, bool irq)
{
	uint64_t value = atomic_load(&queue->submitted) + 1;
	int ret;

	ret = mdgpu_sub_set_fence(&queue->sub, queue->timeline.handle, queue->timeline.offset,
				  value, irq ? MDGPU_CMD_FLAG_IRQ : 0);
	if (!ret)
		ret = mdgpu_queue_submit(queue->q, &queue->sub);
	if (ret) {
		mdgpu_vk_debug("vkQueueSubmit: %s", mdgpu_strerror(ret));
		mdgpu_vk_device_set_lost(queue->device, "the ring does not take submissions");
		return ret == -ENOMEM ? VK_ERROR_OUT_OF_HOST_MEMORY : VK_ERROR_DEVICE_LOST;
	}
	if (irq)
		atomic_store(&queue->irq_value, value);
	atomic_store(&queue->submitted, value);
	return VK_SUCCESS;
}

static VkResult begin(struct mdgpu_vk_queue *queue)
{
	int ret = mdgpu_sub_begin(&queue->sub, queue->timeline.handle, queue->timeline.offset,
				  atomic_load(&queue->submitted) + 1, 0);

	return ret ? VK_ERROR_OUT_OF_HOST_MEMORY : VK_SUCCESS;
}

/* Append a recorded chunk, publishing what is there first if it does not fit. */
static VkResult append(struct mdgpu_vk_queue *queue, const struct mdgpu_submission *chunk)
{
	VkResult result;
	int ret = mdgpu_sub_append(&queue->sub, chunk);

	if (ret != -E2BIG)
		return ret ? VK_ERROR_OUT_OF_HOST_MEMORY : VK_SUCCESS;
	result = flush(queue, false);
	if (result == VK_SUCCESS)
		result = begin(queue);
	if (result == VK_SUCCESS)
		ret = mdgpu_sub_append(&queue->sub, chunk);
	return result != VK_SUCCESS ? result : ret ? VK_ERROR_OUT_OF_HOST_MEMORY : VK_SUCCESS;
}

/* Commands that must precede or follow the batch's command buffers (waits, signals). */
static VkResult add_sync(struct mdgpu_vk_queue *queue, bool wait, const struct mdgpu_vk_slot *slot,
			 uint64_t value)
{
	int ret = wait ? mdgpu_sub_wait(&queue->sub, slot->handle, slot->offset, value, 0) :
			 mdgpu_sub_fence(&queue->sub, slot->handle, slot->offset, value,
					 MDGPU_CMD_FLAG_IRQ);

	if (ret == -E2BIG) {
		/* Over the size of one submission: the rest goes in the next one. */
		VkResult result = flush(queue, false);

		if (result == VK_SUCCESS)
			result = begin(queue);
		if (result != VK_SUCCESS)
			return result;
		return add_sync(queue, wait, slot, value);
	}
	return ret ? VK_ERROR_OUT_OF_HOST_MEMORY : VK_SUCCESS;
}

static VkResult submit_batch(struct mdgpu_vk_queue *queue, const struct submit_batch *b, bool irq)
{
	VkResult result = begin(queue);

	for (uint32_t i = 0; i < b->wait_count && result == VK_SUCCESS; i++) {
		struct mdgpu_vk_semaphore *sem = b->waits[i].sem;
		uint64_t value = sem->kind == MDGPU_VK_SEMAPHORE_BINARY ? sem->binary_signal :
									  b->waits[i].value;

		/*
		 * The queue runs in order: a value an earlier submission of it signals needs no
		 * WAIT. Only values the host (or nobody yet) signals do.
		 */
		if (value == 0 || value <= sem->submitted)
			continue;
		result = add_sync(queue, true, &sem->slot, value);
	}
	for (uint32_t i = 0; i < b->cmd_count && result == VK_SUCCESS; i++) {
		struct mdgpu_vk_command_buffer *cb = b->cmds[i];

		for (uint32_t c = 0; c < cb->chunk_count && result == VK_SUCCESS; c++)
			result = append(queue, &cb->chunks[c]);
	}
	for (uint32_t i = 0; i < b->signal_count && result == VK_SUCCESS; i++) {
		struct mdgpu_vk_semaphore *sem = b->signals[i].sem;
		uint64_t value = sem->kind == MDGPU_VK_SEMAPHORE_BINARY ? sem->binary_signal + 1 :
									  b->signals[i].value;

		if (sem->kind == MDGPU_VK_SEMAPHORE_BINARY)
			sem->binary_signal = value;
		result = add_sync(queue, false, &sem->slot, value);
		/* Host waits read it without the queue's lock. */
		if (result == VK_SUCCESS && value > sem->submitted)
			__atomic_store_n(&sem->submitted, value, __ATOMIC_RELEASE);
	}
	if (result == VK_SUCCESS)
		result = flush(queue, irq);
	return result;
}

static const struct submit_batch empty_batch;

static VkResult submit(struct mdgpu_vk_queue *queue, const struct submit_batch *batches,
		       uint32_t count, VkFence fence)
{
	MDGPU_VK_FROM_HANDLE(fence, f, fence);
	VkResult result = VK_SUCCESS;

	pthread_mutex_lock(&queue->lock);
	if (mdgpu_vk_device_check_lost(queue->device)) {
		pthread_mutex_unlock(&queue->lock);
		return VK_ERROR_DEVICE_LOST;
	}
	/* A fence with no batch still needs a point on the timeline: an empty submission. */
	if (count == 0 && f)
		result = submit_batch(queue, &empty_batch, true);
	/*
	 * The interrupt only where a VkFence will be waited for: batches submitted back to back
	 * without one cost no VM exit at all (a waiter on the queue asks for one when it sleeps).
	 */
	for (uint32_t i = 0; i < count && result == VK_SUCCESS; i++)
		result = submit_batch(queue, &batches[i], f && i == count - 1);
	if (result == VK_SUCCESS && f) {
		/* Other threads may be waiting for it already (they read it atomically). */
		__atomic_store_n(&f->value, atomic_load(&queue->submitted), __ATOMIC_RELEASE);
		__atomic_store_n(&f->signaled, false, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&queue->lock);
	return result;
}

VkResult mdgpu_vk_queue_want_irq(struct mdgpu_vk_queue *queue, uint64_t value)
{
	VkResult result = VK_SUCCESS;

	if (atomic_load(&queue->irq_value) >= value)
		return VK_SUCCESS;
	pthread_mutex_lock(&queue->lock);
	if (mdgpu_vk_device_check_lost(queue->device))
		result = VK_ERROR_DEVICE_LOST;
	/*
	 * An empty submission after @value that interrupts: the queue runs in order, so its
	 * completion wakes the waiter with @value reached too.
	 */
	else if (atomic_load(&queue->irq_value) < value && value <= atomic_load(&queue->submitted))
		result = submit_batch(queue, &empty_batch, true);
	pthread_mutex_unlock(&queue->lock);
	return result;
}

static void *scratch(void **pool, size_t *used, size_t cap, size_t bytes)
{
	void *p;

	bytes = mdgpu_vk_align(bytes, 16);
	if (*used + bytes > cap)
		return NULL;
	p = (uint8_t *)*pool + *used;
	*used += bytes;
	return p;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_QueueSubmit(VkQueue queue, uint32_t submitCount,
						 const VkSubmitInfo *pSubmits, VkFence fence)
{
	MDGPU_VK_FROM_HANDLE(queue, q, queue);
	size_t cap = submitCount * sizeof(struct submit_batch), used = 0;
	struct submit_batch *batches;
	VkResult result;
	void *pool;

	for (uint32_t i = 0; i < submitCount; i++)
		cap += 16 * 3 +
		       (pSubmits[i].waitSemaphoreCount + pSubmits[i].signalSemaphoreCount) *
			       sizeof(struct submit_sem) +
		       pSubmits[i].commandBufferCount * sizeof(void *);
	pool = malloc(cap + 16);
	if (!pool)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	batches = scratch(&pool, &used, cap + 16, submitCount * sizeof(*batches));
	for (uint32_t i = 0; i < submitCount; i++) {
		const VkSubmitInfo *s = &pSubmits[i];
		const VkTimelineSemaphoreSubmitInfo *tl = mdgpu_vk_find_struct(
			s->pNext, VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO);
		struct submit_batch *b = &batches[i];

		b->wait_count = s->waitSemaphoreCount;
		b->signal_count = s->signalSemaphoreCount;
		b->cmd_count = s->commandBufferCount;
		b->waits = scratch(&pool, &used, cap + 16, b->wait_count * sizeof(*b->waits));
		b->signals = scratch(&pool, &used, cap + 16, b->signal_count * sizeof(*b->signals));
		b->cmds = scratch(&pool, &used, cap + 16, b->cmd_count * sizeof(*b->cmds));
		for (uint32_t k = 0; k < b->wait_count; k++) {
			b->waits[k].sem = (void *)(uintptr_t)s->pWaitSemaphores[k];
			b->waits[k].value =
				tl && k < tl->waitSemaphoreValueCount && tl->pWaitSemaphoreValues ?
					tl->pWaitSemaphoreValues[k] :
					0;
		}
		for (uint32_t k = 0; k < b->signal_count; k++) {
			b->signals[k].sem = (void *)(uintptr_t)s->pSignalSemaphores[k];
			b->signals[k].value = tl && k < tl->signalSemaphoreValueCount &&
							      tl->pSignalSemaphoreValues ?
						      tl->pSignalSemaphoreValues[k] :
						      0;
		}
		for (uint32_t k = 0; k < b->cmd_count; k++)
			b->cmds[k] = (void *)s->pCommandBuffers[k];
	}
	result = submit(q, batches, submitCount, fence);
	free(pool);
	return result;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_QueueSubmit2(VkQueue queue, uint32_t submitCount,
						  const VkSubmitInfo2 *pSubmits, VkFence fence)
{
	MDGPU_VK_FROM_HANDLE(queue, q, queue);
	size_t cap = submitCount * sizeof(struct submit_batch), used = 0;
	struct submit_batch *batches;
	VkResult result;
	void *pool;

	for (uint32_t i = 0; i < submitCount; i++)
		cap += 16 * 3 +
		       (pSubmits[i].waitSemaphoreInfoCount + pSubmits[i].signalSemaphoreInfoCount) *
			       sizeof(struct submit_sem) +
		       pSubmits[i].commandBufferInfoCount * sizeof(void *);
	pool = malloc(cap + 16);
	if (!pool)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	batches = scratch(&pool, &used, cap + 16, submitCount * sizeof(*batches));
	for (uint32_t i = 0; i < submitCount; i++) {
		const VkSubmitInfo2 *s = &pSubmits[i];
		struct submit_batch *b = &batches[i];

		b->wait_count = s->waitSemaphoreInfoCount;
		b->signal_count = s->signalSemaphoreInfoCount;
		b->cmd_count = s->commandBufferInfoCount;
		b->waits = scratch(&pool, &used, cap + 16, b->wait_count * sizeof(*b->waits));
		b->signals = scratch(&pool, &used, cap + 16, b->signal_count * sizeof(*b->signals));
		b->cmds = scratch(&pool, &used, cap + 16, b->cmd_count * sizeof(*b->cmds));
		for (uint32_t k = 0; k < b->wait_count; k++) {
			b->waits[k].sem = (void *)(uintptr_t)s->pWaitSemaphoreInfos[k].semaphore;
			b->waits[k].value = s->pWaitSemaphoreInfos[k].value;
		}
		for (uint32_t k = 0; k < b->signal_count; k++) {
			b->signals[k].sem =
				(void *)(uintptr_t)s->pSignalSemaphoreInfos[k].semaphore;
			b->signals[k].value = s->pSignalSemaphoreInfos[k].value;
		}
		for (uint32_t k = 0; k < b->cmd_count; k++)
			b->cmds[k] = (void *)s->pCommandBufferInfos[k].commandBuffer;
	}
	result = submit(q, batches, submitCount, fence);
	free(pool);
	return result;
}

static VkResult queue_wait_idle(struct mdgpu_vk_queue *queue)
{
	struct mdgpu_vk_wait w = {
		.slot = &queue->timeline,
		.value = atomic_load(&queue->submitted),
		.submitted = true,
	};

	return mdgpu_vk_wait_many(queue->device, &w, 1, true, UINT64_MAX);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_QueueWaitIdle(VkQueue queue)
{
	MDGPU_VK_FROM_HANDLE(queue, q, queue);

	return queue_wait_idle(q);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_DeviceWaitIdle(VkDevice device)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);

	return queue_wait_idle(&dev->queue);
}
