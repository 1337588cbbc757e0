import VulkanKernels
import XCTest

/// Every format × SpMM form × dtype against a float64 reference, on both backends.
final class SparseSpMMTests: XCTestCase {
    /// fp32 accumulation of K' products of values ≤ 1: error ≲ K'·2^-24 relative to Σ|a·b|; 1e-5 covers K' ≤ 100
    /// with margin. fp16 storage rounds the output once (2^-11 relative) on top of fp32 accumulation.
    static let tolerance32 = 1e-5
    static let tolerance16 = 2e-3
    /// bf16 storage rounds the output once (unit roundoff 2^-8, relative to |C| ≤ the Σ|a·b| scale) on top
    /// of the same fp32 accumulation; the inputs are exact in fp32.
    static let toleranceBF16 = 0x1p-8 + tolerance32

    enum Form: CaseIterable { case spmm, linear }

    /// Runs C = alpha·A·B + beta·C (or the linear form) and compares with float64.
    func check<Element: FloatingPointElement>(_ a: SparseMatrix<Element>, dense aDense: [Float], n: Int, form: Form,
                                              alpha: Float, beta: Float, _: Element.Type, on context: ComputeContext,
                                              kernel: SpMMKernel = .automatic,
                                              file: StaticString = #filePath, line: UInt = #line) throws {
        let (m, k) = (a.rows, a.columns)
        let aValues = aDense.map { Double(Element($0)) }
        let bValues = [Float].random(count: k * n, seed: UInt64(m * 31 + n)).map { Element($0) }
        let cValues = beta == 0 ? [Element](repeating: .nan, count: m * n) : [Float].random(count: m * n, seed: 7).map { Element($0) }
        let bDouble = bValues.map { Double($0) }, cDouble = cValues.map { Double($0) }
        let tolerance = Element.self == Float.self ? Self.tolerance32 : Element.self == BFloat16.self ? Self.toleranceBF16 : Self.tolerance16
        let label = "\(a.formatName) \(m)×\(k)·N=\(n) \(form) \(Element.self) \(kernel) on \(context.backendDescription)"
        switch form {
        case .spmm:
            let b = try context.tensor(bValues, shape: [k, n]), c = try context.tensor(cValues, shape: [m, n])
            try context.batch { try $0.spmm(a, b, into: c, alpha: alpha, beta: beta, kernel: kernel) }
            let want = SparseReference.matmul(aValues, bDouble, cDouble, m: m, n: n, k: k, alpha: Double(alpha), beta: Double(beta))
            let scale = SparseReference.matmul(aValues.map(abs), bDouble.map(abs), cDouble.map(abs), m: m, n: n, k: k,
                                               alpha: Double(abs(alpha)), beta: Double(abs(beta)))
            SparseReference.assertClose(try c.toArray().map { Double($0) }, want, scale: scale, tolerance: tolerance, label, file: file, line: line)
        case .linear:
            // X is [n, k] = Bᵀ; Y = X·Aᵀ is [n, m] = (A·B)ᵀ.
            var xValues = [Element](repeating: 0, count: n * k)
            for p in 0..<k { for j in 0..<n { xValues[j * k + p] = bValues[p * n + j] } }
            var yValues = [Element](repeating: 0, count: n * m)
            for i in 0..<m { for j in 0..<n { yValues[j * m + i] = cValues[i * n + j] } }
            let x = try context.tensor(xValues, shape: [n, k]), y = try context.tensor(yValues, shape: [n, m])
            try context.batch { try $0.linear(x, weight: a, into: y, alpha: alpha, beta: beta, kernel: kernel) }
            let want = SparseReference.matmul(aValues, bDouble, cDouble, m: m, n: n, k: k, alpha: Double(alpha), beta: Double(beta))
            let scale = SparseReference.matmul(aValues.map(abs), bDouble.map(abs), cDouble.map(abs), m: m, n: n, k: k,
                                               alpha: Double(abs(alpha)), beta: Double(abs(beta)))
            let got = try y.toArray()
            var gotTransposed = [Double](repeating: 0, count: m * n)
            for i in 0..<m { for j in 0..<n { gotTransposed[i * n + j] = Double(got[j * m + i]) } }
            SparseReference.assertClose(gotTransposed, want, scale: scale, tolerance: tolerance, label, file: file, line: line)
        }
    }

    /// CSR, BSR with `blocks`, 2:4 and 3:16 forms of one dense matrix (N:M pruned from it). Pipelines are
    /// compiled per variant (slow on lavapipe), so tests pick the block sizes they need.
    func formats<Element: FloatingPointElement>(_ dense: [Float], rows: Int, columns: Int, _: Element.Type,
                                                blocks: [Int] = [8]) throws -> [(SparseMatrix<Element>, [Float])] {
        let values = dense.map { Element($0) }
        var result: [(SparseMatrix<Element>, [Float])] = [(.csr(try CSRMatrix(dense: values, rows: rows, columns: columns)), dense)]
        for block in blocks where rows % block == 0 && columns % block == 0 {
            result.append((.bsr(try BSRMatrix(dense: values, rows: rows, columns: columns, blockSize: block)), dense))
        }
        for (n, m) in [(2, 4), (3, 16)] where columns % m == 0 {
            let pruned = try SparsePruning.nm(values, rows: rows, columns: columns, n: n, m: m)
            result.append((.nm(pruned), pruned.toDense().map { Float($0) }))
        }
        return result
    }

    func testEveryFormatFormAndDType() throws {
        onEveryBackend { context in
            let dense = SparseReference.sparseDense(rows: 32, columns: 64, density: 0.3, seed: 1)
            for form in Form.allCases {
                for (matrix, aDense) in try formats(dense, rows: 32, columns: 64, Float.self) {
                    try check(matrix, dense: aDense, n: 37, form: form, alpha: 1, beta: 0, Float.self, on: context)
                }
                for (matrix, aDense) in try formats(dense, rows: 32, columns: 64, Float16.self) {
                    try check(matrix, dense: aDense, n: 37, form: form, alpha: -0.5, beta: 0.75, Float16.self, on: context)
                }
            }
        }
    }

    /// bf16 values, B and C in every format and both forms: the "_bf16" shader variants (R16UI / RGBA16UI
    /// views, bf16 stores, transpose_tokens for the linear form with N % 4 == 0) and the CPU path.
    func testBFloat16EveryFormatAndForm() throws {
        onEveryBackend { context in
            let dense = SparseReference.sparseDense(rows: 32, columns: 64, density: 0.3, seed: 14)
            for (matrix, aDense) in try formats(dense, rows: 32, columns: 64, BFloat16.self) {
                try check(matrix, dense: aDense, n: 37, form: .spmm, alpha: -0.5, beta: 0.75, BFloat16.self, on: context)
                try check(matrix, dense: aDense, n: 12, form: .linear, alpha: 1, beta: 0.5, BFloat16.self, on: context)
            }
            let pruned = try SparsePruning.nm(dense.map { BFloat16($0) }, rows: 32, columns: 64, n: 2, m: 4)
            try check(.nm(pruned), dense: pruned.toDense().map { Float($0) }, n: 68, form: .spmm, alpha: 1, beta: 0.25, BFloat16.self,
                      on: context, kernel: .nmTiles)
        }
    }

    /// N a multiple of 4 takes the vec4 load path; 256 columns fill a CSR workgroup.
    func testVectorLoadsAndEveryBlockSize() throws {
        onEveryBackend { context in
            let dense = SparseReference.sparseDense(rows: 64, columns: 32, density: 0.3, seed: 2)
            for (matrix, aDense) in try formats(dense, rows: 64, columns: 32, Float.self, blocks: [4, 8, 16, 32]) {
                try check(matrix, dense: aDense, n: 256, form: .spmm, alpha: 1, beta: 0, Float.self, on: context)
            }
            for (matrix, aDense) in try formats(dense, rows: 64, columns: 32, Float16.self, blocks: [32]) {
                try check(matrix, dense: aDense, n: 256, form: .spmm, alpha: 1, beta: 0, Float16.self, on: context)
            }
        }
    }

    /// The CPU path reads B packed into zero-padded 32-column tiles when K ≥ 1024 or N < 32 (and enough
    /// values are stored), else in place: both, with a narrow last tile, and alpha/beta. The linear form
    /// always packs (tiles cut from X's rows) and writes Y transposed, reading it when beta ≠ 0.
    func testPackedAndInPlaceColumnTilesOfB() throws {
        onEveryBackend { context in
            for (k, n) in [(1040, 45), (1040, 13), (100, 45), (100, 64)] {
                let dense = SparseReference.sparseDense(rows: 24, columns: k, density: 0.2, seed: UInt64(k + n))
                let matrix = SparseMatrix<Float>.csr(try CSRMatrix(dense: dense, rows: 24, columns: k))
                try check(matrix, dense: dense, n: n, form: .spmm, alpha: 1.5, beta: 0, Float.self, on: context)
                try check(matrix, dense: dense, n: n, form: .spmm, alpha: 1, beta: -0.5, Float.self, on: context)
                try check(matrix, dense: dense, n: n, form: .linear, alpha: 0.75, beta: -0.5, Float.self, on: context)
                let bsr = SparseMatrix<Float>.bsr(try BSRMatrix(dense: dense, rows: 24, columns: k, blockSize: 4))
                try check(bsr, dense: dense, n: n, form: .spmm, alpha: 1, beta: 0, Float.self, on: context)
            }
        }
    }

    /// The CPU path splits a large product into pieces of (64 columns of C) × (a chunk of rows), handed to
    /// the threads group by group: several groups with a narrow last one (N = 150: 64, 64, 22 columns),
    /// chunks of rows of unequal length, every format and both forms, against float64.
    func testCPUPiecesOfColumnGroupsAndRowChunks() throws {
        let context = Backends.cpu
        let (rows, columns, n) = (96, 1536, 150)
        var dense = SparseReference.sparseDense(rows: rows, columns: columns, density: 0.3, seed: 41)
        // A few long rows and an empty one, so the chunks (equal shares of stored entries) differ in rows.
        for c in 0..<columns where c % 3 != 0 { dense[5 * columns + c] = Float(c % 7) / 7 - 0.4 }
        for c in 0..<columns { dense[17 * columns + c] = 0 }
        for (matrix, values) in try formats(dense, rows: rows, columns: columns, Float.self, blocks: [8]) {
            try check(matrix, dense: values, n: n, form: .spmm, alpha: 1, beta: 0, Float.self, on: context)
            try check(matrix, dense: values, n: n, form: .spmm, alpha: 0.5, beta: -1.5, Float.self, on: context)
            try check(matrix, dense: values, n: n, form: .linear, alpha: 1, beta: 0.25, Float.self, on: context)
        }
    }

    func testAlphaBetaAndNaNInOutputWithBetaZero() throws {
        onEveryBackend { context in
            let dense = SparseReference.sparseDense(rows: 32, columns: 32, density: 0.2, seed: 3)
            for (matrix, aDense) in try formats(dense, rows: 32, columns: 32, Float.self) {
                try check(matrix, dense: aDense, n: 37, form: .spmm, alpha: 2, beta: -1, Float.self, on: context)
                try check(matrix, dense: aDense, n: 37, form: .spmm, alpha: 0.5, beta: 0, Float.self, on: context)
            }
        }
    }

    func testEdgeCases() throws {
        onEveryBackend { context in
            // Fully empty matrix: C = beta·C.
            let empty = [Float](repeating: 0, count: 32 * 16)
            for (matrix, aDense) in try formats(empty, rows: 32, columns: 16, Float.self) {
                try check(matrix, dense: aDense, n: 37, form: .spmm, alpha: 1, beta: 0.5, Float.self, on: context)
            }
            // One dense row among empty ones (the load-balance edge), N not a multiple of any tile.
            var oneRow = [Float](repeating: 0, count: 64 * 64)
            for column in 0..<64 { oneRow[17 * 64 + column] = Float(column % 7) - 3 }
            for (matrix, aDense) in try formats(oneRow, rows: 64, columns: 64, Float.self) {
                try check(matrix, dense: aDense, n: 37, form: .spmm, alpha: 1, beta: 0, Float.self, on: context)
                try check(matrix, dense: aDense, n: 37, form: .linear, alpha: 1, beta: 0, Float.self, on: context)
            }
            // 1×1.
            try check(.csr(try CSRMatrix(dense: [Float(2)], rows: 1, columns: 1)), dense: [2], n: 1, form: .spmm, alpha: 1, beta: 0,
                      Float.self, on: context)
            // Non-square, power-law row lengths, N = 1 and a width past one workgroup's columns.
            let powerLaw = SparseReference.powerLawDense(rows: 48, columns: 80, seed: 11)
            for (matrix, aDense) in try formats(powerLaw, rows: 48, columns: 80, Float.self) {
                try check(matrix, dense: aDense, n: 1, form: .spmm, alpha: 1, beta: 0, Float.self, on: context)
                try check(matrix, dense: aDense, n: 300, form: .spmm, alpha: 1, beta: 1, Float.self, on: context)
                try check(matrix, dense: aDense, n: 37, form: .linear, alpha: 1, beta: 0, Float.self, on: context)
            }
        }
    }

    /// The N:M register-tile kernel (spmm_nm.comp) forced, against the entry kernel forced, on the shapes that
    /// exercise its tails: rows not a multiple of its 16-row tile, N a multiple of 4 but not of a subgroup's
    /// 32 columns (lanes past N), N = 4, an all-zero matrix, and each supported N (1:4 spans 16 columns per
    /// step, 2:4 and 4:8 span 8).
    func testNMTileKernelEdgeShapes() throws {
        onEveryBackend { context in
            for (rows, columns, n, m) in [(37, 40, 2, 4), (16, 48, 1, 4), (21, 48, 4, 8)] {
                let dense = SparseReference.sparseDense(rows: rows, columns: columns, density: 0.6, seed: UInt64(rows))
                let pruned = try SparsePruning.nm(dense, rows: rows, columns: columns, n: n, m: m)
                let aDense = pruned.toDense()
                for width in [44, 4] {
                    try check(.nm(pruned), dense: aDense, n: width, form: .spmm, alpha: 1.5, beta: 0, Float.self, on: context, kernel: .nmTiles)
                }
                for kernel in [SpMMKernel.nmTiles, .rowEntries] {
                    try check(.nm(pruned), dense: aDense, n: 36, form: .spmm, alpha: -1, beta: 0.5, Float.self, on: context, kernel: kernel)
                }
                // The linear form reads rows of X (any token count, lanes past it clamped), or X transposed
                // first when the token count is a multiple of 4.
                for tokens in [37, 1, 44] {
                    try check(.nm(pruned), dense: aDense, n: tokens, form: .linear, alpha: 1, beta: tokens == 1 ? 0 : -0.5, Float.self,
                              on: context, kernel: .nmTiles)
                }
                let half = try SparsePruning.nm(dense.map { Float16($0) }, rows: rows, columns: columns, n: n, m: m)
                for form in Form.allCases {
                    try check(.nm(half), dense: half.toDense().map { Float($0) }, n: 68, form: form, alpha: 1, beta: 0.25, Float16.self,
                              on: context, kernel: .nmTiles)
                }
            }
            let zeros = try NMSparseMatrix<Float>(dense: [Float](repeating: 0, count: 24 * 16), rows: 24, columns: 16, n: 2, m: 4)
            try check(.nm(zeros), dense: zeros.toDense(), n: 12, form: .spmm, alpha: 1, beta: 0.5, Float.self, on: context, kernel: .nmTiles)
        }
    }

    /// The linear form with token count and K multiples of 4: CSR and BSR (and N:M forced to the entry
    /// kernel) read X transposed to K × N by transpose_tokens.comp; K = 30 keeps the scalar-read path.
    func testLinearFormWithTransposedTokens() throws {
        onEveryBackend { context in
            let dense = SparseReference.sparseDense(rows: 32, columns: 64, density: 0.3, seed: 12)
            for (matrix, aDense) in try formats(dense, rows: 32, columns: 64, Float.self, blocks: [8, 32]) {
                try check(matrix, dense: aDense, n: 44, form: .linear, alpha: 1, beta: 0, Float.self, on: context)
                try check(matrix, dense: aDense, n: 4, form: .linear, alpha: 2, beta: -0.5, Float.self, on: context)
            }
            for (matrix, aDense) in try formats(dense, rows: 32, columns: 64, Float16.self) {
                try check(matrix, dense: aDense, n: 12, form: .linear, alpha: 1, beta: 0.5, Float16.self, on: context)
            }
            let pruned = try SparsePruning.nm(dense, rows: 32, columns: 64, n: 2, m: 4)
            try check(.nm(pruned), dense: pruned.toDense(), n: 44, form: .linear, alpha: 1, beta: 0, Float.self, on: context,
                      kernel: .rowEntries)
            let odd = SparseReference.sparseDense(rows: 16, columns: 30, density: 0.3, seed: 13)
            try check(.csr(try CSRMatrix(dense: odd, rows: 16, columns: 30)), dense: odd, n: 8, form: .linear, alpha: 1, beta: 0,
                      Float.self, on: context)
        }
    }

    /// BSR with N a multiple of 4 but not of 32: right-edge tiles run the unchecked block loop with lanes past N.
    func testBlockKernelRightEdgeTiles() throws {
        onEveryBackend { context in
            let dense = SparseReference.sparseDense(rows: 64, columns: 64, density: 0.3, seed: 5)
            for block in [8, 32] {
                let matrix = try BSRMatrix(dense: dense, rows: 64, columns: 64, blockSize: block)
                try check(.bsr(matrix), dense: dense, n: 44, form: .spmm, alpha: 1, beta: 0, Float.self, on: context, kernel: .blockTiles)
                try check(.bsr(matrix), dense: dense, n: 4, form: .spmm, alpha: 2, beta: -1, Float.self, on: context)
            }
        }
    }

    /// A forced kernel that cannot run the matrix or shape throws before anything runs (Vulkan only: the CPU
    /// backend has one path and ignores the choice).
    func testForcedKernelThatDoesNotApplyThrows() throws {
        try onVulkan { context in
            let dense = SparseReference.sparseDense(rows: 8, columns: 36, density: 0.5, seed: 9)
            let csr = SparseMatrix<Float>.csr(try CSRMatrix(dense: dense, rows: 8, columns: 36))
            let nm = SparseMatrix<Float>.nm(try SparsePruning.nm(dense, rows: 8, columns: 36, n: 2, m: 4))   // 18 values a row
            let b = try context.zeros(Float.self, shape: [36, 8]), c = try context.zeros(Float.self, shape: [8, 8])
            for (matrix, kernel) in [(csr, SpMMKernel.nmTiles), (csr, .blockTiles), (nm, .blockTiles), (nm, .nmTiles)] {
                XCTAssertThrowsError(try context.batch { try $0.spmm(matrix, b, into: c, kernel: kernel) }, "\(kernel)") { error in
                    guard case KernelError.invalidParameter(_, "kernel", _) = error else { return XCTFail("\(error)") }
                }
            }
            // 2:3 spans 6 columns per step: the spmm form reads it, the linear form (rows of X as vec4 texels
            // from each step's first column) does not.
            let narrow = SparseReference.sparseDense(rows: 8, columns: 12, density: 0.5, seed: 10)
            let twoOfThree = SparseMatrix<Float>.nm(try SparsePruning.nm(narrow, rows: 8, columns: 12, n: 2, m: 3))
            let x = try context.zeros(Float.self, shape: [8, 12]), y = try context.zeros(Float.self, shape: [8, 8])
            XCTAssertThrowsError(try context.batch { try $0.linear(x, weight: twoOfThree, into: y, kernel: .nmTiles) })
            let bNarrow = try context.zeros(Float.self, shape: [12, 8])
            XCTAssertNoThrow(try context.batch { try $0.spmm(twoOfThree, bNarrow, into: c, kernel: .nmTiles) })
        }
    }

    func testShapeErrorsThrowBeforeRunning() throws {
        onEveryBackend { context in
            let a = SparseMatrix<Float>.csr(try CSRMatrix(dense: [1, 0, 0, 2, 0, 3], rows: 2, columns: 3))
            let b = try context.zeros(Float.self, shape: [4, 5]), c = try context.zeros(Float.self, shape: [2, 5])
            XCTAssertThrowsError(try context.batch { try $0.spmm(a, b, into: c) })
            let b3 = try context.zeros(Float.self, shape: [3, 5]), cWrong = try context.zeros(Float.self, shape: [3, 5])
            XCTAssertThrowsError(try context.batch { try $0.spmm(a, b3, into: cWrong) })
            XCTAssertThrowsError(try context.batch { try $0.spmm(a, b3, into: c, alpha: .nan) })
            let x = try context.zeros(Float.self, shape: [5, 2]), y = try context.zeros(Float.self, shape: [5, 2])
            XCTAssertThrowsError(try context.batch { try $0.linear(x, weight: a, into: y) })
        }
    }
}

/// The example in docs/sparse.md (README), kept compiling and checked.
final class SparseReadmeExampleTests: XCTestCase {
    func testReadmeExample() throws {
        onEveryBackend { context in
            let (outputs, inputs, tokens) = (64, 128, 8)
            let weight = [Float].random(count: outputs * inputs, seed: 1)
            let activations = [Float].random(count: tokens * inputs, seed: 2)
            let pruned = try SparsePruning.magnitude(weight, rows: outputs, columns: inputs, sparsity: 0.9)
            XCTAssertEqual(pruned.storedCount, 819)
            let x = try context.tensor(activations, shape: [tokens, inputs])
            let w = try context.upload(pruned)
            let y = try context.zeros(Float.self, shape: [tokens, outputs])
            try context.batch { try $0.linear(x, weight: w, into: y) }
            let dense = try context.tensor(pruned.toDense(), shape: [outputs, inputs])
            let reference = try context.matmul(x, dense, transposeB: true)
            let difference = zip(try y.toArray(), try reference.toArray()).map { abs($0 - $1) }.max()!
            // 13 stored products of magnitude ≤ 1 per output on average: fp32 rounding stays far below 1e-4.
            XCTAssertLessThan(difference, 1e-4)
        }
    }
}
