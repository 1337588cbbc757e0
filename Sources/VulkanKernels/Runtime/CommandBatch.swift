import CVulkan
import Glibc

/// One binding of a dispatch: a byte range of a tensor's storage and how the shader sees it.
struct BufferBinding {
    enum Kind {
        case storageRead, storageWrite, storageReadWrite
        /// A uniform texel buffer view (`samplerBuffer`) of the given format.
        case texel(VkFormat, texelBytes: Int)

        /// The texel view of fp32 (`half` false) or fp16 data, four elements per texel (`vec4`) or one.
        static func floatTexels(half: Bool, vec4: Bool) -> Kind {
            switch (half, vec4) {
            case (false, true): .texel(VK_FORMAT_R32G32B32A32_SFLOAT, texelBytes: 16)
            case (false, false): .texel(VK_FORMAT_R32_SFLOAT, texelBytes: 4)
            case (true, true): .texel(VK_FORMAT_R16G16B16A16_SFLOAT, texelBytes: 8)
            case (true, false): .texel(VK_FORMAT_R16_SFLOAT, texelBytes: 2)
            }
        }
    }

    let storage: Storage
    let kind: Kind
    let byteOffset: Int
    let byteCount: Int

    init(_ storage: Storage, _ kind: Kind, byteOffset: Int = 0, byteCount: Int? = nil) {
        self.storage = storage
        self.kind = kind
        self.byteOffset = byteOffset
        self.byteCount = byteCount ?? (storage.byteCount - byteOffset)
    }

    var reads: Bool { if case .storageWrite = kind { false } else { true } }
    var writes: Bool {
        switch kind {
        case .storageWrite, .storageReadWrite: true
        default: false
        }
    }
}

/// Records many dispatches into one command buffer and submits them at once, with barriers placed
/// where a dispatch reads or overwrites what an earlier one in the batch wrote (and only there).
///
/// On the CPU backend the ops run as they are recorded; `commit()` then only completes the batch.
/// Timestamps work on both: GPU timestamp queries on Vulkan, the host clock on the CPU.
///
/// A batch belongs to one thread at a time, and the compiler enforces it: `CommandBatch` is not
/// `Sendable`, so Swift 6 refuses to share one between concurrent tasks or threads; a batch may still be
/// handed over whole (a `sending` parameter, or made and used inside one task).
public final class CommandBatch {
    public let context: ComputeContext
    private enum State { case recording, submitted, completed }
    private var state = State.recording
    private var resources: BatchResources?
    private var retained: [Storage] = []
    private var views: [VkBufferView] = []
    private var staging: [Storage] = []
    // Hazard tracking since the last barrier, by storage identity (sub-allocations never overlap).
    private var readsSinceBarrier = Set<ObjectIdentifier>()
    private var writesSinceBarrier = Set<ObjectIdentifier>()
    private var timestampCount = 0
    private var hostTimestamps: [Double] = []
    private var timestampValues: [UInt64] = []
    /// Dispatches recorded so far.
    public private(set) var dispatchCount = 0
    /// Barriers recorded so far (for tests of the barrier logic).
    public private(set) var barrierCount = 0

    init(context: ComputeContext) throws {
        self.context = context
        if let device = context.device {
            let resources = try device.takeResources()
            self.resources = resources
            var begin = VkCommandBufferBeginInfo()
            begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO
            begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT.rawValue
            do {
                try check(device.vk.beginCommandBuffer(resources.commandBuffer, &begin), "vkBeginCommandBuffer")
            } catch {
                device.recycle(resources)
                throw error
            }
        }
    }

    deinit {
        guard let device = context.device, let resources else { return }
        if state == .recording { _ = device.vk.endCommandBuffer(resources.commandBuffer) }
        if state == .submitted { try? waitFence(device, resources) }
        finish(device, resources)
    }

    // MARK: Recording

    func ensureRecording(_ op: String) throws {
        guard state == .recording else {
            throw KernelError.invalidParameter(op: op, name: "batch", value: "already committed; make a new batch")
        }
    }

    /// Records one compute dispatch (Vulkan only).
    func dispatch(_ spec: KernelSpec, _ bindings: [BufferBinding], push: [UInt32], groups: (Int, Int, Int)) throws {
        try ensureRecording(spec.shader.name)
        guard let device = context.device, let resources else { preconditionFailure("dispatch on the CPU backend") }
        let info = device.info
        for (axis, count) in [groups.0, groups.1, groups.2].enumerated() where count > info.maxComputeWorkGroupCount[axis] {
            throw KernelError.exceedsDeviceLimit(op: spec.shader.name, what: "workgroup count[\(axis)]", value: count,
                                                 limit: info.maxComputeWorkGroupCount[axis])
        }
        guard groups.0 > 0, groups.1 > 0, groups.2 > 0 else { return }
        let pipeline = try device.pipelines.pipeline(for: spec)
        let set = try resources.allocateSet(pipeline.setLayout, device: device.handle, vk: device.vk)
        try writeDescriptors(set, bindings, device: device)
        barrierIfNeeded(bindings.map { ($0.storage, $0.reads, $0.writes) }, device: device, resources: resources)

        let commandBuffer = resources.commandBuffer
        device.vk.cmdBindPipeline(commandBuffer, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.handle)
        var setCopy: VkDescriptorSet? = set
        device.vk.cmdBindDescriptorSets(commandBuffer, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.layout, 0, 1, &setCopy, 0, nil)
        if !push.isEmpty {
            precondition(push.count * 4 == spec.pushConstantBytes, "push constants of \(spec.shader.name) do not match its spec")
            push.withUnsafeBytes { bytes in
                device.vk.cmdPushConstants(commandBuffer, pipeline.layout, VK_SHADER_STAGE_COMPUTE_BIT.rawValue, 0,
                                            UInt32(bytes.count), bytes.baseAddress)
            }
        }
        device.vk.cmdDispatch(commandBuffer, UInt32(groups.0), UInt32(groups.1), UInt32(groups.2))
        dispatchCount += 1
        retained.append(contentsOf: bindings.map(\.storage))
    }

    private func writeDescriptors(_ set: VkDescriptorSet, _ bindings: [BufferBinding], device: VulkanDevice) throws {
        let info = device.info
        var bufferInfos = [VkDescriptorBufferInfo](repeating: VkDescriptorBufferInfo(), count: bindings.count)
        var texelViews = [VkBufferView?](repeating: nil, count: bindings.count)
        for (index, binding) in bindings.enumerated() {
            guard let allocation = binding.storage.allocation else { preconditionFailure("host tensor bound to a dispatch") }
            precondition(binding.byteOffset >= 0 && binding.byteOffset + binding.byteCount <= allocation.size,
                         "binding outside its allocation")
            switch binding.kind {
            case .texel(let format, let texelBytes):
                precondition((allocation.offset + binding.byteOffset) % info.minTexelBufferOffsetAlignment == 0,
                             "texel view offset not aligned")
                // The range may run past the tensor's last element into its allocation's padding
                // (kernels bounds-check); it must be a whole number of texels within the device's limit.
                let texels = min((binding.byteCount + texelBytes - 1) / texelBytes,
                                 (allocation.size - binding.byteOffset) / texelBytes)
                guard texels <= info.maxTexelBufferElements else {
                    throw KernelError.exceedsDeviceLimit(op: "texel buffer view", what: "texels", value: texels,
                                                         limit: info.maxTexelBufferElements)
                }
                var viewInfo = VkBufferViewCreateInfo()
                viewInfo.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO
                viewInfo.buffer = allocation.buffer
                viewInfo.format = format
                viewInfo.offset = VkDeviceSize(allocation.offset + binding.byteOffset)
                viewInfo.range = VkDeviceSize(max(texels, 1) * texelBytes)
                var view: VkBufferView?
                try check(device.vk.createBufferView(device.handle, &viewInfo, nil, &view), "vkCreateBufferView")
                views.append(view!)
                texelViews[index] = view
            default:
                guard binding.byteCount <= info.maxStorageBufferRange else {
                    throw KernelError.exceedsDeviceLimit(op: "storage buffer binding", what: "bytes", value: binding.byteCount,
                                                         limit: info.maxStorageBufferRange)
                }
                precondition((allocation.offset + binding.byteOffset) % info.minStorageBufferOffsetAlignment == 0,
                             "storage binding offset not aligned")
                bufferInfos[index] = VkDescriptorBufferInfo(buffer: allocation.buffer,
                                                            offset: VkDeviceSize(allocation.offset + binding.byteOffset),
                                                            range: VkDeviceSize(max(binding.byteCount, 4)))
            }
        }
        bufferInfos.withUnsafeBufferPointer { buffers in
            texelViews.withUnsafeBufferPointer { texels in
                var writes = bindings.indices.map { index -> VkWriteDescriptorSet in
                    var write = VkWriteDescriptorSet()
                    write.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET
                    write.dstSet = set
                    write.dstBinding = UInt32(index)
                    write.descriptorCount = 1
                    if case .texel = bindings[index].kind {
                        write.descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
                        write.pTexelBufferView = texels.baseAddress! + index
                    } else {
                        write.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                        write.pBufferInfo = buffers.baseAddress! + index
                    }
                    return write
                }
                device.vk.updateDescriptorSets(device.handle, UInt32(writes.count), &writes, 0, nil)
            }
        }
    }

    /// Emits one global memory barrier when this command touches a buffer that a command since the
    /// last barrier wrote (read-after-write, write-after-write) or read (write-after-read).
    private func barrierIfNeeded(_ uses: [(Storage, reads: Bool, writes: Bool)], device: VulkanDevice, resources: BatchResources) {
        let hazard = uses.contains { storage, reads, writes in
            let id = ObjectIdentifier(storage)
            return ((reads || writes) && writesSinceBarrier.contains(id)) || (writes && readsSinceBarrier.contains(id))
        }
        if hazard {
            var barrier = VkMemoryBarrier()
            barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
            barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue
            barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_SHADER_WRITE_BIT.rawValue
                | VK_ACCESS_TRANSFER_READ_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue
            let stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue
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

    /// Records a buffer-to-buffer copy (Vulkan only).
    func copy(from source: Storage, sourceOffset: Int = 0, to destination: Storage, destinationOffset: Int = 0, bytes: Int) throws {
        try ensureRecording("copy")
        guard let device = context.device, let resources, bytes > 0,
              let src = source.allocation, let dst = destination.allocation else { return }
        barrierIfNeeded([(source, true, false), (destination, false, true)], device: device, resources: resources)
        var region = VkBufferCopy(srcOffset: VkDeviceSize(src.offset + sourceOffset),
                                  dstOffset: VkDeviceSize(dst.offset + destinationOffset), size: VkDeviceSize(bytes))
        device.vk.cmdCopyBuffer(resources.commandBuffer, src.buffer, dst.buffer, 1, &region)
        retained.append(contentsOf: [source, destination])
    }

    /// Records one copy command with several byte ranges between two buffers (Vulkan only): one
    /// hazard check and at most one barrier for all of them. The ranges must not overlap in `destination`.
    func copy(from source: Storage, to destination: Storage, regions: [(sourceOffset: Int, destinationOffset: Int, bytes: Int)]) throws {
        try ensureRecording("copy")
        let regions = regions.filter { $0.bytes > 0 }
        guard let device = context.device, let resources, !regions.isEmpty,
              let src = source.allocation, let dst = destination.allocation else { return }
        barrierIfNeeded([(source, true, false), (destination, false, true)], device: device, resources: resources)
        var copies = regions.map {
            VkBufferCopy(srcOffset: VkDeviceSize(src.offset + $0.sourceOffset), dstOffset: VkDeviceSize(dst.offset + $0.destinationOffset),
                         size: VkDeviceSize($0.bytes))
        }
        device.vk.cmdCopyBuffer(resources.commandBuffer, src.buffer, dst.buffer, UInt32(copies.count), &copies)
        retained.append(contentsOf: [source, destination])
    }

    /// Records a fill of a tensor's bytes with a 32-bit pattern (Vulkan only).
    func fill(_ storage: Storage, word: UInt32) throws {
        try ensureRecording("fill")
        guard let device = context.device, let resources, let allocation = storage.allocation else { return }
        barrierIfNeeded([(storage, false, true)], device: device, resources: resources)
        device.vk.cmdFillBuffer(resources.commandBuffer, allocation.buffer, VkDeviceSize(allocation.offset),
                                 VkDeviceSize(roundUp(max(storage.byteCount, 4), to: 4)), word)
        retained.append(storage)
    }

    /// Keeps a staging buffer alive until the batch completes.
    func retainStaging(_ storage: Storage) { staging.append(storage) }

    // MARK: Timing

    /// Records a timestamp after everything recorded so far; returns its index for ``seconds(from:to:)``.
    @discardableResult
    public func timestamp() throws -> Int {
        try ensureRecording("timestamp")
        let index = timestampCount
        if let device = context.device, let resources {
            guard device.info.timestampPeriod > 0 else {
                throw KernelError.unsupportedOnDevice(op: "timestamp", feature: "timestamp queries on the compute queue")
            }
            guard index < BatchResources.queryCapacity else {
                throw KernelError.exceedsDeviceLimit(op: "timestamp", what: "timestamps per batch", value: index + 1,
                                                     limit: BatchResources.queryCapacity)
            }
            let pool = try resources.queries(device: device.handle, vk: device.vk)
            if index == 0 { device.vk.cmdResetQueryPool(resources.commandBuffer, pool, 0, UInt32(BatchResources.queryCapacity)) }
            device.vk.cmdWriteTimestamp(resources.commandBuffer, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pool, UInt32(index))
        } else {
            hostTimestamps.append(monotonicSeconds())
        }
        timestampCount += 1
        return index
    }

    /// Seconds between two timestamps of this batch, once it has completed.
    public func seconds(from start: Int, to end: Int) throws -> Double {
        guard state == .completed || context.device == nil else {
            throw KernelError.invalidParameter(op: "seconds", name: "batch", value: "not completed yet; call commit()")
        }
        guard start >= 0, end < timestampCount, start <= end else {
            throw KernelError.invalidParameter(op: "seconds", name: "timestamps", value: "\(start)...\(end) of \(timestampCount)")
        }
        if let device = context.device {
            return Double(timestampValues[end] &- timestampValues[start]) * device.info.timestampPeriod * 1e-9
        }
        return hostTimestamps[end] - hostTimestamps[start]
    }

    // MARK: Submission

    /// Submits the batch and waits for it to complete.
    public func commit() throws {
        try submit()
        try wait()
    }

    /// Submits the batch without waiting; call ``wait()`` before reading its outputs.
    public func submit() throws {
        try ensureRecording("submit")
        guard let device = context.device, let resources else { state = .submitted; return }
        // Make shader and transfer writes visible to host reads after the fence.
        var barrier = VkMemoryBarrier()
        barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
        barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue
        barrier.dstAccessMask = VK_ACCESS_HOST_READ_BIT.rawValue
        device.vk.cmdPipelineBarrier(resources.commandBuffer,
                                      VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue,
                                      VK_PIPELINE_STAGE_HOST_BIT.rawValue, 0, 1, &barrier, 0, nil, 0, nil)
        try check(device.vk.endCommandBuffer(resources.commandBuffer), "vkEndCommandBuffer")
        var commandBuffer: VkCommandBuffer? = resources.commandBuffer
        let result = withUnsafePointer(to: &commandBuffer) { buffers in
            var submit = VkSubmitInfo()
            submit.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO
            submit.commandBufferCount = 1
            submit.pCommandBuffers = buffers
            return device.queueLock.withLock { _ in device.vk.queueSubmit(device.queue, 1, &submit, resources.fence) }
        }
        state = .submitted
        try check(result, "vkQueueSubmit")
    }

    /// Waits for a submitted batch and releases what it held.
    public func wait() throws {
        guard state == .submitted else {
            if state == .recording { throw KernelError.invalidParameter(op: "wait", name: "batch", value: "not submitted") }
            return
        }
        guard let device = context.device, let resources else { state = .completed; return }
        try waitFence(device, resources)
        if timestampCount > 0, let pool = resources.queryPool {
            timestampValues = [UInt64](repeating: 0, count: timestampCount)
            try check(timestampValues.withUnsafeMutableBytes { bytes in
                device.vk.getQueryPoolResults(device.handle, pool, 0, UInt32(timestampCount), bytes.count, bytes.baseAddress, 8,
                                               VK_QUERY_RESULT_64_BIT.rawValue | VK_QUERY_RESULT_WAIT_BIT.rawValue)
            }, "vkGetQueryPoolResults")
        }
        state = .completed
        finish(device, resources)
    }

    private func waitFence(_ device: VulkanDevice, _ resources: BatchResources) throws {
        var fence: VkFence? = resources.fence
        while true {
            let result = device.vk.waitForFences(device.handle, 1, &fence, VkBool32(VK_TRUE), 1_000_000_000)
            if result == VK_TIMEOUT { continue }
            try check(result, "vkWaitForFences")
            return
        }
    }

    private func finish(_ device: VulkanDevice, _ resources: BatchResources) {
        for view in views { device.vk.destroyBufferView(device.handle, view, nil) }
        views.removeAll()
        retained.removeAll()
        staging.removeAll()
        self.resources = nil
        device.recycle(resources)
    }
}

func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

/// Not `Sendable` on purpose: its recording state (hazard sets, retained buffers, the command buffer) is
/// unsynchronised. Declared unavailable so that no extension can add the conformance.
@available(*, unavailable)
extension CommandBatch: Sendable {}
