// SPDX-License-Identifier: MIT
/*
 * libvulkan_mdgpu: what mdgpu does not mediate - images, samplers, render passes, graphics
 * pipelines and their commands, sparse binding. The device has no format with features and no
 * graphics queue, so a correct program never calls these; one that does gets a clean failure
 * instead of a missing entry point: creation returns VK_ERROR_FORMAT_NOT_SUPPORTED (images,
 * views) or VK_ERROR_FEATURE_NOT_PRESENT with a null handle, queries report nothing, and a
 * command buffer that records one of these commands fails at vkEndCommandBuffer.
 */
#include <string.h>

#include "mdgpu_vk.h"
#include "mdgpu_vk_entry.h"

static VkResult mdgpu_vk_unsupported(const char *what, VkResult result)
{
	mdgpu_vk_debug("%s: not supported (compute-only device)", what);
	return result;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_BindImageMemory(VkDevice device, VkImage image,
						     VkDeviceMemory memory,
						     VkDeviceSize memoryOffset)
{
	return mdgpu_vk_unsupported("vkBindImageMemory", VK_ERROR_FEATURE_NOT_PRESENT);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_BindImageMemory2(VkDevice device, uint32_t bindInfoCount,
						      const VkBindImageMemoryInfo *pBindInfos)
{
	return mdgpu_vk_unsupported("vkBindImageMemory2", VK_ERROR_FEATURE_NOT_PRESENT);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetImageMemoryRequirements(
	VkDevice device, VkImage image, VkMemoryRequirements *pMemoryRequirements)
{
	memset(pMemoryRequirements, 0, sizeof(*pMemoryRequirements));
}

VKAPI_ATTR void VKAPI_CALL
mdgpu_GetImageMemoryRequirements2(VkDevice device, const VkImageMemoryRequirementsInfo2 *pInfo,
				  VkMemoryRequirements2 *pMemoryRequirements)
{
	memset(&pMemoryRequirements->memoryRequirements, 0,
	       sizeof(pMemoryRequirements->memoryRequirements));
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetImageSparseMemoryRequirements(
	VkDevice device, VkImage image, uint32_t *pSparseMemoryRequirementCount,
	VkSparseImageMemoryRequirements *pSparseMemoryRequirements)
{
	*pSparseMemoryRequirementCount = 0;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetImageSparseMemoryRequirements2(
	VkDevice device, const VkImageSparseMemoryRequirementsInfo2 *pInfo,
	uint32_t *pSparseMemoryRequirementCount,
	VkSparseImageMemoryRequirements2 *pSparseMemoryRequirements)
{
	*pSparseMemoryRequirementCount = 0;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetDeviceImageMemoryRequirements(
	VkDevice device, const VkDeviceImageMemoryRequirements *pInfo,
	VkMemoryRequirements2 *pMemoryRequirements)
{
	memset(&pMemoryRequirements->memoryRequirements, 0,
	       sizeof(pMemoryRequirements->memoryRequirements));
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetDeviceImageSparseMemoryRequirements(
	VkDevice device, const VkDeviceImageMemoryRequirements *pInfo,
	uint32_t *pSparseMemoryRequirementCount,
	VkSparseImageMemoryRequirements2 *pSparseMemoryRequirements)
{
	*pSparseMemoryRequirementCount = 0;
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_QueueBindSparse(VkQueue queue, uint32_t bindInfoCount,
						     const VkBindSparseInfo *pBindInfo,
						     VkFence fence)
{
	return mdgpu_vk_unsupported("vkQueueBindSparse", VK_ERROR_FEATURE_NOT_PRESENT);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateBufferView(VkDevice device,
						      const VkBufferViewCreateInfo *pCreateInfo,
						      const VkAllocationCallbacks *pAllocator,
						      VkBufferView *pView)
{
	*pView = VK_NULL_HANDLE;
	return mdgpu_vk_unsupported("vkCreateBufferView", VK_ERROR_FORMAT_NOT_SUPPORTED);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyBufferView(VkDevice device, VkBufferView bufferView,
						   const VkAllocationCallbacks *pAllocator)
{
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateImage(VkDevice device,
						 const VkImageCreateInfo *pCreateInfo,
						 const VkAllocationCallbacks *pAllocator,
						 VkImage *pImage)
{
	*pImage = VK_NULL_HANDLE;
	return mdgpu_vk_unsupported("vkCreateImage", VK_ERROR_FORMAT_NOT_SUPPORTED);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyImage(VkDevice device, VkImage image,
					      const VkAllocationCallbacks *pAllocator)
{
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetImageSubresourceLayout(VkDevice device, VkImage image,
							   const VkImageSubresource *pSubresource,
							   VkSubresourceLayout *pLayout)
{
	memset(pLayout, 0, sizeof(*pLayout));
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateImageView(VkDevice device,
						     const VkImageViewCreateInfo *pCreateInfo,
						     const VkAllocationCallbacks *pAllocator,
						     VkImageView *pView)
{
	*pView = VK_NULL_HANDLE;
	return mdgpu_vk_unsupported("vkCreateImageView", VK_ERROR_FORMAT_NOT_SUPPORTED);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyImageView(VkDevice device, VkImageView imageView,
						  const VkAllocationCallbacks *pAllocator)
{
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateGraphicsPipelines(
	VkDevice device, VkPipelineCache pipelineCache, uint32_t createInfoCount,
	const VkGraphicsPipelineCreateInfo *pCreateInfos, const VkAllocationCallbacks *pAllocator,
	VkPipeline *pPipelines)
{
	for (uint32_t i = 0; i < createInfoCount; i++)
		pPipelines[i] = VK_NULL_HANDLE;
	return mdgpu_vk_unsupported("vkCreateGraphicsPipelines", VK_ERROR_FEATURE_NOT_PRESENT);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateSampler(VkDevice device,
						   const VkSamplerCreateInfo *pCreateInfo,
						   const VkAllocationCallbacks *pAllocator,
						   VkSampler *pSampler)
{
	*pSampler = VK_NULL_HANDLE;
	return mdgpu_vk_unsupported("vkCreateSampler", VK_ERROR_FEATURE_NOT_PRESENT);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroySampler(VkDevice device, VkSampler sampler,
						const VkAllocationCallbacks *pAllocator)
{
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateSamplerYcbcrConversion(
	VkDevice device, const VkSamplerYcbcrConversionCreateInfo *pCreateInfo,
	const VkAllocationCallbacks *pAllocator, VkSamplerYcbcrConversion *pYcbcrConversion)
{
	*pYcbcrConversion = VK_NULL_HANDLE;
	return mdgpu_vk_unsupported("vkCreateSamplerYcbcrConversion", VK_ERROR_FEATURE_NOT_PRESENT);
}

VKAPI_ATTR void VKAPI_CALL
mdgpu_DestroySamplerYcbcrConversion(VkDevice device, VkSamplerYcbcrConversion ycbcrConversion,
				    const VkAllocationCallbacks *pAllocator)
{
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateFramebuffer(VkDevice device,
						       const VkFramebufferCreateInfo *pCreateInfo,
						       const VkAllocationCallbacks *pAllocator,
						       VkFramebuffer *pFramebuffer)
{
	*pFramebuffer = VK_NULL_HANDLE;
	return mdgpu_vk_unsupported("vkCreateFramebuffer", VK_ERROR_FEATURE_NOT_PRESENT);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyFramebuffer(VkDevice device, VkFramebuffer framebuffer,
						    const VkAllocationCallbacks *pAllocator)
{
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateRenderPass(VkDevice device,
						      const VkRenderPassCreateInfo *pCreateInfo,
						      const VkAllocationCallbacks *pAllocator,
						      VkRenderPass *pRenderPass)
{
	*pRenderPass = VK_NULL_HANDLE;
	return mdgpu_vk_unsupported("vkCreateRenderPass", VK_ERROR_FEATURE_NOT_PRESENT);
}

VKAPI_ATTR VkResult VKAPI_CALL mdgpu_CreateRenderPass2(VkDevice device,
						       const VkRenderPassCreateInfo2 *pCreateInfo,
						       const VkAllocationCallbacks *pAllocator,
						       VkRenderPass *pRenderPass)
{
	*pRenderPass = VK_NULL_HANDLE;
	return mdgpu_vk_unsupported("vkCreateRenderPass2", VK_ERROR_FEATURE_NOT_PRESENT);
}

VKAPI_ATTR void VKAPI_CALL mdgpu_DestroyRenderPass(VkDevice device, VkRenderPass renderPass,
						   const VkAllocationCallbacks *pAllocator)
{
}

VKAPI_ATTR void VKAPI_CALL mdgpu_GetRenderAreaGranularity(VkDevice device, VkRenderPass renderPass,
							  VkExtent2D *pGranularity)
{
	pGranularity->width = 1;
	pGranularity->height = 1;
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetViewport(VkCommandBuffer commandBuffer,
						uint32_t firstViewport, uint32_t viewportCount,
						const VkViewport *pViewports)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetViewport");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetScissor(VkCommandBuffer commandBuffer, uint32_t firstScissor,
					       uint32_t scissorCount, const VkRect2D *pScissors)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetScissor");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetLineWidth(VkCommandBuffer commandBuffer, float lineWidth)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetLineWidth");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetDepthBias(VkCommandBuffer commandBuffer,
						 float depthBiasConstantFactor,
						 float depthBiasClamp, float depthBiasSlopeFactor)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetDepthBias");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetBlendConstants(VkCommandBuffer commandBuffer,
						      const float blendConstants[4])
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetBlendConstants");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetDepthBounds(VkCommandBuffer commandBuffer,
						   float minDepthBounds, float maxDepthBounds)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetDepthBounds");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetStencilCompareMask(VkCommandBuffer commandBuffer,
							  VkStencilFaceFlags faceMask,
							  uint32_t compareMask)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetStencilCompareMask");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetStencilWriteMask(VkCommandBuffer commandBuffer,
							VkStencilFaceFlags faceMask,
							uint32_t writeMask)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetStencilWriteMask");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetStencilReference(VkCommandBuffer commandBuffer,
							VkStencilFaceFlags faceMask,
							uint32_t reference)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetStencilReference");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdBindIndexBuffer(VkCommandBuffer commandBuffer, VkBuffer buffer,
						    VkDeviceSize offset, VkIndexType indexType)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdBindIndexBuffer");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdBindVertexBuffers(VkCommandBuffer commandBuffer,
						      uint32_t firstBinding, uint32_t bindingCount,
						      const VkBuffer *pBuffers,
						      const VkDeviceSize *pOffsets)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdBindVertexBuffers");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdBindVertexBuffers2(VkCommandBuffer commandBuffer,
						       uint32_t firstBinding, uint32_t bindingCount,
						       const VkBuffer *pBuffers,
						       const VkDeviceSize *pOffsets,
						       const VkDeviceSize *pSizes,
						       const VkDeviceSize *pStrides)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdBindVertexBuffers2");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdDraw(VkCommandBuffer commandBuffer, uint32_t vertexCount,
					 uint32_t instanceCount, uint32_t firstVertex,
					 uint32_t firstInstance)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdDraw");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdDrawIndexed(VkCommandBuffer commandBuffer, uint32_t indexCount,
						uint32_t instanceCount, uint32_t firstIndex,
						int32_t vertexOffset, uint32_t firstInstance)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdDrawIndexed");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdDrawIndirect(VkCommandBuffer commandBuffer, VkBuffer buffer,
						 VkDeviceSize offset, uint32_t drawCount,
						 uint32_t stride)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdDrawIndirect");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdDrawIndexedIndirect(VkCommandBuffer commandBuffer,
							VkBuffer buffer, VkDeviceSize offset,
							uint32_t drawCount, uint32_t stride)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdDrawIndexedIndirect");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdDrawIndirectCount(VkCommandBuffer commandBuffer,
						      VkBuffer buffer, VkDeviceSize offset,
						      VkBuffer countBuffer,
						      VkDeviceSize countBufferOffset,
						      uint32_t maxDrawCount, uint32_t stride)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdDrawIndirectCount");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdDrawIndexedIndirectCount(VkCommandBuffer commandBuffer,
							     VkBuffer buffer, VkDeviceSize offset,
							     VkBuffer countBuffer,
							     VkDeviceSize countBufferOffset,
							     uint32_t maxDrawCount, uint32_t stride)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdDrawIndexedIndirectCount");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdCopyImage(VkCommandBuffer commandBuffer, VkImage srcImage,
					      VkImageLayout srcImageLayout, VkImage dstImage,
					      VkImageLayout dstImageLayout, uint32_t regionCount,
					      const VkImageCopy *pRegions)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdCopyImage");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdCopyImage2(VkCommandBuffer commandBuffer,
					       const VkCopyImageInfo2 *pCopyImageInfo)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdCopyImage2");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdBlitImage(VkCommandBuffer commandBuffer, VkImage srcImage,
					      VkImageLayout srcImageLayout, VkImage dstImage,
					      VkImageLayout dstImageLayout, uint32_t regionCount,
					      const VkImageBlit *pRegions, VkFilter filter)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdBlitImage");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdBlitImage2(VkCommandBuffer commandBuffer,
					       const VkBlitImageInfo2 *pBlitImageInfo)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdBlitImage2");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdCopyBufferToImage(VkCommandBuffer commandBuffer,
						      VkBuffer srcBuffer, VkImage dstImage,
						      VkImageLayout dstImageLayout,
						      uint32_t regionCount,
						      const VkBufferImageCopy *pRegions)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdCopyBufferToImage");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdCopyBufferToImage2(
	VkCommandBuffer commandBuffer, const VkCopyBufferToImageInfo2 *pCopyBufferToImageInfo)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdCopyBufferToImage2");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdCopyImageToBuffer(VkCommandBuffer commandBuffer,
						      VkImage srcImage,
						      VkImageLayout srcImageLayout,
						      VkBuffer dstBuffer, uint32_t regionCount,
						      const VkBufferImageCopy *pRegions)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdCopyImageToBuffer");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdCopyImageToBuffer2(
	VkCommandBuffer commandBuffer, const VkCopyImageToBufferInfo2 *pCopyImageToBufferInfo)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdCopyImageToBuffer2");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdResolveImage(VkCommandBuffer commandBuffer, VkImage srcImage,
						 VkImageLayout srcImageLayout, VkImage dstImage,
						 VkImageLayout dstImageLayout, uint32_t regionCount,
						 const VkImageResolve *pRegions)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdResolveImage");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdResolveImage2(VkCommandBuffer commandBuffer,
						  const VkResolveImageInfo2 *pResolveImageInfo)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdResolveImage2");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdClearColorImage(VkCommandBuffer commandBuffer, VkImage image,
						    VkImageLayout imageLayout,
						    const VkClearColorValue *pColor,
						    uint32_t rangeCount,
						    const VkImageSubresourceRange *pRanges)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdClearColorImage");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdClearDepthStencilImage(
	VkCommandBuffer commandBuffer, VkImage image, VkImageLayout imageLayout,
	const VkClearDepthStencilValue *pDepthStencil, uint32_t rangeCount,
	const VkImageSubresourceRange *pRanges)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdClearDepthStencilImage");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdClearAttachments(VkCommandBuffer commandBuffer,
						     uint32_t attachmentCount,
						     const VkClearAttachment *pAttachments,
						     uint32_t rectCount, const VkClearRect *pRects)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdClearAttachments");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdBeginQuery(VkCommandBuffer commandBuffer, VkQueryPool queryPool,
					       uint32_t query, VkQueryControlFlags flags)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdBeginQuery");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdEndQuery(VkCommandBuffer commandBuffer, VkQueryPool queryPool,
					     uint32_t query)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdEndQuery");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdBeginRenderPass(VkCommandBuffer commandBuffer,
						    const VkRenderPassBeginInfo *pRenderPassBegin,
						    VkSubpassContents contents)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdBeginRenderPass");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdBeginRenderPass2(VkCommandBuffer commandBuffer,
						     const VkRenderPassBeginInfo *pRenderPassBegin,
						     const VkSubpassBeginInfo *pSubpassBeginInfo)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdBeginRenderPass2");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdNextSubpass(VkCommandBuffer commandBuffer,
						VkSubpassContents contents)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdNextSubpass");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdNextSubpass2(VkCommandBuffer commandBuffer,
						 const VkSubpassBeginInfo *pSubpassBeginInfo,
						 const VkSubpassEndInfo *pSubpassEndInfo)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdNextSubpass2");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdEndRenderPass(VkCommandBuffer commandBuffer)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdEndRenderPass");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdEndRenderPass2(VkCommandBuffer commandBuffer,
						   const VkSubpassEndInfo *pSubpassEndInfo)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdEndRenderPass2");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdBeginRendering(VkCommandBuffer commandBuffer,
						   const VkRenderingInfo *pRenderingInfo)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdBeginRendering");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdEndRendering(VkCommandBuffer commandBuffer)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdEndRendering");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetCullMode(VkCommandBuffer commandBuffer,
						VkCullModeFlags cullMode)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetCullMode");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetFrontFace(VkCommandBuffer commandBuffer,
						 VkFrontFace frontFace)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetFrontFace");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetPrimitiveTopology(VkCommandBuffer commandBuffer,
							 VkPrimitiveTopology primitiveTopology)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetPrimitiveTopology");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetViewportWithCount(VkCommandBuffer commandBuffer,
							 uint32_t viewportCount,
							 const VkViewport *pViewports)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetViewportWithCount");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetScissorWithCount(VkCommandBuffer commandBuffer,
							uint32_t scissorCount,
							const VkRect2D *pScissors)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetScissorWithCount");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetDepthTestEnable(VkCommandBuffer commandBuffer,
						       VkBool32 depthTestEnable)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetDepthTestEnable");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetDepthWriteEnable(VkCommandBuffer commandBuffer,
							VkBool32 depthWriteEnable)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetDepthWriteEnable");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetDepthCompareOp(VkCommandBuffer commandBuffer,
						      VkCompareOp depthCompareOp)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetDepthCompareOp");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetDepthBoundsTestEnable(VkCommandBuffer commandBuffer,
							     VkBool32 depthBoundsTestEnable)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetDepthBoundsTestEnable");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetStencilTestEnable(VkCommandBuffer commandBuffer,
							 VkBool32 stencilTestEnable)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetStencilTestEnable");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetStencilOp(VkCommandBuffer commandBuffer,
						 VkStencilFaceFlags faceMask, VkStencilOp failOp,
						 VkStencilOp passOp, VkStencilOp depthFailOp,
						 VkCompareOp compareOp)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetStencilOp");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetRasterizerDiscardEnable(VkCommandBuffer commandBuffer,
							       VkBool32 rasterizerDiscardEnable)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetRasterizerDiscardEnable");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetDepthBiasEnable(VkCommandBuffer commandBuffer,
						       VkBool32 depthBiasEnable)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetDepthBiasEnable");
}

VKAPI_ATTR void VKAPI_CALL mdgpu_CmdSetPrimitiveRestartEnable(VkCommandBuffer commandBuffer,
							      VkBool32 primitiveRestartEnable)
{
	mdgpu_vk_cmd_unsupported(commandBuffer, "vkCmdSetPrimitiveRestartEnable");
}
