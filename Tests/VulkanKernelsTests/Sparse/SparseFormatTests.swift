import VulkanKernels
import XCTest

/// Formats: validation, conversions and round trips (host-side, no backend involved).
final class SparseFormatTests: XCTestCase {
    let dense = SparseReference.sparseDense(rows: 32, columns: 48, density: 0.25, seed: 5)

    func testDenseRoundTripsAreExact() throws {
        let csr = try CSRMatrix(dense: dense, rows: 32, columns: 48)
        XCTAssertEqual(csr.toDense(), dense)
        XCTAssertEqual(csr.storedCount, dense.filter { $0 != 0 }.count)
        for block in [4, 8, 16] {
            let bsr = try BSRMatrix(dense: dense, rows: 32, columns: 48, blockSize: block)
            XCTAssertEqual(bsr.toDense(), dense, "BSR-\(block)")
            XCTAssert(bsr.toCSR() == csr, "BSR-\(block) → CSR")
            XCTAssert(try BSRMatrix(csr, blockSize: block) == bsr, "CSR → BSR-\(block)")
        }
        let nmDense = try SparsePruning.nm(dense, rows: 32, columns: 48, n: 2, m: 4).toDense()
        let nm = try NMSparseMatrix(dense: nmDense, rows: 32, columns: 48, n: 2, m: 4)
        XCTAssertEqual(nm.toDense(), nmDense)
        XCTAssertEqual(nm.toCSR(), try CSRMatrix(dense: nmDense, rows: 32, columns: 48))
        let half = dense.map { Float16($0) }
        XCTAssertEqual(try CSRMatrix(dense: half, rows: 32, columns: 48).toDense(), half)
        XCTAssertEqual(try BSRMatrix(dense: half, rows: 32, columns: 48, blockSize: 8).toDense(), half)
    }

    func testTransposes() throws {
        func transpose(_ values: [Float], rows: Int, columns: Int) -> [Float] {
            (0..<columns * rows).map { values[($0 % rows) * columns + $0 / rows] }
        }
        let csr = try CSRMatrix(dense: dense, rows: 32, columns: 48)
        XCTAssertEqual(csr.transposed().toDense(), transpose(dense, rows: 32, columns: 48))
        XCTAssertEqual(csr.transposed().transposed(), csr)
        let bsr = try BSRMatrix(dense: dense, rows: 32, columns: 48, blockSize: 8)
        XCTAssertEqual(bsr.transposed().toDense(), transpose(dense, rows: 32, columns: 48))
        let nm = try SparsePruning.nm(dense, rows: 32, columns: 48, n: 1, m: 4)
        XCTAssertEqual(nm.transposed().toDense(), transpose(nm.toDense(), rows: 32, columns: 48))
    }

    func testFromFileData() throws {
        let text = "%%MatrixMarket matrix coordinate real general\n2 3 3\n1 1 1.5\n1 3 2\n2 2 -1\n"
        let data = try SparseMatrixFile.readMatrixMarket(text: text, name: "small.mtx")
        XCTAssertEqual(try CSRMatrix<Float>(data).toDense(), [1.5, 0, 2, 0, -1, 0])
        var pattern = data
        pattern.values = nil
        XCTAssertThrowsError(try CSRMatrix<Float>(pattern))
    }

    func testEmptyAndTinyMatrices() throws {
        let empty = try CSRMatrix(dense: [Float](repeating: 0, count: 12), rows: 3, columns: 4)
        XCTAssertEqual(empty.storedCount, 0)
        XCTAssertEqual(empty.sparsity, 1)
        XCTAssertEqual(empty.transposed().rows, 4)
        XCTAssertEqual(try CSRMatrix(dense: [Float(3)], rows: 1, columns: 1).toDense(), [3])
        XCTAssertEqual(try BSRMatrix(dense: [Float](repeating: 0, count: 64), rows: 8, columns: 8, blockSize: 4).blockCount, 0)
    }

    func testMalformedMatricesThrowNamingTheEntry() {
        func expect(_ expected: SparseMatrixError, _ body: () throws -> Void, line: UInt = #line) {
            XCTAssertThrowsError(try body(), line: line) { XCTAssertEqual($0 as? SparseMatrixError, expected, line: line) }
        }
        expect(.invalidColumnIndex(format: "CSR", row: 1, position: 2, column: 5, reason: "is outside 0..<4")) {
            _ = try CSRMatrix<Float>(rows: 2, columns: 4, rowPointers: [0, 2, 3], columnIndices: [0, 1, 5], values: [1, 2, 3])
        }
        expect(.invalidColumnIndex(format: "CSR", row: 0, position: 1, column: 1,
                                   reason: "does not increase (previous column 2); columns must be sorted and unique")) {
            _ = try CSRMatrix<Float>(rows: 1, columns: 4, rowPointers: [0, 2], columnIndices: [2, 1], values: [1, 2])
        }
        expect(.invalidRowPointer(format: "CSR", index: 2, value: 1, reason: "is less than row pointer [1] = 2")) {
            _ = try CSRMatrix<Float>(rows: 2, columns: 4, rowPointers: [0, 2, 1], columnIndices: [0, 1], values: [1, 2])
        }
        expect(.countMismatch(format: "CSR", array: "row pointers", expected: 3, got: 2)) {
            _ = try CSRMatrix<Float>(rows: 2, columns: 4, rowPointers: [0, 0], columnIndices: [], values: [])
        }
        expect(.countMismatch(format: "CSR", array: "values", expected: 1, got: 2)) {
            _ = try CSRMatrix<Float>(rows: 1, columns: 4, rowPointers: [0, 1], columnIndices: [0], values: [1, 2])
        }
        expect(.invalidDimensions(format: "BSR", rows: 6, columns: 8, reason: "must be multiples of the block size 4")) {
            _ = try BSRMatrix<Float>(rows: 6, columns: 8, blockSize: 4, blockRowPointers: [0, 0], blockColumnIndices: [], values: [])
        }
        expect(.invalidParameter(name: "blockSize", value: "5", reason: "must be one of [4, 8, 16, 32]")) {
            _ = try BSRMatrix<Float>(rows: 10, columns: 10, blockSize: 5, blockRowPointers: [0, 0, 0], blockColumnIndices: [], values: [])
        }
        expect(.invalidColumnIndex(format: "BSR (block structure)", row: 0, position: 0, column: 2, reason: "is outside 0..<2")) {
            _ = try BSRMatrix<Float>(rows: 8, columns: 8, blockSize: 4, blockRowPointers: [0, 1, 1], blockColumnIndices: [2],
                                     values: [Float](repeating: 1, count: 16))
        }
        expect(.invalidColumnIndex(format: "N:M", row: 0, position: 3, column: 6, reason: "does not increase within its group (previous position 2)")) {
            _ = try NMSparseMatrix<Float>(rows: 1, columns: 8, n: 2, m: 4, values: [1, 2, 3, 4], indices: [0, 1, 2, 2])
        }
        expect(.invalidColumnIndex(format: "N:M", row: 0, position: 1, column: 4, reason: "has in-group position 4, outside 0..<4")) {
            _ = try NMSparseMatrix<Float>(rows: 1, columns: 4, n: 2, m: 4, values: [1, 2], indices: [0, 4])
        }
        expect(.invalidParameter(name: "N:M", value: "2:17", reason: "needs 1 ≤ N ≤ M ≤ 16")) {
            _ = try NMSparseMatrix<Float>(rows: 1, columns: 17, n: 2, m: 17, values: [], indices: [])
        }
        XCTAssertThrowsError(try NMSparseMatrix<Float>(dense: [1, 1, 1, 0], rows: 1, columns: 4, n: 2, m: 4))
    }
}

/// Pruning hits its target exactly and keeps the right entries.
final class SparsePruningTests: XCTestCase {
    let weight = [Float].random(count: 64 * 96, seed: 9)

    func testMagnitudePruningHitsTargetAndKeepsLargest() throws {
        for sparsity in [0.5, 0.7, 0.9, 0.95, 0.98, 0, 1] {
            let pruned = try SparsePruning.magnitude(weight, rows: 64, columns: 96, sparsity: sparsity)
            let expectedKept = Int(((1 - sparsity) * Double(weight.count)).rounded())
            XCTAssertEqual(pruned.storedCount, expectedKept, "sparsity \(sparsity)")
            XCTAssertEqual(pruned.sparsity, 1 - Double(expectedKept) / Double(weight.count))
            let keptMinimum = pruned.values.map(\.magnitude).min() ?? .infinity
            let droppedMaximum = zip(weight, pruned.toDense()).filter { $1 == 0 }.map { $0.0.magnitude }.max() ?? 0
            XCTAssert(keptMinimum >= droppedMaximum, "a dropped weight is larger than a kept one at \(sparsity)")
        }
    }

    func testGlobalMagnitudeUsesOneThreshold() throws {
        let small = weight.map { $0 * 0.1 }
        let layers = try SparsePruning.globalMagnitude([(weight, 64, 96), (small, 64, 96)], sparsity: 0.8)
        XCTAssertEqual(layers[0].storedCount + layers[1].storedCount, Int((0.2 * Double(2 * weight.count)).rounded()))
        XCTAssertGreaterThan(layers[0].storedCount, layers[1].storedCount, "the layer of small weights must lose more")
        let threshold = layers[0].values.map(\.magnitude).min()!
        XCTAssert(layers[1].values.allSatisfy { $0.magnitude <= threshold })
    }

    func testRandomPruningIsSeededAndExact() throws {
        let a = try SparsePruning.random(weight, rows: 64, columns: 96, sparsity: 0.9, seed: 1)
        let b = try SparsePruning.random(weight, rows: 64, columns: 96, sparsity: 0.9, seed: 1)
        let c = try SparsePruning.random(weight, rows: 64, columns: 96, sparsity: 0.9, seed: 2)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        XCTAssertEqual(a.storedCount, Int((0.1 * Double(weight.count)).rounded()))
    }

    func testNMPruningKeepsLargestPerGroup() throws {
        for (n, m) in [(2, 4), (1, 4), (4, 8), (3, 16)] {
            let pruned = try SparsePruning.nm(weight, rows: 64, columns: 96, n: n, m: m)
            XCTAssertEqual(pruned.sparsity, 1 - Double(n) / Double(m))
            let kept = pruned.toDense()
            for group in 0..<64 * 96 / m {
                let original = weight[group * m..<(group + 1) * m].map(\.magnitude).sorted(by: >)
                let keptHere = kept[group * m..<(group + 1) * m].filter { $0 != 0 }.map(\.magnitude).sorted(by: >)
                XCTAssertEqual(keptHere, Array(original.prefix(n)), "\(n):\(m) group \(group)")
            }
        }
    }

    func testBlockPruningKeepsLargestBlocks() throws {
        let pruned = try SparsePruning.blockMagnitude(weight, rows: 64, columns: 96, blockSize: 16, sparsity: 0.75)
        XCTAssertEqual(pruned.blockCount, 6)
        XCTAssertEqual(pruned.sparsity, 0.75)
        XCTAssertThrowsError(try SparsePruning.magnitude(weight, rows: 64, columns: 96, sparsity: 1.5))
        XCTAssertThrowsError(try SparsePruning.blockMagnitude(weight, rows: 64, columns: 96, blockSize: 7, sparsity: 0.5))
    }
}
