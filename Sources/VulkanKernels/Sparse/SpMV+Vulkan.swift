import CVulkan

// MARK: - Vulkan SpMV

extension CommandBatch {
    func encodeSpMV<Element>(_ a: UploadedSparseMatrix<Element>, x: Storage, y: Storage, alpha: Float, beta: Float,
                             on device: VulkanDevice) throws {
        let info = device.info
        let f16 = Element.dtype == .float16
        try info.requireStorage(of: Element.dtype, op: "spmv")
        guard info.supportsSubgroupArithmetic else { throw KernelError.unsupportedOnDevice(op: "spmv", feature: "subgroup arithmetic") }
        try checkTexelLimit("spmv", a, b: a.matrix.columns, info: info)
        try checkOutputRange("spmv", bytes: y.byteCount, info: info)
        let lanes = info.subgroupLanes(.whereverAvailable)
        let m = a.matrix.rows
        let rowsPerGroup = min(16, max(1, m / 1024))
        let scalar = SparseViews.float(f16, vec4: false)
        var nm = (n: 0, m: 0, groups: 0)
        let bindings: [BufferBinding]
        if case .bsr(let matrix) = a.matrix {
            nm = (0, matrix.blockSize, 0)
            let pointers = BufferBinding(a.buffers["pointers"]!, SparseViews.uint32)
            bindings = [pointers, BufferBinding(a.buffers["indices"]!, SparseViews.uint32), BufferBinding(a.buffers["values"]!, scalar),
                        pointers, BufferBinding(x, scalar), BufferBinding(y, beta == 0 ? .storageWrite : .storageReadWrite)]
        } else if case .nm(let matrix) = a.matrix {
            nm = (matrix.n, matrix.m, matrix.groupsPerRow)
            let positions = BufferBinding(a.buffers["positions"]!, .texel(VK_FORMAT_R8_UINT, texelBytes: 1))
            bindings = [positions, positions, BufferBinding(a.buffers["values"]!, scalar), positions, BufferBinding(x, scalar),
                        BufferBinding(y, beta == 0 ? .storageWrite : .storageReadWrite)]
        } else {
            // Columns and values 4 entries per texel. lavapipe, DLMC transformer FFN
            // 2048 x 512, two alternating runs each: 50% 1099-1100 us (was 1250-1562), 70% 620-885 (849-1186),
            // 90% 432-630 (510-708); at 98% dispatch overhead dominates either way.
            bindings = [BufferBinding(a.buffers["pointers"]!, SparseViews.uint32),
                        BufferBinding(a.buffers["indices"]!, .texel(VK_FORMAT_R32G32B32A32_UINT, texelBytes: 16)),
                        BufferBinding(a.buffers["values"]!, SparseViews.float(f16, vec4: true)),
                        BufferBinding(a.buffers["rowOrder"]!, SparseViews.uint32),
                        BufferBinding(x, scalar), BufferBinding(y, beta == 0 ? .storageWrite : .storageReadWrite)]
        }
        let shader: EmbeddedShader = switch (a.matrix, f16) {
        case (.csr, false): .sparse_spmv_csr
        case (.csr, true): .sparse_spmv_csr_f16
        case (.nm, false): .sparse_spmv_csr_nm
        case (.nm, true): .sparse_spmv_csr_nm_f16
        case (.bsr, false): .sparse_spmv_csr_bsr
        case (.bsr, true): .sparse_spmv_csr_bsr_f16
        }
        let spec = KernelSpec(shader: shader, bindings: [.uniformTexelBuffer, .uniformTexelBuffer, .uniformTexelBuffer, .uniformTexelBuffer,
                                                         .uniformTexelBuffer, .storageBuffer],
                              pushConstantBytes: 36, specialization: [UInt32(lanes)], requiredSubgroupSize: lanes)
        let push: [UInt32] = [UInt32(m), UInt32(a.matrix.columns), UInt32(rowsPerGroup), UInt32(nm.n), UInt32(nm.m), UInt32(nm.groups),
                              alpha.bitPattern, beta.bitPattern, 0]
        try dispatch(spec, bindings, push: push, groups: ((m + rowsPerGroup - 1) / rowsPerGroup, 1, 1))
    }
}
