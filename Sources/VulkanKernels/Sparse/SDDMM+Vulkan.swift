// MARK: - Vulkan SDDMM

extension CommandBatch {
    func encodeSDDMM<Element>(_ pattern: UploadedSparseMatrix<Element>, k: Int, a: Storage, b: Storage, out: Storage,
                              alpha: Float, beta: Float, on device: VulkanDevice) throws {
        let info = device.info
        let f16 = Element.dtype == .float16
        try info.requireStorage(of: Element.dtype, op: "sddmm")
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
}
