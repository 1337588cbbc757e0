// MARK: - Vulkan SDDMM

extension CommandBatch {
    func encodeSDDMM<Element>(_ pattern: UploadedSparseMatrix<Element>, k: Int, a: Storage, b: Storage, out: Storage,
                              alpha: Float, beta: Float, on device: VulkanDevice) throws {
        let info = device.info
        let dtype = Element.dtype
        try info.requireStorage(of: Element.dtype, op: "sddmm")
        let nnz = pattern.matrix.storedCount
        try checkTexelLimit("sddmm", pattern, b: max(pattern.matrix.rows, pattern.matrix.columns) * k, info: info)
        try checkOutputRange("sddmm", bytes: out.byteCount, info: info)
        let vec4 = k % 4 == 0
        let groupSize = 8
        let kernel = Kernel<Shader.sparse_sddmm_csr>(dtype.storageVariant(base: .base, f16: .f16, bf16: .bf16), specialization: [UInt32(groupSize), vec4 ? 1 : 0])
        let groups = (nnz + groupSize - 1) / groupSize
        let maxX = info.maxComputeWorkGroupCount[0]
        let grid = groups <= maxX ? (groups, 1) : (maxX, (groups + maxX - 1) / maxX)
        try dispatch(kernel, .init(entryRows: BufferBinding(pattern.csrArrays.entryRows, SparseViews.uint32),
                                   columns: BufferBinding(pattern.csrArrays.indices, SparseViews.uint32),
                                   matrixA: BufferBinding(a, SparseViews.float(dtype, vec4: vec4)),
                                   matrixB: BufferBinding(b, SparseViews.float(dtype, vec4: vec4)),
                                   sparseOutput: BufferBinding(out, beta == 0 ? .storageWrite : .storageReadWrite)),
                     push: .init(nnz: UInt32(nnz), K: UInt32(k), alpha: alpha, beta: beta, pad: 0), groups: (grid.0, grid.1, 1))
    }
}
