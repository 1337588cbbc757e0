import CKernels
import CVulkan

/// Sparse matrix × vector: y = alpha·A·x + beta·y.
extension CommandBatch {
    /// y = alpha·A·x + beta·y with A sparse M×K, x a `[K]` tensor and y a `[M]` tensor (`Float` or
    /// `Float16` storage, fp32 accumulation; `beta == 0` never reads y). Every format runs the
    /// matrix-vector kernel Shaders/sparse/spmv_csr.comp (a subgroup per row, lanes striding over its
    /// entries and reducing with subgroupAdd; CSR rows longest first).
    public func spmv<Element>(_ a: UploadedSparseMatrix<Element>, _ x: Tensor<Element>, into y: Tensor<Element>,
                              alpha: Float = 1, beta: Float = 0) throws {
        let op = "spmv"
        try ensureRecording(op)
        try checkOwnership(op, ("A", a.context), ("x", x.context), ("y", y.context))
        try checkFinite(op, ("alpha", alpha), ("beta", beta))
        guard x.shape == [a.matrix.columns] else { throw KernelError.invalidShape(op: op, operand: "x", shape: x.shape, expected: "[\(a.matrix.columns)]") }
        guard y.shape == [a.matrix.rows] else { throw KernelError.invalidShape(op: op, operand: "y", shape: y.shape, expected: "[\(a.matrix.rows)]") }
        guard a.matrix.rows > 0 else { throw KernelError.emptyTensor(op: op, operand: "y") }
        guard a.matrix.columns > 0 else { throw KernelError.emptyTensor(op: op, operand: "x") }
        let shape = try SpMMShape(op: op, a: a.matrix, b: [a.matrix.columns, 1], c: [a.matrix.rows, 1], linear: false)
        if !context.isVulkan {
            cpuSpMV(a, x: x.storage, y: y.storage, alpha: alpha, beta: beta)
            return
        }
        _ = shape
        try encodeSpMV(a, x: x.storage, y: y.storage, alpha: alpha, beta: beta)
    }

    /// ``spmv(_:_:into:alpha:beta:)`` with a host-side matrix, uploaded for this batch.
    public func spmv<Element>(_ a: SparseMatrix<Element>, _ x: Tensor<Element>, into y: Tensor<Element>,
                              alpha: Float = 1, beta: Float = 0) throws {
        try spmv(try context.upload(a), x, into: y, alpha: alpha, beta: beta)
    }

    func encodeSpMV<Element>(_ a: UploadedSparseMatrix<Element>, x: Storage, y: Storage, alpha: Float, beta: Float) throws {
        let info = context.device!.info
        let f16 = Element.dtype == .float16
        if f16 && !info.supports16BitStorage { throw KernelError.unsupportedOnDevice(op: "spmv", feature: "16-bit storage (fp16 tensors)") }
        guard info.supportsSubgroupArithmetic else { throw KernelError.unsupportedOnDevice(op: "spmv", feature: "subgroup arithmetic") }
        try checkTexelLimit("spmv", a, b: a.matrix.columns, info: info)
        try checkOutputRange("spmv", bytes: y.byteCount, info: info)
        let lanes = info.supportsSubgroupSizeControl && (info.minSubgroupSize...info.maxSubgroupSize).contains(8) ? 8 : info.subgroupSize
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

extension ComputeContext {
    /// A·x into a new `[M]` tensor, in a batch of its own.
    public func spmv<Element>(_ a: SparseMatrix<Element>, _ x: Tensor<Element>) throws -> Tensor<Element> {
        let y: Tensor<Element> = try empty(shape: [a.rows])
        try batch { try $0.spmv(a, x, into: y) }
        return y
    }
}

// MARK: - CPU

extension CommandBatch {
    /// Rows in stored-entry-balanced chunks on all cores; each row a gather-dot in fp32 (CKernels).
    /// fp32 tensors are read and written in place (alpha and beta applied by the kernel); fp16 ones go
    /// through fp32 copies of x and of the row sums.
    func cpuSpMV<Element: FloatingPointElement>(_ uploaded: UploadedSparseMatrix<Element>, x: Storage, y: Storage, alpha: Float, beta: Float) {
        let a = uploaded.matrix, values = uploaded.hostValues
        let chunks = SparseCPU.chunkBoundaries(a, work: 1)
        func run(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, alpha: Float, beta: Float) {
            SparseCPU.withRows(a, values: values) { rows in
                let shared = UncheckedSendable((rows, x, y))
                CPUParallel.forEachChunk(chunks.count - 1, costPerItem: 1_000_000) { range in
                    for chunk in range {
                        vkk_spmv_rows(shared.value.0, shared.value.1, shared.value.2, Int64(chunks[chunk]), Int64(chunks[chunk + 1]),
                                      alpha, beta)
                    }
                }
            }
        }
        if Element.self == Float.self {
            run(UnsafePointer(x.hostPointer!.assumingMemoryBound(to: Float.self)), y.hostPointer!.assumingMemoryBound(to: Float.self),
                alpha: alpha, beta: beta)
            return
        }
        let xFloat = SparseCPU.widened(x.hostPointer!.assumingMemoryBound(to: Element.self), count: a.columns)
        var sums = [Float](repeating: 0, count: a.rows)
        xFloat.withUnsafeBufferPointer { x in
            sums.withUnsafeMutableBufferPointer { sums in run(x.baseAddress!, sums.baseAddress!, alpha: 1, beta: 0) }
        }
        sums.withUnsafeBufferPointer { rowSums in
            SparseCPU.storeScaled(into: y.hostPointer!, as: Element.self, count: a.rows, alpha: alpha, beta: beta) { rowSums[$0] }
        }
    }
}
