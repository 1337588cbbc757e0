import VulkanKernels
import XCTest

/// Float64 references and random sparse test matrices for the sparse family's tests.
enum SparseReference {
    /// C = alpha·A·B + beta·C in float64 from dense row-major A (M×K), B (K×N), C (M×N).
    static func matmul(_ a: [Double], _ b: [Double], _ c: [Double], m: Int, n: Int, k: Int, alpha: Double, beta: Double) -> [Double] {
        var result = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for p in 0..<k where a[i * k + p] != 0 {
                for j in 0..<n { result[i * n + j] += a[i * k + p] * b[p * n + j] }
            }
            for j in 0..<n { result[i * n + j] = alpha * result[i * n + j] + (beta == 0 ? 0 : beta * c[i * n + j]) }
        }
        return result
    }

    /// A random dense matrix with the given fraction of entries zero (seeded), values in [-1, 1).
    static func sparseDense(rows: Int, columns: Int, density: Double, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<rows * columns).map { _ in
            Double.random(in: 0..<1, using: &generator) < density ? Float.random(in: -1..<1, using: &generator) : 0
        }
    }

    /// Rows whose lengths follow a power law (row r keeps about columns / (r + 1) entries), shuffled.
    static func powerLawDense(rows: Int, columns: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        var dense = [Float](repeating: 0, count: rows * columns)
        let order = (0..<rows).shuffled(using: &generator)
        for (rank, row) in order.enumerated() {
            let length = max(0, columns / (rank + 1) - (rank > rows / 2 ? 1 : 0))
            for column in (0..<columns).shuffled(using: &generator).prefix(length) {
                dense[row * columns + column] = Float.random(in: -1..<1, using: &generator)
            }
        }
        return dense
    }

    /// |got - want| ≤ tolerance · (Σ|terms| + 1) per element, where Σ|terms| bounds the rounding error scale.
    static func assertClose(_ got: [Double], _ want: [Double], scale: [Double], tolerance: Double, _ message: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, message, file: file, line: line)
        for index in 0..<min(got.count, want.count) where !(abs(got[index] - want[index]) <= tolerance * (scale[index] + 1)) {
            XCTFail("\(message): element \(index) is \(got[index]), expected \(want[index])", file: file, line: line)
            return
        }
    }
}
