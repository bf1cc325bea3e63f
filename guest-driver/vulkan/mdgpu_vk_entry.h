/* SPDX-License-Identifier: MIT */
/*
 * libvulkan_mdgpu: every entry point the driver implements, as one list (X-macro): its name and
 * the level the loader looks it up at, and the KHR/EXT names of the promoted ones. The list
 * declares the functions with the Khronos headers' own types, so a definition whose signature
 * differs from the API's does not compile.
 */
#ifndef MDGPU_VK_ENTRY_H
#define MDGPU_VK_ENTRY_H

#include <vulkan/vulkan.h>

enum mdgpu_vk_level {
	MDGPU_VK_GLOBAL, /* vkGetInstanceProcAddr(NULL, ...) */
	MDGPU_VK_INSTANCE,
	MDGPU_VK_PHYSICAL_DEVICE,
	MDGPU_VK_DEVICE,
};

/* vkCreateInstance and the other functions of no instance. */
#define MDGPU_VK_GLOBAL_ENTRYPOINTS(X)                           \
	X(CreateInstance, MDGPU_VK_GLOBAL)                       \
	X(EnumerateInstanceExtensionProperties, MDGPU_VK_GLOBAL) \
	X(EnumerateInstanceLayerProperties, MDGPU_VK_GLOBAL)     \
	X(EnumerateInstanceVersion, MDGPU_VK_GLOBAL)

#define MDGPU_VK_INSTANCE_ENTRYPOINTS(X)                    \
	X(DestroyInstance, MDGPU_VK_INSTANCE)               \
	X(EnumeratePhysicalDevices, MDGPU_VK_INSTANCE)      \
	X(EnumeratePhysicalDeviceGroups, MDGPU_VK_INSTANCE) \
	X(GetInstanceProcAddr, MDGPU_VK_INSTANCE)

#define MDGPU_VK_PHYSICAL_DEVICE_ENTRYPOINTS(X)                                    \
	X(GetPhysicalDeviceFeatures, MDGPU_VK_PHYSICAL_DEVICE)                     \
	X(GetPhysicalDeviceFeatures2, MDGPU_VK_PHYSICAL_DEVICE)                    \
	X(GetPhysicalDeviceProperties, MDGPU_VK_PHYSICAL_DEVICE)                   \
	X(GetPhysicalDeviceProperties2, MDGPU_VK_PHYSICAL_DEVICE)                  \
	X(GetPhysicalDeviceQueueFamilyProperties, MDGPU_VK_PHYSICAL_DEVICE)        \
	X(GetPhysicalDeviceQueueFamilyProperties2, MDGPU_VK_PHYSICAL_DEVICE)       \
	X(GetPhysicalDeviceMemoryProperties, MDGPU_VK_PHYSICAL_DEVICE)             \
	X(GetPhysicalDeviceMemoryProperties2, MDGPU_VK_PHYSICAL_DEVICE)            \
	X(GetPhysicalDeviceFormatProperties, MDGPU_VK_PHYSICAL_DEVICE)             \
	X(GetPhysicalDeviceFormatProperties2, MDGPU_VK_PHYSICAL_DEVICE)            \
	X(GetPhysicalDeviceImageFormatProperties, MDGPU_VK_PHYSICAL_DEVICE)        \
	X(GetPhysicalDeviceImageFormatProperties2, MDGPU_VK_PHYSICAL_DEVICE)       \
	X(GetPhysicalDeviceSparseImageFormatProperties, MDGPU_VK_PHYSICAL_DEVICE)  \
	X(GetPhysicalDeviceSparseImageFormatProperties2, MDGPU_VK_PHYSICAL_DEVICE) \
	X(GetPhysicalDeviceExternalBufferProperties, MDGPU_VK_PHYSICAL_DEVICE)     \
	X(GetPhysicalDeviceExternalFenceProperties, MDGPU_VK_PHYSICAL_DEVICE)      \
	X(GetPhysicalDeviceExternalSemaphoreProperties, MDGPU_VK_PHYSICAL_DEVICE)  \
	X(GetPhysicalDeviceToolProperties, MDGPU_VK_PHYSICAL_DEVICE)               \
	X(CreateDevice, MDGPU_VK_PHYSICAL_DEVICE)                                  \
	X(EnumerateDeviceExtensionProperties, MDGPU_VK_PHYSICAL_DEVICE)            \
	X(EnumerateDeviceLayerProperties, MDGPU_VK_PHYSICAL_DEVICE)

/* What a compute driver does (mdgpu_vk_{device,memory,sync,...}.c). */
#define MDGPU_VK_DEVICE_ENTRYPOINTS(X)                          \
	X(GetDeviceProcAddr, MDGPU_VK_DEVICE)                   \
	X(DestroyDevice, MDGPU_VK_DEVICE)                       \
	X(GetDeviceQueue, MDGPU_VK_DEVICE)                      \
	X(GetDeviceQueue2, MDGPU_VK_DEVICE)                     \
	X(QueueSubmit, MDGPU_VK_DEVICE)                         \
	X(QueueSubmit2, MDGPU_VK_DEVICE)                        \
	X(QueueWaitIdle, MDGPU_VK_DEVICE)                       \
	X(DeviceWaitIdle, MDGPU_VK_DEVICE)                      \
	X(AllocateMemory, MDGPU_VK_DEVICE)                      \
	X(FreeMemory, MDGPU_VK_DEVICE)                          \
	X(MapMemory, MDGPU_VK_DEVICE)                           \
	X(UnmapMemory, MDGPU_VK_DEVICE)                         \
	X(FlushMappedMemoryRanges, MDGPU_VK_DEVICE)             \
	X(InvalidateMappedMemoryRanges, MDGPU_VK_DEVICE)        \
	X(GetDeviceMemoryCommitment, MDGPU_VK_DEVICE)           \
	X(BindBufferMemory, MDGPU_VK_DEVICE)                    \
	X(BindBufferMemory2, MDGPU_VK_DEVICE)                   \
	X(GetBufferMemoryRequirements, MDGPU_VK_DEVICE)         \
	X(GetBufferMemoryRequirements2, MDGPU_VK_DEVICE)        \
	X(GetDeviceBufferMemoryRequirements, MDGPU_VK_DEVICE)   \
	X(CreateBuffer, MDGPU_VK_DEVICE)                        \
	X(DestroyBuffer, MDGPU_VK_DEVICE)                       \
	X(GetDeviceGroupPeerMemoryFeatures, MDGPU_VK_DEVICE)    \
	X(GetBufferDeviceAddress, MDGPU_VK_DEVICE)              \
	X(GetBufferOpaqueCaptureAddress, MDGPU_VK_DEVICE)       \
	X(GetDeviceMemoryOpaqueCaptureAddress, MDGPU_VK_DEVICE) \
	X(CreateFence, MDGPU_VK_DEVICE)                         \
	X(DestroyFence, MDGPU_VK_DEVICE)                        \
	X(ResetFences, MDGPU_VK_DEVICE)                         \
	X(GetFenceStatus, MDGPU_VK_DEVICE)                      \
	X(WaitForFences, MDGPU_VK_DEVICE)                       \
	X(CreateSemaphore, MDGPU_VK_DEVICE)                     \
	X(DestroySemaphore, MDGPU_VK_DEVICE)                    \
	X(GetSemaphoreCounterValue, MDGPU_VK_DEVICE)            \
	X(WaitSemaphores, MDGPU_VK_DEVICE)                      \
	X(SignalSemaphore, MDGPU_VK_DEVICE)                     \
	X(CreateEvent, MDGPU_VK_DEVICE)                         \
	X(DestroyEvent, MDGPU_VK_DEVICE)                        \
	X(GetEventStatus, MDGPU_VK_DEVICE)                      \
	X(SetEvent, MDGPU_VK_DEVICE)                            \
	X(ResetEvent, MDGPU_VK_DEVICE)                          \
	X(CreateQueryPool, MDGPU_VK_DEVICE)                     \
	X(DestroyQueryPool, MDGPU_VK_DEVICE)                    \
	X(GetQueryPoolResults, MDGPU_VK_DEVICE)                 \
	X(ResetQueryPool, MDGPU_VK_DEVICE)                      \
	X(CreateShaderModule, MDGPU_VK_DEVICE)                  \
	X(DestroyShaderModule, MDGPU_VK_DEVICE)                 \
	X(CreatePipelineCache, MDGPU_VK_DEVICE)                 \
	X(DestroyPipelineCache, MDGPU_VK_DEVICE)                \
	X(GetPipelineCacheData, MDGPU_VK_DEVICE)                \
	X(MergePipelineCaches, MDGPU_VK_DEVICE)                 \
	X(CreateComputePipelines, MDGPU_VK_DEVICE)              \
	X(DestroyPipeline, MDGPU_VK_DEVICE)                     \
	X(CreatePipelineLayout, MDGPU_VK_DEVICE)                \
	X(DestroyPipelineLayout, MDGPU_VK_DEVICE)               \
	X(CreateDescriptorSetLayout, MDGPU_VK_DEVICE)           \
	X(DestroyDescriptorSetLayout, MDGPU_VK_DEVICE)          \
	X(GetDescriptorSetLayoutSupport, MDGPU_VK_DEVICE)       \
	X(CreateDescriptorPool, MDGPU_VK_DEVICE)                \
	X(DestroyDescriptorPool, MDGPU_VK_DEVICE)               \
	X(ResetDescriptorPool, MDGPU_VK_DEVICE)                 \
	X(AllocateDescriptorSets, MDGPU_VK_DEVICE)              \
	X(FreeDescriptorSets, MDGPU_VK_DEVICE)                  \
	X(UpdateDescriptorSets, MDGPU_VK_DEVICE)                \
	X(CreateDescriptorUpdateTemplate, MDGPU_VK_DEVICE)      \
	X(DestroyDescriptorUpdateTemplate, MDGPU_VK_DEVICE)     \
	X(UpdateDescriptorSetWithTemplate, MDGPU_VK_DEVICE)     \
	X(CreateCommandPool, MDGPU_VK_DEVICE)                   \
	X(DestroyCommandPool, MDGPU_VK_DEVICE)                  \
	X(ResetCommandPool, MDGPU_VK_DEVICE)                    \
	X(TrimCommandPool, MDGPU_VK_DEVICE)                     \
	X(AllocateCommandBuffers, MDGPU_VK_DEVICE)              \
	X(FreeCommandBuffers, MDGPU_VK_DEVICE)                  \
	X(BeginCommandBuffer, MDGPU_VK_DEVICE)                  \
	X(EndCommandBuffer, MDGPU_VK_DEVICE)                    \
	X(ResetCommandBuffer, MDGPU_VK_DEVICE)                  \
	X(CmdBindPipeline, MDGPU_VK_DEVICE)                     \
	X(CmdBindDescriptorSets, MDGPU_VK_DEVICE)               \
	X(CmdPushConstants, MDGPU_VK_DEVICE)                    \
	X(CmdDispatch, MDGPU_VK_DEVICE)                         \
	X(CmdDispatchBase, MDGPU_VK_DEVICE)                     \
	X(CmdDispatchIndirect, MDGPU_VK_DEVICE)                 \
	X(CmdCopyBuffer, MDGPU_VK_DEVICE)                       \
	X(CmdCopyBuffer2, MDGPU_VK_DEVICE)                      \
	X(CmdUpdateBuffer, MDGPU_VK_DEVICE)                     \
	X(CmdFillBuffer, MDGPU_VK_DEVICE)                       \
	X(CmdPipelineBarrier, MDGPU_VK_DEVICE)                  \
	X(CmdPipelineBarrier2, MDGPU_VK_DEVICE)                 \
	X(CmdSetEvent, MDGPU_VK_DEVICE)                         \
	X(CmdSetEvent2, MDGPU_VK_DEVICE)                        \
	X(CmdResetEvent, MDGPU_VK_DEVICE)                       \
	X(CmdResetEvent2, MDGPU_VK_DEVICE)                      \
	X(CmdWaitEvents, MDGPU_VK_DEVICE)                       \
	X(CmdWaitEvents2, MDGPU_VK_DEVICE)                      \
	X(CmdWriteTimestamp, MDGPU_VK_DEVICE)                   \
	X(CmdWriteTimestamp2, MDGPU_VK_DEVICE)                  \
	X(CmdResetQueryPool, MDGPU_VK_DEVICE)                   \
	X(CmdCopyQueryPoolResults, MDGPU_VK_DEVICE)             \
	X(CmdExecuteCommands, MDGPU_VK_DEVICE)                  \
	X(CmdSetDeviceMask, MDGPU_VK_DEVICE)                    \
	X(CreatePrivateDataSlot, MDGPU_VK_DEVICE)               \
	X(DestroyPrivateDataSlot, MDGPU_VK_DEVICE)              \
	X(SetPrivateData, MDGPU_VK_DEVICE)                      \
	X(GetPrivateData, MDGPU_VK_DEVICE)

/* Graphics, images and sparse resources: they fail cleanly (mdgpu_vk_unsupported.c). */
#define MDGPU_VK_UNSUPPORTED_ENTRYPOINTS(X)                        \
	X(BindImageMemory, MDGPU_VK_DEVICE)                        \
	X(BindImageMemory2, MDGPU_VK_DEVICE)                       \
	X(GetImageMemoryRequirements, MDGPU_VK_DEVICE)             \
	X(GetImageMemoryRequirements2, MDGPU_VK_DEVICE)            \
	X(GetImageSparseMemoryRequirements, MDGPU_VK_DEVICE)       \
	X(GetImageSparseMemoryRequirements2, MDGPU_VK_DEVICE)      \
	X(GetDeviceImageMemoryRequirements, MDGPU_VK_DEVICE)       \
	X(GetDeviceImageSparseMemoryRequirements, MDGPU_VK_DEVICE) \
	X(QueueBindSparse, MDGPU_VK_DEVICE)                        \
	X(CreateBufferView, MDGPU_VK_DEVICE)                       \
	X(DestroyBufferView, MDGPU_VK_DEVICE)                      \
	X(CreateImage, MDGPU_VK_DEVICE)                            \
	X(DestroyImage, MDGPU_VK_DEVICE)                           \
	X(GetImageSubresourceLayout, MDGPU_VK_DEVICE)              \
	X(CreateImageView, MDGPU_VK_DEVICE)                        \
	X(DestroyImageView, MDGPU_VK_DEVICE)                       \
	X(CreateGraphicsPipelines, MDGPU_VK_DEVICE)                \
	X(CreateSampler, MDGPU_VK_DEVICE)                          \
	X(DestroySampler, MDGPU_VK_DEVICE)                         \
	X(CreateSamplerYcbcrConversion, MDGPU_VK_DEVICE)           \
	X(DestroySamplerYcbcrConversion, MDGPU_VK_DEVICE)          \
	X(CreateFramebuffer, MDGPU_VK_DEVICE)                      \
	X(DestroyFramebuffer, MDGPU_VK_DEVICE)                     \
	X(CreateRenderPass, MDGPU_VK_DEVICE)                       \
	X(CreateRenderPass2, MDGPU_VK_DEVICE)                      \
	X(DestroyRenderPass, MDGPU_VK_DEVICE)                      \
	X(GetRenderAreaGranularity, MDGPU_VK_DEVICE)               \
	X(CmdSetViewport, MDGPU_VK_DEVICE)                         \
	X(CmdSetScissor, MDGPU_VK_DEVICE)                          \
	X(CmdSetLineWidth, MDGPU_VK_DEVICE)                        \
	X(CmdSetDepthBias, MDGPU_VK_DEVICE)                        \
	X(CmdSetBlendConstants, MDGPU_VK_DEVICE)                   \
	X(CmdSetDepthBounds, MDGPU_VK_DEVICE)                      \
	X(CmdSetStencilCompareMask, MDGPU_VK_DEVICE)               \
	X(CmdSetStencilWriteMask, MDGPU_VK_DEVICE)                 \
	X(CmdSetStencilReference, MDGPU_VK_DEVICE)                 \
	X(CmdBindIndexBuffer, MDGPU_VK_DEVICE)                     \
	X(CmdBindVertexBuffers, MDGPU_VK_DEVICE)                   \
	X(CmdBindVertexBuffers2, MDGPU_VK_DEVICE)                  \
	X(CmdDraw, MDGPU_VK_DEVICE)                                \
	X(CmdDrawIndexed, MDGPU_VK_DEVICE)                         \
	X(CmdDrawIndirect, MDGPU_VK_DEVICE)                        \
	X(CmdDrawIndexedIndirect, MDGPU_VK_DEVICE)                 \
	X(CmdDrawIndirectCount, MDGPU_VK_DEVICE)                   \
	X(CmdDrawIndexedIndirectCount, MDGPU_VK_DEVICE)            \
	X(CmdCopyImage, MDGPU_VK_DEVICE)                           \
	X(CmdCopyImage2, MDGPU_VK_DEVICE)                          \
	X(CmdBlitImage, MDGPU_VK_DEVICE)                           \
	X(CmdBlitImage2, MDGPU_VK_DEVICE)                          \
	X(CmdCopyBufferToImage, MDGPU_VK_DEVICE)                   \
	X(CmdCopyBufferToImage2, MDGPU_VK_DEVICE)                  \
	X(CmdCopyImageToBuffer, MDGPU_VK_DEVICE)                   \
	X(CmdCopyImageToBuffer2, MDGPU_VK_DEVICE)                  \
	X(CmdResolveImage, MDGPU_VK_DEVICE)                        \
	X(CmdResolveImage2, MDGPU_VK_DEVICE)                       \
	X(CmdClearColorImage, MDGPU_VK_DEVICE)                     \
	X(CmdClearDepthStencilImage, MDGPU_VK_DEVICE)              \
	X(CmdClearAttachments, MDGPU_VK_DEVICE)                    \
	X(CmdBeginQuery, MDGPU_VK_DEVICE)                          \
	X(CmdEndQuery, MDGPU_VK_DEVICE)                            \
	X(CmdBeginRenderPass, MDGPU_VK_DEVICE)                     \
	X(CmdBeginRenderPass2, MDGPU_VK_DEVICE)                    \
	X(CmdNextSubpass, MDGPU_VK_DEVICE)                         \
	X(CmdNextSubpass2, MDGPU_VK_DEVICE)                        \
	X(CmdEndRenderPass, MDGPU_VK_DEVICE)                       \
	X(CmdEndRenderPass2, MDGPU_VK_DEVICE)                      \
	X(CmdBeginRendering, MDGPU_VK_DEVICE)                      \
	X(CmdEndRendering, MDGPU_VK_DEVICE)                        \
	X(CmdSetCullMode, MDGPU_VK_DEVICE)                         \
	X(CmdSetFrontFace, MDGPU_VK_DEVICE)                        \
	X(CmdSetPrimitiveTopology, MDGPU_VK_DEVICE)                \
	X(CmdSetViewportWithCount, MDGPU_VK_DEVICE)                \
	X(CmdSetScissorWithCount, MDGPU_VK_DEVICE)                 \
	X(CmdSetDepthTestEnable, MDGPU_VK_DEVICE)                  \
	X(CmdSetDepthWriteEnable, MDGPU_VK_DEVICE)                 \
	X(CmdSetDepthCompareOp, MDGPU_VK_DEVICE)                   \
	X(CmdSetDepthBoundsTestEnable, MDGPU_VK_DEVICE)            \
	X(CmdSetStencilTestEnable, MDGPU_VK_DEVICE)                \
	X(CmdSetStencilOp, MDGPU_VK_DEVICE)                        \
	X(CmdSetRasterizerDiscardEnable, MDGPU_VK_DEVICE)          \
	X(CmdSetDepthBiasEnable, MDGPU_VK_DEVICE)                  \
	X(CmdSetPrimitiveRestartEnable, MDGPU_VK_DEVICE)

/* Names of extensions the driver offers for functions it has under their core names. */
#define MDGPU_VK_ALIASES(X)                                                                        \
	X(GetPhysicalDeviceFeatures2KHR, GetPhysicalDeviceFeatures2)                               \
	X(GetPhysicalDeviceProperties2KHR, GetPhysicalDeviceProperties2)                           \
	X(GetPhysicalDeviceFormatProperties2KHR, GetPhysicalDeviceFormatProperties2)               \
	X(GetPhysicalDeviceImageFormatProperties2KHR, GetPhysicalDeviceImageFormatProperties2)     \
	X(GetPhysicalDeviceQueueFamilyProperties2KHR, GetPhysicalDeviceQueueFamilyProperties2)     \
	X(GetPhysicalDeviceMemoryProperties2KHR, GetPhysicalDeviceMemoryProperties2)               \
	X(GetPhysicalDeviceSparseImageFormatProperties2KHR,                                        \
	  GetPhysicalDeviceSparseImageFormatProperties2)                                           \
	X(GetPhysicalDeviceExternalBufferPropertiesKHR, GetPhysicalDeviceExternalBufferProperties) \
	X(GetPhysicalDeviceExternalFencePropertiesKHR, GetPhysicalDeviceExternalFenceProperties)   \
	X(GetPhysicalDeviceExternalSemaphorePropertiesKHR,                                         \
	  GetPhysicalDeviceExternalSemaphoreProperties)                                            \
	X(EnumeratePhysicalDeviceGroupsKHR, EnumeratePhysicalDeviceGroups)                         \
	X(BindBufferMemory2KHR, BindBufferMemory2)                                                 \
	X(BindImageMemory2KHR, BindImageMemory2)                                                   \
	X(CmdCopyBuffer2KHR, CmdCopyBuffer2)                                                       \
	X(CmdCopyImage2KHR, CmdCopyImage2)                                                         \
	X(CmdBlitImage2KHR, CmdBlitImage2)                                                         \
	X(CmdCopyBufferToImage2KHR, CmdCopyBufferToImage2)                                         \
	X(CmdCopyImageToBuffer2KHR, CmdCopyImageToBuffer2)                                         \
	X(CmdResolveImage2KHR, CmdResolveImage2)                                                   \
	X(CreateDescriptorUpdateTemplateKHR, CreateDescriptorUpdateTemplate)                       \
	X(DestroyDescriptorUpdateTemplateKHR, DestroyDescriptorUpdateTemplate)                     \
	X(UpdateDescriptorSetWithTemplateKHR, UpdateDescriptorSetWithTemplate)                     \
	X(GetDeviceGroupPeerMemoryFeaturesKHR, GetDeviceGroupPeerMemoryFeatures)                   \
	X(CmdSetDeviceMaskKHR, CmdSetDeviceMask)                                                   \
	X(CmdDispatchBaseKHR, CmdDispatchBase)                                                     \
	X(GetBufferMemoryRequirements2KHR, GetBufferMemoryRequirements2)                           \
	X(GetImageMemoryRequirements2KHR, GetImageMemoryRequirements2)                             \
	X(GetImageSparseMemoryRequirements2KHR, GetImageSparseMemoryRequirements2)                 \
	X(TrimCommandPoolKHR, TrimCommandPool)                                                     \
	X(GetDescriptorSetLayoutSupportKHR, GetDescriptorSetLayoutSupport)                         \
	X(GetDeviceBufferMemoryRequirementsKHR, GetDeviceBufferMemoryRequirements)                 \
	X(GetDeviceImageMemoryRequirementsKHR, GetDeviceImageMemoryRequirements)                   \
	X(GetDeviceImageSparseMemoryRequirementsKHR, GetDeviceImageSparseMemoryRequirements)       \
	X(CmdPipelineBarrier2KHR, CmdPipelineBarrier2)                                             \
	X(CmdSetEvent2KHR, CmdSetEvent2)                                                           \
	X(CmdResetEvent2KHR, CmdResetEvent2)                                                       \
	X(CmdWaitEvents2KHR, CmdWaitEvents2)                                                       \
	X(CmdWriteTimestamp2KHR, CmdWriteTimestamp2)                                               \
	X(QueueSubmit2KHR, QueueSubmit2)                                                           \
	X(GetSemaphoreCounterValueKHR, GetSemaphoreCounterValue)                                   \
	X(WaitSemaphoresKHR, WaitSemaphores)                                                       \
	X(SignalSemaphoreKHR, SignalSemaphore)                                                     \
	X(ResetQueryPoolEXT, ResetQueryPool)                                                       \
	X(CreatePrivateDataSlotEXT, CreatePrivateDataSlot)                                         \
	X(DestroyPrivateDataSlotEXT, DestroyPrivateDataSlot)                                       \
	X(SetPrivateDataEXT, SetPrivateData)                                                       \
	X(GetPrivateDataEXT, GetPrivateData)

#define MDGPU_VK_ALL_ENTRYPOINTS(X)             \
	MDGPU_VK_GLOBAL_ENTRYPOINTS(X)          \
	MDGPU_VK_INSTANCE_ENTRYPOINTS(X)        \
	MDGPU_VK_PHYSICAL_DEVICE_ENTRYPOINTS(X) \
	MDGPU_VK_DEVICE_ENTRYPOINTS(X)          \
	MDGPU_VK_UNSUPPORTED_ENTRYPOINTS(X)

/* Each is declared with its PFN type's function type: the compiler checks every definition. */
#define MDGPU_VK_DECLARE(name, level) extern __typeof__(*(PFN_vk##name)0) mdgpu_##name;
MDGPU_VK_ALL_ENTRYPOINTS(MDGPU_VK_DECLARE)
#undef MDGPU_VK_DECLARE

#endif /* MDGPU_VK_ENTRY_H */
