// MARK: - Vulkan softmaxRows

extension CommandBatch {
    /// One dispatch of Shaders/attention/softmax_rows.comp: a subgroup per row.
    func encodeSoftmaxRows<Element: FloatingPointElement>(_ x: Tensor<Element>, rows: Int, columns: Int, rowsPerMatrix: Int, scale: Float,
                                                          causal: Bool, on device: VulkanDevice) throws {
        let op = "softmaxRows"
        let info = device.info
        guard x.byteCount <= info.maxStorageBufferRange else {
            throw KernelError.exceedsDeviceLimit(op: op, what: "bytes (one storage binding)", value: x.byteCount, limit: info.maxStorageBufferRange)
        }
        let lanes = info.subgroupLanes(.onCPUDriversOnly)
        // Under a per-invocation loop cap (lavapipe: DeviceInfo.loopIterationsPerInvocation) a row longer
        // than the cap allows would be cut short silently: each lane loops 3 × columns / (4 · lanes) times
        // per row, for each of the ceil(rows / workgroups) rows of its workgroup. Half the cap is kept as
        // margin (as attention does); a 2²⁰-column row was measured wrong on lavapipe, 2¹⁸ right.
        let groups = min(rows, 4096), rowsPerGroup = (rows + groups - 1) / groups
        if let cap = info.loopIterationsPerInvocation {
            let texelSteps = (columns / 4 + lanes - 1) / lanes
            let longest = max(0, (cap / 2 / rowsPerGroup - 1) / 3) * 4 * lanes
            guard rowsPerGroup * (3 * texelSteps + 1) <= cap / 2 else {
                throw KernelError.exceedsDeviceLimit(op: op, what: "columns per row (the device's loop-iteration cap per invocation)",
                                                     value: columns, limit: longest)
            }
        }
        let kernel = Kernel<Shader.attention_softmax_rows>(Element.dtype == .float16 ? .f16 : .base, specialization: [UInt32(lanes)],
                                                           requiredSubgroupSize: lanes)
        try dispatch(kernel, .init(scores: BufferBinding(x.storage, .storageReadWrite, byteCount: x.byteCount)),
                     push: .init(rows: UInt32(rows), columns: UInt32(columns), rowsPerMatrix: UInt32(rowsPerMatrix), causal: causal ? 1 : 0,
                                 scale: scale),
                     groups: (groups, 1, 1))
    }
}
