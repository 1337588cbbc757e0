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
        let kernel = Kernel<Shader.attention_softmax_rows>(Element.dtype == .float16 ? .f16 : .base, specialization: [UInt32(lanes)],
                                                           requiredSubgroupSize: lanes)
        try dispatch(kernel, .init(scores: BufferBinding(x.storage, .storageReadWrite, byteCount: x.byteCount)),
                     push: .init(rows: UInt32(rows), columns: UInt32(columns), rowsPerMatrix: UInt32(rowsPerMatrix), causal: causal ? 1 : 0,
                                 scale: scale),
                     groups: (min(rows, 4096), 1, 1))
    }
}
