/// The shapes of one (batched) GEMM, checked and resolved from its operands.
struct GEMMShape: Equatable {
    var batch: Int
    var m: Int, n: Int, k: Int
    var transposeA: Bool, transposeB: Bool
    /// Batch strides in elements; 0 when a rank-2 operand is shared by every batch.
    var strideA: Int, strideB: Int, strideC: Int
    /// Row strides of A, B, C as stored.
    var lda: Int { transposeA ? m : k }
    var ldb: Int { transposeB ? k : n }
    var ldc: Int { n }

    /// Useful floating-point operations: 2·M·N·K per batch.
    var flops: Double { 2 * Double(batch) * Double(m) * Double(n) * Double(k) }

    init<T>(op: String, a: Tensor<T>, b: Tensor<T>, c: Tensor<T>, transposeA: Bool, transposeB: Bool) throws {
        for (name, tensor) in [("A", a.shape), ("B", b.shape), ("C", c.shape)] where !(2...3).contains(tensor.count) {
            throw KernelError.invalidShape(op: op, operand: name, shape: tensor, expected: "[rows, columns] or [batch, rows, columns]")
        }
        let batch = c.rank == 3 ? c.shape[0] : 1
        for (name, shape) in [("A", a.shape), ("B", b.shape)] where shape.count == 3 && (c.rank != 3 || shape[0] != batch) {
            throw KernelError.shapeMismatch(op: op + " (\(name) batch vs C)", lhs: shape, rhs: c.shape)
        }
        let aRows = a.shape[a.rank - 2], aColumns = a.shape[a.rank - 1]
        let bRows = b.shape[b.rank - 2], bColumns = b.shape[b.rank - 1]
        let (m, k) = transposeA ? (aColumns, aRows) : (aRows, aColumns)
        let (kB, n) = transposeB ? (bColumns, bRows) : (bRows, bColumns)
        guard k == kB else { throw KernelError.shapeMismatch(op: op + " (inner dimensions of op(A) and op(B))", lhs: a.shape, rhs: b.shape) }
        guard c.shape[c.rank - 2] == m, c.shape[c.rank - 1] == n else {
            throw KernelError.invalidShape(op: op, operand: "C", shape: c.shape, expected: c.rank == 3 ? "[\(batch), \(m), \(n)]" : "[\(m), \(n)]")
        }
        guard m > 0, n > 0, batch > 0 else { throw KernelError.emptyTensor(op: op, operand: "C") }
        self.batch = batch
        self.m = m; self.n = n; self.k = k
        self.transposeA = transposeA; self.transposeB = transposeB
        strideA = a.rank == 3 ? m * k : 0
        strideB = b.rank == 3 ? k * n : 0
        strideC = m * n
    }
}

extension CommandBatch {
    /// C = alpha·op(A)·op(B) + beta·C, row-major, on this batch's backend.
    ///
    /// - A is `[M, K]` (`[K, M]` when `transposeA`), B is `[K, N]` (`[N, K]` when `transposeB`) and C is
    ///   `[M, N]`; with a leading batch dimension on C, each of A and B is either batched the same way or
    ///   rank 2 and shared by every batch.
    /// - `Float` and `Float16` storage; products and sums are accumulated in fp32.
    /// - `beta == 0` overwrites C without reading it (NaNs in C do not propagate); `K == 0` gives beta·C.
    /// - `kernel` forces one Vulkan kernel (benchmarks, tests); the CPU backend has one path and ignores it.
    /// - Throws ``KernelError`` for mismatched shapes, non-float element types, an empty C, non-finite
    ///   alpha/beta or tensors of another context, before anything runs.
    public func gemm<Element: TensorElement>(_ a: Tensor<Element>, _ b: Tensor<Element>, into c: Tensor<Element>,
                                             transposeA: Bool = false, transposeB: Bool = false,
                                             alpha: Float = 1, beta: Float = 0,
                                             kernel: GEMMKernel = .automatic) throws {
        let op = "gemm"
        try checkOperands(op, ("A", a.context), ("B", b.context), ("C", c.context), finite: [("alpha", alpha), ("beta", beta)])
        try requireFloatElement(Element.dtype, op: op)
        let shape = try GEMMShape(op: op, a: a, b: b, c: c, transposeA: transposeA, transposeB: transposeB)
        switch backend {
        case .vulkan(let device):
            try encodeGEMM(shape, a: a.storage, b: b.storage, c: c.storage, dtype: Element.dtype, alpha: alpha, beta: beta,
                           kernel: kernel, on: device)
        case .cpu:
            cpuGEMM(shape, a: a.storage, b: b.storage, c: c.storage, dtype: Element.dtype, alpha: alpha, beta: beta)
        }
    }
}

extension CommandBatch {
    @available(*, deprecated, renamed: "gemm(_:_:into:transposeA:transposeB:alpha:beta:kernel:)")
    public func gemm<Element: TensorElement>(_ a: Tensor<Element>, _ b: Tensor<Element>, into c: Tensor<Element>,
                                             transposeA: Bool = false, transposeB: Bool = false,
                                             alpha: Float = 1, beta: Float = 0, algorithm: GEMMKernel) throws {
        try gemm(a, b, into: c, transposeA: transposeA, transposeB: transposeB, alpha: alpha, beta: beta, kernel: algorithm)
    }
}

extension ComputeContext {
    /// C = alpha·op(A)·op(B) + beta·C in a batch of its own (see ``CommandBatch/gemm(_:_:into:transposeA:transposeB:alpha:beta:kernel:)``).
    public func gemm<Element: TensorElement>(_ a: Tensor<Element>, _ b: Tensor<Element>, into c: Tensor<Element>,
                                             transposeA: Bool = false, transposeB: Bool = false,
                                             alpha: Float = 1, beta: Float = 0) throws {
        try batch { try $0.gemm(a, b, into: c, transposeA: transposeA, transposeB: transposeB, alpha: alpha, beta: beta) }
    }

    /// op(A)·op(B) into a new tensor (batched when either operand has a batch dimension).
    public func matmul<Element: TensorElement>(_ a: Tensor<Element>, _ b: Tensor<Element>,
                                               transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor<Element> {
        guard (2...3).contains(a.rank), (2...3).contains(b.rank) else {
            throw KernelError.invalidShape(op: "matmul", operand: a.rank < 2 || a.rank > 3 ? "A" : "B",
                                           shape: a.rank < 2 || a.rank > 3 ? a.shape : b.shape, expected: "rank 2 or 3")
        }
        let m = transposeA ? a.shape[a.rank - 1] : a.shape[a.rank - 2]
        let n = transposeB ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
        let batch = a.rank == 3 ? a.shape[0] : (b.rank == 3 ? b.shape[0] : nil)
        let c: Tensor<Element> = try empty(shape: (batch.map { [$0] } ?? []) + [m, n])
        try gemm(a, b, into: c, transposeA: transposeA, transposeB: transposeB)
        return c
    }
}
