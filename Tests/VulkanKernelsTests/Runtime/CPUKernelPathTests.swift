import CKernels
import VulkanKernels
import XCTest

/// Every code path of the C kernels this CPU runs (scalar, AVX2, AVX-512; forced through
/// vkk_cpu_set_path, the setter behind VKK_CPU_PATH) against the same float64 references: SpMM in every
/// format and both B layouts, the linear form, SpMV, SDDMM's dot product, attention prefill, decode and
/// grouped-query tiles, and the fp16 widening.
final class CPUKernelPathTests: XCTestCase {
    /// fp32 accumulation over at most ~1000 products of values ≤ 1, in a different order per path:
    /// 2^-24 · K' relative to Σ|terms| stays below 1e-5 (the sparse family's own bound).
    static let tolerance = 1e-5

    override func tearDown() {
        vkk_cpu_set_path(-1)
        super.tearDown()
    }

    /// Runs `body` once per path this CPU runs, with the path forced.
    func onEveryCPUPath(_ body: (String) throws -> Void) rethrows {
        let best = vkk_cpu_best_path_for(vkk_cpu_features())
        for path in Int32(VKK_PATH_SCALAR)...best {
            vkk_cpu_set_path(path)
            XCTAssertEqual(vkk_cpu_path(), path)
            try body(String(cString: vkk_cpu_path_name(path)))
        }
        vkk_cpu_set_path(-1)
    }

    func testForcedPathNeverExceedsTheCPU() {
        vkk_cpu_set_path(Int32(VKK_PATH_AVX512))
        XCTAssertEqual(vkk_cpu_path(), min(Int32(VKK_PATH_AVX512), vkk_cpu_best_path_for(vkk_cpu_features())))
        vkk_cpu_set_path(Int32(VKK_PATH_SCALAR))
        XCTAssertEqual(CPUKernelPath.current, "scalar")
    }

    func testSpMMEveryFormatBothBLayoutsAndLinearOnEveryPath() throws {
        let context = try ComputeContext(backend: .cpu)
        try onEveryCPUPath { path in
            // K ≥ 1024 packs B into zero-padded tiles, K = 100 reads it in place; N = 45 leaves a narrow last
            // tile, N = 64 / 256 full ones (the AVX-512 path's 64-column tiles and their remainders). With
            // packed B, CSR takes the K-blocked kernel: density 0.2 (208 entries a row) in 128-row slices of
            // B, K = 1040 ending in a partial slice; density 0.01 in one slice; N = 96 is a tile pair and a
            // single tile; 72 rows are a 64-row block and a partial one. Each runs with tile pairs and, forced
            // by VKK_CSR_SINGLE_TILE, with single tiles (the choice on machines with a small L2).
            for (k, n, density, rows) in [(1040, 45, 0.2, 24), (1040, 96, 0.2, 72), (1040, 96, 0.01, 72), (100, 45, 0.2, 24),
                                          (100, 64, 0.2, 24), (64, 256, 0.2, 24), (48, 7, 0.2, 24)] {
              for single in k >= 1024 ? [false, true] : [false] {
                if single { setenv("VKK_CSR_SINGLE_TILE", "1", 1) }
                defer { unsetenv("VKK_CSR_SINGLE_TILE") }
                let dense = SparseReference.sparseDense(rows: rows, columns: k, density: density, seed: UInt64(k * 3 + n))
                var matrices: [(SparseMatrix<Float>, [Float])] = [(.csr(try CSRMatrix(dense: dense, rows: rows, columns: k)), dense)]
                matrices.append((.bsr(try BSRMatrix(dense: dense, rows: rows, columns: k, blockSize: 4)), dense))
                let nm = try SparsePruning.nm(dense, rows: rows, columns: k, n: 2, m: 4)
                matrices.append((.nm(nm), nm.toDense()))
                for (matrix, aDense) in matrices {
                    for (alpha, beta) in [(Float(1), Float(0)), (0.75, -0.5)] {
                        try checkSpMM(matrix, aDense, n: n, alpha: alpha, beta: beta, linear: false, context: context, path: path)
                    }
                    try checkSpMM(matrix, aDense, n: n, alpha: 1.5, beta: 0.5, linear: true, context: context, path: path)
                }
              }
            }
        }
    }

    private func checkSpMM(_ a: SparseMatrix<Float>, _ aDense: [Float], n: Int, alpha: Float, beta: Float, linear: Bool,
                           context: ComputeContext, path: String) throws {
        let (m, k) = (a.rows, a.columns)
        let b = [Float].random(count: k * n, seed: UInt64(m + n)), c = [Float].random(count: m * n, seed: 5)
        let ad = aDense.map { Double($0) }, bd = b.map { Double($0) }, cd = c.map { Double($0) }
        let want = SparseReference.matmul(ad, bd, cd, m: m, n: n, k: k, alpha: Double(alpha), beta: Double(beta))
        let scale = SparseReference.matmul(ad.map(abs), bd.map(abs), cd.map(abs), m: m, n: n, k: k, alpha: Double(abs(alpha)), beta: Double(abs(beta)))
        var got = [Double](repeating: 0, count: m * n)
        if linear {
            var x = [Float](repeating: 0, count: n * k), y = [Float](repeating: 0, count: n * m)
            for p in 0..<k { for j in 0..<n { x[j * k + p] = b[p * n + j] } }
            for i in 0..<m { for j in 0..<n { y[j * m + i] = c[i * n + j] } }
            let yt = try context.tensor(y, shape: [n, m])
            try context.batch { try $0.linear(try context.tensor(x, shape: [n, k]), weight: a, into: yt, alpha: alpha, beta: beta) }
            let out = try yt.toArray()
            for i in 0..<m { for j in 0..<n { got[i * n + j] = Double(out[j * m + i]) } }
        } else {
            let ct = try context.tensor(beta == 0 ? [Float](repeating: .nan, count: m * n) : c, shape: [m, n])
            try context.batch { try $0.spmm(a, try context.tensor(b, shape: [k, n]), into: ct, alpha: alpha, beta: beta) }
            got = try ct.toArray().map { Double($0) }
        }
        let want0 = beta == 0 ? SparseReference.matmul(ad, bd, cd, m: m, n: n, k: k, alpha: Double(alpha), beta: 0) : want
        SparseReference.assertClose(got, want0, scale: scale, tolerance: Self.tolerance,
                                    "\(path): \(linear ? "linear" : "spmm") \(a.formatName) \(m)×\(k)·N=\(n) alpha \(alpha) beta \(beta)")
    }

    func testSpMVAndSDDMMOnEveryPath() throws {
        let context = try ComputeContext(backend: .cpu)
        try onEveryCPUPath { path in
            for (rows, columns) in [(40, 1000), (33, 70)] {
                let dense = SparseReference.sparseDense(rows: rows, columns: columns, density: 0.3, seed: UInt64(rows))
                let csr = try CSRMatrix(dense: dense, rows: rows, columns: columns)
                let x = [Float].random(count: columns, seed: 8)
                let y = try context.tensor([Float](repeating: .nan, count: rows), shape: [rows])
                try context.batch { try $0.spmv(.csr(csr), try context.tensor(x, shape: [columns]), into: y, alpha: 2, beta: 0) }
                let ad = dense.map { Double($0) }, xd = x.map { Double($0) }, zero = [Double](repeating: 0, count: rows)
                SparseReference.assertClose(try y.toArray().map { Double($0) },
                                            SparseReference.matmul(ad, xd, zero, m: rows, n: 1, k: columns, alpha: 2, beta: 0),
                                            scale: SparseReference.matmul(ad.map(abs), xd.map(abs), zero, m: rows, n: 1, k: columns, alpha: 2, beta: 0),
                                            tolerance: Self.tolerance, "\(path): spmv \(rows)×\(columns)")
            }
            // SDDMM: out(i, j) = dot(A row i, B row j) on the pattern's entries; K = 37 leaves vector tails.
            let k = 37, rows = 20, columns = 30
            let pattern = try CSRMatrix(dense: SparseReference.sparseDense(rows: rows, columns: columns, density: 0.4, seed: 9), rows: rows, columns: columns)
            let a = [Float].random(count: rows * k, seed: 10), b = [Float].random(count: columns * k, seed: 11)
            let result = try context.sddmm(try context.tensor(a, shape: [rows, k]), try context.tensor(b, shape: [columns, k]), pattern: pattern)
            for i in 0..<rows {
                for e in Int(pattern.rowPointers[i])..<Int(pattern.rowPointers[i + 1]) {
                    let j = Int(pattern.columnIndices[e])
                    var want = 0.0, scale = 0.0
                    for p in 0..<k { want += Double(a[i * k + p]) * Double(b[j * k + p]); scale += abs(Double(a[i * k + p]) * Double(b[j * k + p])) }
                    XCTAssertLessThanOrEqual(abs(Double(result.values[e]) - want), Self.tolerance * (scale + 1), "\(path): sddmm (\(i), \(j))")
                }
            }
        }
    }

    func testAttentionPrefillDecodeAndGroupedHeadsOnEveryPath() throws {
        let context = try ComputeContext(backend: .cpu)
        try onEveryCPUPath { _ in
            // Head dims that are and are not multiples of the vector widths; more keys than one block.
            for (d, keys) in [(64, 150), (40, 70), (128, 64), (7, 33)] {
                try checkAttention(AttentionCase(heads: 2, kvHeads: 2, queryLength: 37, keyLength: keys, headDim: d), Float.self, on: context)
                try checkAttention(AttentionCase(heads: 2, kvHeads: 2, queryLength: 37, keyLength: keys, headDim: d, mask: .causal()),
                                   Float.self, on: context)
            }
            // Decode (one query row) and grouped-query tiles (4 query heads per K/V head).
            try checkAttention(AttentionCase(heads: 4, kvHeads: 4, queryLength: 1, keyLength: 300, headDim: 64), Float.self, on: context)
            // Few rows with V wider than 64 columns: P·V walks 16 keys at a time through every column chunk.
            try checkAttention(AttentionCase(heads: 4, kvHeads: 4, queryLength: 1, keyLength: 300, headDim: 128), Float.self, on: context)
            try checkAttention(AttentionCase(heads: 8, kvHeads: 2, queryLength: 1, keyLength: 150, headDim: 80, mask: .causal()),
                               Float.self, on: context)
            try checkAttention(AttentionCase(heads: 8, kvHeads: 2, queryLength: 3, keyLength: 130, headDim: 64, mask: .causal()),
                               Float.self, on: context)
            try checkAttention(AttentionCase(heads: 2, kvHeads: 1, queryLength: 20, keyLength: 90, headDim: 48), Float16.self, on: context)
        }
    }

    /// The whole-key-range C call (vkk_attention_stream) that tiles take when their masks are key ranges
    /// only: more query rows per K/V head than one register tile, windows that leave some rows of a
    /// tile without keys, per-batch key and query lengths, the sequence-first layout (K/V rows at a
    /// stride wider than dk), V wider than Q/K, and a bias (the per-block path) beside it.
    func testAttentionWholeKeyRangeCallOnEveryPath() throws {
        let context = try ComputeContext(backend: .cpu)
        try onEveryCPUPath { _ in
            // Decode with 8 query heads per K/V head (8 rows a tile) over several 64-key blocks and a tail.
            try checkAttention(AttentionCase(heads: 16, kvHeads: 2, queryLength: 1, keyLength: 200, headDim: 128, mask: .causal()),
                               Float.self, on: context)
            // A sliding window: each row's keys start and end inside blocks; rows near the top see few keys.
            try checkAttention(AttentionCase(heads: 2, kvHeads: 1, queryLength: 70, keyLength: 130, headDim: 40,
                                             mask: AttentionMask(isCausal: true, window: .init(left: 45, right: 0))), Float.self, on: context)
            // Per-batch lengths: padded query rows (no keys) share tiles with real ones.
            try checkAttention(AttentionCase(batch: 2, heads: 4, kvHeads: 2, queryLength: 3, keyLength: 150, headDim: 64,
                                             mask: AttentionMask(isCausal: true, queryLengths: [2, 3], keyLengths: [97, 150])),
                               Float.self, on: context)
            // More than one 96-row tile per K/V head: the tiles share one transposed copy of the head's
            // keys (vkk_attention_transpose_keys; a last tile of 8 rows reads key rows directly on the
            // AVX-512 path). Key lengths off the 64-key blocks, and windows whose first key is inside a block
            // (the blocks of the shared copy start at key 0, the window's first key is masked inside one).
            try checkAttention(AttentionCase(heads: 4, kvHeads: 1, queryLength: 50, keyLength: 150, headDim: 64), Float.self, on: context)
            try checkAttention(AttentionCase(heads: 2, kvHeads: 1, queryLength: 150, keyLength: 150, headDim: 48,
                                             mask: AttentionMask(isCausal: true, window: .init(left: 45, right: 0))), Float.self, on: context)
            try checkAttention(AttentionCase(batch: 2, heads: 3, kvHeads: 1, queryLength: 70, keyLength: 200, headDim: 32,
                                             mask: AttentionMask(isCausal: true, queryLengths: [70, 61], keyLengths: [130, 200])),
                               Float.self, on: context)
            // Sequence-first layout and a V head dim of 96 against Q/K's 32.
            try checkAttention(AttentionCase(heads: 4, kvHeads: 2, queryLength: 5, keyLength: 140, headDim: 32,
                                             layout: .batchSequenceHead, valueHeadDim: 96), Float.self, on: context)
            // The same shape with a bias takes the per-block path.
            try checkAttention(AttentionCase(heads: 4, kvHeads: 2, queryLength: 5, keyLength: 140, headDim: 32,
                                             layout: .batchSequenceHead, biasShape: [5, 140], valueHeadDim: 96), Float.self, on: context)
        }
    }

    /// vkk_read_sum (the decode bound's streaming read) on every path: lengths with and without vector
    /// tails, against a float64 sum of integers (exact in fp32 at these sizes, so equality is required).
    func testReadSumOnEveryPath() {
        onEveryCPUPath { path in
            for count in [0, 1, 15, 16, 63, 64, 65, 1000, 4097] {
                let values = (0..<count).map { Float(($0 * 7919) % 13) - 6 }
                let want = values.reduce(0.0) { $0 + Double($1) }
                XCTAssertEqual(Double(vkk_read_sum(values, Int64(count))), want, "\(path): \(count)")
            }
        }
    }

    func testHalfWideningOnEveryPath() {
        let patterns = (0...UInt16.max).map { $0 }
        onEveryCPUPath { path in
            // An odd start and count leave tails after every vector width.
            var widened = [Float](repeating: 0, count: patterns.count - 3)
            patterns.withUnsafeBufferPointer { source in
                widened.withUnsafeMutableBufferPointer { vkk_widen_half(source.baseAddress! + 3, $0.baseAddress!, Int64($0.count)) }
            }
            var mismatches = 0
            for (index, got) in widened.enumerated() {
                let expected = Float(Float16(bitPattern: patterns[index + 3]))
                if !(expected.isNaN ? got.isNaN && got.sign == expected.sign : got.bitPattern == expected.bitPattern) { mismatches += 1 }
            }
            XCTAssertEqual(mismatches, 0, path)
        }
    }
}
