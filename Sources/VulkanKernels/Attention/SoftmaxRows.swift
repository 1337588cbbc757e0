extension CommandBatch {
    /// In place, per row of the last dimension: `x = softmax(scale·x)`, optionally with a causal mask
    /// aligned bottom-right within each matrix (`[..., rows, columns]`). Fully masked rows become zeros.
    ///
    /// This is the middle pass of the naive three-pass attention (GEMM → softmax → GEMM) that
    /// `vkk bench attention` compares the fused kernel with; it needs the whole score matrix in memory.
    /// The column count must be a multiple of 4.
    public func softmaxRows<Element: FloatingPointElement>(_ x: Tensor<Element>, scale: Float = 1, causal: Bool = false) throws {
        let op = "softmaxRows"
        try checkOperands(op, ("x", x.context), finite: [("scale", scale)])
        try refuseBFloat16(Element.dtype, op: op)
        guard x.rank >= 2, let columns = x.shape.last, columns % 4 == 0, columns > 0 else {
            throw KernelError.invalidShape(op: op, operand: "x", shape: x.shape, expected: "[..., rows, columns] with columns a positive multiple of 4")
        }
        let rowsPerMatrix = x.shape[x.rank - 2], rows = x.count / columns
        switch backend {
        case .vulkan(let device): try encodeSoftmaxRows(x, rows: rows, columns: columns, rowsPerMatrix: rowsPerMatrix, scale: scale,
                                                        causal: causal, on: device)
        case .cpu: cpuSoftmaxRows(x, rows: rows, columns: columns, rowsPerMatrix: rowsPerMatrix, scale: scale, causal: causal)
        }
    }
}
