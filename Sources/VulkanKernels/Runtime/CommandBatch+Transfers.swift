import CVulkan

// MARK: - Copies and fills

extension CommandBatch {
    /// Records a buffer-to-buffer copy (on the CPU backend: copies now).
    func copy(from source: Storage, sourceOffset: Int = 0, to destination: Storage, destinationOffset: Int = 0, bytes: Int) throws {
        try copy(from: source, to: destination, regions: [(sourceOffset, destinationOffset, bytes)])
    }

    /// Records one copy command with several byte ranges between two buffers (on the CPU backend: copies
    /// now): one hazard check and at most one barrier for all of them. The ranges must not overlap in
    /// `destination`.
    func copy(from source: Storage, to destination: Storage, regions: [(sourceOffset: Int, destinationOffset: Int, bytes: Int)]) throws {
        try ensureRecording("copy")
        let regions = regions.filter { $0.bytes > 0 }
        guard case .vulkan(let device) = backend else {
            let from = source.hostPointer!, to = destination.hostPointer!
            for region in regions { (to + region.destinationOffset).copyMemory(from: from + region.sourceOffset, byteCount: region.bytes) }
            return
        }
        guard let resources, !regions.isEmpty,
              let src = source.allocation, let dst = destination.allocation else { return }
        barrierIfNeeded([(source, true, false), (destination, false, true)], device: device, resources: resources)
        var copies = regions.map {
            VkBufferCopy(srcOffset: VkDeviceSize(src.offset + $0.sourceOffset), dstOffset: VkDeviceSize(dst.offset + $0.destinationOffset),
                         size: VkDeviceSize($0.bytes))
        }
        device.vk.cmdCopyBuffer(resources.commandBuffer, src.buffer, dst.buffer, UInt32(copies.count), &copies)
        retained.append(contentsOf: [source, destination])
    }

    /// Records a fill of a tensor's bytes with a 32-bit pattern (on the CPU backend: fills now; a last
    /// partial word gets the pattern's leading bytes).
    func fill(_ storage: Storage, word: UInt32) throws {
        try ensureRecording("fill")
        guard case .vulkan(let device) = backend else {
            withUnsafeBytes(of: word.littleEndian) { pattern in
                let bytes = storage.hostPointer!.assumingMemoryBound(to: UInt8.self)
                for index in 0..<storage.byteCount { bytes[index] = pattern[index % 4] }
            }
            return
        }
        guard let resources, let allocation = storage.allocation else { return }
        barrierIfNeeded([(storage, false, true)], device: device, resources: resources)
        device.vk.cmdFillBuffer(resources.commandBuffer, allocation.buffer, VkDeviceSize(allocation.offset),
                                 VkDeviceSize(roundUp(max(storage.byteCount, 4), to: 4)), word)
        retained.append(storage)
    }

    /// Keeps a staging buffer alive until the batch completes.
    func retainStaging(_ storage: Storage) { staging.append(storage) }
}
