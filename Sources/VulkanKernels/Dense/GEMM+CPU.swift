import CKernels

// MARK: - CPU

extension CommandBatch {
    /// OpenBLAS `cblas_sgemm` per batch (`cblas_sgemv` when N = 1); fp16 and bf16 operands are widened to
    /// fp32 first, and C rounded back once at the end. bf16 A and B go to `cblas_sbgemm` unwidened where
    /// the loaded OpenBLAS exports it (``BLASLibrary``; not Debian 12's 0.3.21).
    func cpuGEMM(_ shape: GEMMShape, a: Storage, b: Storage, c: Storage, dtype: DType, alpha: Float, beta: Float) {
        let s = shape
        let count = (a: s.strideA == 0 ? s.m * s.k : s.strideA * s.batch, b: s.strideB == 0 ? s.k * s.n : s.strideB * s.batch,
                     c: s.strideC * s.batch)
        if dtype == .float32 {
            sgemmBatched(s, a: a.hostPointer!.assumingMemoryBound(to: Float.self), b: b.hostPointer!.assumingMemoryBound(to: Float.self),
                         c: c.hostPointer!.assumingMemoryBound(to: Float.self), alpha: alpha, beta: beta)
            return
        }
        // beta == 0 must not read C (it may hold NaN); OpenBLAS honours that for the fp32 copy too.
        var c32 = beta == 0 ? [Float](repeating: 0, count: count.c) : widenedHalfWidth(c.hostPointer!, dtype: dtype, count: count.c)
        if dtype == .bfloat16 && vkk_sbgemm_available() != 0 {
            c32.withUnsafeMutableBufferPointer { c32 in
                sbgemmBatched(s, a: a.hostPointer!.assumingMemoryBound(to: UInt16.self), b: b.hostPointer!.assumingMemoryBound(to: UInt16.self),
                              c: c32.baseAddress!, alpha: alpha, beta: beta)
            }
        } else {
            var a32 = widenedHalfWidth(a.hostPointer!, dtype: dtype, count: count.a)
            var b32 = widenedHalfWidth(b.hostPointer!, dtype: dtype, count: count.b)
            a32.withUnsafeMutableBufferPointer { a in
                b32.withUnsafeMutableBufferPointer { b in
                    c32.withUnsafeMutableBufferPointer { c in
                        sgemmBatched(s, a: a.baseAddress!, b: b.baseAddress!, c: c.baseAddress!, alpha: alpha, beta: beta)
                    }
                }
            }
        }
        if dtype == .bfloat16 {
            c32.withUnsafeBufferPointer { narrowToBFloat16($0.baseAddress!, into: c.hostPointer!.assumingMemoryBound(to: BFloat16.self), count: count.c) }
            return
        }
        let c16 = c.hostPointer!.assumingMemoryBound(to: Float16.self)
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

/// `sgemmBatched` with bf16 A and B through OpenBLAS's `cblas_sbgemm` (fp32 C; N = 1 included).
func sbgemmBatched(_ s: GEMMShape, a: UnsafePointer<UInt16>, b: UnsafePointer<UInt16>, c: UnsafeMutablePointer<Float>,
                   alpha: Float, beta: Float) {
    for batch in 0..<s.batch {
        vkk_sbgemm(s.transposeA ? 1 : 0, s.transposeB ? 1 : 0, Int64(s.m), Int64(s.n), Int64(s.k), alpha, a + batch * s.strideA,
                   Int64(max(1, s.lda)), b + batch * s.strideB, Int64(max(1, s.ldb)), beta, c + batch * s.strideC, Int64(s.ldc))
    }
}

/// C = beta·C with beta == 0 writing zeros (BLAS semantics), for the K == 0 GEMV case that BLAS skips.
private func scaleInPlace(_ c: UnsafeMutablePointer<Float>, count: Int, beta: Float) {
    for index in 0..<count { c[index] = beta == 0 ? 0 : beta * c[index] }
}
