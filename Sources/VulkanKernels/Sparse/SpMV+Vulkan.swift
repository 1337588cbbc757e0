import CVulkan

// MARK: - Vulkan SpMV

extension CommandBatch {
    func encodeSpMV<Element>(_ a: UploadedSparseMatrix<Element>, x: Storage, y: Storage, alpha: Float, beta: Float,
                             on device: VulkanDevice) throws {
        let info = device.info
        let dtype = Element.dtype
        try info.requireStorage(of: Element.dtype, op: "spmv")
        guard info.supportsSubgroupArithmetic else { throw KernelError.unsupportedOnDevice(op: "spmv", feature: "subgroup arithmetic") }
        try checkTexelLimit("spmv", a, b: a.matrix.columns, info: info)
        try checkOutputRange("spmv", bytes: y.byteCount, info: info)
        let lanes = info.subgroupLanes(.whereverAvailable)
        let m = a.matrix.rows
        let rowsPerGroup = min(16, max(1, m / 1024))
        let scalar = SparseViews.float(dtype, vec4: false)
        var nm = (n: 0, m: 0, groups: 0)
        let output = BufferBinding(y, beta == 0 ? .storageWrite : .storageReadWrite)
        let bindings: Shader.sparse_spmv_csr.Bindings
        if case .bsr(let matrix) = a.matrix {
            nm = (0, matrix.blockSize, 0)
            // The BSR build has no row order: the pointers stand in for it.
            let arrays = a.bsrArrays
            let pointers = BufferBinding(arrays.pointers, SparseViews.uint32)
            bindings = .init(rowPointers: pointers, columns: BufferBinding(arrays.indices, SparseViews.uint32),
                             values: BufferBinding(arrays.values, scalar), rowOrder: pointers, vectorX: BufferBinding(x, scalar),
                             sparseOutput: output)
        } else if case .nm(let matrix) = a.matrix {
            nm = (matrix.n, matrix.m, matrix.groupsPerRow)
            // The N:M build reads positions for the CSR arrays it does not have.
            let positions = BufferBinding(a.nmArrays.positions, .texel(VK_FORMAT_R8_UINT, texelBytes: 1))
            bindings = .init(rowPointers: positions, columns: positions, values: BufferBinding(a.nmArrays.values, scalar),
                             rowOrder: positions, vectorX: BufferBinding(x, scalar), sparseOutput: output)
        } else {
            // Columns and values 4 entries per texel: fewer fetches per entry, faster on lavapipe at every
            // sparsity below the dispatch-bound ~98% (Benchmarks/RESULTS.md, "Measurements behind choices in the code").
            let arrays = a.csrArrays
            bindings = .init(rowPointers: BufferBinding(arrays.pointers, SparseViews.uint32),
                             columns: BufferBinding(arrays.indices, .texel(VK_FORMAT_R32G32B32A32_UINT, texelBytes: 16)),
                             values: BufferBinding(arrays.values, SparseViews.float(dtype, vec4: true)),
                             rowOrder: BufferBinding(arrays.rowOrder, SparseViews.uint32),
                             vectorX: BufferBinding(x, scalar), sparseOutput: output)
        }
        let variant: Shader.sparse_spmv_csr.Variant = switch a.matrix {
        case .csr: dtype.storageVariant(base: .base, f16: .f16, bf16: .bf16)
        case .nm: dtype.storageVariant(base: .nm, f16: .nm_f16, bf16: .nm_bf16)
        case .bsr: dtype.storageVariant(base: .bsr, f16: .bsr_f16, bf16: .bsr_bf16)
        }
        try dispatch(Kernel<Shader.sparse_spmv_csr>(variant, specialization: [UInt32(lanes)], requiredSubgroupSize: lanes), bindings,
                     push: .init(M: UInt32(m), K: UInt32(a.matrix.columns), rowsPerGroup: UInt32(rowsPerGroup), nmN: UInt32(nm.n),
                                 nmM: UInt32(nm.m), groupsPerRow: UInt32(nm.groups), alpha: alpha, beta: beta, pad: 0),
                     groups: ((m + rowsPerGroup - 1) / rowsPerGroup, 1, 1))
    }
}
