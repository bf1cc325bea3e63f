// SPDX-License-Identifier: MIT
/*
 * libvulkan_mdgpu: fences, semaphores and events, and the host's waits for them.
 *
 * Everything the device and the host synchronise on is a u64 word ("slot") in a slot buffer of
 * the device context, mapped into the process: the queue's timeline (SUBMIT's completion fence),
 * semaphores (binary ones count their signal operations) and events (0 reset, 1 set). The device
 * writes them with FENCE commands and waits for them with WAIT commands; the host stores them
 * and waits with MDGPU_IOCTL_WAIT_FENCE, which sleeps until the FENCE or ERROR interrupt (or the
 * driver's short poll, for words the host itself stores). None of this traps to the device.
 *
 * A VkFence is the queue timeline value of the batch it was submitted with. No wait hangs: a
 * failed submission (the device's error record) makes the device lost, and a wait for work the
 * queue holds gives up with VK_ERROR_DEVICE_LOST if the queue made no progress for a minute.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mdgpu_vk.h"
#include "mdgpu_vk_entry.h"

/* ---- slots ---- */

static VkResult slot_pool_new(struct mdgpu_vk_device *dev, struct mdgpu_vk_slot_pool **out)
{
	struct mdgpu_vk_slot_pool *pool = calloc(1, sizeof(*pool));
	int ret;

	if (!pool)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	/* Write-back: the host polls these words. */
	ret = mdgpu_bo_create(dev->mdgpu, MDGPU_VK_SLOTS_PER_POOL * sizeof(uint64_t), 0,
			      MDGPU_BO_CACHED, &pool->bo);
	if (!ret) {
		ret = mdgpu_bo_map(dev->mdgpu, &pool->bo);
		if (ret)
			mdgpu_bo_destroy(dev->mdgpu, &pool->bo);
	}
	if (ret) {
		free(pool);
		return mdgpu_vk_result(ret);
	}
	*out = pool;
	return VK_SUCCESS;
}

VkResult mdgpu_vk_slot_alloc(struct mdgpu_vk_device *dev, struct mdgpu_vk_slot *slot)
{
	struct mdgpu_vk_slot_pool *pool;
	VkResult result = VK_SUCCESS;
	uint32_t index;

	pthread_mutex_lock(&dev->slot_lock);
	for (pool = dev->slot_pools; pool; pool = pool->next)
		if (pool->free_count || pool->used < MDGPU_VK_SLOTS_PER_POOL)
			break;
	if (!pool) {
		result = slot_pool_new(dev, &pool);
		if (result == VK_SUCCESS) {
			pool->next = dev->slot_pools;
			dev->slot_pools = pool;
		}
	}
	if (result == VK_SUCCESS) {
		index = pool->free_count ? pool->free_list[--pool->free_count] : pool->used++;
		slot->pool = pool;
		slot->handle = pool->bo.handle;
		slot->index = index;
		slot->offset = (uint64_t)index * sizeof(uint64_t);
		slot->ptr = (uint64_t *)pool->bo.map + index;
		mdgpu_vk_slot_write(slot, 0);
	}
	pthread_mutex_unlock(&dev->slot_lock);
	return result;
}

void mdgpu_vk_slot_free(struct mdgpu_vk_device *dev, struct mdgpu_vk_slot *slot)
{
	if (!slot->pool)
		return;
	pthread_mutex_lock(&dev->slot_lock);
	slot->pool->free_list[slot->pool->free_count++] = slot->index;
	pthread_mutex_unlock(&dev->slot_lock);
	slot->pool = NULL;
}

void mdgpu_vk_slot_pools_destroy(struct mdgpu_vk_device *dev)
{
	struct mdgpu_vk_slot_pool *pool, *next;

	for (pool = dev->slot_pools; pool; pool = next) {
		next = pool->next;
		mdgpu_bo_unmap(&pool->bo);
		mdgpu_bo_destroy(dev->mdgpu, &pool->bo);
		free(pool);
	}
	dev->slot_pools = NULL;
}

/* ---- waiting ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool wait_done(struct mdgpu_vk_device *dev, const struct mdgpu_vk_wait *w)
{
	uint64_t v;

	if (w->done)
		return true;
	v = mdgpu_vk_slot_read(w->slot);
	/* The queue timeline carries an error fence's bit 63; the device is lost then anyway. */
	if (w->slot == &dev->queue.timeline)
		v &= ~MDGPU_FENCE_ERROR;
	return v >= w->value;
}

#define SPIN_NS 20000ull
#define SLICE_NS 100000000ull
#define ANY_SLICE_NS 2000000ull

VkResult mdgpu_vk_wait_many(struct mdgpu_vk_device *dev, struct mdgpu_vk_wait *waits, uint32_t n,
			    bool all, uint64_t timeout_ns)
{
	uint64_t start = now_ns(), now = start, deadline, still_since = start;
	uint64_t progress = dev->queue.q ? mdgpu_vk_queue_progress(&dev->queue) : 0;

	deadline = timeout_ns > UINT64_MAX - start ? UINT64_MAX : start + timeout_ns;
	for (;;) {
		const struct mdgpu_vk_wait *pending = NULL;
		bool any_done = false, watched = false;

		for (uint32_t i = 0; i < n; i++) {
			if (wait_done(dev, &waits[i])) {
				any_done = true;
			} else {
				if (!pending)
					pending = &waits[i];
				watched |= waits[i].submitted;
			}
		}
		if (!pending || (!all && any_done))
			return VK_SUCCESS;
		if (mdgpu_vk_device_check_lost(dev))
			return VK_ERROR_DEVICE_LOST;
		now = now_ns();
		if (now >= deadline)
			return VK_TIMEOUT;
		/* Work the queue holds: a device that makes no progress at all has stopped. */
		if (watched) {
			uint64_t p = mdgpu_vk_queue_progress(&dev->queue);

			if (p != progress) {
				progress = p;
				still_since = now;
			} else if (now - still_since > MDGPU_VK_WATCHDOG_NS) {
				mdgpu_vk_device_set_lost(dev,
							 "the queue made no progress for a minute");
				return VK_ERROR_DEVICE_LOST;
			}
		} else {
			still_since = now;
		}
		if (now - start < SPIN_NS) {
#if defined(__x86_64__) || defined(__i386__)
			__builtin_ia32_pause();
#endif
			continue;
		}
		uint64_t slice = deadline - now < SLICE_NS ? deadline - now : SLICE_NS;

		if (!all && n > 1 && slice > ANY_SLICE_NS)
			slice = ANY_SLICE_NS;
		if (pending->value & MDGPU_FENCE_ERROR) {
			/* The driver's wait cannot take such a value: poll. */
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);
			continue;
		}
		/* Submissions without a VkFence do not interrupt: ask for one on the way. */
		if (pending->slot == &dev->queue.timeline && dev->queue.q) {
			VkResult r = mdgpu_vk_queue_want_irq(&dev->queue, pending->value);

			if (r != VK_SUCCESS)
				return r;
		}
		/*
		 * Sleeps until the FENCE or ERROR interrupt, or the driver's poll of fences stored
		 * by the host (fence_poll_ms): host signals from other threads are seen that way.
		 */
		int ret =
			mdgpu_fence_wait_kernel(dev->mdgpu, pending->slot->handle,
						pending->slot->offset, pending->value, slice, NULL);
		if (ret && ret != -ETIME && ret != -EIO && ret != -EINTR) {
			mdgpu_vk_device_set_lost(dev, mdgpu_strerror(ret));
			return VK_ERROR_DEVICE_LOST;
		}
	}
}

/* ---- fences ---- */

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateFence(VkDevice device,
						 const VkFenceCreateInfo *pCreateInfo,
						 const VkAllocationCallbacks *pAllocator,
						 VkFence *pFence)
{
	struct mdgpu_vk_fence *f = calloc(1, sizeof(*f));

	if (!f)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	f->signaled = pCreateInfo->flags & VK_FENCE_CREATE_SIGNALED_BIT;
	*pFence = MDGPU_VK_TO_HANDLE(VkFence, f);
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyFence(VkDevice device, VkFence fence,
					      const VkAllocationCallbacks *pAllocator)
{
	free((void *)(uintptr_t)fence);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_ResetFences(VkDevice device, uint32_t fenceCount,
						 const VkFence *pFences)
{
	for (uint32_t i = 0; i < fenceCount; i++) {
		MDGPU_VK_FROM_HANDLE(fence, f, pFences[i]);

		__atomic_store_n(&f->signaled, false, __ATOMIC_RELEASE);
		__atomic_store_n(&f->value, 0, __ATOMIC_RELEASE);
	}
	return VK_SUCCESS;
}

/* What waiting for fence @f means: done already, or the queue timeline reaching its value. */
static void fence_wait(struct mdgpu_vk_device *dev, struct mdgpu_vk_fence *f,
		       struct mdgpu_vk_wait *w)
{
	uint64_t value = __atomic_load_n(&f->value, __ATOMIC_ACQUIRE);

	w->slot = &dev->queue.timeline;
	w->done = __atomic_load_n(&f->signaled, __ATOMIC_ACQUIRE);
	/* Never submitted: nothing will signal it (the wait ends only by its timeout). */
	w->value = value ? value : UINT64_MAX;
	w->submitted = value != 0;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_GetFenceStatus(VkDevice device, VkFence fence)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(fence, f, fence);
	struct mdgpu_vk_wait w;

	if (mdgpu_vk_device_check_lost(dev))
		return VK_ERROR_DEVICE_LOST;
	fence_wait(dev, f, &w);
	return w.done || (w.submitted && wait_done(dev, &w)) ? VK_SUCCESS : VK_NOT_READY;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_WaitForFences(VkDevice device, uint32_t fenceCount,
						   const VkFence *pFences, VkBool32 waitAll,
						   uint64_t timeout)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	struct mdgpu_vk_wait stack[16], *waits = stack;
	VkResult result;

	if (fenceCount > 16) {
		waits = calloc(fenceCount, sizeof(*waits));
		if (!waits)
			return VK_ERROR_OUT_OF_HOST_MEMORY;
	}
	for (uint32_t i = 0; i < fenceCount; i++)
		fence_wait(dev, (struct mdgpu_vk_fence *)(uintptr_t)pFences[i], &waits[i]);
	result = mdgpu_vk_wait_many(dev, waits, fenceCount, waitAll, timeout);
	if (waits != stack)
		free(waits);
	return result;
}

/* ---- semaphores ---- */

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateSemaphore(VkDevice device,
						     const VkSemaphoreCreateInfo *pCreateInfo,
						     const VkAllocationCallbacks *pAllocator,
						     VkSemaphore *pSemaphore)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	const VkSemaphoreTypeCreateInfo *type = mdgpu_vk_find_struct(
		pCreateInfo->pNext, VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO);
	struct mdgpu_vk_semaphore *sem;
	VkResult result;

	if (mdgpu_vk_find_struct(pCreateInfo->pNext,
				 VK_STRUCTURE_TYPE_EXPORT_SEMAPHORE_CREATE_INFO))
		return VK_ERROR_INVALID_EXTERNAL_HANDLE;
	sem = calloc(1, sizeof(*sem));
	if (!sem)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	result = mdgpu_vk_slot_alloc(dev, &sem->slot);
	if (result != VK_SUCCESS) {
		free(sem);
		return result;
	}
	sem->kind = type && type->semaphoreType == VK_SEMAPHORE_TYPE_TIMELINE ?
			    MDGPU_VK_SEMAPHORE_TIMELINE :
			    MDGPU_VK_SEMAPHORE_BINARY;
	if (sem->kind == MDGPU_VK_SEMAPHORE_TIMELINE) {
		mdgpu_vk_slot_write(&sem->slot, type->initialValue);
		sem->submitted = type->initialValue;
	}
	*pSemaphore = MDGPU_VK_TO_HANDLE(VkSemaphore, sem);
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroySemaphore(VkDevice device, VkSemaphore semaphore,
						  const VkAllocationCallbacks *pAllocator)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(semaphore, sem, semaphore);

	if (!sem)
		return;
	mdgpu_vk_slot_free(dev, &sem->slot);
	free(sem);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_GetSemaphoreCounterValue(VkDevice device,
							      VkSemaphore semaphore,
							      uint64_t *pValue)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(semaphore, sem, semaphore);

	if (mdgpu_vk_device_check_lost(dev))
		return VK_ERROR_DEVICE_LOST;
	*pValue = mdgpu_vk_slot_read(&sem->slot);
	return VK_SUCCESS;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_SignalSemaphore(VkDevice device,
						     const VkSemaphoreSignalInfo *pSignalInfo)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(semaphore, sem, pSignalInfo->semaphore);
	uint64_t old = mdgpu_vk_slot_read(&sem->slot);

	if (mdgpu_vk_device_check_lost(dev))
		return VK_ERROR_DEVICE_LOST;
	/* Only ever forward, even if two threads signal at once. */
	while (old < pSignalInfo->value &&
	       !__atomic_compare_exchange_n(sem->slot.ptr, &old, pSignalInfo->value, false,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return VK_SUCCESS;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_WaitSemaphores(VkDevice device,
						    const VkSemaphoreWaitInfo *pWaitInfo,
						    uint64_t timeout)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	struct mdgpu_vk_wait stack[16], *waits = stack;
	uint32_t n = pWaitInfo->semaphoreCount;
	VkResult result;

	if (n > 16) {
		waits = calloc(n, sizeof(*waits));
		if (!waits)
			return VK_ERROR_OUT_OF_HOST_MEMORY;
	}
	for (uint32_t i = 0; i < n; i++) {
		MDGPU_VK_FROM_HANDLE(semaphore, sem, pWaitInfo->pSemaphores[i]);

		waits[i] = (struct mdgpu_vk_wait){
			.slot = &sem->slot,
			.value = pWaitInfo->pValues[i],
			.submitted = pWaitInfo->pValues[i] <=
				     __atomic_load_n(&sem->submitted, __ATOMIC_ACQUIRE),
		};
	}
	result = mdgpu_vk_wait_many(dev, waits, n, !(pWaitInfo->flags & VK_SEMAPHORE_WAIT_ANY_BIT),
				    timeout);
	if (waits != stack)
		free(waits);
	return result;
}

/* ---- events ---- */

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateEvent(VkDevice device,
						 const VkEventCreateInfo *pCreateInfo,
						 const VkAllocationCallbacks *pAllocator,
						 VkEvent *pEvent)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	struct mdgpu_vk_event *ev = calloc(1, sizeof(*ev));
	VkResult result;

	if (!ev)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	result = mdgpu_vk_slot_alloc(dev, &ev->slot);
	if (result != VK_SUCCESS) {
		free(ev);
		return result;
	}
	*pEvent = MDGPU_VK_TO_HANDLE(VkEvent, ev);
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyEvent(VkDevice device, VkEvent event,
					      const VkAllocationCallbacks *pAllocator)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(event, ev, event);

	if (!ev)
		return;
	mdgpu_vk_slot_free(dev, &ev->slot);
	free(ev);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_GetEventStatus(VkDevice device, VkEvent event)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	MDGPU_VK_FROM_HANDLE(event, ev, event);

	if (mdgpu_vk_device_check_lost(dev))
		return VK_ERROR_DEVICE_LOST;
	return mdgpu_vk_slot_read(&ev->slot) ? VK_EVENT_SET : VK_EVENT_RESET;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_SetEvent(VkDevice device, VkEvent event)
{
	MDGPU_VK_FROM_HANDLE(event, ev, event);

	mdgpu_vk_slot_write(&ev->slot, 1);
	return VK_SUCCESS;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_ResetEvent(VkDevice device, VkEvent event)
{
	MDGPU_VK_FROM_HANDLE(event, ev, event);

	mdgpu_vk_slot_write(&ev->slot, 0);
	return VK_SUCCESS;
}
