import CVulkan

// MARK: - Hazard tracking

extension CommandBatch {
    /// Emits one global memory barrier when this command touches a buffer that a command since the
    /// last barrier wrote (read-after-write, write-after-write) or read (write-after-read).
    func barrierIfNeeded(_ uses: [(Storage, reads: Bool, writes: Bool)], device: VulkanDevice, resources: BatchResources) {
        let hazard = uses.contains { storage, reads, writes in
            let id = ObjectIdentifier(storage)
            return ((reads || writes) && writesSinceBarrier.contains(id)) || (writes && readsSinceBarrier.contains(id))
        }
        if hazard {
            var barrier = VkMemoryBarrier()
            barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
            barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue
            barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_SHADER_WRITE_BIT.rawValue
                | VK_ACCESS_TRANSFER_READ_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue | VK_ACCESS_INDIRECT_COMMAND_READ_BIT.rawValue
            // DRAW_INDIRECT is the stage in which vkCmdDispatchIndirect reads its arguments: as a
            // destination it makes a kernel's writes visible to a later indirect read (the hazard sets
            // are cleared here, so every barrier must cover it); as a source it orders a later write
            // after an earlier indirect read.
            let stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue
                | VK_PIPELINE_STAGE_DRAW_INDIRECT_BIT.rawValue
            device.vk.cmdPipelineBarrier(resources.commandBuffer, stages, stages, 0, 1, &barrier, 0, nil, 0, nil)
            readsSinceBarrier.removeAll()
            writesSinceBarrier.removeAll()
            barrierCount += 1
        }
        for (storage, reads, writes) in uses {
            if reads { readsSinceBarrier.insert(ObjectIdentifier(storage)) }
            if writes { writesSinceBarrier.insert(ObjectIdentifier(storage)) }
        }
    }
}
