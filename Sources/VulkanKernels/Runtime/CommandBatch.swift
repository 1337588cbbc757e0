import CVulkan
import Glibc

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
    enum State { case recording, submitted, completed }
    var state = State.recording
    var resources: BatchResources?
    var retained: [Storage] = []
    var views: [VkBufferView] = []
    var staging: [Storage] = []
    // Hazard tracking since the last barrier, by storage identity (sub-allocations never overlap).
    var readsSinceBarrier = Set<ObjectIdentifier>()
    var writesSinceBarrier = Set<ObjectIdentifier>()
    var timestampCount = 0
    var hostTimestamps: [Double] = []
    var timestampValues: [UInt64] = []
    /// Dispatches recorded so far.
    public internal(set) var dispatchCount = 0
    /// Barriers recorded so far (for tests of the barrier logic).
    public internal(set) var barrierCount = 0

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
