// SPDX-License-Identifier: MIT
/*
 * libvulkan_mdgpu: descriptor set layouts, pools, sets, their updates and update templates.
 * All of it is plain memory in the process: a set holds, per array element of each binding, the
 * buffer it names as (mdgpu buffer handle, absolute offset in it, range). Nothing reaches the
 * device until a dispatch is recorded: then the bound sets, with their dynamic offsets, are
 * resolved into the descriptor list of a DISPATCH2 (mdgpu_vk_cmd.c). Storage and uniform
 * buffers (dynamic too) are what mdgpu mediates; layouts may name other types, whose
 * descriptors are ignored (a kernel using them is refused by the device).
 */
#include <stdlib.h>
#include <string.h>

#include "mdgpu_vk.h"
#include "mdgpu_vk_entry.h"

static bool buffer_type(VkDescriptorType type)
{
	return type == VK_DESCRIPTOR_TYPE_STORAGE_BUFFER ||
	       type == VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER ||
	       type == VK_DESCRIPTOR_TYPE_STORAGE_BUFFER_DYNAMIC ||
	       type == VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER_DYNAMIC;
}

void mdgpu_vk_set_layout_ref(struct mdgpu_vk_set_layout *l)
{
	atomic_fetch_add(&l->refs, 1);
}

void mdgpu_vk_set_layout_unref(struct mdgpu_vk_set_layout *l)
{
	if (l && atomic_fetch_sub(&l->refs, 1) == 1)
		free(l);
}

const struct mdgpu_vk_set_binding *mdgpu_vk_set_layout_find(const struct mdgpu_vk_set_layout *l,
							    uint32_t binding)
{
	for (uint32_t i = 0; i < l->binding_count; i++)
		if (l->bindings[i].binding == binding)
			return &l->bindings[i];
	return NULL;
}

static int binding_order(const void *a, const void *b)
{
	const struct mdgpu_vk_set_binding *x = a, *y = b;

	return x->binding < y->binding ? -1 : x->binding > y->binding;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateDescriptorSetLayout(
	VkDevice device, const VkDescriptorSetLayoutCreateInfo *pCreateInfo,
	const VkAllocationCallbacks *pAllocator, VkDescriptorSetLayout *pSetLayout)
{
	uint32_t n = pCreateInfo->bindingCount, first = 0, dynamic = 0;
	struct mdgpu_vk_set_layout *l;

	if (pCreateInfo->flags & VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR)
		return VK_ERROR_FEATURE_NOT_PRESENT;
	l = calloc(1, sizeof(*l) + n * sizeof(l->bindings[0]));
	if (!l)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	atomic_init(&l->refs, 1);
	l->binding_count = n;
	for (uint32_t i = 0; i < n; i++) {
		const VkDescriptorSetLayoutBinding *b = &pCreateInfo->pBindings[i];

		l->bindings[i].binding = b->binding;
		l->bindings[i].type = b->descriptorType;
		/* Inline uniform blocks count bytes, not descriptors; they are not mediated. */
		l->bindings[i].count = buffer_type(b->descriptorType) ? b->descriptorCount : 0;
	}
	qsort(l->bindings, n, sizeof(l->bindings[0]), binding_order);
	for (uint32_t i = 0; i < n; i++) {
		l->bindings[i].first = first;
		l->bindings[i].dynamic_first = dynamic;
		first += l->bindings[i].count;
		if (mdgpu_vk_descriptor_dynamic(l->bindings[i].type))
			dynamic += l->bindings[i].count;
	}
	if (dynamic > MDGPU_VK_MAX_DYNAMIC) {
		free(l);
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	}
	l->descriptor_count = first;
	l->dynamic_count = dynamic;
	*pSetLayout = MDGPU_VK_TO_HANDLE(VkDescriptorSetLayout, l);
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL
mdgpu_DestroyDescriptorSetLayout(VkDevice device, VkDescriptorSetLayout descriptorSetLayout,
				 const VkAllocationCallbacks *pAllocator)
{
	mdgpu_vk_set_layout_unref((struct mdgpu_vk_set_layout *)(uintptr_t)descriptorSetLayout);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetDescriptorSetLayoutSupport(
	VkDevice device, const VkDescriptorSetLayoutCreateInfo *pCreateInfo,
	VkDescriptorSetLayoutSupport *pSupport)
{
	MDGPU_VK_FROM_HANDLE(device, dev, device);
	const struct mdgpu_caps *c = &dev->physical->caps;
	uint64_t storage = 0, uniform = 0, storage_dyn = 0, uniform_dyn = 0;
	bool ok = !(pCreateInfo->flags & VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR);

	for (uint32_t i = 0; i < pCreateInfo->bindingCount; i++) {
		const VkDescriptorSetLayoutBinding *b = &pCreateInfo->pBindings[i];

		switch (b->descriptorType) {
		case VK_DESCRIPTOR_TYPE_STORAGE_BUFFER_DYNAMIC:
			storage_dyn += b->descriptorCount;
			/* fallthrough */
		case VK_DESCRIPTOR_TYPE_STORAGE_BUFFER:
			storage += b->descriptorCount;
			break;
		case VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER_DYNAMIC:
			uniform_dyn += b->descriptorCount;
			/* fallthrough */
		case VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER:
			uniform += b->descriptorCount;
			break;
		default:
			ok = ok && b->descriptorCount == 0;
			break;
		}
	}
	ok = ok && storage <= c->max_descriptor_set_storage_buffers &&
	     uniform <= c->max_descriptor_set_uniform_buffers &&
	     storage_dyn <= MDGPU_VK_MAX_DYNAMIC_STORAGE &&
	     uniform_dyn <= MDGPU_VK_MAX_DYNAMIC_UNIFORM;
	pSupport->supported = ok;
	for (VkBaseOutStructure *s = pSupport->pNext; s; s = s->pNext)
		if (s->sType ==
		    VK_STRUCTURE_TYPE_DESCRIPTOR_SET_VARIABLE_DESCRIPTOR_COUNT_LAYOUT_SUPPORT)
			((VkDescriptorSetVariableDescriptorCountLayoutSupport *)s)
				->maxVariableDescriptorCount = 0;
}

/* ---- pools and sets ---- */

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateDescriptorPool(
	VkDevice device, const VkDescriptorPoolCreateInfo *pCreateInfo,
	const VkAllocationCallbacks *pAllocator, VkDescriptorPool *pDescriptorPool)
{
	struct mdgpu_vk_descriptor_pool *pool = calloc(1, sizeof(*pool));

	if (!pool)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	pool->flags = pCreateInfo->flags;
	pool->max_sets = pCreateInfo->maxSets;
	for (uint32_t i = 0; i < pCreateInfo->poolSizeCount; i++)
		if (buffer_type(pCreateInfo->pPoolSizes[i].type))
			pool->max_descriptors += pCreateInfo->pPoolSizes[i].descriptorCount;
	*pDescriptorPool = MDGPU_VK_TO_HANDLE(VkDescriptorPool, pool);
	return VK_SUCCESS;
}

static void set_free(struct mdgpu_vk_descriptor_set *set)
{
	struct mdgpu_vk_descriptor_pool *pool = set->pool;

	if (set->prev)
		set->prev->next = set->next;
	else
		pool->head = set->next;
	if (set->next)
		set->next->prev = set->prev;
	pool->sets--;
	pool->descriptors -= set->layout->descriptor_count;
	mdgpu_vk_set_layout_unref(set->layout);
	free(set);
}

static void pool_reset(struct mdgpu_vk_descriptor_pool *pool)
{
	while (pool->head)
		set_free(pool->head);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyDescriptorPool(VkDevice device,
						       VkDescriptorPool descriptorPool,
						       const VkAllocationCallbacks *pAllocator)
{
	MDGPU_VK_FROM_HANDLE(descriptor_pool, pool, descriptorPool);

	if (!pool)
		return;
	pool_reset(pool);
	free(pool);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_ResetDescriptorPool(VkDevice device,
							 VkDescriptorPool descriptorPool,
							 VkDescriptorPoolResetFlags flags)
{
	MDGPU_VK_FROM_HANDLE(descriptor_pool, pool, descriptorPool);

	pool_reset(pool);
	return VK_SUCCESS;
}

VKAPI_ATTR VkResult VKAPI_CALL
mdgpu_AllocateDescriptorSets(VkDevice device, const VkDescriptorSetAllocateInfo *pAllocateInfo,
			     VkDescriptorSet *pDescriptorSets)
{
	MDGPU_VK_FROM_HANDLE(descriptor_pool, pool, pAllocateInfo->descriptorPool);
	uint32_t i;

	for (i = 0; i < pAllocateInfo->descriptorSetCount; i++) {
		struct mdgpu_vk_set_layout *l = (void *)(uintptr_t)pAllocateInfo->pSetLayouts[i];
		struct mdgpu_vk_descriptor_set *set;

		if (pool->sets >= pool->max_sets ||
		    pool->descriptors + l->descriptor_count > pool->max_descriptors)
			goto err;
		set = calloc(1, sizeof(*set) + l->descriptor_count * sizeof(set->descriptors[0]));
		if (!set)
			goto err;
		set->pool = pool;
		set->layout = l;
		mdgpu_vk_set_layout_ref(l);
		set->next = pool->head;
		if (pool->head)
			pool->head->prev = set;
		pool->head = set;
		pool->sets++;
		pool->descriptors += l->descriptor_count;
		pDescriptorSets[i] = MDGPU_VK_TO_HANDLE(VkDescriptorSet, set);
	}
	return VK_SUCCESS;

err:
	/* All or nothing. */
	while (i--)
		set_free((struct mdgpu_vk_descriptor_set *)(uintptr_t)pDescriptorSets[i]);
	for (i = 0; i < pAllocateInfo->descriptorSetCount; i++)
		pDescriptorSets[i] = VK_NULL_HANDLE;
	return VK_ERROR_OUT_OF_POOL_MEMORY;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_FreeDescriptorSets(VkDevice device,
							VkDescriptorPool descriptorPool,
							uint32_t descriptorSetCount,
							const VkDescriptorSet *pDescriptorSets)
{
	for (uint32_t i = 0; i < descriptorSetCount; i++)
		if (pDescriptorSets[i])
			set_free((struct mdgpu_vk_descriptor_set *)(uintptr_t)pDescriptorSets[i]);
	return VK_SUCCESS;
}

/*
 * The descriptor @k places after (binding @binding, element @element) of a set: an update of
 * more descriptors than the binding has continues into the next bindings. NULL past the end.
 */
static struct mdgpu_vk_descriptor *locate(struct mdgpu_vk_descriptor_set *set, uint32_t binding,
					  uint32_t element, uint32_t k,
					  const struct mdgpu_vk_set_binding **out)
{
	const struct mdgpu_vk_set_layout *l = set->layout;
	uint32_t i = 0;
	uint64_t el = (uint64_t)element + k;

	while (i < l->binding_count && l->bindings[i].binding != binding)
		i++;
	while (i < l->binding_count && el >= l->bindings[i].count) {
		el -= l->bindings[i].count;
		i++;
	}
	if (i >= l->binding_count)
		return NULL;
	*out = &l->bindings[i];
	return &set->descriptors[l->bindings[i].first + el];
}

static void write_buffer(struct mdgpu_vk_descriptor *d, const VkDescriptorBufferInfo *info)
{
	struct mdgpu_vk_buffer *buf = (void *)(uintptr_t)info->buffer;

	if (!buf || !buf->memory) {
		d->valid = false;
		return;
	}
	d->handle = buf->memory->bo.handle;
	d->offset = buf->offset + info->offset;
	d->range = info->range == VK_WHOLE_SIZE ? buf->size - info->offset : info->range;
	d->valid = d->range > 0;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_UpdateDescriptorSets(VkDevice device,
						      uint32_t descriptorWriteCount,
						      const VkWriteDescriptorSet *pDescriptorWrites,
						      uint32_t descriptorCopyCount,
						      const VkCopyDescriptorSet *pDescriptorCopies)
{
	for (uint32_t i = 0; i < descriptorWriteCount; i++) {
		const VkWriteDescriptorSet *w = &pDescriptorWrites[i];
		struct mdgpu_vk_descriptor_set *set = (void *)(uintptr_t)w->dstSet;
		const struct mdgpu_vk_set_binding *b;

		if (!buffer_type(w->descriptorType) || !w->pBufferInfo)
			continue;
		for (uint32_t k = 0; k < w->descriptorCount; k++) {
			struct mdgpu_vk_descriptor *d =
				locate(set, w->dstBinding, w->dstArrayElement, k, &b);

			if (d)
				write_buffer(d, &w->pBufferInfo[k]);
		}
	}
	for (uint32_t i = 0; i < descriptorCopyCount; i++) {
		const VkCopyDescriptorSet *c = &pDescriptorCopies[i];
		struct mdgpu_vk_descriptor_set *src = (void *)(uintptr_t)c->srcSet;
		struct mdgpu_vk_descriptor_set *dst = (void *)(uintptr_t)c->dstSet;
		const struct mdgpu_vk_set_binding *b;

		for (uint32_t k = 0; k < c->descriptorCount; k++) {
			struct mdgpu_vk_descriptor *s =
				locate(src, c->srcBinding, c->srcArrayElement, k, &b);
			struct mdgpu_vk_descriptor *d =
				locate(dst, c->dstBinding, c->dstArrayElement, k, &b);

			if (s && d)
				*d = *s;
		}
	}
}

/* ---- update templates ---- */

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateDescriptorUpdateTemplate(
	VkDevice device, const VkDescriptorUpdateTemplateCreateInfo *pCreateInfo,
	const VkAllocationCallbacks *pAllocator,
	VkDescriptorUpdateTemplate *pDescriptorUpdateTemplate)
{
	struct mdgpu_vk_update_template *t;
	uint32_t n = pCreateInfo->descriptorUpdateEntryCount;

	/* Push descriptors are not offered (VK_KHR_push_descriptor). */
	if (pCreateInfo->templateType != VK_DESCRIPTOR_UPDATE_TEMPLATE_TYPE_DESCRIPTOR_SET)
		return VK_ERROR_FEATURE_NOT_PRESENT;
	t = calloc(1, sizeof(*t) + n * sizeof(t->entries[0]));
	if (!t)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	t->entry_count = n;
	memcpy(t->entries, pCreateInfo->pDescriptorUpdateEntries, n * sizeof(t->entries[0]));
	*pDescriptorUpdateTemplate = MDGPU_VK_TO_HANDLE(VkDescriptorUpdateTemplate, t);
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyDescriptorUpdateTemplate(
	VkDevice device, VkDescriptorUpdateTemplate descriptorUpdateTemplate,
	const VkAllocationCallbacks *pAllocator)
{
	free((void *)(uintptr_t)descriptorUpdateTemplate);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_UpdateDescriptorSetWithTemplate(
	VkDevice device, VkDescriptorSet descriptorSet,
	VkDescriptorUpdateTemplate descriptorUpdateTemplate, const void *pData)
{
	MDGPU_VK_FROM_HANDLE(descriptor_set, set, descriptorSet);
	MDGPU_VK_FROM_HANDLE(update_template, t, descriptorUpdateTemplate);
	const struct mdgpu_vk_set_binding *b;

	for (uint32_t i = 0; i < t->entry_count; i++) {
		const VkDescriptorUpdateTemplateEntry *e = &t->entries[i];

		if (!buffer_type(e->descriptorType))
			continue;
		for (uint32_t k = 0; k < e->descriptorCount; k++) {
			struct mdgpu_vk_descriptor *d =
				locate(set, e->dstBinding, e->dstArrayElement, k, &b);
			const VkDescriptorBufferInfo *info =
				(const void *)((const uint8_t *)pData + e->offset + k * e->stride);

			if (d)
				write_buffer(d, info);
		}
	}
}

/* ---- pipeline layouts ---- */

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreatePipelineLayout(
	VkDevice device, const VkPipelineLayoutCreateInfo *pCreateInfo,
	const VkAllocationCallbacks *pAllocator, VkPipelineLayout *pPipelineLayout)
{
	struct mdgpu_vk_pipeline_layout *pl;

	if (pCreateInfo->setLayoutCount > MDGPU_VK_MAX_SETS)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	pl = calloc(1, sizeof(*pl));
	if (!pl)
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	pl->set_count = pCreateInfo->setLayoutCount;
	for (uint32_t i = 0; i < pl->set_count; i++) {
		pl->sets[i] = (void *)(uintptr_t)pCreateInfo->pSetLayouts[i];
		if (pl->sets[i])
			mdgpu_vk_set_layout_ref(pl->sets[i]);
	}
	for (uint32_t i = 0; i < pCreateInfo->pushConstantRangeCount; i++) {
		const VkPushConstantRange *r = &pCreateInfo->pPushConstantRanges[i];

		if (r->offset + r->size > pl->push_size)
			pl->push_size = r->offset + r->size;
	}
	*pPipelineLayout = MDGPU_VK_TO_HANDLE(VkPipelineLayout, pl);
	return VK_SUCCESS;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyPipelineLayout(VkDevice device,
						       VkPipelineLayout pipelineLayout,
						       const VkAllocationCallbacks *pAllocator)
{
	MDGPU_VK_FROM_HANDLE(pipeline_layout, pl, pipelineLayout);

	if (!pl)
		return;
	for (uint32_t i = 0; i < pl->set_count; i++)
		mdgpu_vk_set_layout_unref(pl->sets[i]);
	free(pl);
}
