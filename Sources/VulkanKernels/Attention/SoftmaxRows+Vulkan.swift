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
        let spec = KernelSpec(shader: Element.dtype == .float16 ? .attention_softmax_rows_f16 : .attention_softmax_rows,
                              bindings: [.storageBuffer], pushConstantBytes: 20, specialization: [UInt32(lanes)], requiredSubgroupSize: lanes)
        try dispatch(spec, [BufferBinding(x.storage, .storageReadWrite, byteCount: x.byteCount)],
                     push: [UInt32(rows), UInt32(columns), UInt32(rowsPerMatrix), causal ? 1 : 0, scale.bitPattern],
                     groups: (min(rows, 4096), 1, 1))
    }
}
