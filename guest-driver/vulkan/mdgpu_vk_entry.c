// SPDX-License-Identifier: MIT
/*
 * libvulkan_mdgpu: the loader interface (Vulkan-Loader's LoaderDriverInterface.md, interface
 * versions 5 to 7) and the entry point tables. The library exports only the vk_icd* functions
 * (mdgpu_vk.map); the loader finds everything else through vk_icdGetInstanceProcAddr.
 */
#include <string.h>

#include "mdgpu_vk.h"
#include "mdgpu_vk_entry.h"

/* Interface versions this driver speaks: 5 (apiVersion handling) to 7 (the current one). */
#define MDGPU_VK_LOADER_INTERFACE_MIN 5
#define MDGPU_VK_LOADER_INTERFACE_MAX 7

struct mdgpu_vk_entrypoint {
	const char *name;
	enum mdgpu_vk_level level;
	PFN_vkVoidFunction func;
};

#define MDGPU_VK_ENTRY(fn, lvl) { "vk" #fn, lvl, (PFN_vkVoidFunction)mdgpu_##fn },

static const struct mdgpu_vk_entrypoint entrypoints[] = { MDGPU_VK_ALL_ENTRYPOINTS(
	MDGPU_VK_ENTRY) };

#define MDGPU_VK_ALIAS(alias, core) { "vk" #alias, "vk" #core },

static const struct {
	const char *alias;
	const char *core;
} aliases[] = { MDGPU_VK_ALIASES(MDGPU_VK_ALIAS) };

static const struct mdgpu_vk_entrypoint *lookup(const char *name)
{
	if (!name || strncmp(name, "vk", 2))
		return NULL;
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (!strcmp(aliases[i].alias, name)) {
			name = aliases[i].core;
			break;
		}
	for (size_t i = 0; i < sizeof(entrypoints) / sizeof(entrypoints[0]); i++)
		if (!strcmp(entrypoints[i].name, name))
			return &entrypoints[i];
	return NULL;
}

MDGPU_VK_EXPORT VKAPI_ATTR VkResult VKAPI_CALL
vk_icdNegotiateLoaderICDInterfaceVersion(uint32_t *pSupportedVersion);
MDGPU_VK_EXPORT VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL
vk_icdGetInstanceProcAddr(VkInstance instance, const char *pName);
MDGPU_VK_EXPORT VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL
vk_icdGetPhysicalDeviceProcAddr(VkInstance instance, const char *pName);

VKAPI_ATTR VkResult VKAPI_CALL vk_icdNegotiateLoaderICDInterfaceVersion(uint32_t *pSupportedVersion)
{
	if (*pSupportedVersion < MDGPU_VK_LOADER_INTERFACE_MIN)
		return VK_ERROR_INCOMPATIBLE_DRIVER;
	if (*pSupportedVersion > MDGPU_VK_LOADER_INTERFACE_MAX)
		*pSupportedVersion = MDGPU_VK_LOADER_INTERFACE_MAX;
	return VK_SUCCESS;
}

VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL vk_icdGetInstanceProcAddr(VkInstance instance,
								   const char *pName)
{
	const struct mdgpu_vk_entrypoint *e;

	/* Interface 7: the other two vk_icd functions are found through this one too. */
	if (pName && !strcmp(pName, "vk_icdNegotiateLoaderICDInterfaceVersion"))
		return (PFN_vkVoidFunction)vk_icdNegotiateLoaderICDInterfaceVersion;
	if (pName && !strcmp(pName, "vk_icdGetPhysicalDeviceProcAddr"))
		return (PFN_vkVoidFunction)vk_icdGetPhysicalDeviceProcAddr;
	e = lookup(pName);
	if (!e)
		return NULL;
	/* Without an instance only the global functions (and vkGetInstanceProcAddr itself). */
	if (!instance && e->level != MDGPU_VK_GLOBAL && strcmp(e->name, "vkGetInstanceProcAddr"))
		return NULL;
	return e->func;
}

VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL vk_icdGetPhysicalDeviceProcAddr(VkInstance instance,
									 const char *pName)
{
	const struct mdgpu_vk_entrypoint *e = lookup(pName);

	return e && e->level == MDGPU_VK_PHYSICAL_DEVICE ? e->func : NULL;
}

VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL mdgpu_GetInstanceProcAddr(VkInstance instance,
								   const char *pName)
{
	return vk_icdGetInstanceProcAddr(instance, pName);
}

VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL mdgpu_GetDeviceProcAddr(VkDevice device, const char *pName)
{
	const struct mdgpu_vk_entrypoint *e = lookup(pName);

	/* Device-level functions only (Vulkan 1.3: NULL for instance-level names). */
	return e && e->level == MDGPU_VK_DEVICE ? e->func : NULL;
}
