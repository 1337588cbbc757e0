import CVulkan

extension CommandBatch {
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
}
