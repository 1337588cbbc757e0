/// Sampled dense-dense matrix product: (A·Bᵀ) evaluated only at a sparsity pattern (the op behind sparse
/// attention scores and sparse-weight gradients).
extension CommandBatch {
    /// For every stored entry j = (i, k) of the CSR `pattern` (M×N): `out[j] = alpha·(A[i, :]·B[k, :]) +
    /// beta·out[j]`, with A `[M, K]`, B `[N, K]` and `out` a `[storedCount]` tensor in the pattern's entry
    /// order. `Float`, `Float16` or `BFloat16` storage, fp32 accumulation; `beta == 0` never reads `out`. The Vulkan
    /// kernel (Shaders/sparse/sddmm_csr.comp) gives one invocation to each stored entry, so row lengths
    /// do not unbalance it.
    public func sddmm<Element>(_ a: Tensor<Element>, _ b: Tensor<Element>, pattern: UploadedSparseMatrix<Element>,
                               into out: Tensor<Element>, alpha: Float = 1, beta: Float = 0) throws {
        let op = "sddmm"
        try checkOperands(op, ("A", a.context), ("B", b.context), ("pattern", pattern.context), ("out", out.context),
                          finite: [("alpha", alpha), ("beta", beta)])
        guard case .csr(let p) = pattern.matrix else {
            throw KernelError.invalidParameter(op: op, name: "pattern", value: "\(pattern.matrix.formatName) (a CSR pattern is required)")
        }
        guard a.rank == 2, a.shape[0] == p.rows else { throw KernelError.invalidShape(op: op, operand: "A", shape: a.shape, expected: "[\(p.rows), K]") }
        let k = a.shape[1]
        guard b.shape == [p.columns, k] else { throw KernelError.invalidShape(op: op, operand: "B", shape: b.shape, expected: "[\(p.columns), \(k)]") }
        guard out.shape == [p.storedCount] else {
            throw KernelError.invalidShape(op: op, operand: "out", shape: out.shape, expected: "[\(p.storedCount)] (the pattern's stored entries)")
        }
        guard p.storedCount > 0 else { return }
        guard k > 0 else { throw KernelError.emptyTensor(op: op, operand: "A") }
        switch backend {
        case .vulkan(let device): try encodeSDDMM(pattern, k: k, a: a.storage, b: b.storage, out: out.storage, alpha: alpha, beta: beta, on: device)
        case .cpu: cpuSDDMM(p, k: k, a: a.storage, b: b.storage, out: out.storage, alpha: alpha, beta: beta)
        }
    }
}

extension ComputeContext {
    /// (A·Bᵀ) sampled at `pattern`'s stored positions, as a CSR matrix with the pattern's structure.
    public func sddmm<Element>(_ a: Tensor<Element>, _ b: Tensor<Element>, pattern: CSRMatrix<Element>) throws -> CSRMatrix<Element> {
        let out: Tensor<Element> = try empty(shape: [pattern.storedCount])
        let uploaded = try upload(pattern)
        try batch { try $0.sddmm(a, b, pattern: uploaded, into: out) }
        return CSRMatrix(unchecked: pattern.rows, pattern.columns, pattern.rowPointers, pattern.columnIndices,
                         pattern.storedCount == 0 ? [] : try out.toArray())
    }
}
