import VulkanKernels
import XCTest

final class SparseSpMVAndSDDMMTests: XCTestCase {
    /// Same bounds as SparseSpMMTests: fp32 accumulation (1e-5 of Σ|terms|), fp16 output rounding (2e-3).
    static let tolerance32 = 1e-5
    static let tolerance16 = 2e-3
    /// bf16 output rounding: unit roundoff 2^-8 of |result| ≤ the Σ|terms| scale, plus fp32 accumulation.
    static let toleranceBF16 = 0x1p-8 + tolerance32

    static func tolerance<Element>(_: Element.Type) -> Double {
        Element.self == Float.self ? tolerance32 : Element.self == BFloat16.self ? toleranceBF16 : tolerance16
    }

    func checkSpMV<Element: FloatingPointElement>(_ dense: [Float], rows: Int, columns: Int, _: Element.Type, blocks: [Int] = [8],
                                                  alpha: Float, beta: Float, on context: ComputeContext) throws {
        let values = dense.map { Element($0) }
        var matrices: [SparseMatrix<Element>] = [.csr(try CSRMatrix(dense: values, rows: rows, columns: columns))]
        for block in blocks where rows % block == 0 && columns % block == 0 {
            matrices.append(.bsr(try BSRMatrix(dense: values, rows: rows, columns: columns, blockSize: block)))
        }
        if columns % 4 == 0 { matrices.append(.nm(try SparsePruning.nm(values, rows: rows, columns: columns, n: 2, m: 4))) }
        let xValues = [Float].random(count: columns, seed: 3).map { Element($0) }
        let yValues = beta == 0 ? [Element](repeating: .nan, count: rows) : [Float].random(count: rows, seed: 4).map { Element($0) }
        for matrix in matrices {
            let aDense: [Double]
            switch matrix {
            case .csr(let m): aDense = m.toDense().map { Double($0) }
            case .bsr(let m): aDense = m.toDense().map { Double($0) }
            case .nm(let m): aDense = m.toDense().map { Double($0) }
            }
            let x = try context.tensor(xValues, shape: [columns]), y = try context.tensor(yValues, shape: [rows])
            try context.batch { try $0.spmv(matrix, x, into: y, alpha: alpha, beta: beta) }
            let xd = xValues.map { Double($0) }, yd = yValues.map { Double($0) }
            let want = SparseReference.matmul(aDense, xd, yd, m: rows, n: 1, k: columns, alpha: Double(alpha), beta: Double(beta))
            let scale = SparseReference.matmul(aDense.map(abs), xd.map(abs), yd.map(abs), m: rows, n: 1, k: columns,
                                               alpha: Double(abs(alpha)), beta: Double(abs(beta)))
            SparseReference.assertClose(try y.toArray().map { Double($0) }, want, scale: scale,
                                        tolerance: Self.tolerance(Element.self),
                                        "spmv \(matrix.formatName) \(rows)×\(columns) \(Element.self) on \(context.backendDescription)")
        }
    }

    func testSpMVEveryFormatAndDType() throws {
        onEveryBackend { context in
            let dense = SparseReference.sparseDense(rows: 40, columns: 64, density: 0.3, seed: 8)
            try checkSpMV(dense, rows: 40, columns: 64, Float.self, alpha: 1, beta: 0, on: context)
            try checkSpMV(dense, rows: 40, columns: 64, Float16.self, alpha: 0.5, beta: -2, on: context)
            try checkSpMV(dense, rows: 40, columns: 64, BFloat16.self, alpha: 0.5, beta: -2, on: context)
        }
    }

    func testSpMVEdgeCases() throws {
        onEveryBackend { context in
            try checkSpMV([Float](repeating: 0, count: 16 * 8), rows: 16, columns: 8, Float.self, alpha: 1, beta: 0.5, on: context)
            var oneRow = [Float](repeating: 0, count: 64 * 200)
            for column in 0..<200 { oneRow[5 * 200 + column] = Float(column % 5) - 2 }
            try checkSpMV(oneRow, rows: 64, columns: 200, Float.self, alpha: 1, beta: 0, on: context)
            try checkSpMV([Float(-3)], rows: 1, columns: 1, Float.self, alpha: 2, beta: 0, on: context)
            try checkSpMV(SparseReference.powerLawDense(rows: 72, columns: 40, seed: 4), rows: 72, columns: 40, Float.self,
                          alpha: 1, beta: 1, on: context)
        }
    }

    func checkSDDMM<Element: FloatingPointElement>(_ pattern: CSRMatrix<Element>, k: Int, _: Element.Type, alpha: Float, beta: Float,
                                                   on context: ComputeContext) throws {
        let (m, n) = (pattern.rows, pattern.columns)
        let aValues = [Float].random(count: m * k, seed: 21).map { Element($0) }
        let bValues = [Float].random(count: n * k, seed: 22).map { Element($0) }
        let outValues = beta == 0 ? [Element](repeating: .nan, count: pattern.storedCount)
                                  : [Float].random(count: pattern.storedCount, seed: 23).map { Element($0) }
        let a = try context.tensor(aValues, shape: [m, k]), b = try context.tensor(bValues, shape: [n, k])
        let out = try context.tensor(outValues, shape: [pattern.storedCount])
        let uploaded = try context.upload(pattern)
        try context.batch { try $0.sddmm(a, b, pattern: uploaded, into: out, alpha: alpha, beta: beta) }
        let got = pattern.storedCount == 0 ? [] : try out.toArray()
        var want = [Double](), scale = [Double]()
        for row in 0..<m {
            for j in Int(pattern.rowPointers[row])..<Int(pattern.rowPointers[row + 1]) {
                let column = Int(pattern.columnIndices[j])
                var dot = 0.0, magnitude = 0.0
                for p in 0..<k {
                    let term = Double(aValues[row * k + p]) * Double(bValues[column * k + p])
                    dot += term; magnitude += abs(term)
                }
                want.append(Double(alpha) * dot + (beta == 0 ? 0 : Double(beta) * Double(outValues[j])))
                scale.append(Double(abs(alpha)) * magnitude + (beta == 0 ? 0 : Double(abs(beta)) * abs(Double(outValues[j]))))
            }
        }
        SparseReference.assertClose(got.map { Double($0) }, want, scale: scale,
                                    tolerance: Self.tolerance(Element.self),
                                    "sddmm \(m)×\(n) K=\(k) \(Element.self) on \(context.backendDescription)")
    }

    func testSDDMMEveryDTypeAndEdgeCases() throws {
        onEveryBackend { context in
            let pattern = try CSRMatrix(dense: SparseReference.powerLawDense(rows: 30, columns: 50, seed: 2), rows: 30, columns: 50)
            try checkSDDMM(pattern, k: 32, Float.self, alpha: 1, beta: 0, on: context)
            try checkSDDMM(pattern, k: 13, Float.self, alpha: 0.5, beta: 2, on: context)
            try checkSDDMM(pattern.converted(to: Float16.self), k: 32, Float16.self, alpha: 1, beta: -1, on: context)
            try checkSDDMM(pattern.converted(to: BFloat16.self), k: 32, BFloat16.self, alpha: 1, beta: -1, on: context)
            try checkSDDMM(pattern.converted(to: BFloat16.self), k: 13, BFloat16.self, alpha: 0.5, beta: 0, on: context)
            try checkSDDMM(try CSRMatrix(dense: [Float](repeating: 0, count: 20), rows: 4, columns: 5), k: 8, Float.self,
                           alpha: 1, beta: 0, on: context)
            try checkSDDMM(try CSRMatrix(dense: [Float(1)], rows: 1, columns: 1), k: 1, Float.self, alpha: 1, beta: 0, on: context)
            let result = try context.sddmm(try context.tensor([Float](repeating: 1, count: 4), shape: [2, 2]),
                                           try context.tensor([Float](repeating: 2, count: 6), shape: [3, 2]),
                                           pattern: try CSRMatrix(dense: [Float(1), 0, 1, 0, 1, 0], rows: 2, columns: 3))
            XCTAssertEqual(result.values, [4, 4, 4])
        }
    }

    func testBadShapesThrow() throws {
        onEveryBackend { context in
            let pattern = try context.upload(try CSRMatrix(dense: [Float(1), 0, 1, 0], rows: 2, columns: 2))
            let a = try context.zeros(Float.self, shape: [2, 4]), b = try context.zeros(Float.self, shape: [3, 4])
            let out = try context.zeros(Float.self, shape: [2])
            XCTAssertThrowsError(try context.batch { try $0.sddmm(a, b, pattern: pattern, into: out) })
            let x = try context.zeros(Float.self, shape: [3]), y = try context.zeros(Float.self, shape: [2])
            XCTAssertThrowsError(try context.batch { try $0.spmv(pattern, x, into: y) })
        }
    }
}
