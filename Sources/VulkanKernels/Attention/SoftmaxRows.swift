import Foundation

extension CommandBatch {
    /// In place, per row of the last dimension: `x = softmax(scale·x)`, optionally with a causal mask
    /// aligned bottom-right within each matrix (`[..., rows, columns]`). Fully masked rows become zeros.
    ///
    /// This is the middle pass of the naive three-pass attention (GEMM → softmax → GEMM) that
    /// `vkk bench attention` compares the fused kernel with; it needs the whole score matrix in memory.
    /// The column count must be a multiple of 4.
    public func softmaxRows<Element: FloatingPointElement>(_ x: Tensor<Element>, scale: Float = 1, causal: Bool = false) throws {
        let op = "softmaxRows"
        try ensureRecording(op)
        try checkOwnership(op, ("x", x.context))
        try checkFinite(op, ("scale", scale))
        guard x.rank >= 2, let columns = x.shape.last, columns % 4 == 0, columns > 0 else {
            throw KernelError.invalidShape(op: op, operand: "x", shape: x.shape, expected: "[..., rows, columns] with columns a positive multiple of 4")
        }
        let rowsPerMatrix = x.shape[x.rank - 2], rows = x.count / columns
        if let device = context.device {
            let info = device.info
            guard x.byteCount <= info.maxStorageBufferRange else {
                throw KernelError.exceedsDeviceLimit(op: op, what: "bytes (one storage binding)", value: x.byteCount, limit: info.maxStorageBufferRange)
            }
            let lanes = info.supportsSubgroupSizeControl && (info.minSubgroupSize...info.maxSubgroupSize).contains(8) && info.isCPUDriver
                ? 8 : info.subgroupSize
            let spec = KernelSpec(shader: Element.dtype == .float16 ? .attention_softmax_rows_f16 : .attention_softmax_rows,
                                  bindings: [.storageBuffer], pushConstantBytes: 20, specialization: [UInt32(lanes)], requiredSubgroupSize: lanes)
            try dispatch(spec, [BufferBinding(x.storage, .storageReadWrite, byteCount: x.byteCount)],
                         push: [UInt32(rows), UInt32(columns), UInt32(rowsPerMatrix), causal ? 1 : 0, scale.bitPattern],
                         groups: (min(rows, 4096), 1, 1))
            return
        }
        let base = UncheckedSendable(x.storage.hostPointer!)
        CPUParallel.forEachChunk(rows, costPerItem: columns * 8) { range in
            var row = [Float](repeating: 0, count: columns)
            for r in range {
                let limit = causal ? r % rowsPerMatrix + columns - rowsPerMatrix : columns - 1
                let pointer = base.value.assumingMemoryBound(to: Element.self) + r * columns
                var top = -Float.infinity
                for c in 0..<columns { row[c] = Float(pointer[c]) * scale; if c <= limit { top = max(top, row[c]) } }
                var total: Float = 0
                for c in 0..<columns { row[c] = c <= limit && top > -.infinity ? Foundation.exp(row[c] - top) : 0; total += row[c] }
                let inverse = total > 0 ? 1 / total : 0
                for c in 0..<columns { pointer[c] = Element(row[c] * inverse) }
            }
        }
    }
}
