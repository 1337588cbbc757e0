import CKernels

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
    /// - `algorithm` forces one Vulkan kernel (benchmarks, tests); the CPU backend has one path and ignores it.
    /// - Throws ``KernelError`` for mismatched shapes, non-float element types, an empty C, non-finite
    ///   alpha/beta or tensors of another context, before anything runs.
    public func gemm<Element: TensorElement>(_ a: Tensor<Element>, _ b: Tensor<Element>, into c: Tensor<Element>,
                                             transposeA: Bool = false, transposeB: Bool = false,
                                             alpha: Float = 1, beta: Float = 0,
                                             algorithm: GEMMAlgorithm = .automatic) throws {
        let op = "gemm"
        try ensureRecording(op)
        guard Element.dtype == .float32 || Element.dtype == .float16 else { throw KernelError.unsupportedDType(op: op, Element.dtype) }
        try checkOwnership(op, ("A", a.context), ("B", b.context), ("C", c.context))
        try checkFinite(op, ("alpha", alpha), ("beta", beta))
        let shape = try GEMMShape(op: op, a: a, b: b, c: c, transposeA: transposeA, transposeB: transposeB)
        if context.isVulkan {
            try encodeGEMM(shape, a: a.storage, b: b.storage, c: c.storage, dtype: Element.dtype, alpha: alpha, beta: beta,
                           algorithm: algorithm)
        } else {
            cpuGEMM(shape, a: a.storage, b: b.storage, c: c.storage, dtype: Element.dtype, alpha: alpha, beta: beta)
        }
    }

    func checkOwnership(_ op: String, _ operands: (String, ComputeContext)...) throws {
        for (name, owner) in operands where owner !== context { throw KernelError.foreignTensor(op: op, operand: name) }
    }

    func checkFinite(_ op: String, _ values: (String, Float)...) throws {
        for (name, value) in values where !value.isFinite { throw KernelError.invalidParameter(op: op, name: name, value: "\(value)") }
    }
}

extension ComputeContext {
    /// C = alpha·op(A)·op(B) + beta·C in a batch of its own (see ``CommandBatch/gemm(_:_:into:transposeA:transposeB:alpha:beta:)``).
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

// MARK: - CPU

extension CommandBatch {
    /// OpenBLAS `cblas_sgemm` per batch (`cblas_sgemv` when N = 1); fp16 operands are widened to fp32
    /// first, and C rounded back once at the end.
    func cpuGEMM(_ shape: GEMMShape, a: Storage, b: Storage, c: Storage, dtype: DType, alpha: Float, beta: Float) {
        let s = shape
        let count = (a: s.strideA == 0 ? s.m * s.k : s.strideA * s.batch, b: s.strideB == 0 ? s.k * s.n : s.strideB * s.batch,
                     c: s.strideC * s.batch)
        if dtype == .float32 {
            sgemmBatched(s, a: a.hostPointer!.assumingMemoryBound(to: Float.self), b: b.hostPointer!.assumingMemoryBound(to: Float.self),
                         c: c.hostPointer!.assumingMemoryBound(to: Float.self), alpha: alpha, beta: beta)
            return
        }
        var a32 = widenedFloat16(a.hostPointer!.assumingMemoryBound(to: Float16.self), count: count.a)
        var b32 = widenedFloat16(b.hostPointer!.assumingMemoryBound(to: Float16.self), count: count.b)
        let c16 = c.hostPointer!.assumingMemoryBound(to: Float16.self)
        // beta == 0 must not read C (it may hold NaN); OpenBLAS honours that for the fp32 copy too.
        var c32 = beta == 0 ? [Float](repeating: 0, count: count.c) : widenedFloat16(c16, count: count.c)
        a32.withUnsafeMutableBufferPointer { a in
            b32.withUnsafeMutableBufferPointer { b in
                c32.withUnsafeMutableBufferPointer { c in
                    sgemmBatched(s, a: a.baseAddress!, b: b.baseAddress!, c: c.baseAddress!, alpha: alpha, beta: beta)
                }
            }
        }
        let source = UncheckedSendable(c32.withUnsafeBufferPointer { $0.baseAddress! })
        let destination = UncheckedSendable(c16)
        CPUParallel.forEachChunk(count.c, costPerItem: 1) { range in
            for index in range { destination.value[index] = Float16(source.value[index]) }
        }
        withExtendedLifetime(c32) {}
    }
}

/// Row-major `cblas_sgemm` over the batch (OpenBLAS threads each call), through the run-time loaded BLAS
/// whose kernel fits this CPU (``BLASLibrary``).
func sgemmBatched(_ s: GEMMShape, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                  alpha: Float, beta: Float) {
    for batch in 0..<s.batch {
        let aBatch = a + batch * s.strideA, bBatch = b + batch * s.strideB, cBatch = c + batch * s.strideC
        if s.n == 1 {
            // y = alpha·op(A)·x + beta·y; x is B's single column (stride ldb when B is stored N×K = 1×K).
            vkk_sgemv(s.transposeA ? 1 : 0, Int64(s.transposeA ? s.k : s.m), Int64(s.transposeA ? s.m : s.k), alpha,
                      aBatch, Int64(max(1, s.lda)), bBatch, Int64(s.transposeB ? 1 : max(1, s.ldb)), beta, cBatch, 1)
            if s.k == 0 { scaleInPlace(cBatch, count: s.m, beta: beta) }
        } else {
            vkk_sgemm(s.transposeA ? 1 : 0, s.transposeB ? 1 : 0, Int64(s.m), Int64(s.n), Int64(s.k), alpha,
                      aBatch, Int64(max(1, s.lda)), bBatch, Int64(max(1, s.ldb)), beta, cBatch, Int64(s.ldc))
        }
    }
}

/// C = beta·C with beta == 0 writing zeros (BLAS semantics), for the K == 0 GEMV case that BLAS skips.
private func scaleInPlace(_ c: UnsafeMutablePointer<Float>, count: Int, beta: Float) {
    for index in 0..<count { c[index] = beta == 0 ? 0 : beta * c[index] }
}
