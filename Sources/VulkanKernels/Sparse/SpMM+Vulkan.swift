import CVulkan

// MARK: - Vulkan SpMM
//
// CSR (and N:M where the tiled kernel does not apply) run Shaders/sparse/spmm_csr.comp (entries shared
// across a subgroup by shuffles, rows in descending-length order); N:M runs Shaders/sparse/spmm_nm.comp
// (register tiles: every B fetch reused by 16 rows); BSR runs Shaders/sparse/spmm_bsr.comp (dense
// micro-tiles per block). Every input is read through a uniform texel view, the fast load path on CPU
// drivers (DESIGN.md).

/// Which SpMM kernel runs on a Vulkan device. `.automatic` picks by format and shape; the others exist for
/// benchmarks and tests, and throw ``KernelError/invalidParameter(op:name:value:)`` when the matrix or shape
/// cannot use them. The CPU backend has one path and ignores the choice.
public enum SpMMKernel: String, Sendable, CaseIterable {
    case automatic
    /// `spmm_csr.comp`, CSR or N:M: each stored entry is fetched once per subgroup and shared by shuffles;
    /// each lane then fetches B for its columns. Any shape, both forms.
    case rowEntries
    /// `spmm_nm.comp`, N:M only: a 16-row × 4·subgroup-column register tile per subgroup, each B fetch reused
    /// by all 16 rows. Needs N:M with N in {1, 2, 4}, 4/N·M ≤ 16, every row's stored values a multiple of 4
    /// (2:4: K a multiple of 8), and N (columns of B) a multiple of 4 — or, in the `linear` form, K a
    /// multiple of 4 and 4/N·M a multiple of 4 (any token count).
    case nmTiles
    /// `spmm_bsr.comp`, BSR only: the dense subgroup GEMM's register tile applied block by block.
    case blockTiles
}

extension SpMMKernel {
    /// Rows of C per workgroup of the N:M tiled kernel (16 and 32 measured alike on lavapipe; 16 keeps
    /// fewer registers live, which GPUs prefer).
    static let nmTileRows = 16

    /// Whether `spmm_nm.comp` can run this product (see ``nmTiles``).
    static func nmTilesApply<Element>(_ matrix: NMSparseMatrix<Element>, _ s: SpMMShape) -> Bool {
        guard [1, 2, 4].contains(matrix.n), 4 / matrix.n * matrix.m <= 16, (matrix.groupsPerRow * matrix.n) % 4 == 0 else { return false }
        // B as vec4 texels: rows of B (N wide), or for the linear form rows of X (K wide) read a step at a time.
        return s.linear ? s.k % 4 == 0 && (4 / matrix.n * matrix.m) % 4 == 0 : s.n % 4 == 0
    }

    /// The kernel `.automatic` stands for, or the forced one after checking it applies. The choice is the
    /// same on CPU drivers and GPUs: each format's tiled kernel does less work per output than the entry
    /// kernel on both (B fetches shared by 16 rows, shuffles instead of shared memory); a GPU-specific
    /// variant (B staged in shared memory, indexed by position) is not written, and nothing here was
    /// measured on a GPU.
    static func resolve<Element>(_ kernel: SpMMKernel, _ a: SparseMatrix<Element>, _ s: SpMMShape, op: String) throws -> SpMMKernel {
        func refuse(_ reason: String) -> KernelError {
            KernelError.invalidParameter(op: op, name: "kernel", value: "\(kernel.rawValue) \(reason)")
        }
        switch (kernel, a) {
        case (.automatic, .bsr): return .blockTiles
        case (.automatic, .csr): return .rowEntries
        case (.automatic, .nm(let matrix)): return nmTilesApply(matrix, s) ? .nmTiles : .rowEntries
        case (.blockTiles, .bsr), (.rowEntries, .csr), (.rowEntries, .nm): return kernel
        case (.nmTiles, .nm(let matrix)):
            guard nmTilesApply(matrix, s) else {
                throw refuse("needs an N:M pattern with N in {1, 2, 4} and 4/N·M <= 16, rows of a multiple of 4 stored values, "
                             + "and N % 4 == 0 (linear form: K % 4 == 0 and 4/N·M % 4 == 0); got \(matrix.n):\(matrix.m), \(matrix.groupsPerRow * matrix.n) "
                             + "stored values per row, N = \(s.n)\(s.linear ? ", linear form" : "")")
            }
            return kernel
        default:
            throw refuse("does not run \(a.formatName) matrices")
        }
    }
}

extension CommandBatch {
    func encodeSpMM<Element>(_ a: UploadedSparseMatrix<Element>, _ s: SpMMShape, b: Storage, c: Storage,
                             alpha: Float, beta: Float, kernel: SpMMKernel, on device: VulkanDevice) throws {
        let op = s.linear ? "linear" : "spmm"
        let info = device.info
        let dtype = Element.dtype
        try info.requireStorage(of: Element.dtype, op: op)
        guard info.supportsSubgroupShuffle else { throw KernelError.unsupportedOnDevice(op: op, feature: "subgroup shuffle") }
        let lanes = info.subgroupLanes(.whereverAvailable)
        try checkTexelLimit(op, a, b: s.k * s.n, info: info)
        try checkOutputRange(op, bytes: c.byteCount, info: info)
        let chosen = try SpMMKernel.resolve(kernel, a.matrix, s, op: op)
        var b = b
        // The linear form with N and K multiples of 4: X is transposed to K × N first (one cheap pass), so
        // the kernels read vec4 rows of B instead of 4 scalars from 4 rows of X per piece (about 8× faster
        // on lavapipe; Benchmarks/RESULTS.md, "Measurements behind choices in the code").
        let pretransposed = s.linear && s.n % 4 == 0 && s.k % 4 == 0
        if pretransposed {
            let transposed = try context.empty(Element.self, shape: [s.k, s.n]).storage
            try dispatch(Kernel<Shader.sparse_transpose_tokens>(dtype.storageVariant(base: .base, f16: .f16, bf16: .bf16), specialization: [8]),
                         .init(tokens: BufferBinding(b, SparseViews.float(dtype, vec4: true)), transposed: BufferBinding(transposed, .storageWrite)),
                         push: .init(N: UInt32(s.n), K: UInt32(s.k)), groups: ((s.k / 4 + 7) / 8, s.n / 4, 1))
            b = transposed
        }
        let linearMode: UInt32 = s.linear ? (pretransposed ? 2 : 1) : 0
        let vec4 = (!s.linear || pretransposed) && s.n % 4 == 0
        let bView = SparseViews.float(dtype, vec4: vec4)
        let output = BufferBinding(c, beta == 0 ? .storageWrite : .storageReadWrite)
        switch (chosen, a.matrix) {
        case (.nmTiles, .nm(let matrix)):
            let rows = SpMMKernel.nmTileRows
            let kernel = Kernel<Shader.sparse_spmm_nm>(dtype.storageVariant(base: .base, f16: .f16, bf16: .bf16),
                                                       specialization: [UInt32(lanes), UInt32(rows), UInt32(matrix.n), UInt32(matrix.m), linearMode],
                                                       requiredSubgroupSize: lanes)
            // Positions are bytes; the R32UI view hands a lane the 4 positions of one values texel at once.
            try dispatch(kernel, .init(values: BufferBinding(a.nmArrays.values, SparseViews.float(dtype, vec4: true)),
                                       positions: BufferBinding(a.nmArrays.positions, SparseViews.uint32),
                                       matrixB: BufferBinding(b, SparseViews.float(dtype, vec4: true)), sparseOutput: output),
                         push: .init(M: UInt32(s.m), N: UInt32(s.n), K: UInt32(s.k), groupsPerRow: UInt32(matrix.groupsPerRow),
                                     alpha: alpha, beta: beta),
                         groups: ((s.n + 4 * lanes - 1) / (4 * lanes), (s.m + rows - 1) / rows, 1))
        case (_, .csr), (_, .nm):
            let vec4PerLane = [1, 2, 4, 8].first { 4 * lanes * $0 >= s.n } ?? 8
            let rowsPerGroup = min(8, max(1, s.m / 512))
            var nm = (n: 0, m: 0, groups: 0)
            let bindings: Shader.sparse_spmm_csr.Bindings
            if case .nm(let matrix) = a.matrix {
                nm = (matrix.n, matrix.m, matrix.groupsPerRow)
                // The N:M build reads positions for the CSR arrays it does not have (never pointers or row order).
                let positions = BufferBinding(a.nmArrays.positions, .texel(VK_FORMAT_R8_UINT, texelBytes: 1))
                bindings = .init(rowPointers: positions, columns: positions,
                                 values: BufferBinding(a.nmArrays.values, SparseViews.float(dtype, vec4: false)),
                                 rowOrder: positions, matrixB: BufferBinding(b, bView), sparseOutput: output)
            } else {
                let arrays = a.csrArrays
                bindings = .init(rowPointers: BufferBinding(arrays.pointers, SparseViews.uint32),
                                 columns: BufferBinding(arrays.indices, SparseViews.uint32),
                                 values: BufferBinding(arrays.values, SparseViews.float(dtype, vec4: false)),
                                 rowOrder: BufferBinding(arrays.rowOrder, SparseViews.uint32),
                                 matrixB: BufferBinding(b, bView), sparseOutput: output)
            }
            let isNM = nm.m > 0
            let variant: Shader.sparse_spmm_csr.Variant = isNM ? dtype.storageVariant(base: .nm, f16: .nm_f16, bf16: .nm_bf16)
                                                               : dtype.storageVariant(base: .base, f16: .f16, bf16: .bf16)
            let kernel = Kernel<Shader.sparse_spmm_csr>(variant, specialization: [UInt32(lanes), UInt32(vec4PerLane), vec4 ? 1 : 0, linearMode],
                                                        requiredSubgroupSize: lanes)
            let columnsPerGroup = 4 * lanes * vec4PerLane
            try dispatch(kernel, bindings,
                         push: .init(M: UInt32(s.m), N: UInt32(s.n), K: UInt32(s.k), rowsPerGroup: UInt32(rowsPerGroup),
                                     nmN: UInt32(nm.n), nmM: UInt32(nm.m), groupsPerRow: UInt32(nm.groups), alpha: alpha, beta: beta),
                         groups: ((s.n + columnsPerGroup - 1) / columnsPerGroup, (s.m + rowsPerGroup - 1) / rowsPerGroup, 1))
        case (_, .bsr(let matrix)):
            let tileRows = min(matrix.blockSize, 16)
            let kernel = Kernel<Shader.sparse_spmm_bsr>(dtype.storageVariant(base: .base, f16: .f16, bf16: .bf16),
                                                        specialization: [UInt32(lanes), UInt32(matrix.blockSize), vec4 ? 1 : 0, linearMode,
                                                                         UInt32(tileRows)],
                                                        requiredSubgroupSize: lanes)
            let arrays = a.bsrArrays
            try dispatch(kernel, .init(blockRowPointers: BufferBinding(arrays.pointers, SparseViews.uint32),
                                       blockColumns: BufferBinding(arrays.indices, SparseViews.uint32),
                                       values: BufferBinding(arrays.values, SparseViews.float(dtype, vec4: true)),
                                       matrixB: BufferBinding(b, bView), sparseOutput: output),
                         push: .init(M: UInt32(s.m), N: UInt32(s.n), K: UInt32(s.k), alpha: alpha, beta: beta),
                         groups: ((s.n + 4 * lanes - 1) / (4 * lanes), s.m / tileRows, 1))
        }
    }

    /// The output is one storage-buffer binding, so it must fit `maxStorageBufferRange` (128 MiB on lavapipe).
    func checkOutputRange(_ op: String, bytes: Int, info: DeviceInfo) throws {
        guard bytes <= info.maxStorageBufferRange else {
            throw KernelError.exceedsDeviceLimit(op: op, what: "output bytes", value: bytes, limit: info.maxStorageBufferRange)
        }
    }

    /// Texel views address at most `maxTexelBufferElements` texels; larger operands are refused up front.
    func checkTexelLimit<Element>(_ op: String, _ a: UploadedSparseMatrix<Element>, b: Int, info: DeviceInfo) throws {
        for (what, count) in [("stored values", a.matrix.storedCount), ("elements of the dense operand", b)]
        where count > info.maxTexelBufferElements {
            throw KernelError.exceedsDeviceLimit(op: op, what: what, value: count, limit: info.maxTexelBufferElements)
        }
    }
}

/// Texel view formats of the sparse kernels' inputs.
enum SparseViews {
    static let uint32 = BufferBinding.Kind.texel(VK_FORMAT_R32_UINT, texelBytes: 4)

    static func float(_ f16: Bool, vec4: Bool) -> BufferBinding.Kind { .floatTexels(half: f16, vec4: vec4) }
    static func float(_ dtype: DType, vec4: Bool) -> BufferBinding.Kind { .floatTexels(dtype, vec4: vec4) }
}
