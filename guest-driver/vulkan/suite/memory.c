/* SPDX-License-Identifier: MIT */
/*
 * vks-memory: memory types, mappings and the budget.
 *
 *   memory.coherent: a HOST_VISIBLE|HOST_COHERENT type: the CPU writes through a mapping, a
 *     shader transforms, the CPU reads the result; then unmap, map again at an offset, and the
 *     data is still there.
 *   memory.cached: the same through a HOST_CACHED type (the first one that is not the type
 *     memory.coherent used, if there is one), with vkFlushMappedMemoryRanges and
 *     vkInvalidateMappedMemoryRanges over ranges aligned to nonCoherentAtomSize (required when
 *     the type is not coherent, harmless when it is); skipped when no type is HOST_CACHED.
 *   memory.budget: VK_EXT_memory_budget: every heap has a budget, and the usage of the heap we
 *     allocate 64 MiB from does not go down (skipped without the extension).
 *
 * The memory types offered are printed (types=flags,flags,...): mdgpu's and lavapipe's differ.
 */
#include "vks.h"

#include "spv_twice_plus.inc"

#include <stdio.h>
#include <string.h>

#define N (256 * 1024)

static void flush_or_invalidate(struct vks *v, VkDeviceMemory mem, VkDeviceSize size, bool flush)
{
	VkDeviceSize atom = v->props.limits.nonCoherentAtomSize;
	const VkMappedMemoryRange range = {
		.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
		.memory = mem,
		.offset = 0,
		.size = (size + atom - 1) / atom * atom <= size ? size : VK_WHOLE_SIZE,
	};
	if (flush)
		VKS_CHECK(v, vkFlushMappedMemoryRanges(v->dev, 1, &range));
	else
		VKS_CHECK(v, vkInvalidateMappedMemoryRanges(v->dev, 1, &range));
}

/* CPU writes a, shader b = 2a + 3, CPU reads b; both buffers of memory type `type`. */
static void roundtrip(struct vks *v, const char *name, VkMemoryPropertyFlags props, bool sync)
{
	v->current = name;
	struct vks_buf a, b;
	vks_buf_create_typed(v, &a, N * 4, VKS_USAGE_ALL, props);
	vks_buf_create_typed(v, &b, N * 4, VKS_USAGE_ALL, props);
	uint32_t *pa = a.map;
	static uint32_t want[N];
	for (uint32_t i = 0; i < N; i++) {
		pa[i] = i * 2654435761u;
		want[i] = 2 * pa[i] + 3;
	}
	if (sync)
		flush_or_invalidate(v, a.mem, a.size, true);
	struct vks_pipe p;
	vks_pipe_create(v, &p, spv_twice_plus, sizeof(spv_twice_plus), 2, 8, NULL);
	vks_pipe_bind(v, &p, (struct vks_buf *[]){ &a, &b });
	const uint32_t push[2] = { N, 3 };
	VkCommandBuffer cmd = vks_cmd_begin(v);
	vks_timer_begin(v, cmd);
	vks_pipe_use(&p, cmd, push, sizeof(push));
	vkCmdDispatch(cmd, N / 64, 1, 1);
	vks_barrier(cmd);
	vks_timer_end(v, cmd);
	vks_cmd_submit_wait(v, cmd);
	if (sync)
		flush_or_invalidate(v, b.mem, b.size, false);
	double t0 = vks_now_ms();
	bool ok = vks_compare_u32(v, "b", b.map, want, N) == 0;
	double read_ms = vks_now_ms() - t0;
	uint64_t digest = vks_hash(VKS_HASH_INIT, b.map, N * 4);

	/* Map again at an offset: the same bytes. */
	vkUnmapMemory(v->dev, b.mem);
	b.map = NULL;
	void *at = NULL;
	VKS_CHECK(v, vkMapMemory(v->dev, b.mem, 4096, 8192, 0, &at));
	if (sync) {
		const VkMappedMemoryRange r = { VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE, NULL, b.mem,
						4096, 8192 };
		VKS_CHECK(v, vkInvalidateMappedMemoryRanges(v->dev, 1, &r));
	}
	if (memcmp(at, want + 1024, 8192)) {
		vks_note(v, "mapping at offset 4096 shows other bytes");
		ok = false;
	}
	vks_report(v, name, ok, digest, vks_timer_ms(v), "type=%u flags=0x%x read_ms=%.2f", b.type,
		   v->mem.memoryTypes[b.type].propertyFlags, read_ms);
	vks_pipe_destroy(v, &p);
	vks_buf_destroy(v, &a);
	vks_buf_destroy(v, &b);
}

static void budget(struct vks *v)
{
	v->current = "memory.budget";
	if (!v->budget) {
		vks_skip(v, "memory.budget", "VK_EXT_memory_budget");
		return;
	}
	VkPhysicalDeviceMemoryBudgetPropertiesEXT before = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT
	};
	VkPhysicalDeviceMemoryBudgetPropertiesEXT after = before;
	VkPhysicalDeviceMemoryProperties2 p = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2, .pNext = &before
	};
	vkGetPhysicalDeviceMemoryProperties2(v->phys, &p);
	struct vks_buf big;
	vks_buf_create(v, &big, 64 << 20, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT);
	uint32_t heap = v->mem.memoryTypes[big.type].heapIndex;
	p.pNext = &after;
	vkGetPhysicalDeviceMemoryProperties2(v->phys, &p);
	bool ok = after.heapUsage[heap] >= before.heapUsage[heap];
	char heaps[256] = "";
	size_t used = 0;
	for (uint32_t h = 0; h < v->mem.memoryHeapCount; h++) {
		if (after.heapBudget[h] == 0)
			ok = false;
		used += (size_t)snprintf(heaps + used, sizeof(heaps) - used, "%s%u:%llu/%llu/%llu",
					 h ? "," : "", h,
					 (unsigned long long)(after.heapUsage[h] >> 20),
					 (unsigned long long)(after.heapBudget[h] >> 20),
					 (unsigned long long)(v->mem.memoryHeaps[h].size >> 20));
		if (used >= sizeof(heaps))
			break;
	}
	if (!ok)
		vks_note(v, "heap %u usage %llu -> %llu, heaps %s", heap,
			 (unsigned long long)before.heapUsage[heap],
			 (unsigned long long)after.heapUsage[heap], heaps);
	/* Budgets are the machine's, not the result's: the digest only says it held. */
	uint32_t held = ok;
	vks_report(v, "memory.budget", ok, vks_hash(VKS_HASH_INIT, &held, 4), 0,
		   "heaps_mib_used/budget/size=%s grew_mib=%lld", heaps,
		   (long long)((after.heapUsage[heap] - before.heapUsage[heap]) >> 20));
	vks_buf_destroy(v, &big);
}

int main(int argc, char **argv)
{
	struct vks v;
	vks_init(&v, "vks-memory", argc, argv, VKS_WANT_BUDGET);
	char types[512] = "";
	size_t used = 0;
	for (uint32_t t = 0; t < v.mem.memoryTypeCount && used < sizeof(types); t++)
		used += (size_t)snprintf(types + used, sizeof(types) - used, "%s0x%x", t ? "," : "",
					 v.mem.memoryTypes[t].propertyFlags);
	printf("VKSUITE-MEMORY types=%s heaps=%u\n", types, v.mem.memoryHeapCount);
	roundtrip(&v, "memory.coherent", VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, false);
	/* A cached type other than the coherent one chosen above, if there is one. */
	int coherent = vks_memory_type(&v, ~0u, VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
	int cached = -1;
	for (uint32_t t = 0; t < v.mem.memoryTypeCount; t++) {
		VkMemoryPropertyFlags f = v.mem.memoryTypes[t].propertyFlags;
		if ((f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT) &&
		    (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) &&
		    (cached < 0 || (cached == coherent && (int)t != coherent)))
			cached = (int)t;
	}
	if (cached >= 0)
		roundtrip(&v, "memory.cached", v.mem.memoryTypes[cached].propertyFlags, true);
	else
		vks_skip(&v, "memory.cached", "host-cached");
	budget(&v);
	return vks_finish(&v);
}
