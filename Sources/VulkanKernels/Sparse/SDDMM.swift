import CKernels

/// Sampled dense-dense matrix product: (A·Bᵀ) evaluated only at a sparsity pattern (the op behind sparse
/// attention scores and sparse-weight gradients).
extension CommandBatch {
    /// For every stored entry j = (i, k) of the CSR `pattern` (M×N): `out[j] = alpha·(A[i, :]·B[k, :]) +
    /// beta·out[j]`, with A `[M, K]`, B `[N, K]` and `out` a `[storedCount]` tensor in the pattern's entry
    /// order. `Float` or `Float16` storage, fp32 accumulation; `beta == 0` never reads `out`. The Vulkan
    /// kernel (Shaders/sparse/sddmm_csr.comp) gives one invocation to each stored entry, so row lengths
    /// do not unbalance it.
    public func sddmm<Element>(_ a: Tensor<Element>, _ b: Tensor<Element>, pattern: UploadedSparseMatrix<Element>,
                               into out: Tensor<Element>, alpha: Float = 1, beta: Float = 0) throws {
        let op = "sddmm"
        try ensureRecording(op)
        try checkOwnership(op, ("A", a.context), ("B", b.context), ("pattern", pattern.context), ("out", out.context))
        try checkFinite(op, ("alpha", alpha), ("beta", beta))
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
        if context.isVulkan {
            try encodeSDDMM(pattern, k: k, a: a.storage, b: b.storage, out: out.storage, alpha: alpha, beta: beta)
        } else {
            cpuSDDMM(p, k: k, a: a.storage, b: b.storage, out: out.storage, alpha: alpha, beta: beta)
        }
    }

    func encodeSDDMM<Element>(_ pattern: UploadedSparseMatrix<Element>, k: Int, a: Storage, b: Storage, out: Storage,
                              alpha: Float, beta: Float) throws {
        let info = context.device!.info
        let f16 = Element.dtype == .float16
        if f16 && !info.supports16BitStorage { throw KernelError.unsupportedOnDevice(op: "sddmm", feature: "16-bit storage (fp16 tensors)") }
        let nnz = pattern.matrix.storedCount
        try checkTexelLimit("sddmm", pattern, b: max(pattern.matrix.rows, pattern.matrix.columns) * k, info: info)
        try checkOutputRange("sddmm", bytes: out.byteCount, info: info)
        let vec4 = k % 4 == 0
        let groupSize = 8
        let spec = KernelSpec(shader: f16 ? .sparse_sddmm_csr_f16 : .sparse_sddmm_csr,
                              bindings: [.uniformTexelBuffer, .uniformTexelBuffer, .uniformTexelBuffer, .uniformTexelBuffer, .storageBuffer],
                              pushConstantBytes: 20, specialization: [UInt32(groupSize), vec4 ? 1 : 0])
        let groups = (nnz + groupSize - 1) / groupSize
        let maxX = info.maxComputeWorkGroupCount[0]
        let grid = groups <= maxX ? (groups, 1) : (maxX, (groups + maxX - 1) / maxX)
        try dispatch(spec, [BufferBinding(pattern.buffers["entryRows"]!, SparseViews.uint32),
                            BufferBinding(pattern.buffers["indices"]!, SparseViews.uint32),
                            BufferBinding(a, SparseViews.float(f16, vec4: vec4)), BufferBinding(b, SparseViews.float(f16, vec4: vec4)),
                            BufferBinding(out, beta == 0 ? .storageWrite : .storageReadWrite)],
                     push: [UInt32(nnz), UInt32(k), alpha.bitPattern, beta.bitPattern, 0], groups: (grid.0, grid.1, 1))
    }

    /// Rows in entry-balanced chunks on all cores; each entry one AVX2 dot product of fp32 rows.
    func cpuSDDMM<Element: FloatingPointElement>(_ p: CSRMatrix<Element>, k: Int, a: Storage, b: Storage, out: Storage,
                                                 alpha: Float, beta: Float) {
        let a32 = SparseCPU.widened(a.hostPointer!.assumingMemoryBound(to: Element.self), count: p.rows * k)
        let b32 = SparseCPU.widened(b.hostPointer!.assumingMemoryBound(to: Element.self), count: p.columns * k)
        var dots = [Float](repeating: 0, count: p.storedCount)
        let chunks = SparseCPU.chunkBoundaries(.csr(p), work: k)
        a32.withUnsafeBufferPointer { aBuffer in
            b32.withUnsafeBufferPointer { bBuffer in
                let shared = UncheckedSendable((aBuffer.baseAddress!, bBuffer.baseAddress!, dots.withUnsafeMutableBufferPointer { $0.baseAddress! }))
                CPUParallel.forEachChunk(chunks.count - 1, costPerItem: 1_000_000) { range in
                    for chunk in range {
                        for row in chunks[chunk]..<chunks[chunk + 1] {
                            for j in Int(p.rowPointers[row])..<Int(p.rowPointers[row + 1]) {
                                shared.value.2[j] = vkk_dot(shared.value.0 + row * k, shared.value.1 + Int(p.columnIndices[j]) * k, Int64(k))
                            }
                        }
                    }
                }
            }
        }
        dots.withUnsafeBufferPointer { dots in
            SparseCPU.storeScaled(into: out.hostPointer!, as: Element.self, count: p.storedCount, alpha: alpha, beta: beta) { dots[$0] }
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
